//! Agent and call states, and the atomic state word the claim protocol compares and swaps.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use crate::ids::CallId;

/// Where an agent is in its working day.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AgentState {
    /// Not logged in; never offered calls.
    LoggedOut,
    /// Waiting for a call; the only state in which an agent can be offered one.
    Ready,
    /// A call has been offered and is ringing the agent.
    Reserved {
        /// The offered call.
        call: CallId,
    },
    /// Talking to a caller.
    OnCall {
        /// The connected call.
        call: CallId,
    },
    /// After-call work until the wrap-up timer fires.
    WrapUp {
        /// When wrap-up ends.
        until: Instant,
    },
    /// Logged in but unavailable.
    NotReady {
        /// One of the configured reasons (or `login`).
        reason: Arc<str>,
    },
}

impl AgentState {
    /// The state without its details.
    pub fn kind(&self) -> AgentStateKind {
        match self {
            AgentState::LoggedOut => AgentStateKind::LoggedOut,
            AgentState::Ready => AgentStateKind::Ready,
            AgentState::Reserved { .. } => AgentStateKind::Reserved,
            AgentState::OnCall { .. } => AgentStateKind::OnCall,
            AgentState::WrapUp { .. } => AgentStateKind::WrapUp,
            AgentState::NotReady { .. } => AgentStateKind::NotReady,
        }
    }
}

/// An agent state without its details, for errors and counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum AgentStateKind {
    /// See [`AgentState::LoggedOut`].
    LoggedOut = 0,
    /// See [`AgentState::Ready`].
    Ready = 1,
    /// See [`AgentState::Reserved`].
    Reserved = 2,
    /// See [`AgentState::OnCall`].
    OnCall = 3,
    /// See [`AgentState::WrapUp`].
    WrapUp = 4,
    /// See [`AgentState::NotReady`].
    NotReady = 5,
}

impl AgentStateKind {
    /// Whether the agent model allows going from `self` to `to` (used by tests and
    /// documentation; the ACD itself only ever performs these).
    pub fn can_become(self, to: AgentStateKind) -> bool {
        use AgentStateKind::*;
        matches!(
            (self, to),
            (LoggedOut, Ready | NotReady)
                | (Ready, Reserved | NotReady | LoggedOut)
                | (Reserved, OnCall | Ready | NotReady | LoggedOut)
                | (OnCall, WrapUp | Ready | NotReady | LoggedOut)
                | (WrapUp, Ready | NotReady | LoggedOut)
                | (NotReady, Ready | NotReady | LoggedOut)
        )
    }
}

impl fmt::Display for AgentStateKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            AgentStateKind::LoggedOut => "LoggedOut",
            AgentStateKind::Ready => "Ready",
            AgentStateKind::Reserved => "Reserved",
            AgentStateKind::OnCall => "OnCall",
            AgentStateKind::WrapUp => "WrapUp",
            AgentStateKind::NotReady => "NotReady",
        };
        f.write_str(name)
    }
}

/// Where a call is in the ACD.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CallStateKind {
    /// Waiting in a queue.
    Waiting,
    /// Offered to an agent, ringing.
    Offered,
    /// Answered by an agent.
    Connected,
    /// Left the ACD (answered and hung up, abandoned, timed out, overflowed elsewhere).
    Gone,
}

impl fmt::Display for CallStateKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            CallStateKind::Waiting => "waiting",
            CallStateKind::Offered => "offered",
            CallStateKind::Connected => "connected",
            CallStateKind::Gone => "gone",
        };
        f.write_str(name)
    }
}

/// A state tag plus a version that grows on every change, packed into one `u64` so that a
/// single compare-and-swap both checks "still in the state I saw" and "nothing happened in
/// between" (the version defeats ABA: Ready → Reserved → Ready looks different).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Word {
    pub(crate) version: u64,
    pub(crate) tag: u8,
}

impl Word {
    const TAG_BITS: u32 = 8;

    pub(crate) fn new(version: u64, tag: u8) -> Self {
        Self { version, tag }
    }

    fn pack(self) -> u64 {
        (self.version << Self::TAG_BITS) | u64::from(self.tag)
    }

    fn unpack(bits: u64) -> Self {
        Self {
            version: bits >> Self::TAG_BITS,
            tag: (bits & 0xff) as u8,
        }
    }

    /// The same version bumped, with a new tag.
    pub(crate) fn next(self, tag: u8) -> Self {
        Self::new(self.version + 1, tag)
    }
}

/// The atomic cell holding a [`Word`]. Every operation is `SeqCst`: the lost-wakeup argument
/// (publish, then search the other side) needs a single total order of these accesses.
#[derive(Debug)]
pub(crate) struct StateWord(AtomicU64);

impl StateWord {
    pub(crate) fn new(word: Word) -> Self {
        Self(AtomicU64::new(word.pack()))
    }

    pub(crate) fn load(&self) -> Word {
        Word::unpack(self.0.load(Ordering::SeqCst))
    }

    pub(crate) fn store(&self, word: Word) {
        self.0.store(word.pack(), Ordering::SeqCst);
    }

    /// Swaps `current` for `new` only if the word still equals `current`.
    pub(crate) fn compare_swap(&self, current: Word, new: Word) -> bool {
        self.0
            .compare_exchange(
                current.pack(),
                new.pack(),
                Ordering::SeqCst,
                Ordering::SeqCst,
            )
            .is_ok()
    }
}

/// Tags of a call's state word.
pub(crate) mod call_tag {
    pub(crate) const WAITING: u8 = 0;
    pub(crate) const OFFERED: u8 = 1;
    pub(crate) const CONNECTED: u8 = 2;
    pub(crate) const GONE: u8 = 3;
}

/// Tag of an agent that has been removed from the registry (never claimable again).
pub(crate) const AGENT_REMOVED_TAG: u8 = 0xff;

pub(crate) fn agent_tag(kind: AgentStateKind) -> u8 {
    kind as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn word_round_trips_and_cas_checks_version() {
        let cell = StateWord::new(Word::new(41, agent_tag(AgentStateKind::Ready)));
        let seen = cell.load();
        assert_eq!(seen, Word::new(41, 1));
        let claimed = seen.next(agent_tag(AgentStateKind::Reserved));
        assert!(cell.compare_swap(seen, claimed));
        // A second claimer holding the old word loses.
        assert!(!cell.compare_swap(seen, claimed));
        assert_eq!(cell.load(), Word::new(42, 2));
    }

    #[test]
    fn transition_table_matches_the_model() {
        use AgentStateKind::*;
        assert!(Ready.can_become(Reserved));
        assert!(!LoggedOut.can_become(Reserved));
        assert!(!Ready.can_become(OnCall));
        assert!(!NotReady.can_become(Reserved));
        assert!(!WrapUp.can_become(Reserved));
        assert!(!LoggedOut.can_become(LoggedOut));
    }
}
