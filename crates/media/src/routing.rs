//! Who hears whom in one media session. [`Routing::Relay`] is the two-party call: trunk and
//! agent RTP relayed byte for byte, nothing decoded. [`Routing::Mix`] gives every listener
//! its own 20 ms mix of the legs it hears (never its own voice), for supervision and
//! conferences. The presets build the `hears` sets for the usual supervisor modes; they are
//! pure functions so call control can describe a bridge without touching media.

use crate::media_timeout::Leg;

/// How a session routes audio between its legs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Routing {
    /// Trunk ⇄ agent, byte for byte (the default). Extra legs hear nothing.
    #[default]
    Relay,
    /// Each listed listener hears a mix of the listed talkers (itself excluded even if
    /// listed). A leg listed only as a talker hears nothing; a leg not listed at all is
    /// neither heard nor sent audio.
    Mix {
        /// (listener, the legs it hears).
        hears: Vec<(Leg, Vec<Leg>)>,
    },
}

/// Supervisor listens: caller and agent hear each other, the supervisor hears both, nobody
/// hears the supervisor.
pub fn listen(caller: Leg, agent: Leg, supervisor: Leg) -> Routing {
    Routing::Mix {
        hears: vec![
            (caller, vec![agent]),
            (agent, vec![caller]),
            (supervisor, vec![caller, agent]),
        ],
    }
}

/// Supervisor whispers (coaching): the agent hears caller and supervisor, the caller hears
/// only the agent, the supervisor hears both.
pub fn whisper(caller: Leg, agent: Leg, supervisor: Leg) -> Routing {
    Routing::Mix {
        hears: vec![
            (caller, vec![agent]),
            (agent, vec![caller, supervisor]),
            (supervisor, vec![caller, agent]),
        ],
    }
}

/// Everyone hears everyone else: a conference, or a supervisor barging in.
pub fn conference(legs: &[Leg]) -> Routing {
    Routing::Mix {
        hears: legs
            .iter()
            .map(|&listener| {
                let others = legs.iter().copied().filter(|&l| l != listener).collect();
                (listener, others)
            })
            .collect(),
    }
}

/// A supervisor barges in: the same as a three-party conference.
pub fn barge(caller: Leg, agent: Leg, supervisor: Leg) -> Routing {
    conference(&[caller, agent, supervisor])
}

impl Routing {
    /// The legs `listener` hears under this routing (its own leg never included).
    pub fn heard_by(&self, listener: Leg) -> Vec<Leg> {
        match self {
            Routing::Relay => match listener {
                Leg::Trunk => vec![Leg::Agent],
                Leg::Agent => vec![Leg::Trunk],
                Leg::Extra(_) => Vec::new(),
            },
            Routing::Mix { hears } => hears
                .iter()
                .filter(|(l, _)| *l == listener)
                .flat_map(|(_, talkers)| talkers.iter().copied())
                .filter(|&t| t != listener)
                .collect(),
        }
    }

    /// Every leg named in a Mix (listener or talker), each once, in leg order.
    pub fn mixed_legs(&self) -> Vec<Leg> {
        let Routing::Mix { hears } = self else {
            return Vec::new();
        };
        let mut legs: Vec<Leg> = hears
            .iter()
            .flat_map(|(listener, talkers)| {
                std::iter::once(*listener).chain(talkers.iter().copied())
            })
            .collect();
        legs.sort();
        legs.dedup();
        legs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CALLER: Leg = Leg::Trunk;
    const AGENT: Leg = Leg::Agent;
    const SUPERVISOR: Leg = Leg::Extra(0);

    #[test]
    fn listen_hides_the_supervisor() {
        let routing = listen(CALLER, AGENT, SUPERVISOR);
        assert_eq!(routing.heard_by(CALLER), vec![AGENT]);
        assert_eq!(routing.heard_by(AGENT), vec![CALLER]);
        assert_eq!(routing.heard_by(SUPERVISOR), vec![CALLER, AGENT]);
    }

    #[test]
    fn whisper_reaches_only_the_agent() {
        let routing = whisper(CALLER, AGENT, SUPERVISOR);
        assert_eq!(routing.heard_by(CALLER), vec![AGENT]);
        assert_eq!(routing.heard_by(AGENT), vec![CALLER, SUPERVISOR]);
        assert_eq!(routing.heard_by(SUPERVISOR), vec![CALLER, AGENT]);
    }

    #[test]
    fn barge_and_conference_let_everyone_hear_everyone_else() {
        let routing = barge(CALLER, AGENT, SUPERVISOR);
        assert_eq!(routing.heard_by(CALLER), vec![AGENT, SUPERVISOR]);
        assert_eq!(routing.heard_by(AGENT), vec![CALLER, SUPERVISOR]);
        assert_eq!(routing.heard_by(SUPERVISOR), vec![CALLER, AGENT]);
        let four = conference(&[CALLER, AGENT, Leg::Extra(0), Leg::Extra(1)]);
        assert_eq!(
            four.heard_by(Leg::Extra(1)),
            vec![CALLER, AGENT, Leg::Extra(0)]
        );
        assert_eq!(four.mixed_legs().len(), 4);
    }

    #[test]
    fn nobody_hears_their_own_voice_even_if_listed() {
        let routing = Routing::Mix {
            hears: vec![(AGENT, vec![AGENT, CALLER])],
        };
        assert_eq!(routing.heard_by(AGENT), vec![CALLER]);
        assert_eq!(routing.heard_by(CALLER), Vec::<Leg>::new());
    }

    #[test]
    fn relay_pairs_trunk_and_agent_only() {
        assert_eq!(Routing::Relay.heard_by(CALLER), vec![AGENT]);
        assert_eq!(Routing::Relay.heard_by(SUPERVISOR), Vec::<Leg>::new());
        assert!(Routing::Relay.mixed_legs().is_empty());
    }
}
