//! SRTP at the edge of a media session (RFC 3711): packets from an SRTP leg are
//! authenticated and decrypted as they are read, packets to it are encrypted as they are
//! sent, so the relay core, mixer, recorder and DTMF detection only ever see plain RTP.
//!
//! The cipher, the rollover counter and the replay window are webrtc-rs's `webrtc-srtp`
//! context (no hand-written AES or HMAC). One context per direction, as RFC 3711 §3.2
//! requires: each side of an SDES exchange sends with its own key.

use crate::sdes::{MasterKey, SrtpSuite};
use webrtc_srtp::context::Context;
use webrtc_srtp::option::{srtcp_replay_protection, srtp_replay_protection};
use webrtc_srtp::protection_profile::ProtectionProfile;

/// Packets accepted out of order within this window (RFC 3711 §3.3.2: at least 64).
const REPLAY_WINDOW: usize = 128;

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
        let context = |key: &MasterKey, replay: bool| {
            let (rtp, rtcp) = if replay {
                (
                    Some(srtp_replay_protection(REPLAY_WINDOW)),
                    Some(srtcp_replay_protection(REPLAY_WINDOW)),
                )
            } else {
                (None, None)
            };
            Context::new(key.key(), key.salt(), profile(policy.suite), rtp, rtcp)
                .map_err(|e| SrtpError::Context(e.to_string()))
        };
        Ok(SrtpLeg {
            policy,
            outbound: context(&policy.send_key, false)?,
            inbound: context(&policy.receive_key, true)?,
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
        self.inbound
            .decrypt_rtp(protected)
            .map(|bytes| bytes.to_vec())
            .map_err(|e| SrtpError::Rejected(e.to_string()))
    }

    /// Encrypts and tags one plain RTCP packet for the leg.
    pub fn protect_rtcp(&mut self, plain: &[u8]) -> Result<Vec<u8>, SrtpError> {
        self.outbound
            .encrypt_rtcp(plain)
            .map(|bytes| bytes.to_vec())
            .map_err(|e| SrtpError::Rejected(e.to_string()))
    }

    /// Authenticates and decrypts one SRTCP packet from the leg.
    pub fn unprotect_rtcp(&mut self, protected: &[u8]) -> Result<Vec<u8>, SrtpError> {
        self.inbound
            .decrypt_rtcp(protected)
            .map(|bytes| bytes.to_vec())
            .map_err(|e| SrtpError::Rejected(e.to_string()))
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
