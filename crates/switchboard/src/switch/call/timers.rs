//! A call's own timer table: one deadline per kind of timer a call can have (and one per
//! further party's phone being rung: a supervisor, a consulted colleague). Setting a kind
//! again moves its deadline, cancelling clears it, and the call's state is the only judge of
//! what is due — so a handler never has to ask whether a timer still belongs to the attempt
//! (or IVR visit, or survey) it was set for. The switch's one timer queue only holds wake-ups
//! for the call (`SwitchTimer::Call`, see call_driver.rs); a wake-up whose deadline moved or
//! was cancelled finds nothing due and does nothing.

use std::time::Instant;

/// The kinds of timer a call owns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallTimer {
    /// The agent's phone rang long enough (`[sip] ring_timeout_s`).
    Ring,
    /// The IVR may have reached its digit timeout (the session keeps the real deadline).
    Ivr,
    /// A waiting caller's position announcement is due.
    Announce,
    /// A voicemail message reached its maximum length.
    VoicemailLimit,
    /// The caller has had their time to key a survey score.
    Survey,
    /// Switchboard's turn to refresh the trunk leg's session (RFC 4028).
    SessionRefresh,
    /// The trunk should have refreshed its session by now (RFC 4028).
    SessionExpiry,
    /// The phone rung for extra leg `n` of the call's media session (a supervisor, a
    /// consulted colleague) rang long enough. A leg number freed and taken again by the next
    /// phone moves the deadline: the first phone's ring time cannot cut the second's short.
    ExtraLegRing(u8),
}

/// Timer slots in a call's table: the fixed kinds, then one per extra leg.
const SLOTS: usize = CallTimer::FIXED.len() + media::MAX_EXTRA_LEGS as usize;

impl CallTimer {
    const FIXED: [CallTimer; 7] = [
        CallTimer::Ring,
        CallTimer::Ivr,
        CallTimer::Announce,
        CallTimer::VoicemailLimit,
        CallTimer::Survey,
        CallTimer::SessionRefresh,
        CallTimer::SessionExpiry,
    ];

    /// The ring timer of the phone rung as `leg`, when it is an extra leg.
    pub fn extra_leg_ring(leg: media::Leg) -> Option<CallTimer> {
        match leg {
            media::Leg::Extra(n) if n < media::MAX_EXTRA_LEGS => Some(CallTimer::ExtraLegRing(n)),
            _ => None,
        }
    }

    fn slot(self) -> usize {
        match self {
            CallTimer::Ring => 0,
            CallTimer::Ivr => 1,
            CallTimer::Announce => 2,
            CallTimer::VoicemailLimit => 3,
            CallTimer::Survey => 4,
            CallTimer::SessionRefresh => 5,
            CallTimer::SessionExpiry => 6,
            CallTimer::ExtraLegRing(n) => Self::FIXED.len() + usize::from(n),
        }
    }

    fn of_slot(slot: usize) -> CallTimer {
        match Self::FIXED.get(slot) {
            Some(fixed) => *fixed,
            None => {
                CallTimer::ExtraLegRing(u8::try_from(slot - Self::FIXED.len()).unwrap_or(u8::MAX))
            }
        }
    }
}

/// The deadline of each kind of timer a call has set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallTimers {
    due: [Option<Instant>; SLOTS],
}

impl Default for CallTimers {
    fn default() -> Self {
        Self { due: [None; SLOTS] }
    }
}

impl CallTimers {
    /// Sets (or moves) `timer` to fire at `at`.
    pub fn set(&mut self, timer: CallTimer, at: Instant) {
        if let Some(due) = self.due.get_mut(timer.slot()) {
            *due = Some(at);
        }
    }

    /// `timer` will not fire.
    pub fn cancel(&mut self, timer: CallTimer) {
        if let Some(due) = self.due.get_mut(timer.slot()) {
            *due = None;
        }
    }

    /// When `timer` fires, if it is set.
    pub fn deadline(&self, timer: CallTimer) -> Option<Instant> {
        self.due.get(timer.slot()).copied().flatten()
    }

    /// Clears and returns the earliest timer due at `now` (ties: in declaration order, extra
    /// legs by number).
    pub fn take_due(&mut self, now: Instant) -> Option<CallTimer> {
        let slot = (0..SLOTS)
            .filter(|&slot| self.due[slot].is_some_and(|at| at <= now))
            .min_by_key(|&slot| self.due[slot])?;
        self.due[slot] = None;
        Some(CallTimer::of_slot(slot))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_moved_or_cancelled_timer_is_not_due_at_its_old_deadline() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let mut timers = CallTimers::default();
        timers.set(CallTimer::Ring, t0 + s(20));
        timers.set(CallTimer::Announce, t0 + s(30));
        // A second attempt rings: its deadline replaces the first attempt's.
        timers.set(CallTimer::Ring, t0 + s(45));
        assert_eq!(timers.take_due(t0 + s(20)), None);
        assert_eq!(timers.take_due(t0 + s(30)), Some(CallTimer::Announce));
        assert_eq!(timers.take_due(t0 + s(30)), None);
        timers.cancel(CallTimer::Ring);
        assert_eq!(timers.take_due(t0 + s(60)), None);
        assert_eq!(timers.deadline(CallTimer::Ring), None);
    }

    #[test]
    fn due_timers_come_out_earliest_first() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let mut timers = CallTimers::default();
        timers.set(CallTimer::Survey, t0 + s(5));
        timers.set(CallTimer::Ivr, t0 + s(3));
        timers.set(CallTimer::VoicemailLimit, t0 + s(9));
        let now = t0 + s(6);
        assert_eq!(timers.take_due(now), Some(CallTimer::Ivr));
        assert_eq!(timers.take_due(now), Some(CallTimer::Survey));
        assert_eq!(timers.take_due(now), None);
        assert_eq!(timers.deadline(CallTimer::VoicemailLimit), Some(t0 + s(9)));
    }

    #[test]
    fn each_extra_legs_ring_is_a_timer_of_its_own() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let mut timers = CallTimers::default();
        let first = CallTimer::extra_leg_ring(media::Leg::Extra(0)).expect("an extra leg");
        let last = CallTimer::extra_leg_ring(media::Leg::Extra(media::MAX_EXTRA_LEGS - 1))
            .expect("the last extra leg");
        assert_eq!(CallTimer::extra_leg_ring(media::Leg::Agent), None);
        assert_eq!(
            CallTimer::extra_leg_ring(media::Leg::Extra(media::MAX_EXTRA_LEGS)),
            None
        );
        timers.set(first, t0 + s(20));
        timers.set(last, t0 + s(10));
        timers.set(CallTimer::Ring, t0 + s(15));
        // Leg 0 is rung again: its new deadline replaces the old one.
        timers.set(first, t0 + s(26));
        assert_eq!(timers.take_due(t0 + s(25)), Some(last));
        assert_eq!(timers.take_due(t0 + s(25)), Some(CallTimer::Ring));
        assert_eq!(timers.take_due(t0 + s(25)), None);
        assert_eq!(
            timers.take_due(t0 + s(26)),
            Some(CallTimer::ExtraLegRing(0))
        );
    }
}
