//! The media-timeout rule: when a leg has sent no RTP for the configured time, the call is
//! dead (phone unplugged, NAT mapping gone) and both legs are hung up with reason
//! `media-timeout`. Sans-IO: times are parameters; the I/O layer sleeps until [`MediaTimeout::deadline`].

use std::time::{Duration, Instant};

/// Which leg of an anchored call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Leg {
    /// The caller's side (trunk or PBX).
    Trunk,
    /// The agent's side (phone, softphone).
    Agent,
    /// A further party of a mixed session (a supervisor, a conference member), numbered by
    /// call control from 0 to [`MAX_EXTRA_LEGS`] - 1. It has no relay partner: its audio is
    /// heard only through [`crate::routing::Routing::Mix`].
    Extra(u8),
}

/// Extra legs one session takes besides trunk and agent.
pub const MAX_EXTRA_LEGS: u8 = 14;

impl Leg {
    /// The relay partner: trunk and agent are each other's; an extra leg has none and is
    /// its own (nothing is ever relayed to or from it byte for byte).
    pub fn other(self) -> Leg {
        match self {
            Leg::Trunk => Leg::Agent,
            Leg::Agent => Leg::Trunk,
            Leg::Extra(n) => Leg::Extra(n),
        }
    }

    /// Index 0 for trunk, 1 for agent, 2 + n for `Extra(n)`, for per-leg tables.
    pub fn index(self) -> usize {
        match self {
            Leg::Trunk => 0,
            Leg::Agent => 1,
            Leg::Extra(n) => 2 + usize::from(n),
        }
    }

    /// The leg at `index` (inverse of [`Leg::index`]).
    pub fn from_index(index: usize) -> Leg {
        match index {
            0 => Leg::Trunk,
            1 => Leg::Agent,
            n => Leg::Extra(u8::try_from(n - 2).unwrap_or(u8::MAX)),
        }
    }

    /// True for trunk and agent, the legs whose silence ends the call.
    pub fn is_main(self) -> bool {
        !matches!(self, Leg::Extra(_))
    }

    /// True for an extra leg number a session can take.
    pub fn is_valid(self) -> bool {
        match self {
            Leg::Extra(n) => n < MAX_EXTRA_LEGS,
            _ => true,
        }
    }
}

/// Tracks the last RTP arrival per leg against a silence limit.
#[derive(Debug, Clone)]
pub struct MediaTimeout {
    limit: Duration,
    /// Per leg index; extra legs are added on first use.
    last_rtp: Vec<Instant>,
    watched: Vec<bool>,
}

impl MediaTimeout {
    /// Starts watching both legs at `now` (a leg that never sends times out `limit` after start).
    pub fn new(now: Instant, limit: Duration) -> MediaTimeout {
        MediaTimeout {
            limit,
            last_rtp: vec![now; 2],
            watched: vec![true; 2],
        }
    }

    fn ensure(&mut self, leg: Leg) {
        let needed = leg.index() + 1;
        if self.last_rtp.len() < needed {
            let now = self.last_rtp.first().copied().unwrap_or_else(Instant::now);
            self.last_rtp.resize(needed, now);
            self.watched.resize(needed, false);
        }
    }

    /// Stops or resumes watching a leg, e.g. while it is `sendonly`/`inactive` on hold,
    /// when silence is legitimate. Resuming restarts that leg's clock at `now`.
    pub fn set_watched(&mut self, now: Instant, leg: Leg, watched: bool) {
        self.ensure(leg);
        if watched && !self.watched[leg.index()] {
            self.last_rtp[leg.index()] = now;
        }
        self.watched[leg.index()] = watched;
    }

    /// Notes an RTP packet from `leg`. Cheap: no timer is touched per packet.
    #[inline]
    pub fn on_rtp(&mut self, now: Instant, leg: Leg) {
        if let Some(last) = self.last_rtp.get_mut(leg.index()) {
            *last = now;
        }
    }

    /// When the I/O layer should next call [`MediaTimeout::check`]; `None` when no leg is watched.
    pub fn deadline(&self) -> Option<Instant> {
        self.watched_legs().map(|(_, last)| last + self.limit).min()
    }

    /// The watched leg silent longest, if it has been silent for the limit at `now`.
    pub fn check(&self, now: Instant) -> Option<Leg> {
        self.watched_legs()
            .min_by_key(|(_, last)| *last)
            .filter(|(_, last)| now.saturating_duration_since(*last) >= self.limit)
            .map(|(leg, _)| leg)
    }

    fn watched_legs(&self) -> impl Iterator<Item = (Leg, Instant)> + '_ {
        self.watched
            .iter()
            .zip(self.last_rtp.iter())
            .enumerate()
            .filter(|(_, (watched, _))| **watched)
            .map(|(index, (_, last))| (Leg::from_index(index), *last))
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
    fn an_extra_leg_is_watched_once_set_and_named_when_silent() {
        let t0 = Instant::now();
        let mut timeout = MediaTimeout::new(t0, Duration::from_secs(5));
        timeout.set_watched(t0 + Duration::from_secs(2), Leg::Extra(3), true);
        timeout.on_rtp(t0 + Duration::from_secs(4), Leg::Trunk);
        timeout.on_rtp(t0 + Duration::from_secs(4), Leg::Agent);
        assert_eq!(timeout.check(t0 + Duration::from_secs(6)), None);
        assert_eq!(
            timeout.check(t0 + Duration::from_secs(7)),
            Some(Leg::Extra(3))
        );
        timeout.set_watched(t0 + Duration::from_secs(7), Leg::Extra(3), false);
        assert_eq!(timeout.check(t0 + Duration::from_secs(8)), None);
    }

    #[test]
    fn leg_indexes_round_trip() {
        for leg in [Leg::Trunk, Leg::Agent, Leg::Extra(0), Leg::Extra(13)] {
            assert_eq!(Leg::from_index(leg.index()), leg);
        }
        assert!(Leg::Extra(13).is_valid());
        assert!(!Leg::Extra(MAX_EXTRA_LEGS).is_valid());
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
