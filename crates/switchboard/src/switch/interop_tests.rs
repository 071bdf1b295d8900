//! Deterministic tests of what a carrier's interop team checks first on an answered call:
//! session timers, refreshes with and without SDP, hold directions, the SDP origin, and
//! in-dialog methods that must not be relayed. No sockets: messages in, messages out.

use super::testing;
use super::Switch;
use sip::Peer;
use std::sync::Arc;
use std::time::{Duration, Instant};
use transport::{Inbound, Payload};

/// DID 100 is answered by Switchboard's IVR, so in-dialog requests on the trunk leg reach
/// call control without an agent.
const IVR: &str = "[sip]\nlisten_udp = [\"127.0.0.1:5060\"]\n\
    [[trunk]]\nname = \"t\"\nallow = [\"127.0.0.0/8\"]\n\
    [[number]]\ndid = \"100\"\nivr = \"main\"\n\
    [[ivr]]\nname = \"main\"\n[[ivr.menu]]\nname = \"top\"\nprompt = [\"menu\"]\nkeys = { \"1\" = \"hangup\" }\n";

const TRUNK: &str = "127.0.0.1:5999";

fn sdp(direction: &str) -> String {
    format!(
        "v=0\r\no=gw 7 7 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
         m=audio 40000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na={direction}\r\n"
    )
}

/// One trunk call, answered by the IVR, driven by hand.
struct Call {
    switch: Switch,
    now: Instant,
    /// Our To-tag on the trunk leg.
    tag: String,
    cseq: u32,
    /// The 200 that answered the INVITE.
    answer: String,
}

impl Call {
    fn answered(extra_headers: &str) -> Call {
        let now = Instant::now();
        let config = crate::config::load_str("t.toml", IVR).expect("valid test config");
        let mut switch = testing::switch(now, Arc::new(config), Default::default());
        let body = sdp("sendrecv");
        let invite = format!(
            "INVITE sip:100@127.0.0.1 SIP/2.0\r\n\
Via: SIP/2.0/UDP {TRUNK};branch=z9hG4bKinvite;rport\r\n\
Max-Forwards: 70\r\nTo: <sip:100@127.0.0.1>\r\nFrom: <sip:2000@127.0.0.1>;tag=caller\r\n\
Call-ID: interop-1\r\nCSeq: 1 INVITE\r\nContact: <sip:2000@{TRUNK}>\r\n{extra_headers}\
Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        deliver(&mut switch, now, &invite);
        let answer = take(&mut switch)
            .into_iter()
            .find(|m| m.starts_with("SIP/2.0 200"))
            .expect("the IVR answers");
        let tag = answer
            .lines()
            .find(|l| l.starts_with("To:"))
            .and_then(|l| l.split("tag=").nth(1))
            .expect("a To-tag")
            .trim()
            .to_string();
        let mut call = Call {
            switch,
            now,
            tag,
            cseq: 1,
            answer,
        };
        call.send("ACK", "", "", 1);
        call
    }

    /// Sends an in-dialog request from the trunk; returns what Switchboard sent back.
    fn request(&mut self, method: &str, headers: &str, body: &str) -> Vec<String> {
        self.cseq += 1;
        self.send(method, headers, body, self.cseq);
        take(&mut self.switch)
    }

    fn send(&mut self, method: &str, headers: &str, body: &str, cseq: u32) {
        let content_type = if body.is_empty() {
            ""
        } else {
            "Content-Type: application/sdp\r\n"
        };
        let text = format!(
            "{method} sip:switchboard@127.0.0.1:5060 SIP/2.0\r\n\
Via: SIP/2.0/UDP {TRUNK};branch=z9hG4bK{method}{cseq};rport\r\n\
Max-Forwards: 70\r\nTo: <sip:100@127.0.0.1>;tag={tag}\r\nFrom: <sip:2000@127.0.0.1>;tag=caller\r\n\
Call-ID: interop-1\r\nCSeq: {cseq} {method}\r\nContact: <sip:2000@{TRUNK}>\r\n{headers}\
{content_type}Content-Length: {}\r\n\r\n{body}",
            body.len(),
            tag = self.tag,
        );
        deliver(&mut self.switch, self.now, &text);
    }

    /// The trunk answers `ours`, a request Switchboard sent it, with `status` (and the header
    /// lines in `headers`); what Switchboard sends in return is discarded.
    fn answer_ours(&mut self, ours: &str, status: &str, headers: &str) {
        let mut answer = format!("SIP/2.0 {status}\r\n");
        for name in ["Via", "From", "To", "Call-ID", "CSeq"] {
            let value = header(ours, name).expect("header");
            answer.push_str(&format!("{name}: {value}\r\n"));
        }
        answer.push_str(headers);
        answer.push_str("Content-Length: 0\r\n\r\n");
        deliver(&mut self.switch, self.now, &answer);
        take(&mut self.switch);
    }

    fn advance(&mut self, by: Duration) -> Vec<String> {
        self.now += by;
        self.switch.handle_timeout(self.now);
        take(&mut self.switch)
    }
}

fn deliver(switch: &mut Switch, now: Instant, text: &str) {
    let inbound = Inbound {
        source: Peer::udp(TRUNK.parse().expect("addr")),
        local: "127.0.0.1:5060".parse().expect("addr"),
        payload: Payload::Message(sip::parse::parse(text.as_bytes()).expect("valid SIP")),
        received: now,
    };
    switch.handle_inbound(now, inbound);
}

fn take(switch: &mut Switch) -> Vec<String> {
    std::iter::from_fn(|| switch.poll_transmit())
        .map(|t| String::from_utf8_lossy(&t.data).into_owned())
        .collect()
}

fn only<'a>(out: &'a [String], start: &str) -> &'a str {
    let found: Vec<_> = out.iter().filter(|m| m.starts_with(start)).collect();
    assert_eq!(found.len(), 1, "one {start:?} in {out:#?}");
    found[0]
}

fn origin(message: &str) -> &str {
    message
        .lines()
        .find(|l| l.starts_with("o="))
        .expect("an o= line")
}

fn header<'a>(message: &'a str, name: &str) -> Option<&'a str> {
    message
        .lines()
        .find(|l| {
            l.split_once(':')
                .is_some_and(|(n, _)| n.eq_ignore_ascii_case(name))
        })
        .map(|l| l.split_once(':').map_or("", |(_, v)| v).trim())
}

#[test]
fn refer_and_other_unnegotiated_methods_are_refused_not_relayed() {
    let mut call = Call::answered("");
    // A REFER from the caller's side is refused, never relayed (a carrier would place a
    // call of its own).
    let out = call.request("REFER", "Refer-To: <sip:1002@127.0.0.1>\r\n", "");
    only(&out, "SIP/2.0 403");
    assert!(out.iter().all(|m| !m.starts_with("REFER")), "{out:#?}");
    for method in ["MESSAGE", "SUBSCRIBE", "NOTIFY"] {
        let out = call.request(method, "", "");
        let refusal = only(&out, "SIP/2.0 405");
        let allow = header(refusal, "Allow").expect("405 carries Allow");
        assert!(!allow.contains(method), "{allow}");
        assert!(out.iter().all(|m| !m.starts_with(method)), "{out:#?}");
    }
    // An in-dialog OPTIONS is a keep-alive Switchboard answers.
    let out = call.request("OPTIONS", "", "");
    assert!(header(only(&out, "SIP/2.0 200"), "Allow").is_some());
}

#[test]
fn update_without_a_body_is_a_refresh() {
    let mut call = Call::answered("");
    let out = call.request("UPDATE", "", "");
    let ok = only(&out, "SIP/2.0 200");
    assert_eq!(header(ok, "Content-Length"), Some("0"), "{ok}");
}

#[test]
fn reinvite_without_sdp_gets_the_agreed_sdp_unchanged_and_the_ack_answers_it() {
    let mut call = Call::answered("");
    let first = origin(&call.answer).to_string();
    let out = call.request("INVITE", "", "");
    let ok = only(&out, "SIP/2.0 200");
    assert_eq!(
        origin(ok),
        first,
        "same session, same version: nothing changed"
    );
    let port = |m: &str| {
        m.lines()
            .find(|l| l.starts_with("m=audio"))
            .map(str::to_owned)
    };
    assert_eq!(port(ok), port(&call.answer));
    // The answer comes in the ACK; a later re-offer then bumps the version by one.
    let cseq = call.cseq;
    call.send("ACK", "", &sdp("sendrecv"), cseq);
    let out = call.request("INVITE", "", &sdp("sendonly"));
    let ok = only(&out, "SIP/2.0 200");
    assert!(ok.contains("a=recvonly"), "hold is answered recvonly: {ok}");
    let version = |o: &str| o.split(' ').nth(2).and_then(|v| v.parse::<u64>().ok());
    assert_eq!(version(origin(ok)), version(&first).map(|v| v + 1));
    let same_session = |o: &str| o.split(' ').take(2).collect::<Vec<_>>().join(" ");
    assert_eq!(same_session(origin(ok)), same_session(&first));
}

#[test]
fn a_session_expires_below_min_se_gets_422() {
    let now = Instant::now();
    let config = crate::config::load_str("t.toml", IVR).expect("valid test config");
    let mut switch = testing::switch(now, Arc::new(config), Default::default());
    let invite = format!(
        "INVITE sip:100@127.0.0.1 SIP/2.0\r\n\
Via: SIP/2.0/UDP {TRUNK};branch=z9hG4bKshort;rport\r\n\
Max-Forwards: 70\r\nTo: <sip:100@127.0.0.1>\r\nFrom: <sip:2000@127.0.0.1>;tag=c\r\n\
Call-ID: interop-422\r\nCSeq: 1 INVITE\r\nContact: <sip:2000@{TRUNK}>\r\n\
Session-Expires: 60\r\nContent-Length: 0\r\n\r\n"
    );
    deliver(&mut switch, now, &invite);
    let out = take(&mut switch);
    let refusal = only(&out, "SIP/2.0 422");
    assert_eq!(header(refusal, "Min-SE"), Some("90"));
    assert_eq!(switch.active_calls(), 0);
}

#[test]
fn a_trunk_with_the_extension_refreshes_itself() {
    let mut call = Call::answered("Supported: timer\r\nSession-Expires: 1800\r\n");
    assert_eq!(
        header(&call.answer, "Session-Expires"),
        Some("1800;refresher=uac")
    );
    assert_eq!(header(&call.answer, "Require"), Some("timer"));
    // Its refresh restarts the clock; without one the session is over before it expires.
    let out = call.advance(Duration::from_secs(900));
    assert!(out.is_empty(), "{out:#?}");
    let out = call.request(
        "UPDATE",
        "Session-Expires: 1800;refresher=uac\r\nSupported: timer\r\n",
        "",
    );
    assert_eq!(
        header(only(&out, "SIP/2.0 200"), "Session-Expires"),
        Some("1800;refresher=uac")
    );
    let out = call.advance(Duration::from_secs(1767));
    assert!(out.iter().all(|m| !m.starts_with("BYE")), "{out:#?}");
    let out = call.advance(Duration::from_secs(1));
    let bye = only(&out, "BYE");
    assert!(bye.contains("session-expired"), "{bye}");
}

#[test]
fn without_the_extension_switchboard_refreshes_with_update_when_allowed() {
    let mut call =
        Call::answered("Session-Expires: 90\r\nAllow: INVITE, ACK, BYE, CANCEL, UPDATE\r\n");
    assert_eq!(
        header(&call.answer, "Session-Expires"),
        Some("90;refresher=uas")
    );
    assert_eq!(header(&call.answer, "Require"), None);
    let out = call.advance(Duration::from_secs(44));
    assert!(out.is_empty(), "{out:#?}");
    let out = call.advance(Duration::from_secs(1));
    let update = only(&out, "UPDATE");
    assert_eq!(header(update, "Session-Expires"), Some("90;refresher=uac"));
}

#[test]
fn without_update_the_refresh_is_a_reinvite_with_the_same_sdp() {
    let mut call = Call::answered("Session-Expires: 90\r\nAllow: INVITE, ACK, BYE, CANCEL\r\n");
    let out = call.advance(Duration::from_secs(45));
    let reinvite = only(&out, "INVITE");
    assert_eq!(origin(reinvite), origin(&call.answer));
}

#[test]
fn a_refresh_that_crosses_the_trunks_reinvite_gets_491_and_is_retried() {
    let mut call = Call::answered("Session-Expires: 90\r\nAllow: INVITE, ACK, BYE, CANCEL\r\n");
    let out = call.advance(Duration::from_secs(45));
    let ours = only(&out, "INVITE").to_string();
    // The trunk's own re-INVITE crosses ours: we refuse it (RFC 3261 §14.2).
    let out = call.request("INVITE", "", &sdp("sendrecv"));
    assert!(header(only(&out, "SIP/2.0 491"), "Warning").is_some());
    // The trunk refuses ours the same way: we try again within 2 s.
    call.answer_ours(&ours, "491 Request Pending", "");
    let out = call.advance(Duration::from_millis(2001));
    assert_eq!(
        out.iter().filter(|m| m.starts_with("INVITE")).count(),
        1,
        "{out:#?}"
    );
}

#[test]
fn a_renegotiation_overtaking_our_refresh_is_not_undone_by_its_late_answer() {
    let mut call =
        Call::answered("Session-Expires: 90\r\nAllow: INVITE, ACK, BYE, CANCEL, UPDATE\r\n");
    let out = call.advance(Duration::from_secs(45));
    let ours = only(&out, "UPDATE").to_string();
    // Before our refresh is answered, the trunk renegotiates: from now on it refreshes,
    // every 1800 s.
    let out = call.request(
        "UPDATE",
        "Session-Expires: 1800;refresher=uac\r\nSupported: timer\r\n",
        "",
    );
    assert_eq!(
        header(only(&out, "SIP/2.0 200"), "Session-Expires"),
        Some("1800;refresher=uac")
    );
    // The late answer to our refresh would make Switchboard the refresher every 90 s again.
    call.answer_ours(&ours, "200 OK", "Session-Expires: 90;refresher=uac\r\n");
    // Neither that answer nor the refresh schedule of the first negotiation sends anything:
    // the trunk's 1800 s hold until it should have refreshed.
    let out = call.advance(Duration::from_secs(1767));
    assert!(out.is_empty(), "{out:#?}");
    let out = call.advance(Duration::from_secs(1));
    let bye = only(&out, "BYE");
    assert!(bye.contains("session-expired"), "{bye}");
}
