//! A call's own timer table: one deadline per kind of timer a call can have. Setting a kind
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
}

impl CallTimer {
    const ALL: [CallTimer; 7] = [
        CallTimer::Ring,
        CallTimer::Ivr,
        CallTimer::Announce,
        CallTimer::VoicemailLimit,
        CallTimer::Survey,
        CallTimer::SessionRefresh,
        CallTimer::SessionExpiry,
    ];

    fn slot(self) -> usize {
        self as usize
    }
}

/// The deadline of each kind of timer a call has set.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct CallTimers {
    due: [Option<Instant>; CallTimer::ALL.len()],
}

impl CallTimers {
    /// Sets (or moves) `timer` to fire at `at`.
    pub fn set(&mut self, timer: CallTimer, at: Instant) {
        self.due[timer.slot()] = Some(at);
    }

    /// `timer` will not fire.
    pub fn cancel(&mut self, timer: CallTimer) {
        self.due[timer.slot()] = None;
    }

    /// When `timer` fires, if it is set.
    pub fn deadline(&self, timer: CallTimer) -> Option<Instant> {
        self.due[timer.slot()]
    }

    /// Clears and returns the earliest timer due at `now` (ties: in declaration order).
    pub fn take_due(&mut self, now: Instant) -> Option<CallTimer> {
        let timer = CallTimer::ALL
            .into_iter()
            .filter(|t| self.due[t.slot()].is_some_and(|at| at <= now))
            .min_by_key(|t| self.due[t.slot()])?;
        self.cancel(timer);
        Some(timer)
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
}
