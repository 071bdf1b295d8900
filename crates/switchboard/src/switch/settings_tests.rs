//! Call-control effects of configuration keys that no other test shows: `sip.max_calls`
//! (503 past it) and `number.trunk` (the entry restricted to the calling trunk wins over the
//! unrestricted one listed first).

use std::sync::Arc;
use std::time::Instant;

use sip::Peer;
use transport::{Inbound, Payload};

use super::Switch;

fn switch(now: Instant, text: &str) -> Switch {
    let config = crate::config::load_str("t.toml", text).expect("valid test config");
    let switch = super::testing::switch(now, Arc::new(config), Default::default());
    // Logged in, not ready: calls wait in their queue.
    switch
        .acd
        .login(now, &acd::AgentId::from("1001"), false)
        .expect("agent logs in");
    switch
}

fn invite(now: Instant, from: &str, call_id: &str) -> Inbound {
    let text = format!(
        "INVITE sip:101@127.0.0.1 SIP/2.0\r\n\
Via: SIP/2.0/UDP {from}:5999;branch=z9hG4bK{call_id};rport\r\n\
Max-Forwards: 70\r\nTo: <sip:101@127.0.0.1>\r\nFrom: <sip:2000@{from}>;tag=a\r\n\
Call-ID: {call_id}\r\nCSeq: 1 INVITE\r\nContact: <sip:2000@{from}:5999>\r\n\
Content-Length: 0\r\n\r\n"
    );
    Inbound {
        source: Peer::udp(format!("{from}:5999").parse().expect("addr")),
        local: "127.0.0.1:5060".parse().expect("addr"),
        payload: Payload::Message(sip::parse::parse(text.as_bytes()).expect("valid")),
        received: now,
    }
}

fn sent(switch: &mut Switch) -> Vec<String> {
    std::iter::from_fn(|| switch.poll_transmit())
        .map(|t| String::from_utf8_lossy(&t.data).into_owned())
        .collect()
}

const AGENT: &str =
    "[[agent]]\nid = \"1001\"\nname = \"A\"\npassword = \"p\"\nskills = { s = 1 }\n";

#[test]
fn sip_max_calls_refuses_the_call_past_it_with_503() {
    let text = format!(
        "[sip]\nlisten_udp = [\"127.0.0.1:5060\"]\nmax_calls = 1\n[[trunk]]\nname = \"t\"\nallow = [\"127.0.0.0/8\"]\n[[number]]\ndid = \"101\"\nqueue = \"q\"\n[[queue]]\nname = \"q\"\nskills = {{ s = 1 }}\n{AGENT}"
    );
    let now = Instant::now();
    let mut switch = switch(now, &text);
    switch.handle_inbound(now, invite(now, "127.0.0.1", "first"));
    let first = sent(&mut switch);
    assert!(
        !first.iter().any(|m| m.starts_with("SIP/2.0 503")),
        "{first:?}"
    );
    assert_eq!(switch.active_calls(), 1);
    switch.handle_inbound(now, invite(now, "127.0.0.1", "second"));
    let second = sent(&mut switch);
    let refusal = second
        .iter()
        .find(|m| m.starts_with("SIP/2.0 503"))
        .unwrap_or_else(|| panic!("no 503 in {second:?}"));
    assert!(refusal.contains("call capacity reached"), "{refusal}");
    assert_eq!(switch.active_calls(), 1);
}

#[test]
fn number_trunk_the_restricted_entry_wins_over_the_unrestricted_one_listed_first() {
    let text = format!(
        "[sip]\nlisten_udp = [\"127.0.0.1:5060\"]\n[[trunk]]\nname = \"a\"\nallow = [\"127.0.0.1\"]\n[[trunk]]\nname = \"b\"\nallow = [\"127.0.0.2\"]\n[[number]]\ndid = \"101\"\nqueue = \"general\"\n[[number]]\ndid = \"101\"\nqueue = \"carrier-b\"\ntrunk = \"b\"\n[[queue]]\nname = \"general\"\nskills = {{ s = 1 }}\n[[queue]]\nname = \"carrier-b\"\nskills = {{ s = 1 }}\n{AGENT}"
    );
    let now = Instant::now();
    let mut switch = switch(now, &text);
    let waiting = |switch: &Switch, queue: &str| {
        switch
            .acd
            .queue(&acd::QueueId::from(queue))
            .map_or(0, |q| q.waiting)
    };
    switch.handle_inbound(now, invite(now, "127.0.0.2", "from-b"));
    assert_eq!(waiting(&switch, "carrier-b"), 1, "trunk b's own entry");
    assert_eq!(waiting(&switch, "general"), 0);
    switch.handle_inbound(now, invite(now, "127.0.0.1", "from-a"));
    assert_eq!(waiting(&switch, "general"), 1, "the unrestricted entry");
    assert_eq!(waiting(&switch, "carrier-b"), 1);
}
