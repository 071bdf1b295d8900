//! Symmetric RTP ("latching", RFC 4961 / the comedia practice): a phone behind NAT sends from
//! an address its SDP does not know, so Switchboard sends back to wherever the phone's packets
//! really come from. Sans-IO: the caller passes the arrival time.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// What to do with a packet from a given source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LatchDecision {
    /// From the latched peer: relay it.
    Accept,
    /// First packet, or the peer moved after being silent: relay it and send to `SocketAddr` from now on.
    Latched(SocketAddr),
    /// From somebody else while the latched peer is active: drop it (RTP injection guard).
    Reject,
}

/// The remote address of one leg, learned from SDP and corrected by the first packets.
#[derive(Debug, Clone)]
pub struct RemoteLatch {
    signalled: Option<SocketAddr>,
    latched: Option<SocketAddr>,
    last_seen: Option<Instant>,
    relatch_after: Duration,
}

impl RemoteLatch {
    /// `signalled` is the SDP address (may be a useless private one); a latched peer that has
    /// been silent for `relatch_after` may be replaced by a new source (NAT rebinding, phone
    /// re-registered), but an active one never is.
    pub fn new(signalled: Option<SocketAddr>, relatch_after: Duration) -> RemoteLatch {
        RemoteLatch {
            signalled,
            latched: None,
            last_seen: None,
            relatch_after,
        }
    }

    /// Where to send packets for this leg now: the latched source, else the SDP address.
    pub fn destination(&self) -> Option<SocketAddr> {
        self.latched.or(self.signalled)
    }

    /// True once a packet has fixed the peer's address.
    pub fn is_latched(&self) -> bool {
        self.latched.is_some()
    }

    /// Updates the SDP address (re-INVITE). Keeps a latch: NAT mappings survive re-INVITEs.
    pub fn set_signalled(&mut self, signalled: Option<SocketAddr>) {
        self.signalled = signalled;
    }

    /// Decides about a valid packet from `source` arriving at `now`.
    pub fn on_packet(&mut self, now: Instant, source: SocketAddr) -> LatchDecision {
        match (self.latched, self.last_seen) {
            (Some(current), _) if current == source => {
                self.last_seen = Some(now);
                LatchDecision::Accept
            }
            (Some(_), Some(seen)) if now.saturating_duration_since(seen) < self.relatch_after => {
                LatchDecision::Reject
            }
            _ => {
                self.latched = Some(source);
                self.last_seen = Some(now);
                LatchDecision::Latched(source)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().expect("test address")
    }

    #[test]
    fn first_packet_latches_over_the_sdp_address() {
        let mut latch = RemoteLatch::new(Some(addr("192.168.1.20:16384")), Duration::from_secs(2));
        assert_eq!(latch.destination(), Some(addr("192.168.1.20:16384")));
        let now = Instant::now();
        assert_eq!(
            latch.on_packet(now, addr("198.51.100.9:5342")),
            LatchDecision::Latched(addr("198.51.100.9:5342"))
        );
        assert_eq!(latch.destination(), Some(addr("198.51.100.9:5342")));
        assert_eq!(
            latch.on_packet(now, addr("198.51.100.9:5342")),
            LatchDecision::Accept
        );
    }

    #[test]
    fn other_sources_are_rejected_while_the_peer_is_active() {
        let mut latch = RemoteLatch::new(None, Duration::from_secs(2));
        let t0 = Instant::now();
        latch.on_packet(t0, addr("198.51.100.9:5342"));
        assert_eq!(
            latch.on_packet(t0 + Duration::from_millis(500), addr("203.0.113.66:9999")),
            LatchDecision::Reject
        );
        assert_eq!(latch.destination(), Some(addr("198.51.100.9:5342")));
    }

    #[test]
    fn a_silent_peer_can_be_replaced() {
        let mut latch = RemoteLatch::new(None, Duration::from_secs(2));
        let t0 = Instant::now();
        latch.on_packet(t0, addr("198.51.100.9:5342"));
        let later = t0 + Duration::from_secs(3);
        assert_eq!(
            latch.on_packet(later, addr("198.51.100.9:6000")),
            LatchDecision::Latched(addr("198.51.100.9:6000"))
        );
        latch.set_signalled(Some(addr("10.0.0.1:4000")));
        assert_eq!(
            latch.destination(),
            Some(addr("198.51.100.9:6000")),
            "re-INVITE keeps the NAT latch"
        );
    }

    #[test]
    fn no_address_at_all_means_no_destination() {
        let latch = RemoteLatch::new(None, Duration::from_secs(2));
        assert_eq!(latch.destination(), None);
        assert!(!latch.is_latched());
    }
}
