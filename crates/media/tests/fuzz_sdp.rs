//! Property-driven fuzzing of the SDP parser on stable Rust, bounded so it runs in the normal
//! test command: the SDP bodies of the RFC 4475 torture messages (and two WebRTC-style
//! offers), mutated, go through parse; whatever parses goes through negotiate, rewrite,
//! describe and serialisation, and re-parses. Nothing may panic.

#[path = "../../sip/tests/corpus/mod.rs"]
mod corpus;

use std::path::Path;
use std::sync::OnceLock;

use media::sdp::{self, SessionDescription};
use media::Codec;
use proptest::prelude::*;

const WEBRTC_OFFER: &[u8] = b"v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n\
a=group:BUNDLE 0\r\na=msid-semantic: WMS\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111 0 8 126\r\n\
c=IN IP4 0.0.0.0\r\na=rtcp:9 IN IP4 0.0.0.0\r\na=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\n\
a=fingerprint:sha-256 00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF\r\n\
a=setup:actpass\r\na=mid:0\r\na=sendrecv\r\na=rtcp-mux\r\na=rtpmap:111 opus/48000/2\r\n\
a=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:126 telephone-event/8000\r\n\
a=candidate:1 1 udp 2122260223 192.0.2.9 54321 typ host\r\n";

const HOLD_OFFER: &[u8] =
    b"v=0\r\no=trunk 1 2 IN IP4 192.0.2.7\r\ns=-\r\nc=IN IP4 0.0.0.0\r\nt=0 0\r\n\
m=audio 40000 RTP/AVP 8 101\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-15\r\na=ptime:20\r\na=sendonly\r\n";

fn seeds() -> &'static [Vec<u8>] {
    static SEEDS: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    SEEDS.get_or_init(|| {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../sip/tests/corpus/rfc4475.sip");
        let mut seeds: Vec<Vec<u8>> = corpus::load(&path)
            .iter()
            .filter_map(|(_, message)| corpus::body(message).map(<[u8]>::to_vec))
            .collect();
        seeds.push(WEBRTC_OFFER.to_vec());
        seeds.push(HOLD_OFFER.to_vec());
        seeds
    })
}

fn mutated() -> impl Strategy<Value = Vec<u8>> {
    let edits = prop::collection::vec((any::<usize>(), any::<u8>(), 0u8..4), 0..8);
    (0..seeds().len(), edits).prop_map(|(seed, edits)| {
        let mut bytes = seeds()[seed].clone();
        for (at, byte, kind) in edits {
            if bytes.is_empty() {
                break;
            }
            let at = at % bytes.len();
            match kind {
                0 => bytes[at] = byte,
                1 => bytes.insert(at, byte),
                2 => {
                    bytes.remove(at);
                }
                _ => bytes.truncate(at),
            }
        }
        bytes
    })
}

fn exercise(bytes: &[u8]) {
    let Ok(offer) = SessionDescription::parse(bytes) else {
        return;
    };
    let _ = sdp::negotiate(&offer, &[Codec::Pcmu, Codec::Pcma]);
    for index in 0..offer.media.len().min(4) {
        let _ = sdp::describe(&offer, index);
        let rewritten = sdp::rewrite(&offer, "198.51.100.1".parse().expect("addr"), index, 30_000);
        let serialised = rewritten.to_bytes();
        assert!(
            SessionDescription::parse(&serialised).is_ok(),
            "what Switchboard writes must parse again: {}",
            String::from_utf8_lossy(&serialised)
        );
    }
}

#[test]
fn the_seed_bodies_parse() {
    assert!(seeds().len() >= 10, "{} seeds", seeds().len());
    assert!(SessionDescription::parse(WEBRTC_OFFER).is_ok());
    assert!(SessionDescription::parse(HOLD_OFFER).is_ok());
    for seed in seeds() {
        exercise(seed);
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
    fn the_sdp_parser_never_panics_on_mutated_bodies(bytes in mutated()) {
        exercise(&bytes);
    }

    #[test]
    fn the_sdp_parser_never_panics_on_arbitrary_text(text in "(v=0\r\n)?([a-z]=[ -~]{0,40}\r\n){0,20}") {
        exercise(text.as_bytes());
    }
}
