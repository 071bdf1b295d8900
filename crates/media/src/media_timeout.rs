//! The media-timeout rule: when a leg has sent no RTP for the configured time, the call is
//! dead (phone unplugged, NAT mapping gone) and both legs are hung up with reason
//! `media-timeout`. Sans-IO: times are parameters; the I/O layer sleeps until [`MediaTimeout::deadline`].

use std::time::{Duration, Instant};

/// Which leg of an anchored call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Leg {
    /// The caller's side (trunk or PBX).
    Trunk,
    /// The agent's side (phone, softphone).
    Agent,
}

impl Leg {
    /// The other leg.
    pub fn other(self) -> Leg {
        match self {
            Leg::Trunk => Leg::Agent,
            Leg::Agent => Leg::Trunk,
        }
    }

    /// Index 0 for trunk, 1 for agent, for per-leg arrays.
    pub fn index(self) -> usize {
        match self {
            Leg::Trunk => 0,
            Leg::Agent => 1,
        }
    }
}

/// Tracks the last RTP arrival per leg against a silence limit.
#[derive(Debug, Clone)]
pub struct MediaTimeout {
    limit: Duration,
    last_rtp: [Instant; 2],
    watched: [bool; 2],
}

impl MediaTimeout {
    /// Starts watching both legs at `now` (a leg that never sends times out `limit` after start).
    pub fn new(now: Instant, limit: Duration) -> MediaTimeout {
        MediaTimeout {
            limit,
            last_rtp: [now; 2],
            watched: [true; 2],
        }
    }

    /// Stops or resumes watching a leg, e.g. while it is `sendonly`/`inactive` on hold,
    /// when silence is legitimate. Resuming restarts that leg's clock at `now`.
    pub fn set_watched(&mut self, now: Instant, leg: Leg, watched: bool) {
        if watched && !self.watched[leg.index()] {
            self.last_rtp[leg.index()] = now;
        }
        self.watched[leg.index()] = watched;
    }

    /// Notes an RTP packet from `leg`. Cheap: no timer is touched per packet.
    #[inline]
    pub fn on_rtp(&mut self, now: Instant, leg: Leg) {
        self.last_rtp[leg.index()] = now;
    }

    /// When the I/O layer should next call [`MediaTimeout::check`]; `None` when no leg is watched.
    pub fn deadline(&self) -> Option<Instant> {
        [Leg::Trunk, Leg::Agent]
            .into_iter()
            .filter(|leg| self.watched[leg.index()])
            .map(|leg| self.last_rtp[leg.index()] + self.limit)
            .min()
    }

    /// The watched leg silent longest, if it has been silent for the limit at `now`.
    pub fn check(&self, now: Instant) -> Option<Leg> {
        [Leg::Trunk, Leg::Agent]
            .into_iter()
            .filter(|leg| self.watched[leg.index()])
            .min_by_key(|leg| self.last_rtp[leg.index()])
            .filter(|leg| now.saturating_duration_since(self.last_rtp[leg.index()]) >= self.limit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fires_for_the_silent_leg_only_after_the_limit() {
        let t0 = Instant::now();
        let mut timeout = MediaTimeout::new(t0, Duration::from_secs(30));
        assert_eq!(timeout.deadline(), Some(t0 + Duration::from_secs(30)));
        timeout.on_rtp(t0 + Duration::from_secs(10), Leg::Trunk);
        timeout.on_rtp(t0 + Duration::from_secs(20), Leg::Agent);
        assert_eq!(timeout.check(t0 + Duration::from_secs(39)), None);
        assert_eq!(timeout.deadline(), Some(t0 + Duration::from_secs(40)));
        assert_eq!(
            timeout.check(t0 + Duration::from_secs(40)),
            Some(Leg::Trunk)
        );
        // Checked late, both legs are over the limit: the one silent longest is named.
        assert_eq!(
            timeout.check(t0 + Duration::from_secs(100)),
            Some(Leg::Trunk)
        );
    }

    #[test]
    fn unwatched_legs_never_fire() {
        let t0 = Instant::now();
        let mut timeout = MediaTimeout::new(t0, Duration::from_secs(5));
        timeout.set_watched(t0, Leg::Agent, false);
        timeout.set_watched(t0, Leg::Trunk, false);
        assert_eq!(timeout.deadline(), None);
        assert_eq!(timeout.check(t0 + Duration::from_secs(60)), None);
        timeout.set_watched(t0 + Duration::from_secs(60), Leg::Agent, true);
        assert_eq!(
            timeout.check(t0 + Duration::from_secs(61)),
            None,
            "clock restarts on resume"
        );
        assert_eq!(
            timeout.check(t0 + Duration::from_secs(65)),
            Some(Leg::Agent)
        );
    }
}
