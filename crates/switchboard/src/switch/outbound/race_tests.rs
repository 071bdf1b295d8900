//! Calls out without sockets: the carrier's answers in the orders the network allows — a 2xx
//! retransmitted because our ACK was lost, a 2xx that crosses the agent's CANCEL — and a
//! carrier whose connection cannot be opened (the next trunk at once, no time passing).

use super::super::{testing, Switch};
use sip::Peer;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;
use transport::{Inbound, Payload};

const CONFIG: &str = "[sip]\nlisten_udp = [\"127.0.0.1:5060\"]\n\
    [[trunk]]\nname = \"carrier\"\ngateway = \"127.0.0.1:7000\"\n\
    [[route]]\nprefix = \"+86\"\ntrunks = [\"carrier\"]\n\
    [[agent]]\nid = \"1001\"\nname = \"Ann\"\npassword = \"pw1001\"\noutbound = [\"+86*\"]\n";

const PHONE: &str = "127.0.0.1:6001";
const CARRIER: &str = "127.0.0.1:7000";
const SDP: &str = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
    m=audio 40000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n";

struct Rig {
    switch: Switch,
    now: Instant,
    outbox: Vec<(SocketAddr, String)>,
}

fn header<'t>(text: &'t str, name: &str) -> Option<&'t str> {
    text.lines().find_map(|line| {
        let (n, v) = line.split_once(':')?;
        n.trim().eq_ignore_ascii_case(name).then_some(v.trim())
    })
}

impl Rig {
    fn new() -> Rig {
        Rig::with(CONFIG)
    }

    fn with(config: &str) -> Rig {
        let now = Instant::now();
        let config = crate::config::load_str("t.toml", config).expect("valid test config");
        Rig {
            switch: testing::switch(now, Arc::new(config), Default::default()),
            now,
            outbox: Vec::new(),
        }
    }

    fn deliver(&mut self, from: &str, text: &str) {
        let payload = Payload::Message(sip::parse::parse(text.as_bytes()).expect("valid SIP"));
        self.receive(Peer::udp(from.parse().expect("addr")), payload);
    }

    /// Hands the switch what the transports delivered, then drains what it sends.
    fn receive(&mut self, source: Peer, payload: Payload) {
        let inbound = Inbound {
            source,
            local: "127.0.0.1:5060".parse().expect("addr"),
            payload,
            received: self.now,
        };
        self.switch.handle_inbound(self.now, inbound);
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
                self.outbox
                    .push((t.peer.addr, String::from_utf8_lossy(&t.data).into_owned()));
            }
            while self.switch.poll_media().is_some() {}
            if !any && tokens.is_empty() {
                return;
            }
        }
    }

    /// Removes and returns every message starting with `start` sent to `to`.
    fn take(&mut self, to: &str, start: &str) -> Vec<String> {
        let to: SocketAddr = to.parse().expect("addr");
        let (taken, kept): (Vec<_>, Vec<_>) = std::mem::take(&mut self.outbox)
            .into_iter()
            .partition(|(peer, text)| *peer == to && text.starts_with(start));
        self.outbox = kept;
        taken.into_iter().map(|(_, text)| text).collect()
    }

    fn phone_invite(&self, cseq: u32, auth: &str) -> String {
        format!(
            "INVITE sip:+8613800138000@127.0.0.1:5060 SIP/2.0\r\n\
Via: SIP/2.0/UDP {PHONE};branch=z9hG4bKout{cseq};rport\r\nMax-Forwards: 70\r\n\
To: <sip:+8613800138000@127.0.0.1>\r\nFrom: <sip:1001@127.0.0.1>;tag=ph\r\n\
Call-ID: out-1\r\nCSeq: {cseq} INVITE\r\nContact: <sip:1001@{PHONE}>\r\n{auth}\
Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{SDP}",
            SDP.len()
        )
    }

    /// The agent dials out and authenticates; returns the INVITE sent to the carrier.
    fn dial_out(&mut self) -> String {
        let invite = self.phone_invite(1, "");
        self.deliver(PHONE, &invite);
        let challenge = self
            .take(PHONE, "SIP/2.0 407")
            .pop()
            .unwrap_or_else(|| panic!("no 407 in {:#?}", self.outbox));
        let offered = header(&challenge, "Proxy-Authenticate").expect("a challenge");
        let answer = sip::digest::respond(
            offered,
            "INVITE",
            "sip:+8613800138000@127.0.0.1:5060",
            "1001",
            "pw1001",
            "c0ffee",
            1,
        )
        .expect("a digest answer");
        let invite = self.phone_invite(2, &format!("Proxy-Authorization: {answer}\r\n"));
        self.deliver(PHONE, &invite);
        assert_eq!(self.take(PHONE, "SIP/2.0 100").len(), 1);
        self.take(CARRIER, "INVITE ")
            .pop()
            .expect("an INVITE to the carrier")
    }

    /// The carrier's response with `code` (To-tag `cr`) to `invite`, with an SDP answer.
    fn carrier_replies(&mut self, invite: &str, code: &str) {
        let mut lines = vec![format!("SIP/2.0 {code}")];
        for name in ["Via", "From", "Call-ID", "CSeq"] {
            lines.push(format!("{name}: {}", header(invite, name).expect(name)));
        }
        lines.push(format!("To: {};tag=cr", header(invite, "To").expect("To")));
        lines.push(format!("Contact: <sip:carrier@{CARRIER}>"));
        lines.push("Content-Type: application/sdp".into());
        lines.push(format!("Content-Length: {}", SDP.len()));
        let text = lines.join("\r\n") + "\r\n\r\n" + SDP;
        self.deliver(CARRIER, &text);
    }
}

#[test]
fn a_retransmitted_carrier_2xx_is_acked_again() {
    let mut rig = Rig::new();
    let invite = rig.dial_out();
    assert!(
        invite.starts_with("INVITE sip:+8613800138000@127.0.0.1:7000 "),
        "{invite}"
    );
    rig.carrier_replies(&invite, "200 OK");
    assert_eq!(rig.take(CARRIER, "ACK ").len(), 1);
    let ok = rig
        .take(PHONE, "SIP/2.0 200")
        .pop()
        .expect("the phone is answered");
    assert!(ok.contains("m=audio "), "{ok}");
    // Our ACK was lost: the carrier sends its 200 again, and gets another ACK.
    rig.carrier_replies(&invite, "200 OK");
    assert_eq!(rig.take(CARRIER, "ACK ").len(), 1);
    assert!(
        rig.take(PHONE, "SIP/2.0 200").is_empty(),
        "the phone is answered once"
    );
}

#[test]
fn a_carrier_2xx_that_crosses_the_agents_cancel_is_acked_and_hung_up() {
    let mut rig = Rig::new();
    let invite = rig.dial_out();
    rig.carrier_replies(&invite, "180 Ringing");
    assert_eq!(rig.take(PHONE, "SIP/2.0 180").len(), 1);
    let cancel = "CANCEL sip:+8613800138000@127.0.0.1:5060 SIP/2.0\r\n\
Via: SIP/2.0/UDP 127.0.0.1:6001;branch=z9hG4bKout2;rport\r\nMax-Forwards: 70\r\n\
To: <sip:+8613800138000@127.0.0.1>\r\nFrom: <sip:1001@127.0.0.1>;tag=ph\r\n\
Call-ID: out-1\r\nCSeq: 2 CANCEL\r\nContent-Length: 0\r\n\r\n";
    rig.deliver(PHONE, cancel);
    assert_eq!(
        rig.take(PHONE, "SIP/2.0 200").len(),
        1,
        "the CANCEL is answered"
    );
    assert_eq!(
        rig.take(PHONE, "SIP/2.0 487").len(),
        1,
        "the INVITE ends with 487"
    );
    assert_eq!(rig.take(CARRIER, "CANCEL ").len(), 1);
    // The carrier answered before it saw the CANCEL: that call is ACKed and hung up.
    rig.carrier_replies(&invite, "200 OK");
    assert_eq!(rig.take(CARRIER, "ACK ").len(), 1);
    assert_eq!(rig.take(CARRIER, "BYE ").len(), 1);
    assert!(
        rig.take(PHONE, "SIP/2.0 200").is_empty(),
        "the phone gave up"
    );
}

#[test]
fn a_carrier_that_cannot_be_connected_to_fails_over_at_once() {
    let mut rig = Rig::with(
        "[sip]\nlisten_udp = [\"127.0.0.1:5060\"]\n\
        [[trunk]]\nname = \"carrier\"\ngateway = \"127.0.0.1:7000\"\ngateway_transport = \"tcp\"\n\
        [[trunk]]\nname = \"backup\"\ngateway = \"127.0.0.1:7002\"\n\
        [[route]]\nprefix = \"+86\"\ntrunks = [\"carrier\", \"backup\"]\n\
        [[agent]]\nid = \"1001\"\nname = \"Ann\"\npassword = \"pw1001\"\noutbound = [\"+86*\"]\n",
    );
    let first = rig.dial_out();
    assert!(first.contains("SIP/2.0/TCP"), "{first}");
    // The TCP connect to the carrier is refused; no time passes (no Timer B).
    rig.receive(
        Peer::tcp(CARRIER.parse().expect("addr")),
        Payload::ConnectFailed {
            reason: "Connection refused (os error 111)".into(),
        },
    );
    let second = rig.take("127.0.0.1:7002", "INVITE ");
    assert_eq!(
        second.len(),
        1,
        "the backup trunk gets the call now: {:#?}",
        rig.outbox
    );
    assert!(
        rig.take(PHONE, "SIP/2.0 5").is_empty(),
        "the phone is not failed while a trunk is left"
    );
}

#[test]
fn a_failed_connection_to_another_destination_changes_nothing() {
    let mut rig = Rig::new();
    let _invite = rig.dial_out();
    rig.receive(
        Peer::tcp("127.0.0.1:7999".parse().expect("addr")),
        Payload::ConnectFailed {
            reason: "Connection refused (os error 111)".into(),
        },
    );
    assert!(rig.outbox.is_empty(), "{:#?}", rig.outbox);
}
