//! The ACD's own refusals, found while loading so `check-config` reports everything `run`
//! would refuse at start.
//!
//! The section readers already check every rule the ACD has (levels, overflow targets and
//! loops, reasons, agent capacity) with a precise position; this builds the ACD from the
//! finished configuration anyway, so a rule added to `crates/acd` later cannot make `run`
//! refuse a file that `check-config` passed. Its errors point at the queue, agent or reason
//! list at fault.

use std::time::Instant;

use acd::{Acd, AcdError};

use super::diagnostics::Diagnostics;
use super::model::Config;
use super::path::FieldPath;

/// Records an error for whatever the ACD refuses in `config`.
pub(super) fn check(d: &mut Diagnostics<'_>, config: &Config) {
    let acd = match Acd::new(crate::acd_config::acd_config(config)) {
        Ok(acd) => acd,
        Err(error) => {
            let path = path_of(config, &error);
            d.error(&path, error.to_string());
            return;
        }
    };
    let now = Instant::now();
    for agent in crate::acd_config::agent_configs(config) {
        if let Err(error) = acd.upsert_agent(now, agent) {
            let path = path_of(config, &error);
            d.error(&path, error.to_string());
        }
    }
}

/// The configuration entry an ACD error is about.
fn path_of(config: &Config, error: &AcdError) -> FieldPath {
    let queue = |id: &acd::QueueId| {
        config
            .queues
            .iter()
            .position(|q| q.name == id.to_string())
            .map(|index| FieldPath::root().key("queue").index(index))
    };
    let path = match error {
        AcdError::DuplicateQueue(id)
        | AcdError::UnknownOverflowQueue { queue: id, .. }
        | AcdError::InvalidQueue { queue: id, .. } => queue(id),
        AcdError::OverflowCycle(id) => queue(id).map(|path| path.key("overflow")),
        AcdError::InvalidReasons(_) => Some(FieldPath::root().key("acd").key("not_ready_reasons")),
        AcdError::InvalidAgent { agent, .. } => config
            .agents
            .iter()
            .position(|a| a.id == agent.to_string())
            .map(|index| FieldPath::root().key("agent").index(index)),
        _ => None,
    };
    path.unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::testing::valid;

    /// A configuration the readers accept, made invalid behind their back: the ACD's refusal
    /// still becomes a located error.
    #[test]
    fn an_acd_refusal_is_reported_at_the_entry_it_names() {
        let text = "[[queue]]\nname = \"a\"\nskills = { s = 1 }\n[[queue]]\nname = \"b\"\nskills = { s = 1 }\n[[agent]]\nid = \"1\"\nname = \"A\"\npassword = \"p\"\n";
        let document = toml_edit::ImDocument::parse(text).expect("valid TOML");
        let errors = |config: &Config| {
            let mut d = Diagnostics::new("t.toml", text, document.as_table());
            check(&mut d, config);
            d.into_errors()
                .into_iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
        };
        let good = valid(text);
        assert_eq!(errors(&good), Vec::<String>::new());

        let mut looping = good.clone();
        looping.queues[0].overflow = Some("b".into());
        looping.queues[1].overflow = Some("a".into());
        assert_eq!(
            errors(&looping),
            vec!["t.toml:1:1: queue[0].overflow: queue a: its overflow chain loops back on itself"]
        );

        let mut busy = good.clone();
        busy.agents[0].max_calls = 2;
        assert_eq!(
            errors(&busy),
            vec!["t.toml:7:1: agent[0]: agent 1: max_calls is 2, only 1 concurrent voice call is supported"]
        );

        let mut reasons = good;
        reasons.acd.missed_call_reason = Some("nap".into());
        let [error] = errors(&reasons).try_into().expect("one error");
        assert!(
            error.starts_with(
                "t.toml:1:1: acd.not_ready_reasons: not-ready reasons: missed-call reason \"nap\""
            ),
            "{error}"
        );
    }
}
