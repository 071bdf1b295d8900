//! Call control offers a browser (a phone registered over a WebSocket flow) a WebRTC leg and
//! any other phone plain RTP, on the same call: the ACD offers both agents alike, only the SDP
//! differs. No sockets: messages in, messages out.

use super::testing;
use sip::{Peer, Transport};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;
use transport::{Inbound, Payload};

const CONFIG: &str = "[sip]\nlisten_udp = [\"127.0.0.1:5060\"]\nlisten_ws = [\"127.0.0.1:5066\"]\n\
    ring_timeout_s = 20\n\
    [media]\naddress = \"127.0.0.1\"\npublic_address = \"203.0.113.5\"\n\
    [[trunk]]\nname = \"t\"\nallow = [\"127.0.0.0/8\"]\n\
    [[number]]\ndid = \"101\"\nqueue = \"support\"\n\
    [[queue]]\nname = \"support\"\nskills = { support = 1 }\n\
    [[agent]]\nid = \"1001\"\nname = \"Ann\"\npassword = \"pw1001\"\nskills = { support = 1 }\n\
    [[agent]]\nid = \"1002\"\nname = \"Bob\"\npassword = \"pw1002\"\nskills = { support = 1 }\n";

const TRUNK: &str = "127.0.0.1:5999";
const OFFER: &str = "v=0\r\no=gw 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
m=audio 40000 RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\n";

struct Sent {
    peer: Peer,
    text: String,
}

struct Rig {
    switch: super::Switch,
    now: Instant,
    outbox: Vec<Sent>,
}

impl Rig {
    fn deliver(&mut self, source: Peer, text: &str) {
        let local: SocketAddr = match source.transport {
            Transport::Ws => "127.0.0.1:5066",
            _ => "127.0.0.1:5060",
        }
        .parse()
        .expect("addr");
        self.switch.handle_inbound(
            self.now,
            Inbound {
                source,
                local,
                payload: Payload::Message(sip::parse::parse(text.as_bytes()).expect("valid SIP")),
                received: self.now,
            },
        );
        loop {
            let mut tokens = Vec::new();
            while let Some((_, token)) = self.switch.poll_cdr() {
                tokens.push(token);
            }
            if !tokens.is_empty() {
                self.switch.cdr_durable(self.now, &tokens);
            }
            let mut any = false;
            while let Some(t) = self.switch.poll_transmit() {
                any = true;
                self.outbox.push(Sent {
                    peer: t.peer,
                    text: String::from_utf8_lossy(&t.data).into_owned(),
                });
            }
            while self.switch.poll_media().is_some() {}
            if !any && tokens.is_empty() {
                return;
            }
        }
    }

    fn take(&mut self, start: &str) -> Sent {
        let index = self
            .outbox
            .iter()
            .position(|m| m.text.starts_with(start))
            .unwrap_or_else(|| {
                panic!(
                    "no {start} in {:?}",
                    self.outbox.iter().map(|m| &m.text).collect::<Vec<_>>()
                )
            });
        self.outbox.remove(index)
    }

    /// The agent's phone registers from `peer` (401, then digest).
    fn register(&mut self, agent: &str, password: &str, peer: Peer) {
        let via = peer.transport.via_token();
        let from = peer.addr;
        let contact = match peer.transport {
            Transport::Ws => format!("<sip:{agent}@df7jal23ls0d.invalid;transport=ws>"),
            _ => format!("<sip:{agent}@{from}>"),
        };
        let register = |auth: &str, cseq: u32| {
            format!(
                "REGISTER sip:127.0.0.1 SIP/2.0\r\n\
Via: SIP/2.0/{via} {from};branch=z9hG4bKreg{agent}{cseq};rport\r\nMax-Forwards: 70\r\n\
To: <sip:{agent}@127.0.0.1>\r\nFrom: <sip:{agent}@127.0.0.1>;tag=r{agent}\r\n\
Call-ID: reg-{agent}\r\nCSeq: {cseq} REGISTER\r\nContact: {contact}\r\n\
Expires: 300\r\n{auth}Content-Length: 0\r\n\r\n"
            )
        };
        self.deliver(peer, &register("", 1));
        let challenge = self.take("SIP/2.0 401");
        let www = challenge
            .text
            .lines()
            .find_map(|l| l.strip_prefix("WWW-Authenticate: "))
            .expect("a challenge")
            .to_string();
        let answer = sip::digest::respond(
            &www,
            "REGISTER",
            "sip:127.0.0.1",
            agent,
            password,
            "c0ffee",
            1,
        )
        .expect("a digest answer");
        self.deliver(peer, &register(&format!("Authorization: {answer}\r\n"), 2));
        self.take("SIP/2.0 200");
    }

    /// The phone that got `invite` declines it (486).
    fn decline(&mut self, invite: &Sent) {
        let mut lines = vec!["SIP/2.0 486 Busy Here".to_string()];
        for line in invite.text.lines() {
            for name in ["Via: ", "From: ", "Call-ID: ", "CSeq: "] {
                if line.starts_with(name) {
                    lines.push(line.to_string());
                }
            }
            if let Some(to) = line.strip_prefix("To: ") {
                lines.push(format!("To: {to};tag=busy"));
            }
        }
        lines.push("Content-Length: 0".into());
        self.deliver(invite.peer, &(lines.join("\r\n") + "\r\n\r\n"));
    }
}

#[test]
fn a_browser_agent_is_offered_webrtc_and_a_desk_phone_plain_rtp_on_the_same_call() {
    let now = Instant::now();
    let config = crate::config::load_str("t.toml", CONFIG).expect("valid test config");
    let mut rig = Rig {
        switch: testing::switch(now, Arc::new(config), Default::default()),
        now,
        outbox: Vec::new(),
    };
    let browser = Peer {
        transport: Transport::Ws,
        addr: "127.0.0.1:7001".parse().expect("addr"),
    };
    let desk = Peer::udp("127.0.0.1:7002".parse().expect("addr"));
    rig.register("1001", "pw1001", browser);
    rig.register("1002", "pw1002", desk);

    let trunk = Peer::udp(TRUNK.parse().expect("addr"));
    rig.deliver(
        trunk,
        &format!(
            "INVITE sip:101@127.0.0.1 SIP/2.0\r\n\
Via: SIP/2.0/UDP {TRUNK};branch=z9hG4bKcall1;rport\r\nMax-Forwards: 70\r\n\
To: <sip:101@127.0.0.1>\r\nFrom: <sip:2000@127.0.0.1>;tag=caller\r\nCall-ID: call1\r\n\
CSeq: 1 INVITE\r\nContact: <sip:2000@{TRUNK}>\r\nContent-Type: application/sdp\r\n\
Content-Length: {}\r\n\r\n{OFFER}",
            OFFER.len()
        ),
    );
    // Each agent is offered the call in turn (the first declines); which comes first is the
    // ACD's business, so both orders are checked the same way.
    let mut seen = Vec::new();
    for _ in 0..2 {
        let invite = rig.take("INVITE ");
        let body = invite
            .text
            .split("\r\n\r\n")
            .nth(1)
            .unwrap_or_default()
            .to_string();
        match invite.peer.transport {
            Transport::Ws => {
                assert_eq!(invite.peer, browser);
                for wanted in [
                    "m=audio 9 UDP/TLS/RTP/SAVPF 0 101\r\n",
                    "a=ice-lite",
                    "a=fingerprint:sha-256 ",
                    "a=setup:actpass",
                    "a=rtcp-mux",
                    "203.0.113.5 ",
                ] {
                    assert!(
                        body.contains(wanted),
                        "browser offer lacks {wanted}:\n{body}"
                    );
                }
                assert!(
                    body.contains("127.0.0.1 ") && body.contains(" typ host"),
                    "{body}"
                );
            }
            _ => {
                assert_eq!(invite.peer, desk);
                assert!(body.contains("RTP/AVP 0 101"), "plain offer:\n{body}");
                for absent in ["SAVPF", "fingerprint", "ice-"] {
                    assert!(
                        !body.contains(absent),
                        "desk phone offer has {absent}:\n{body}"
                    );
                }
            }
        }
        seen.push(invite.peer.transport);
        rig.decline(&invite);
        rig.outbox.retain(|m| !m.text.starts_with("ACK "));
    }
    seen.sort_by_key(|t| t.via_token());
    assert_eq!(seen, vec![Transport::Udp, Transport::Ws]);
}
