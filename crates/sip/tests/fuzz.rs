//! Property-driven fuzzing on stable Rust, bounded so it runs in the normal test command:
//! RFC 4475 torture messages, mutated (bytes flipped, inserted, deleted, truncated,
//! duplicated), go through the parser and, as message sequences with time passing, through
//! the transaction layer. Nothing may panic; whatever parses must survive the layer.
//!
//! The case counts keep the run to a few seconds in a debug build; a longer run is
//! `FUZZ_CASES=200000 cargo test -p switchboard-sip --release --test fuzz`
//! (docs/security.md gives its result).

mod corpus;

use std::path::Path;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use sip::rsip::SipMessage;
use sip::transaction::{TimerConfig, TransactionEvent, TransactionLayer};
use sip::Peer;

fn seeds() -> &'static [(String, Vec<u8>)] {
    static SEEDS: OnceLock<Vec<(String, Vec<u8>)>> = OnceLock::new();
    SEEDS.get_or_init(|| {
        corpus::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/rfc4475.sip"))
    })
}

/// One edit to a message.
#[derive(Debug, Clone)]
enum Mutation {
    Flip {
        at: usize,
        byte: u8,
    },
    Insert {
        at: usize,
        byte: u8,
    },
    Delete {
        at: usize,
    },
    Truncate {
        at: usize,
    },
    /// Repeats a stretch (long headers, doubled CRLFs, repeated parameters).
    Repeat {
        at: usize,
        len: usize,
        times: u8,
    },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(at, byte)| Mutation::Flip { at, byte }),
        (
            any::<usize>(),
            prop_oneof![
                Just(b'\r'),
                Just(b'\n'),
                Just(b':'),
                Just(b';'),
                Just(b'"'),
                Just(b'<'),
                Just(b' '),
                Just(0u8),
                any::<u8>()
            ]
        )
            .prop_map(|(at, byte)| Mutation::Insert { at, byte }),
        any::<usize>().prop_map(|at| Mutation::Delete { at }),
        any::<usize>().prop_map(|at| Mutation::Truncate { at }),
        (any::<usize>(), 1usize..64, 1u8..8).prop_map(|(at, len, times)| Mutation::Repeat {
            at,
            len,
            times
        }),
    ]
}

fn apply(mut bytes: Vec<u8>, mutations: &[Mutation]) -> Vec<u8> {
    for m in mutations {
        if bytes.is_empty() {
            break;
        }
        let len = bytes.len();
        match *m {
            Mutation::Flip { at, byte } => bytes[at % len] ^= byte | 1,
            Mutation::Insert { at, byte } => bytes.insert(at % (len + 1), byte),
            Mutation::Delete { at } => {
                bytes.remove(at % len);
            }
            Mutation::Truncate { at } => bytes.truncate(at % len),
            Mutation::Repeat { at, len: n, times } => {
                let start = at % len;
                let end = (start + n).min(len);
                let stretch = bytes[start..end].to_vec();
                for _ in 0..times {
                    bytes.splice(end..end, stretch.iter().copied());
                }
            }
        }
    }
    bytes
}

fn mutated_seed() -> impl Strategy<Value = Vec<u8>> {
    (0..seeds().len(), prop::collection::vec(mutation(), 0..8))
        .prop_map(|(seed, mutations)| apply(seeds()[seed].1.clone(), &mutations))
}

#[test]
fn the_corpus_has_the_rfc_4475_messages() {
    let names: Vec<&str> = seeds().iter().map(|(name, _)| name.as_str()).collect();
    assert!(names.len() >= 20, "{names:?}");
    for (name, bytes) in seeds() {
        // Each torture message parses or is refused with a reason; never a panic.
        if let Err(error) = sip::parse::parse(bytes) {
            assert!(!error.reason.is_empty(), "{name}: empty reason");
        }
    }
    let seed = |name: &str| {
        seeds()
            .iter()
            .find(|(n, _)| n.starts_with(name))
            .map(|(_, bytes)| bytes.as_slice())
            .unwrap_or_else(|| panic!("{name} missing"))
    };
    // Valid torture messages rsip can represent parse (intmeth, esc02 and semiuri do not:
    // rsip's tokenizer refuses their method/URI characters, answered 400).
    for name in [
        "wsinv", "esc01", "escnull", "lwsdisp", "dblreq", "unreason", "noreason", "zeromf",
    ] {
        assert!(sip::parse::parse(seed(name)).is_ok(), "{name} should parse");
    }
    // Invalid ones that must be refused (400 with the reason).
    for name in [
        "clerr",
        "ncl",
        "scalar02",
        "badvers",
        "mismatch01",
        "insuf",
        "unkscm",
    ] {
        assert!(
            sip::parse::parse(seed(name)).is_err(),
            "{name} should be refused"
        );
    }
}

/// Cases per property: the given default, or `$FUZZ_CASES` for a longer run.
fn cases(default: u32) -> u32 {
    std::env::var("FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(3000), failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn the_parser_never_panics_on_mutated_torture_messages(bytes in mutated_seed()) {
        let _ = sip::parse::parse(&bytes);
        if let Some(end) = sip::parse::find_header_end(&bytes) {
            let _ = sip::parse::raw_content_length(&bytes[..end]);
        }
    }

    #[test]
    fn the_parser_never_panics_on_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        let _ = sip::parse::parse(&bytes);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(400), failure_persistence: None, ..ProptestConfig::default() })]

    /// Sequences of (mutated) torture messages from a few peers, time advancing between them,
    /// every server transaction answered with a final status: the layer never panics and
    /// always has every transaction ended within 64·T1 + T4 of the last message.
    #[test]
    fn the_transaction_layer_survives_mutated_message_sequences(
        steps in prop::collection::vec((mutated_seed(), 0u64..5_000, 0usize..3, 200u16..700), 1..24),
    ) {
        let timers = TimerConfig {
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            t4: Duration::from_secs(5),
        };
        let mut layer = TransactionLayer::new(timers);
        let start = Instant::now();
        let mut now = start;
        let peers = [
            Peer::udp("192.0.2.1:5060".parse().expect("addr")),
            Peer::udp("192.0.2.2:5062".parse().expect("addr")),
            Peer::tcp("192.0.2.3:5070".parse().expect("addr")),
        ];
        for (bytes, advance_ms, peer, status) in steps {
            now += Duration::from_millis(advance_ms);
            layer.handle_timeout(now);
            if let Ok(message) = sip::parse::parse(&bytes) {
                let is_request = matches!(message, SipMessage::Request(_));
                layer.handle_message(now, message, peers[peer]);
                while let Some(event) = layer.poll_event() {
                    if let TransactionEvent::Request { key: Some(key), request, .. } = event {
                        if is_request {
                            let response = sip::message::response_to(&request, status, Some("fuzz"));
                            let _ = layer.send_response(now, &key, response);
                        }
                    }
                }
            }
            while layer.poll_transmit().is_some() {}
        }
        // Everything ends: run the clock well past every timer.
        let end = now + Duration::from_secs(64 * 4 + 60);
        while let Some(at) = layer.poll_timeout() {
            if at > end {
                break;
            }
            now = at.max(now);
            layer.handle_timeout(now);
            while layer.poll_event().is_some() {}
            while layer.poll_transmit().is_some() {}
        }
        prop_assert_eq!(layer.len(), 0, "transactions left after every timer ran");
    }
}
