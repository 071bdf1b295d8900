//! What a finished call costs the transaction layer while its transactions linger (issue 12:
//! ≤ 8 KiB a finished call for the whole process). A counting allocator measures the heap the
//! layer holds after N calls have ended but before any linger timer fires.
//!
//! Its own test binary, and one test in it, so no other test's allocations are counted.

use sip::rsip::SipMessage;
use sip::transaction::{
    new_branch, TimerConfig, TransactionEvent, TransactionKey, TransactionLayer,
};
use sip::{Peer, Transmit};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::{Duration, Instant};

/// Live heap bytes: what was allocated and not yet freed.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        System.alloc(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        System.dealloc(ptr, layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const CALLS: usize = 2_000;

fn peer(text: &str) -> Peer {
    Peer::udp(text.parse().expect("test address"))
}

fn message(text: &str) -> SipMessage {
    sip::parse::parse(text.as_bytes()).expect("test message parses")
}

fn request(text: &str) -> sip::rsip::Request {
    match message(text) {
        SipMessage::Request(r) => r,
        SipMessage::Response(_) => panic!("not a request"),
    }
}

fn response(text: &str) -> sip::rsip::Response {
    match message(text) {
        SipMessage::Response(r) => r,
        SipMessage::Request(_) => panic!("not a response"),
    }
}

const SDP: &str = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
m=audio 20000 RTP/AVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=sendrecv\r\n";

fn with_body(head: &str, body: &str) -> String {
    format!(
        "{head}Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

/// The heads of one call's messages, as Switchboard's load test exchanges them: the trunk's
/// INVITE answered 180 then 200 with SDP and ACKed; an INVITE to the agent, answered 180 and
/// 200 with SDP; the trunk's BYE answered 200, and a BYE to the agent answered 200.
struct Call {
    n: usize,
}

impl Call {
    fn common(&self, via: &str, from_tag: &str, to_tag: Option<&str>, cseq: &str) -> String {
        let n = self.n;
        let to_tag = to_tag.map(|t| format!(";tag={t}")).unwrap_or_default();
        format!(
            "Via: {via}\r\nFrom: <sip:trunk@127.0.0.1:5070>;tag={from_tag}\r\n\
             To: <sip:100@127.0.0.1:5060>{to_tag}\r\nCall-ID: {n}-4711@127.0.0.1\r\nCSeq: {cseq}\r\n"
        )
    }

    fn trunk_via(&self, what: &str) -> String {
        format!(
            "SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-{}-{what}",
            self.n
        )
    }

    fn trunk_invite(&self) -> String {
        let head = format!(
            "INVITE sip:100@127.0.0.1:5060 SIP/2.0\r\n{}Max-Forwards: 70\r\n\
             Contact: <sip:trunk@127.0.0.1:5070;transport=UDP>\r\n",
            self.common(&self.trunk_via("inv"), "trunk1", None, "1 INVITE")
        );
        with_body(&head, SDP)
    }

    fn trunk_reply(&self, status: &str, to_tag: Option<&str>, sdp: bool) -> String {
        let head = format!(
            "SIP/2.0 {status}\r\n{}Contact: <sip:switchboard@127.0.0.1:5060>\r\n\
             Server: Switchboard\r\n",
            self.common(&self.trunk_via("inv"), "trunk1", to_tag, "1 INVITE")
        );
        if sdp {
            with_body(&head, SDP)
        } else {
            format!("{head}Content-Length: 0\r\n\r\n")
        }
    }

    fn trunk_ack(&self) -> String {
        format!(
            "ACK sip:switchboard@127.0.0.1:5060 SIP/2.0\r\n{}Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
            self.common(&self.trunk_via("ack"), "trunk1", Some("sb1"), "1 ACK")
        )
    }

    fn trunk_bye(&self) -> String {
        format!(
            "BYE sip:switchboard@127.0.0.1:5060 SIP/2.0\r\n{}Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
            self.common(&self.trunk_via("bye"), "trunk1", Some("sb1"), "2 BYE")
        )
    }

    fn agent_invite(&self, branch: &str) -> String {
        let head = format!(
            "INVITE sip:agent7@127.0.0.1:6000 SIP/2.0\r\n{}Max-Forwards: 69\r\n\
             Contact: <sip:switchboard@127.0.0.1:5060>\r\nAllow: INVITE, ACK, CANCEL, BYE, OPTIONS\r\n",
            self.common(
                &format!("SIP/2.0/UDP 127.0.0.1:5060;branch={branch};rport"),
                "sbagent",
                None,
                "1 INVITE"
            )
        );
        with_body(&head, SDP)
    }

    fn agent_reply(&self, branch: &str, status: &str, sdp: bool, cseq: &str) -> String {
        let head = format!(
            "SIP/2.0 {status}\r\n{}Contact: <sip:agent7@127.0.0.1:6000>\r\n",
            self.common(
                &format!("SIP/2.0/UDP 127.0.0.1:5060;branch={branch};rport=5060"),
                "sbagent",
                Some("agent1"),
                cseq
            )
        );
        if sdp {
            with_body(&head, SDP)
        } else {
            format!("{head}Content-Length: 0\r\n\r\n")
        }
    }

    fn agent_bye(&self, branch: &str) -> String {
        format!(
            "BYE sip:agent7@127.0.0.1:6000 SIP/2.0\r\n{}Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
            self.common(
                &format!("SIP/2.0/UDP 127.0.0.1:5060;branch={branch}"),
                "sbagent",
                Some("agent1"),
                "2 BYE"
            )
        )
    }
}

fn drain(layer: &mut TransactionLayer) -> Vec<TransactionKey> {
    while layer.poll_transmit().is_some() {}
    let mut keys = Vec::new();
    while let Some(event) = layer.poll_event() {
        if let TransactionEvent::Request { key: Some(key), .. } = event {
            keys.push(key);
        }
    }
    keys
}

fn one_call(layer: &mut TransactionLayer, now: Instant, n: usize) {
    let call = Call { n };
    let trunk = peer("127.0.0.1:5070");
    let agent = peer("127.0.0.1:6000");

    layer.handle_message(now, message(&call.trunk_invite()), trunk);
    let invite_key = drain(layer).pop().expect("the INVITE is delivered");
    layer
        .send_response(
            now,
            &invite_key,
            response(&call.trunk_reply("180 Ringing", Some("sb1"), false)),
        )
        .expect("180");

    let branch = new_branch();
    layer.send_request(now, request(&call.agent_invite(&branch)), agent);
    for (status, sdp) in [("180 Ringing", false), ("200 OK", true)] {
        let reply = call.agent_reply(&branch, status, sdp, "1 INVITE");
        layer.handle_message(now, message(&reply), agent);
    }
    layer
        .send_response(
            now,
            &invite_key,
            response(&call.trunk_reply("200 OK", Some("sb1"), true)),
        )
        .expect("200");
    layer.handle_message(now, message(&call.trunk_ack()), trunk);
    drain(layer);

    layer.handle_message(now, message(&call.trunk_bye()), trunk);
    let bye_key = drain(layer).pop().expect("the BYE is delivered");
    let ok = format!(
        "SIP/2.0 200 OK\r\n{}Content-Length: 0\r\n\r\n",
        call.common(&call.trunk_via("bye"), "trunk1", Some("sb1"), "2 BYE")
    );
    layer
        .send_response(now, &bye_key, response(&ok))
        .expect("200 to BYE");
    let bye_branch = new_branch();
    layer.send_request(now, request(&call.agent_bye(&bye_branch)), agent);
    let ok = call.agent_reply(&bye_branch, "200 OK", false, "2 BYE");
    layer.handle_message(now, message(&ok), agent);
    drain(layer);
}

#[test]
fn a_finished_call_lingers_in_under_two_kib_of_heap() {
    let now = Instant::now();
    let mut layer = TransactionLayer::new(TimerConfig::default());
    // Warm up: the first call sizes the layer's queues.
    one_call(&mut layer, now, usize::MAX);
    let _: Option<Transmit> = layer.poll_transmit();
    let before = LIVE.load(Ordering::Relaxed);
    for n in 0..CALLS {
        one_call(&mut layer, now, n);
    }
    let held = LIVE.load(Ordering::Relaxed) - before;
    let per_call = held as f64 / CALLS as f64;
    eprintln!("{per_call:.0} bytes of heap per lingering finished call");
    // Four lingering transactions a call: trunk INVITE (Accepted, ACKed), agent INVITE
    // (Accepted), trunk BYE (Completed), agent BYE (Completed).
    assert_eq!(layer.len(), 4 * (CALLS + 1));
    assert!(per_call < 2048.0, "{per_call:.0} bytes a call");

    // And all of it goes when the linger ends.
    layer.handle_timeout(now + Duration::from_secs(60));
    assert!(layer.is_empty());
}
