//! What a configuration reload would change: the difference between the running
//! configuration and a newly loaded one, as a list of [`ConfigChange`]s that can be applied
//! while calls go on, or the keys whose change needs a restart (then nothing is applied).

use std::collections::BTreeMap;
use std::fmt;

use super::{Config, QueueConfig};

/// How one named item (or one section) differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    /// New in the file.
    Added,
    /// Gone from the file.
    Removed,
    /// Present in both, with different settings.
    Changed,
}

/// One difference that a reload applies live.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ConfigChange {
    /// The table it is in: `agent`, `queue`, `number`, `trunk`, `ivr`, `schedule`,
    /// `http.token`, `sip`.
    pub section: &'static str,
    /// The item's name (agent id, queue name, DID, trunk/IVR/schedule/token name, sip key).
    pub name: String,
    /// What happened to it.
    pub change: Change,
}

impl fmt::Display for ConfigChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let change = match self.change {
            Change::Added => "added",
            Change::Removed => "removed",
            Change::Changed => "changed",
        };
        write!(f, "{} {} {change}", self.section, self.name)
    }
}

/// A key whose new value the running node cannot take without a restart.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct NeedsRestart {
    /// The dotted key, e.g. `sip.listen_udp` or `queue.sales.skills`.
    pub key: String,
    /// Why it cannot change live.
    pub reason: &'static str,
}

impl fmt::Display for NeedsRestart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.reason)
    }
}

const BOUND_AT_START: &str = "bound or opened at start; changing it needs a restart";
const BUILT_AT_START: &str = "built into the running node at start; changing it needs a restart";

/// The changes from `old` to `new`, or every key that needs a restart when there is one.
pub fn diff(old: &Config, new: &Config) -> Result<Vec<ConfigChange>, Vec<NeedsRestart>> {
    let mut restart = Vec::new();
    let mut needs = |key: String, reason| restart.push(NeedsRestart { key, reason });
    let (o, n) = (&old.sip, &new.sip);
    let sip_restart = [
        ("listen_udp", o.listen_udp != n.listen_udp, BOUND_AT_START),
        ("listen_tcp", o.listen_tcp != n.listen_tcp, BOUND_AT_START),
        ("listen_tls", o.listen_tls != n.listen_tls, BOUND_AT_START),
        ("tls_cert", o.tls != n.tls, BOUND_AT_START),
        (
            "public_address",
            o.public_address != n.public_address,
            BUILT_AT_START,
        ),
        ("realm", o.realm != n.realm, BUILT_AT_START),
        ("t1_ms", o.t1 != n.t1, BUILT_AT_START),
        ("t2_ms", o.t2 != n.t2, BUILT_AT_START),
        ("t4_ms", o.t4 != n.t4, BUILT_AT_START),
        (
            "max_message_bytes",
            o.max_message_bytes != n.max_message_bytes,
            BOUND_AT_START,
        ),
        (
            "min_expires_s",
            o.min_expires != n.min_expires,
            BUILT_AT_START,
        ),
        (
            "max_expires_s",
            o.max_expires != n.max_expires,
            BUILT_AT_START,
        ),
        (
            "digest_algorithms",
            o.digest_algorithms != n.digest_algorithms,
            BUILT_AT_START,
        ),
        (
            "drain_timeout_s",
            o.drain_timeout != n.drain_timeout,
            BUILT_AT_START,
        ),
    ];
    for (key, differs, reason) in sip_restart {
        if differs {
            needs(format!("sip.{key}"), reason);
        }
    }
    if old.http.listen != new.http.listen {
        needs("http.listen".to_owned(), BOUND_AT_START);
    }
    if old.outbound.dnc_file != new.outbound.dnc_file {
        needs("outbound.dnc_file".to_owned(), BUILT_AT_START);
    }
    if old.http.tls != new.http.tls {
        needs("http.tls_cert".to_owned(), BOUND_AT_START);
    }
    if old.http.session_idle != new.http.session_idle {
        needs("http.session_idle_s".to_owned(), BUILT_AT_START);
    }
    let (o, n) = (&old.cdr, &new.cdr);
    for (key, differs) in [
        ("dir", o.dir != n.dir),
        ("postgres_url", o.postgres_url != n.postgres_url),
        ("csv", o.csv != n.csv),
        ("node", o.node != n.node),
    ] {
        if differs {
            needs(format!("cdr.{key}"), BOUND_AT_START);
        }
    }
    let (o, n) = (&old.media, &new.media);
    for (key, differs) in [
        ("address", o.address != n.address),
        ("public_address", o.public_address != n.public_address),
        ("rtp_port_min", o.rtp_port_min != n.rtp_port_min),
        ("rtp_port_max", o.rtp_port_max != n.rtp_port_max),
        ("timeout_s", o.timeout != n.timeout),
        ("prompts_dir", o.prompts_dir != n.prompts_dir),
        ("recordings_dir", o.recordings_dir != n.recordings_dir),
        // The media worker threads are started once and hold the calls' sockets.
        ("workers", o.workers != n.workers),
    ] {
        if differs {
            needs(format!("media.{key}"), BUILT_AT_START);
        }
    }
    if old.security != new.security {
        needs("security".to_owned(), BUILT_AT_START);
    }
    if old.acd != new.acd {
        needs("acd".to_owned(), BUILT_AT_START);
    }
    let old_queues = by_name(&old.queues, |q| &q.name);
    for (name, queue) in by_name(&new.queues, |q| &q.name) {
        if let Some(before) = old_queues.get(name) {
            for key in fixed_queue_keys(before, queue) {
                needs(
                    format!("queue.{name}.{key}"),
                    "who may serve a queue shapes the ACD's indexes; changing it needs a restart (or add a queue under a new name)",
                );
            }
        }
    }
    if !restart.is_empty() {
        return Err(restart);
    }
    let mut changes = Vec::new();
    list_changes("sip", sip_live(old), sip_live(new), &mut changes);
    list_changes(
        "http.token",
        by_name(&old.http.tokens, |t| &t.name),
        by_name(&new.http.tokens, |t| &t.name),
        &mut changes,
    );
    list_changes(
        "http.user",
        by_name(&old.http.users, |u| &u.name),
        by_name(&new.http.users, |u| &u.name),
        &mut changes,
    );
    if old.http.mask_caller_for != new.http.mask_caller_for {
        changes.push(ConfigChange {
            section: "http",
            name: "mask_caller_for".to_owned(),
            change: Change::Changed,
        });
    }
    list_changes(
        "trunk",
        by_name(&old.trunks, |t| &t.name),
        by_name(&new.trunks, |t| &t.name),
        &mut changes,
    );
    list_changes(
        "number",
        by_name(&old.numbers, |n| &n.did),
        by_name(&new.numbers, |n| &n.did),
        &mut changes,
    );
    list_changes(
        "schedule",
        by_name(&old.schedules, |s| &s.name),
        by_name(&new.schedules, |s| &s.name),
        &mut changes,
    );
    list_changes(
        "ivr",
        by_name(&old.ivrs, |i| &i.name),
        by_name(&new.ivrs, |i| &i.name),
        &mut changes,
    );
    list_changes(
        "queue",
        by_name(&old.queues, |q| &q.name),
        by_name(&new.queues, |q| &q.name),
        &mut changes,
    );
    list_changes(
        "agent",
        by_name(&old.agents, |a| &a.id),
        by_name(&new.agents, |a| &a.id),
        &mut changes,
    );
    Ok(changes)
}

/// The `[sip]` keys a reload applies live, by name.
fn sip_live(config: &Config) -> BTreeMap<&'static str, String> {
    let sip = &config.sip;
    BTreeMap::from([
        ("ring_timeout_s", format!("{:?}", sip.ring_timeout)),
        ("max_calls", sip.max_calls.to_string()),
        (
            "min_session_expires_s",
            format!("{:?}", sip.min_session_expires),
        ),
    ])
}

/// The keys of a queue that decide who may serve it (fixed for the queue's life).
fn fixed_queue_keys(old: &QueueConfig, new: &QueueConfig) -> Vec<&'static str> {
    [
        ("skills", old.skills != new.skills),
        ("expansion", old.expansions != new.expansions),
        (
            "initial_handle_time_s",
            old.initial_handle_time != new.initial_handle_time,
        ),
    ]
    .into_iter()
    .filter_map(|(key, differs)| differs.then_some(key))
    .collect()
}

fn by_name<'a, T>(items: &'a [T], name: impl Fn(&'a T) -> &'a String) -> BTreeMap<&'a str, &'a T> {
    items
        .iter()
        .map(|item| (name(item).as_str(), item))
        .collect()
}

fn list_changes<T: PartialEq>(
    section: &'static str,
    old: BTreeMap<&str, T>,
    new: BTreeMap<&str, T>,
    changes: &mut Vec<ConfigChange>,
) {
    let mut push = |name: &str, change| {
        changes.push(ConfigChange {
            section,
            name: name.to_owned(),
            change,
        })
    };
    for (name, item) in &new {
        match old.get(name) {
            None => push(name, Change::Added),
            Some(before) if before != item => push(name, Change::Changed),
            Some(_) => {}
        }
    }
    for name in old.keys().filter(|name| !new.contains_key(*name)) {
        push(name, Change::Removed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "[sip]\nlisten_udp = [\"127.0.0.1:5060\"]\n\
        [[trunk]]\nname = \"t\"\nallow = [\"127.0.0.0/8\"]\n\
        [[number]]\ndid = \"101\"\nqueue = \"support\"\n\
        [[queue]]\nname = \"support\"\nskills = { support = 1 }\noverflow = \"spare\"\n\
        [[queue]]\nname = \"spare\"\nskills = { support = 1 }\n\
        [[agent]]\nid = \"1001\"\nname = \"A\"\nsip_user = \"1001\"\npassword = \"pw\"\nskills = { support = 5 }\n";

    fn load(text: &str) -> Config {
        crate::config::load_str("t.toml", text).unwrap_or_else(|e| panic!("{e}"))
    }

    fn changes(new: &str) -> Result<Vec<ConfigChange>, Vec<NeedsRestart>> {
        diff(&load(BASE), &load(new))
    }

    fn change(section: &'static str, name: &str, change: Change) -> ConfigChange {
        ConfigChange {
            section,
            name: name.to_owned(),
            change,
        }
    }

    #[test]
    fn the_same_file_changes_nothing() {
        assert_eq!(changes(BASE), Ok(Vec::new()));
    }

    #[test]
    fn agents_added_removed_and_changed_are_listed_by_id() {
        let new = BASE.replace("skills = { support = 5 }", "skills = { support = 7 }")
            + "[[agent]]\nid = \"1002\"\nname = \"B\"\nsip_user = \"1002\"\npassword = \"pw\"\n";
        assert_eq!(
            changes(&new),
            Ok(vec![
                change("agent", "1001", Change::Changed),
                change("agent", "1002", Change::Added),
            ])
        );
        let without = BASE
            .split("[[agent]]")
            .next()
            .unwrap_or_default()
            .to_owned();
        assert_eq!(
            changes(&without),
            Ok(vec![change("agent", "1001", Change::Removed)])
        );
    }

    #[test]
    fn a_queue_strategy_or_threshold_changes_live_and_a_removed_queue_is_listed() {
        let new = BASE.replace(
            "name = \"spare\"\nskills = { support = 1 }\n",
            "name = \"spare\"\nskills = { support = 1 }\nstrategy = \"round-robin\"\nmax_wait_s = 30\n",
        );
        assert_eq!(
            changes(&new),
            Ok(vec![change("queue", "spare", Change::Changed)])
        );
        let removed = BASE.replace("overflow = \"spare\"\n", "").replace(
            "[[queue]]\nname = \"spare\"\nskills = { support = 1 }\n",
            "",
        );
        assert_eq!(
            changes(&removed),
            Ok(vec![
                change("queue", "support", Change::Changed),
                change("queue", "spare", Change::Removed),
            ])
        );
    }

    #[test]
    fn numbers_trunks_and_sip_ring_timeout_change_live() {
        let new = BASE
            .replace("did = \"101\"", "did = \"102\"")
            .replace("127.0.0.0/8", "127.0.0.0/16")
            .replace(
                "listen_udp = [\"127.0.0.1:5060\"]\n",
                "listen_udp = [\"127.0.0.1:5060\"]\nring_timeout_s = 9\n",
            );
        assert_eq!(
            changes(&new),
            Ok(vec![
                change("sip", "ring_timeout_s", Change::Changed),
                change("trunk", "t", Change::Changed),
                change("number", "102", Change::Added),
                change("number", "101", Change::Removed),
            ])
        );
    }

    #[test]
    fn a_listener_change_needs_a_restart_and_names_the_key() {
        let new = BASE.replace("127.0.0.1:5060", "127.0.0.1:5070");
        let refused = changes(&new).expect_err("needs a restart");
        assert_eq!(refused.len(), 1, "{refused:?}");
        assert_eq!(refused[0].key, "sip.listen_udp");
        assert!(refused[0].to_string().contains("restart"), "{}", refused[0]);
    }

    #[test]
    fn web_session_lifetime_needs_a_restart_and_caller_masking_applies_live() {
        let idle = BASE.to_owned() + "[http]\nsession_idle_s = 600\n";
        let refused = changes(&idle).expect_err("needs a restart");
        assert_eq!(refused[0].key, "http.session_idle_s");
        let masking = BASE.to_owned() + "[http]\nmask_caller_for = [\"agent\", \"analyst\"]\n";
        assert_eq!(
            changes(&masking),
            Ok(vec![change("http", "mask_caller_for", Change::Changed)])
        );
    }

    #[test]
    fn a_new_queue_is_added_live_but_new_skills_for_a_queue_need_a_restart() {
        let added = BASE.to_owned() + "[[queue]]\nname = \"extra\"\nskills = { support = 1 }\n";
        assert_eq!(
            changes(&added),
            Ok(vec![change("queue", "extra", Change::Added)])
        );
        let new = added.replacen("skills = { support = 1 }", "skills = { support = 2 }", 1);
        let keys: Vec<String> = changes(&new)
            .expect_err("needs a restart")
            .into_iter()
            .map(|n| n.key)
            .collect();
        assert_eq!(keys, ["queue.support.skills"]);
    }

    #[test]
    fn a_new_do_not_call_file_needs_a_restart() {
        let new = BASE.to_owned() + "[outbound]\ndnc_file = \"/etc/switchboard/dnc.txt\"\n";
        let refused = changes(&new).expect_err("needs a restart");
        assert_eq!(refused.len(), 1, "{refused:?}");
        assert_eq!(refused[0].key, "outbound.dnc_file");
    }

    #[test]
    fn the_media_worker_count_needs_a_restart() {
        let new = BASE.to_owned() + "[media]\nworkers = 3\n";
        let refused = changes(&new).expect_err("needs a restart");
        assert_eq!(refused.len(), 1, "{refused:?}");
        assert_eq!(refused[0].key, "media.workers");
    }

    #[test]
    fn the_cdr_directory_and_media_ports_need_a_restart() {
        let new = BASE.to_owned() + "[cdr]\ndir = \"/tmp/elsewhere\"\n[media]\nrtp_port_min = 30000\nrtp_port_max = 30100\n";
        let keys: Vec<String> = changes(&new)
            .expect_err("needs a restart")
            .into_iter()
            .map(|n| n.key)
            .collect();
        assert_eq!(
            keys,
            ["cdr.dir", "media.rtp_port_min", "media.rtp_port_max"]
        );
    }
}
