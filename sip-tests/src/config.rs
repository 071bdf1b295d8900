//! The Switchboard configuration a test runs with, rendered to TOML by the harness so every test
//! states only what differs from a small working setup.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::Path;

/// An agent account: REGISTERs as `id` with `password`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentAccount {
    /// Agent id, also the SIP user name.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Digest password.
    pub password: String,
    /// Proficiency in the `support` skill (1-10).
    pub support_level: u8,
}

impl AgentAccount {
    /// Agent `id` with password `secret<id>` and support level 5.
    pub fn new(id: &str, name: &str) -> Self {
        AgentAccount {
            id: id.to_owned(),
            name: name.to_owned(),
            password: format!("secret{id}"),
            support_level: 5,
        }
    }
}

/// A `[[trunk]]` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrunkConfig {
    /// Trunk name.
    pub name: String,
    /// Source networks allowed without credentials.
    pub allow: Vec<String>,
    /// Username and password for Digest, if the trunk authenticates.
    pub credentials: Option<(String, String)>,
}

/// Everything a test may vary; the listeners, HTTP port and CDR directory are filled in by
/// [`crate::Switchboard::start`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SwitchboardConfig {
    /// `sip.ring_timeout_s`.
    pub ring_timeout_s: u32,
    /// `sip.drain_timeout_s`.
    pub drain_timeout_s: u32,
    /// `sip.max_message_bytes`, default when `None`.
    pub max_message_bytes: Option<u32>,
    /// `sip.digest_algorithms` (challenge order), default when `None`.
    pub digest_algorithms: Option<Vec<String>>,
    /// Trunks.
    pub trunks: Vec<TrunkConfig>,
    /// The DIDs routed to the `support` queue.
    pub dids: Vec<String>,
    /// `queue.strategy`, default when `None`.
    pub strategy: Option<String>,
    /// `queue.max_wait_s`, none when `None`.
    pub max_wait_s: Option<u32>,
    /// `queue.wrap_up_s`.
    pub wrap_up_s: u32,
    /// Agents.
    pub agents: Vec<AgentAccount>,
}

impl Default for SwitchboardConfig {
    /// One open trunk for 127.0.0.0/8, DID 100 to queue `support`, agents 1001 and 1002, no
    /// wrap-up (so an agent is Ready again at once), short drain so teardown is quick.
    fn default() -> Self {
        SwitchboardConfig {
            ring_timeout_s: 20,
            drain_timeout_s: 5,
            max_message_bytes: None,
            digest_algorithms: None,
            trunks: vec![TrunkConfig {
                name: "t1".into(),
                allow: vec!["127.0.0.0/8".into()],
                credentials: None,
            }],
            dids: vec!["100".into()],
            strategy: None,
            max_wait_s: None,
            wrap_up_s: 0,
            agents: vec![
                AgentAccount::new("1001", "Alice"),
                AgentAccount::new("1002", "Bob"),
            ],
        }
    }
}

/// Where the running instance listens and writes.
#[derive(Debug, Clone, Copy)]
pub struct Endpoints<'a> {
    /// SIP over UDP and TCP (same port).
    pub sip: SocketAddr,
    /// HTTP API.
    pub http: SocketAddr,
    /// CDR directory.
    pub cdr_dir: &'a Path,
}

impl SwitchboardConfig {
    /// The agent with `id`, if configured.
    pub fn agent(&self, id: &str) -> Option<&AgentAccount> {
        self.agents.iter().find(|a| a.id == id)
    }

    /// Renders the configuration as TOML for `endpoints`.
    pub fn to_toml(&self, endpoints: &Endpoints<'_>) -> String {
        let mut toml = String::new();
        self.write_toml(&mut toml, endpoints)
            .expect("formatting into a String cannot fail");
        toml
    }

    fn write_toml(&self, toml: &mut String, endpoints: &Endpoints<'_>) -> std::fmt::Result {
        writeln!(
            toml,
            "[sip]\nlisten_udp = [\"{sip}\"]\nlisten_tcp = [\"{sip}\"]\nrealm = \"switchboard\"\nring_timeout_s = {ring}\ndrain_timeout_s = {drain}\nt1_ms = 500",
            sip = endpoints.sip,
            ring = self.ring_timeout_s,
            drain = self.drain_timeout_s,
        )?;
        if let Some(max) = self.max_message_bytes {
            writeln!(toml, "max_message_bytes = {max}")?;
        }
        if let Some(algorithms) = &self.digest_algorithms {
            let list: Vec<String> = algorithms.iter().map(|a| toml_string(a)).collect();
            writeln!(toml, "digest_algorithms = [{}]", list.join(", "))?;
        }
        writeln!(
            toml,
            "\n[http]\nlisten = \"{}\"\n\n[[http.token]]\ntoken = \"demo-token\"\nrole = \"admin\"\n\n[cdr]\ndir = {}\n",
            endpoints.http,
            toml_string(&endpoints.cdr_dir.display().to_string()),
        )?;
        for trunk in &self.trunks {
            writeln!(toml, "[[trunk]]\nname = {}", toml_string(&trunk.name))?;
            if !trunk.allow.is_empty() {
                let allow: Vec<String> = trunk.allow.iter().map(|a| toml_string(a)).collect();
                writeln!(toml, "allow = [{}]", allow.join(", "))?;
            }
            if let Some((user, password)) = &trunk.credentials {
                writeln!(
                    toml,
                    "username = {}\npassword = {}",
                    toml_string(user),
                    toml_string(password)
                )?;
            }
            toml.push('\n');
        }
        for did in &self.dids {
            writeln!(
                toml,
                "[[number]]\ndid = {}\nqueue = \"support\"\n",
                toml_string(did)
            )?;
        }
        writeln!(
            toml,
            "[[queue]]\nname = \"support\"\nskills = {{ support = 1 }}\nwrap_up_s = {}",
            self.wrap_up_s
        )?;
        if let Some(strategy) = &self.strategy {
            writeln!(toml, "strategy = {}", toml_string(strategy))?;
        }
        if let Some(max_wait) = self.max_wait_s {
            writeln!(toml, "max_wait_s = {max_wait}")?;
        }
        writeln!(
            toml,
            "\n[acd]\nnot_ready_reasons = [\"break\", \"lunch\", \"missed\"]\nmissed_call_reason = \"missed\"\n"
        )?;
        for agent in &self.agents {
            writeln!(
                toml,
                "[[agent]]\nid = {}\nname = {}\npassword = {}\nskills = {{ support = {} }}\n",
                toml_string(&agent.id),
                toml_string(&agent.name),
                toml_string(&agent.password),
                agent.support_level
            )?;
        }
        Ok(())
    }
}

/// A TOML basic string literal for `text`.
fn toml_string(text: &str) -> String {
    let mut quoted = String::with_capacity(text.len() + 2);
    quoted.push('"');
    for c in text.chars() {
        match c {
            '"' => quoted.push_str("\\\""),
            '\\' => quoted.push_str("\\\\"),
            c if c.is_control() => quoted.push_str(&format!("\\u{:04X}", u32::from(c))),
            c => quoted.push(c),
        }
    }
    quoted.push('"');
    quoted
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_config_renders_every_section() {
        let cdr = Path::new("/tmp/x \"y\"/cdr");
        let toml = SwitchboardConfig::default().to_toml(&Endpoints {
            sip: "127.0.0.1:5555".parse().expect("literal"),
            http: "127.0.0.1:5556".parse().expect("literal"),
            cdr_dir: cdr,
        });
        for needle in [
            "listen_udp = [\"127.0.0.1:5555\"]",
            "listen = \"127.0.0.1:5556\"",
            "dir = \"/tmp/x \\\"y\\\"/cdr\"",
            "allow = [\"127.0.0.0/8\"]",
            "did = \"100\"",
            "wrap_up_s = 0",
            "id = \"1002\"",
            "password = \"secret1001\"",
        ] {
            assert!(toml.contains(needle), "missing {needle:?} in\n{toml}");
        }
        assert!(!toml.contains("max_wait_s"));
        assert!(!toml.contains("username"));
    }

    #[test]
    fn strings_are_escaped() {
        assert_eq!(toml_string("a\"b\\c\n"), "\"a\\\"b\\\\c\\u000A\"");
    }
}
