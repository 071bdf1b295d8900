//! Whole call records of a report's range, for the sections that need more than the figures
//! (wrap-up dispositions, transfers by agent): each call counted the way the report counts it
//! (queued, or arrived if it never queued, within the range; the queue and agent filters), read
//! from the daily CDR files. Lines that are not call records are skipped, as the report does.

use std::collections::BTreeMap;
use std::io::BufRead;
use std::path::Path;

use time::OffsetDateTime;

use super::{files_for_range, ReportError};
use crate::model::{CallRecord, LegRole, Record};

/// Which calls a section reads.
#[derive(Debug, Clone, Copy)]
pub struct CallScan<'a> {
    /// Calls counted from (inclusive) ...
    pub from: OffsetDateTime,
    /// ... to (exclusive).
    pub to: OffsetDateTime,
    /// Only calls whose CDR names this queue.
    pub queue: Option<&'a str>,
    /// Only calls whose CDR names this agent.
    pub agent: Option<&'a str>,
}

impl CallScan<'_> {
    /// Whether the report counts `call`.
    pub fn counts(&self, call: &CallRecord) -> bool {
        let at = call.enqueued.unwrap_or(call.arrived);
        at >= self.from
            && at < self.to
            && self.queue.is_none_or(|q| call.queue.as_deref() == Some(q))
            && self.agent.is_none_or(|a| call.agent.as_deref() == Some(a))
    }

    /// Hands every counted call in `dir`'s daily files to `on_call`.
    pub fn each_call(
        &self,
        dir: &Path,
        on_call: &mut dyn FnMut(&CallRecord),
    ) -> Result<(), ReportError> {
        for path in files_for_range(dir, self.from, self.to)? {
            let file = std::fs::File::open(&path).map_err(|e| ReportError::io("open", &path, e))?;
            for line in std::io::BufReader::new(file).split(b'\n') {
                let line = line.map_err(|e| ReportError::io("read", &path, e))?;
                if let Ok(Record::Call(call)) = Record::from_json(&line) {
                    if self.counts(&call) {
                        on_call(&call);
                    }
                }
            }
        }
        Ok(())
    }
}

/// Transfers made and received by one agent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AgentTransfers {
    /// Calls this agent transferred away.
    pub out: u64,
    /// Calls this agent took over by a transfer (answered after someone transferred them).
    pub received: u64,
}

/// Adds `call`'s transfers to `by_agent`: each transfer counts out for the agent who made it,
/// and in for the agent who then had the call — the one who transferred it on, or, after the
/// last transfer, the call's agent if their phone answered.
pub fn count_transfers(call: &CallRecord, by_agent: &mut BTreeMap<String, AgentTransfers>) {
    for (i, transfer) in call.transfers.iter().enumerate() {
        by_agent.entry(transfer.from_agent.clone()).or_default().out += 1;
        let receiver = match call.transfers.get(i + 1) {
            Some(next) => Some(next.from_agent.as_str()),
            None => {
                let last_leg_answered = call
                    .legs
                    .iter()
                    .rev()
                    // An attended transfer ends with the consulted agent's leg.
                    .find(|leg| matches!(leg.role, LegRole::Agent | LegRole::Consult))
                    // (A phone that answered with media Switchboard had to refuse has an
                    // answer time and a `sip_cause`: it never had the call.)
                    .is_some_and(|leg| leg.answered.is_some() && leg.sip_cause.is_none());
                call.agent.as_deref().filter(|_| last_leg_answered)
            }
        };
        if let Some(receiver) = receiver.filter(|r| *r != transfer.from_agent) {
            by_agent.entry(receiver.to_owned()).or_default().received += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Leg, Transfer, TransferKind};

    fn leg(answered: bool) -> Leg {
        let at = time::macros::datetime!(2026-12-01 10:00 UTC);
        Leg {
            role: LegRole::Agent,
            call_id: "c".into(),
            peer: "sip:a@192.0.2.1".into(),
            started: at,
            answered: answered.then_some(at),
            ended: at,
            sip_cause: None,
            party: None,
            queue: None,
        }
    }

    fn transfer(from: &str, to: &str) -> Transfer {
        Transfer {
            at: time::macros::datetime!(2026-12-01 10:01 UTC),
            from_agent: from.into(),
            to: to.into(),
            kind: TransferKind::Blind,
        }
    }

    #[test]
    fn a_chain_of_transfers_counts_out_and_in_for_each_agent() {
        let mut call = crate::model::fixtures::answered_call();
        call.transfers = vec![transfer("1001", "billing"), transfer("1002", "1003")];
        call.agent = Some("1003".into());
        call.legs = vec![leg(true), leg(true), leg(true)];
        let mut by_agent = BTreeMap::new();
        count_transfers(&call, &mut by_agent);
        let get = |a: &str| by_agent.get(a).copied().unwrap_or_default();
        assert_eq!(
            get("1001"),
            AgentTransfers {
                out: 1,
                received: 0
            }
        );
        assert_eq!(
            get("1002"),
            AgentTransfers {
                out: 1,
                received: 1
            }
        );
        assert_eq!(
            get("1003"),
            AgentTransfers {
                out: 0,
                received: 1
            }
        );
    }

    #[test]
    fn a_transfer_nobody_answered_counts_out_only() {
        let mut call = crate::model::fixtures::answered_call();
        call.transfers = vec![transfer("1001", "1002")];
        call.agent = Some("1002".into());
        call.legs = vec![leg(true), leg(false)];
        let mut by_agent = BTreeMap::new();
        count_transfers(&call, &mut by_agent);
        assert_eq!(by_agent.len(), 1, "{by_agent:?}");
        // A phone that answered with media Switchboard refused (its leg ended with 488) did
        // not take the call either.
        let refused = Leg {
            sip_cause: Some(488),
            ..leg(true)
        };
        call.legs = vec![leg(true), refused];
        let mut refused_counts = BTreeMap::new();
        count_transfers(&call, &mut refused_counts);
        assert_eq!(refused_counts, by_agent);
        assert_eq!(
            by_agent["1001"],
            AgentTransfers {
                out: 1,
                received: 0
            }
        );
    }

    #[test]
    fn an_attended_transfer_counts_in_for_the_consulted_agent_who_answered() {
        let mut call = crate::model::fixtures::answered_call();
        call.transfers = vec![Transfer {
            kind: TransferKind::Attended,
            ..transfer("1001", "1002")
        }];
        call.agent = Some("1002".into());
        let consult = |answered| Leg {
            role: LegRole::Consult,
            ..leg(answered)
        };
        call.legs = vec![leg(true), leg(true), consult(true)];
        let mut by_agent = BTreeMap::new();
        count_transfers(&call, &mut by_agent);
        assert_eq!(by_agent["1001"].out, 1);
        assert_eq!(by_agent["1002"].received, 1);
        // A consult the colleague never answered after the first agent's answered leg: no
        // transfer was taken in.
        call.legs = vec![leg(true), leg(true), consult(false)];
        let mut by_agent = BTreeMap::new();
        count_transfers(&call, &mut by_agent);
        assert!(!by_agent.contains_key("1002"), "{by_agent:?}");
    }
}
