//! SRTP at the edge of a media session (RFC 3711): packets from an SRTP leg are
//! authenticated and decrypted as they are read, packets to it are encrypted as they are
//! sent, so the relay core, mixer, recorder and DTMF detection only ever see plain RTP.
//!
//! The cipher, the rollover counter and the replay window are webrtc-rs's `webrtc-srtp`
//! context (no hand-written AES or HMAC). One context per direction, as RFC 3711 §3.2
//! requires: each side of an SDES exchange sends with its own key.

use crate::sdes::{MasterKey, SrtpSuite};
use std::collections::HashMap;
use webrtc_srtp::context::Context;
use webrtc_srtp::protection_profile::ProtectionProfile;

/// Packets accepted out of order within this window (RFC 3711 §3.3.2: at least 64).
const REPLAY_WINDOW: u64 = 128;

/// SSRCs tracked per direction: a peer has one or two; this bounds memory if a peer with
/// the key sends many.
const MAX_SSRCS: usize = 64;

/// Length of the SRTCP auth tag (80 bits for both suites) and of the E|index word before it.
const SRTCP_TAG: usize = 10;
const SRTCP_INDEX: usize = 4;

/// The RFC 3711 §3.3.2 replay list of one SSRC, consulted only once a packet has
/// authenticated. (webrtc-srtp's own window is checked before authentication, so a single
/// forged packet arriving first could set it far away and make the real stream look old:
/// it is switched off and this one used instead.)
#[derive(Debug, Default)]
struct ReplayWindow {
    /// Highest index accepted, once one was.
    highest: Option<u64>,
    /// Bit n set: index `highest - n` was accepted.
    seen: u128,
}

impl ReplayWindow {
    /// The 48-bit packet index of RTP sequence number `seq` (RFC 3711 §3.3.1 estimate):
    /// the rollover count that puts it closest to the highest index seen.
    fn rtp_index(&self, seq: u16) -> u64 {
        let Some(highest) = self.highest else {
            return u64::from(seq);
        };
        let roc = highest >> 16;
        [roc.wrapping_sub(1), roc, roc + 1]
            .into_iter()
            .filter(|roc| *roc < (1 << 32))
            .map(|roc| (roc << 16) | u64::from(seq))
            .min_by_key(|index| index.abs_diff(highest))
            .unwrap_or(u64::from(seq))
    }

    /// True, and remembered, when `index` is new and not older than the window.
    fn accept(&mut self, index: u64) -> bool {
        let Some(highest) = self.highest else {
            self.highest = Some(index);
            self.seen = 1;
            return true;
        };
        if index > highest {
            let shift = index - highest;
            self.seen = if shift >= REPLAY_WINDOW {
                0
            } else {
                self.seen << shift
            };
            self.seen |= 1;
            self.highest = Some(index);
            return true;
        }
        let back = highest - index;
        if back >= REPLAY_WINDOW || self.seen & (1 << back) != 0 {
            return false;
        }
        self.seen |= 1 << back;
        true
    }
}

/// The replay windows of one direction, by SSRC.
#[derive(Debug, Default)]
struct ReplayWindows(HashMap<u32, ReplayWindow>);

impl ReplayWindows {
    fn window(&mut self, ssrc: u32) -> Option<&mut ReplayWindow> {
        if !self.0.contains_key(&ssrc) && self.0.len() >= MAX_SSRCS {
            return None;
        }
        Some(self.0.entry(ssrc).or_default())
    }
}

fn ssrc_at(packet: &[u8], offset: usize) -> Option<u32> {
    let bytes = packet.get(offset..offset + 4)?;
    Some(u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
}

/// The keys of one SRTP leg, as negotiated in SDP: Switchboard's own key (it encrypts
/// what it sends) and the peer's (it decrypts what it receives), under one suite.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SrtpPolicy {
    /// The suite both directions use (the answer picks one offered line).
    pub suite: SrtpSuite,
    /// Switchboard's key for what it sends to the leg.
    pub send_key: MasterKey,
    /// The peer's key for what the leg sends to Switchboard.
    pub receive_key: MasterKey,
}

/// Why a packet was not protected or unprotected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SrtpError {
    /// The auth tag did not match, the packet is too short or not RTP, or it is a replay.
    #[error("SRTP packet rejected: {0}")]
    Rejected(String),
    /// The key could not be set up (cannot happen with 30-byte keys; kept for honesty).
    #[error("SRTP context: {0}")]
    Context(String),
}

/// The live SRTP state of one leg: two contexts with their rollover counters and the
/// receive side's replay windows.
pub struct SrtpLeg {
    policy: SrtpPolicy,
    outbound: Context,
    inbound: Context,
    rtp_replay: ReplayWindows,
    rtcp_replay: ReplayWindows,
}

impl std::fmt::Debug for SrtpLeg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SrtpLeg")
            .field("suite", &self.policy.suite)
            .finish_non_exhaustive()
    }
}

fn profile(suite: SrtpSuite) -> ProtectionProfile {
    match suite {
        SrtpSuite::AesCm128HmacSha1_80 => ProtectionProfile::Aes128CmHmacSha1_80,
        SrtpSuite::AesCm128HmacSha1_32 => ProtectionProfile::Aes128CmHmacSha1_32,
    }
}

impl SrtpLeg {
    /// Sets up both directions of `policy`.
    pub fn new(policy: SrtpPolicy) -> Result<SrtpLeg, SrtpError> {
        // No replay protection inside the contexts: see [`ReplayWindow`].
        let context = |key: &MasterKey| {
            Context::new(key.key(), key.salt(), profile(policy.suite), None, None)
                .map_err(|e| SrtpError::Context(e.to_string()))
        };
        Ok(SrtpLeg {
            policy,
            outbound: context(&policy.send_key)?,
            inbound: context(&policy.receive_key)?,
            rtp_replay: ReplayWindows::default(),
            rtcp_replay: ReplayWindows::default(),
        })
    }

    /// The keys this state was made from.
    pub fn policy(&self) -> &SrtpPolicy {
        &self.policy
    }

    /// Encrypts and tags one plain RTP packet for the leg.
    pub fn protect_rtp(&mut self, plain: &[u8]) -> Result<Vec<u8>, SrtpError> {
        self.outbound
            .encrypt_rtp(plain)
            .map(|bytes| bytes.to_vec())
            .map_err(|e| SrtpError::Rejected(e.to_string()))
    }

    /// Authenticates and decrypts one SRTP packet from the leg; replays are refused.
    pub fn unprotect_rtp(&mut self, protected: &[u8]) -> Result<Vec<u8>, SrtpError> {
        let plain = self
            .inbound
            .decrypt_rtp(protected)
            .map_err(|e| SrtpError::Rejected(e.to_string()))?;
        let (Some(ssrc), Some(seq)) = (ssrc_at(&plain, 8), plain.get(2..4)) else {
            return Err(SrtpError::Rejected("not an RTP packet".into()));
        };
        let seq = u16::from_be_bytes([seq[0], seq[1]]);
        let window = self
            .rtp_replay
            .window(ssrc)
            .ok_or_else(|| SrtpError::Rejected("too many SSRCs".into()))?;
        let index = window.rtp_index(seq);
        if !window.accept(index) {
            return Err(SrtpError::Rejected(format!(
                "replayed or too old: ssrc {ssrc} sequence {seq}"
            )));
        }
        Ok(plain.to_vec())
    }

    /// Encrypts and tags one plain RTCP packet for the leg.
    pub fn protect_rtcp(&mut self, plain: &[u8]) -> Result<Vec<u8>, SrtpError> {
        self.outbound
            .encrypt_rtcp(plain)
            .map(|bytes| bytes.to_vec())
            .map_err(|e| SrtpError::Rejected(e.to_string()))
    }

    /// Authenticates and decrypts one SRTCP packet from the leg; replays are refused.
    pub fn unprotect_rtcp(&mut self, protected: &[u8]) -> Result<Vec<u8>, SrtpError> {
        let plain = self
            .inbound
            .decrypt_rtcp(protected)
            .map_err(|e| SrtpError::Rejected(e.to_string()))?;
        // Authenticated, so the E|index word before the tag is the sender's.
        let index_at = protected.len().saturating_sub(SRTCP_TAG + SRTCP_INDEX);
        let (Some(ssrc), Some(index)) = (ssrc_at(&plain, 4), ssrc_at(protected, index_at)) else {
            return Err(SrtpError::Rejected("not an RTCP packet".into()));
        };
        let index = u64::from(index & 0x7FFF_FFFF);
        let window = self
            .rtcp_replay
            .window(ssrc)
            .ok_or_else(|| SrtpError::Rejected("too many SSRCs".into()))?;
        if !window.accept(index) {
            return Err(SrtpError::Rejected(format!(
                "replayed or too old: ssrc {ssrc} SRTCP index {index}"
            )));
        }
        Ok(plain.to_vec())
    }
}

/// The SRTP state of every leg of one session, by [`crate::Leg::index`], and the count of
/// packets refused. A leg without a policy passes packets through unchanged.
#[derive(Debug, Default)]
pub struct SessionSrtp {
    legs: Vec<Option<SrtpLeg>>,
    /// SRTP packets that failed authentication, were replays or were unreadable.
    pub auth_failures: u64,
    /// The same for SRTCP packets.
    pub rtcp_auth_failures: u64,
}

impl SessionSrtp {
    /// Makes leg `index` use `policy` (new keys start new contexts; the same keys keep the
    /// running rollover counters and replay windows).
    pub fn set(&mut self, index: usize, policy: Option<SrtpPolicy>) {
        if self.legs.len() <= index {
            self.legs.resize_with(index + 1, || None);
        }
        let slot = &mut self.legs[index];
        if slot.as_ref().map(SrtpLeg::policy) == policy.as_ref() {
            return;
        }
        *slot = policy.and_then(|policy| match SrtpLeg::new(policy) {
            Ok(leg) => Some(leg),
            Err(error) => {
                tracing::error!(%error, "SRTP context not created: the leg's media is dropped");
                None
            }
        });
    }

    /// True when leg `index` is an SRTP leg.
    pub fn is_protected(&self, index: usize) -> bool {
        self.legs.get(index).is_some_and(Option::is_some)
    }

    /// Unprotects the datagram `buffer[..len]` received on leg `index` in place and returns
    /// the plain length; `None` (and one more auth failure) when it must be dropped.
    pub fn receive(
        &mut self,
        index: usize,
        rtcp: bool,
        buffer: &mut [u8],
        len: usize,
    ) -> Option<usize> {
        let Some(Some(leg)) = self.legs.get_mut(index) else {
            return Some(len);
        };
        let protected = buffer.get(..len)?;
        let plain = if rtcp {
            leg.unprotect_rtcp(protected)
        } else {
            leg.unprotect_rtp(protected)
        };
        match plain {
            Ok(plain) if plain.len() <= buffer.len() => {
                buffer[..plain.len()].copy_from_slice(&plain);
                Some(plain.len())
            }
            Ok(_) | Err(_) => {
                let count = if rtcp {
                    &mut self.rtcp_auth_failures
                } else {
                    &mut self.auth_failures
                };
                *count += 1;
                // Only the first few: a flood of forged packets must not flood the log.
                if *count <= 3 {
                    let error = plain.err().map(|e| e.to_string()).unwrap_or_default();
                    tracing::debug!(%error, rtcp, len, "SRTP packet dropped");
                }
                None
            }
        }
    }

    /// The bytes to put on the wire for `packet` sent to leg `index`: protected on an SRTP
    /// leg, unchanged otherwise.
    pub fn send<'a>(
        &mut self,
        index: usize,
        rtcp: bool,
        packet: &'a [u8],
    ) -> Result<std::borrow::Cow<'a, [u8]>, SrtpError> {
        match self.legs.get_mut(index) {
            Some(Some(leg)) => {
                let protected = if rtcp {
                    leg.protect_rtcp(packet)
                } else {
                    leg.protect_rtp(packet)
                };
                protected.map(std::borrow::Cow::Owned)
            }
            _ => Ok(std::borrow::Cow::Borrowed(packet)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rtp(seq: u16, payload: &[u8]) -> Vec<u8> {
        let mut packet = vec![0x80, 0, 0, 0, 0, 0, 0, 160, 0x12, 0x34, 0x56, 0x78];
        packet[2..4].copy_from_slice(&seq.to_be_bytes());
        packet.extend_from_slice(payload);
        packet
    }

    /// Two ends of one SDES exchange: what `a` sends `b` decrypts and the other way round.
    fn pair(suite: SrtpSuite) -> (SrtpLeg, SrtpLeg) {
        let (ka, kb) = (MasterKey::random(), MasterKey::random());
        let a = SrtpLeg::new(SrtpPolicy {
            suite,
            send_key: ka,
            receive_key: kb,
        })
        .unwrap();
        let b = SrtpLeg::new(SrtpPolicy {
            suite,
            send_key: kb,
            receive_key: ka,
        })
        .unwrap();
        (a, b)
    }

    #[test]
    fn both_suites_round_trip_with_their_tag_length() {
        for (suite, tag) in [
            (SrtpSuite::AesCm128HmacSha1_80, 10),
            (SrtpSuite::AesCm128HmacSha1_32, 4),
        ] {
            let (mut a, mut b) = pair(suite);
            let plain = rtp(1, &[0x55; 160]);
            let protected = a.protect_rtp(&plain).unwrap();
            assert_eq!(protected.len(), plain.len() + tag);
            assert_ne!(protected[12..172], plain[12..]);
            assert_eq!(b.unprotect_rtp(&protected).unwrap(), plain);
        }
    }

    #[test]
    fn a_tampered_packet_or_wrong_key_is_rejected() {
        let (mut a, mut b) = pair(SrtpSuite::AesCm128HmacSha1_80);
        let mut protected = a.protect_rtp(&rtp(1, &[1; 160])).unwrap();
        protected[20] ^= 1;
        assert!(matches!(
            b.unprotect_rtp(&protected),
            Err(SrtpError::Rejected(_))
        ));
        let (mut stranger, _) = pair(SrtpSuite::AesCm128HmacSha1_80);
        let foreign = stranger.protect_rtp(&rtp(2, &[1; 160])).unwrap();
        assert!(b.unprotect_rtp(&foreign).is_err());
        assert!(b.unprotect_rtp(&[0x80, 0, 0]).is_err());
    }

    #[test]
    fn a_replayed_packet_is_rejected() {
        let (mut a, mut b) = pair(SrtpSuite::AesCm128HmacSha1_80);
        let first = a.protect_rtp(&rtp(10, &[1; 20])).unwrap();
        let second = a.protect_rtp(&rtp(11, &[2; 20])).unwrap();
        assert!(b.unprotect_rtp(&second).is_ok());
        assert!(
            b.unprotect_rtp(&first).is_ok(),
            "reordered within the window"
        );
        assert!(b.unprotect_rtp(&second).is_err(), "replay");
    }

    #[test]
    fn a_forged_packet_arriving_first_does_not_make_the_real_stream_look_old() {
        let (mut a, mut b) = pair(SrtpSuite::AesCm128HmacSha1_80);
        let (mut stranger, _) = pair(SrtpSuite::AesCm128HmacSha1_80);
        let forged = stranger.protect_rtp(&rtp(40_000, &[1; 20])).unwrap();
        assert!(b.unprotect_rtp(&forged).is_err());
        let real = a.protect_rtp(&rtp(10, &[2; 20])).unwrap();
        assert!(b.unprotect_rtp(&real).is_ok());
        // The same for SRTCP: an unauthenticated packet first, then the real one.
        let rr = vec![0x80, 201, 0, 1, 0x12, 0x34, 0x56, 0x78];
        let mut garbage = stranger.protect_rtcp(&rr).unwrap();
        garbage.truncate(16);
        assert!(b.unprotect_rtcp(&garbage).is_err());
        let real = a.protect_rtcp(&rr).unwrap();
        assert_eq!(b.unprotect_rtcp(&real).unwrap(), rr);
        assert!(b.unprotect_rtcp(&real).is_err(), "an SRTCP replay");
    }

    #[test]
    fn the_replay_window_keeps_128_packets() {
        let mut window = ReplayWindow::default();
        assert!(window.accept(1000));
        assert!(window.accept(1000 - 127), "oldest still in the window");
        assert!(!window.accept(1000 - 128), "older than the window");
        assert!(!window.accept(1000 - 127), "seen");
        assert!(window.accept(1200));
        assert!(!window.accept(1000), "fell out of the window");
        assert_eq!(window.rtp_index(5), 5);
        let mut wrapped = ReplayWindow::default();
        assert!(wrapped.accept(65_535));
        assert_eq!(wrapped.rtp_index(2), (1 << 16) | 2, "after a rollover");
        assert_eq!(wrapped.rtp_index(65_530), 65_530, "just before it");
    }

    #[test]
    fn sequence_rollover_keeps_decrypting() {
        let (mut a, mut b) = pair(SrtpSuite::AesCm128HmacSha1_80);
        for seq in (65_530u16..=u16::MAX).chain(0..10) {
            let plain = rtp(seq, &seq.to_be_bytes());
            let protected = a.protect_rtp(&plain).unwrap();
            assert_eq!(b.unprotect_rtp(&protected).unwrap(), plain, "seq {seq}");
        }
    }

    #[test]
    fn session_srtp_protects_only_its_srtp_legs_and_counts_refusals() {
        let (far, _) = pair(SrtpSuite::AesCm128HmacSha1_80);
        let policy = SrtpPolicy {
            suite: SrtpSuite::AesCm128HmacSha1_80,
            send_key: far.policy().receive_key,
            receive_key: far.policy().send_key,
        };
        let mut far = far;
        let mut session = SessionSrtp::default();
        session.set(1, Some(policy));
        assert!(!session.is_protected(0) && session.is_protected(1));
        let plain = rtp(5, &[9; 40]);
        assert_eq!(session.send(0, false, &plain).unwrap().as_ref(), &plain[..]);
        let sent = session.send(1, false, &plain).unwrap().into_owned();
        assert_eq!(far.unprotect_rtp(&sent).unwrap(), plain);
        let mut buffer = vec![0u8; 2048];
        let incoming = far.protect_rtp(&plain).unwrap();
        buffer[..incoming.len()].copy_from_slice(&incoming);
        assert_eq!(
            session.receive(1, false, &mut buffer, incoming.len()),
            Some(plain.len())
        );
        assert_eq!(&buffer[..plain.len()], &plain[..]);
        assert_eq!(session.receive(1, false, &mut buffer, plain.len()), None);
        assert_eq!(session.auth_failures, 1);
        session.set(1, None);
        assert_eq!(session.receive(1, false, &mut buffer, 7), Some(7));
    }

    #[test]
    fn rtcp_round_trips() {
        let (mut a, mut b) = pair(SrtpSuite::AesCm128HmacSha1_32);
        // A receiver report with no blocks: V=2, PT=201, length 1, SSRC.
        let plain = vec![0x80, 201, 0, 1, 0x12, 0x34, 0x56, 0x78];
        let protected = a.protect_rtcp(&plain).unwrap();
        assert_eq!(b.unprotect_rtcp(&protected).unwrap(), plain);
    }
}
