//! Constant-time lookups into the configuration for the per-call path: the `[[number]]`
//! entries of a dialled number, and a queue, an IVR or a schedule by name. A centre with thousands of DIDs and
//! hundreds of queues must not pay a scan of them on every INVITE and every hang-up (issue
//! 12: per-call cost independent of the size of the centre). Built with the configuration
//! and rebuilt whenever a reload replaces it.

use crate::config::{Config, IvrConfig, NumberConfig, QueueConfig, ScheduleConfig};
use std::collections::HashMap;
use std::sync::Arc;

/// Positions in the configuration's lists, by the key the per-call path looks up.
#[derive(Debug, Default)]
pub(super) struct ConfigIndex {
    /// `[[number]]` entries by DID, in file order.
    numbers_by_did: HashMap<String, Vec<usize>>,
    /// `[[queue]]` by name.
    queues_by_name: HashMap<String, usize>,
    /// `[[ivr]]` by name.
    ivrs_by_name: HashMap<String, usize>,
    /// `[[schedule]]` by name.
    schedules_by_name: HashMap<String, usize>,
}

impl ConfigIndex {
    /// The index of `config`.
    pub(super) fn of(config: &Config) -> Self {
        let mut numbers_by_did: HashMap<String, Vec<usize>> = HashMap::new();
        for (position, number) in config.numbers.iter().enumerate() {
            numbers_by_did
                .entry(number.did.clone())
                .or_default()
                .push(position);
        }
        Self {
            numbers_by_did,
            queues_by_name: positions(config.queues.iter().map(|q| &q.name)),
            ivrs_by_name: positions(config.ivrs.iter().map(|i| &i.name)),
            schedules_by_name: positions(config.schedules.iter().map(|s| &s.name)),
        }
    }

    /// The `[[number]]` entry for a call to `did` from `trunk` (see `routing::pick_number`).
    pub(super) fn number<'c>(
        &self,
        config: &'c Config,
        did: &str,
        trunk: &str,
    ) -> Option<&'c NumberConfig> {
        let candidates = self.numbers_by_did.get(did)?;
        super::routing::pick_number(
            candidates
                .iter()
                .filter_map(|&position| config.numbers.get(position)),
            trunk,
        )
    }

    /// The queue named `name`.
    pub(super) fn queue<'c>(&self, config: &'c Config, name: &str) -> Option<&'c QueueConfig> {
        let position = *self.queues_by_name.get(name)?;
        config.queues.get(position)
    }

    /// The IVR named `name`.
    pub(super) fn ivr<'c>(&self, config: &'c Config, name: &str) -> Option<&'c Arc<IvrConfig>> {
        let position = *self.ivrs_by_name.get(name)?;
        config.ivrs.get(position)
    }

    /// The schedule named `name`.
    pub(super) fn schedule<'c>(
        &self,
        config: &'c Config,
        name: &str,
    ) -> Option<&'c ScheduleConfig> {
        let position = *self.schedules_by_name.get(name)?;
        config.schedules.get(position)
    }
}

/// Each name's position in its list: the first entry of a name, as a scan would find it.
fn positions<'n>(names: impl Iterator<Item = &'n String>) -> HashMap<String, usize> {
    let mut by_name = HashMap::new();
    for (position, name) in names.enumerate() {
        by_name.entry(name.clone()).or_insert(position);
    }
    by_name
}

#[cfg(test)]
mod tests {
    use super::*;

    const CENTRE: &str = "[sip]\nlisten_udp = [\"127.0.0.1:5060\"]\n\
        [[trunk]]\nname = \"a\"\nallow = [\"127.0.0.0/8\"]\n\
        [[trunk]]\nname = \"b\"\nallow = [\"10.0.0.0/8\"]\n\
        [[number]]\ndid = \"100\"\nqueue = \"general\"\n\
        [[number]]\ndid = \"200\"\nqueue = \"billing\"\n\
        [[number]]\ndid = \"100\"\ntrunk = \"a\"\nqueue = \"billing\"\n\
        [[queue]]\nname = \"general\"\nskills = { support = 1 }\n\
        [[queue]]\nname = \"billing\"\nskills = { billing = 1 }\nwrap_up_s = 9\n\
        [[schedule]]\nname = \"office\"\ntime_zone = \"UTC\"\nopen = [\"mon-fri 09:00-17:00\"]\n\
        [[ivr]]\nname = \"main\"\ngreeting = [\"welcome\"]\nschedule = \"office\"\n\
        [[ivr.menu]]\nname = \"top\"\nprompt = [\"menu\"]\nkeys = { \"1\" = \"queue:billing\" }\n";

    #[test]
    fn lookups_give_what_a_scan_of_the_configuration_gives() {
        let config = crate::config::load_str("t.toml", CENTRE).expect("valid test config");
        let index = ConfigIndex::of(&config);
        for (did, trunk) in [("100", "a"), ("100", "b"), ("200", "a"), ("300", "a")] {
            assert_eq!(
                index.number(&config, did, trunk),
                super::super::routing::match_number(&config.numbers, did, trunk),
                "{did} from {trunk}"
            );
        }
        assert_eq!(
            index.number(&config, "100", "a").and_then(|n| n.queue()),
            Some("billing"),
            "the entry restricted to the trunk wins though it comes later"
        );
        for name in ["general", "billing", "nowhere"] {
            assert_eq!(index.queue(&config, name), config.queue(name), "{name}");
        }
        assert_eq!(
            index.queue(&config, "billing").map(|q| q.wrap_up.as_secs()),
            Some(9)
        );
        assert_eq!(index.ivr(&config, "main"), config.ivrs.first());
        assert_eq!(index.ivr(&config, "other"), None);
        assert_eq!(index.schedule(&config, "office"), config.schedules.first());
        assert_eq!(index.schedule(&config, "other"), None);
    }
}
