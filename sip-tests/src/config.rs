//! The Switchboard configuration a test runs with, rendered to TOML by the harness so every test
//! states only what differs from a small working setup.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::Path;

use crate::api::ADMIN_TOKEN;

/// An agent account: REGISTERs as `id` with `password`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentAccount {
    /// Agent id, also the SIP user name.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Digest password.
    pub password: String,
    /// Proficiency in the `support` skill (1-10); `None` leaves the skill out, so the agent
    /// does not serve the `support` queue at all.
    pub support_level: Option<u8>,
    /// Further skills and levels, e.g. the skill of an overflow queue.
    pub other_skills: Vec<(String, u8)>,
    /// May listen to, whisper to and barge into other agents' calls (`supervisor = true`).
    pub supervisor: bool,
    /// `web_password_hash` (agent desktop login), none when `None`.
    pub web_password_hash: Option<String>,
    /// Further `key = value` lines of the `[[agent]]` table (e.g. `srtp = "required"`).
    pub lines: Vec<String>,
    /// Numbers the agent may dial out (`outbound`, e.g. `["+86*"]`); empty leaves the key out.
    pub outbound: Vec<String>,
}

impl AgentAccount {
    /// Agent `id` with password `secret<id>` and support level 5.
    pub fn new(id: &str, name: &str) -> Self {
        AgentAccount {
            id: id.to_owned(),
            name: name.to_owned(),
            password: format!("secret{id}"),
            support_level: Some(5),
            other_skills: Vec::new(),
            supervisor: false,
            web_password_hash: None,
            lines: Vec::new(),
            outbound: Vec::new(),
        }
    }

    /// This account allowed to dial out to `patterns` (`"+86*"` a prefix, `"4000"` exactly).
    pub fn with_outbound(mut self, patterns: &[&str]) -> Self {
        self.outbound = patterns.iter().map(|p| (*p).to_owned()).collect();
        self
    }

    /// This account as a supervisor.
    pub fn as_supervisor(mut self) -> Self {
        self.supervisor = true;
        self
    }

    /// This account with a web password (the argon2 PHC string of `switchboard hash-password`).
    pub fn with_web_password_hash(mut self, hash: &str) -> Self {
        self.web_password_hash = Some(hash.to_owned());
        self
    }

    /// This account with the `key = value` line `line` in its `[[agent]]` table.
    pub fn with_line(mut self, line: &str) -> Self {
        self.lines.push(line.to_owned());
        self
    }

    /// This account with `skill` at `level` as well.
    pub fn with_skill(mut self, skill: &str, level: u8) -> Self {
        self.other_skills.push((skill.to_owned(), level));
        self
    }

    /// This account without the `support` skill.
    pub fn without_support(mut self) -> Self {
        self.support_level = None;
        self
    }

    /// The inline TOML table of the agent's skills.
    fn skills_toml(&self) -> String {
        let skills: Vec<String> = self
            .support_level
            .map(|level| ("support".to_owned(), level))
            .into_iter()
            .chain(self.other_skills.iter().cloned())
            .map(|(skill, level)| format!("{} = {level}", toml_string(&skill)))
            .collect();
        format!("{{ {} }}", skills.join(", "))
    }
}

/// A queue besides `support` (e.g. an overflow target), requiring one skill at level 1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueSpec {
    /// Queue name.
    pub name: String,
    /// The skill it requires.
    pub skill: String,
    /// `max_wait_s`, none when `None`.
    pub max_wait_s: Option<u32>,
    /// `overflow`, none when `None`.
    pub overflow: Option<String>,
    /// `wrap_up_s`.
    pub wrap_up_s: u32,
    /// Extra `key = value` lines (e.g. `service_level_s = 5`).
    pub lines: Vec<String>,
}

impl QueueSpec {
    /// Queue `name` requiring `skill`, no max wait, no overflow, no wrap-up.
    pub fn new(name: &str, skill: &str) -> Self {
        QueueSpec {
            name: name.to_owned(),
            skill: skill.to_owned(),
            max_wait_s: None,
            overflow: None,
            wrap_up_s: 0,
            lines: Vec::new(),
        }
    }
}

/// A `[[number.caller_priority]]` list: these callers (From user part) get `priority`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallerPriority {
    /// Caller numbers.
    pub callers: Vec<String>,
    /// Priority they get (higher is served first).
    pub priority: i32,
    /// Label, e.g. `vip`.
    pub label: Option<String>,
}

/// DID 300 answered by IVR `main`: a greeting, then menu `top` (1 = menu `sales`, 9 = hang up)
/// and menu `sales` (2 = queue `support`, * = back), with 10 s digit timeouts. For
/// [`SwitchboardConfig::extra_toml`].
pub const TWO_LEVEL_IVR: &str = r#"
[[number]]
did = "300"
ivr = "main"

[[ivr]]
name = "main"
language = "en"
greeting = ["welcome"]
entry = "top"

[[ivr.menu]]
name = "top"
prompt = ["menu"]
digit_timeout_s = 10
keys = { "1" = "menu:sales", "9" = "hangup" }

[[ivr.menu]]
name = "sales"
prompt = ["sales-menu"]
digit_timeout_s = 10
keys = { "2" = "queue:support", "*" = "menu:top" }
"#;

/// DID 300 answered by IVR `main` with one menu whose only key `key` runs `action`.
pub fn one_key_ivr(key: char, action: &str) -> String {
    format!(
        "\n[[number]]\ndid = \"300\"\nivr = \"main\"\n\n[[ivr]]\nname = \"main\"\nentry = \"top\"\n\n\
         [[ivr.menu]]\nname = \"top\"\nprompt = [\"menu\"]\ndigit_timeout_s = 10\n\
         keys = {{ \"{key}\" = \"{action}\" }}\n"
    )
}

/// A `[[number]]` with priority rules, for DIDs that need more than [`SwitchboardConfig::dids`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NumberSpec {
    /// The DID.
    pub did: String,
    /// The queue it routes to.
    pub queue: String,
    /// Base priority.
    pub priority: i32,
    /// `priority_header`: a header whose integer value sets the call's priority.
    pub priority_header: Option<String>,
    /// Caller lists with their priority.
    pub caller_priorities: Vec<CallerPriority>,
}

impl NumberSpec {
    /// DID `did` to `queue` with priority 0 and no rules.
    pub fn new(did: &str, queue: &str) -> Self {
        NumberSpec {
            did: did.to_owned(),
            queue: queue.to_owned(),
            priority: 0,
            priority_header: None,
            caller_priorities: Vec::new(),
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
    /// `queue.overflow` of `support`, none when `None`.
    pub overflow: Option<String>,
    /// Queues besides `support`.
    pub other_queues: Vec<QueueSpec>,
    /// Numbers with priority rules, besides the plain [`SwitchboardConfig::dids`].
    pub numbers: Vec<NumberSpec>,
    /// Agents.
    pub agents: Vec<AgentAccount>,
    /// `media.timeout_s`; 0 (off) by default because most SIPp scenarios send no RTP.
    pub media_timeout_s: u32,
    /// Extra `key = value` lines for the `support` queue (e.g. `answer = "on-queue"`).
    pub support_queue_lines: Vec<String>,
    /// `acd.missed_call_reason`: `Some("missed")` by default; `None` leaves the key out (the
    /// documented default: an agent whose phone rejects an offer stays Ready).
    pub missed_call_reason: Option<String>,
    /// TOML appended verbatim at the end (IVRs, schedules, numbers routed to an IVR).
    pub extra_toml: String,
    /// Extra `key = value` lines for `[http]` (e.g. `session_idle_s = 5`).
    pub http_lines: Vec<String>,
    /// `sip.public_address`: the host advertised in Via and Contact.
    pub sip_public_address: Option<String>,
    /// `cdr.csv`: also write daily CSV files.
    pub cdr_csv: bool,
    /// `sip.tls_cert`/`tls_key`: with them, a TLS listener on its own port
    /// ([`crate::Switchboard::tls_addr`]).
    pub sip_tls: Option<TlsFiles>,
    /// `http.tls_cert`/`tls_key`: the API speaks HTTPS only.
    pub http_tls: Option<TlsFiles>,
    /// `sip.listen_ws` on its own port ([`crate::Switchboard::ws_addr`]), and `sip.listen_wss`
    /// too when `sip_tls` is set ([`crate::Switchboard::wss_addr`]).
    pub websocket: bool,
    /// Further `key = value` lines of `[media]` (e.g. `allow_sdes_without_tls = true`).
    pub media_lines: Vec<String>,
    /// Further `key = value` lines of `[sip]` (e.g. `tls_client_ca = "…"`).
    pub sip_lines: Vec<String>,
}

/// A certificate and key in PEM files (see [`crate::tls::TestCertificate`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// Certificate chain.
    pub cert: std::path::PathBuf,
    /// Private key.
    pub key: std::path::PathBuf,
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
            overflow: None,
            other_queues: Vec::new(),
            numbers: Vec::new(),
            agents: vec![
                AgentAccount::new("1001", "Alice"),
                AgentAccount::new("1002", "Bob"),
            ],
            media_timeout_s: 0,
            support_queue_lines: Vec::new(),
            missed_call_reason: Some("missed".into()),
            extra_toml: String::new(),
            http_lines: Vec::new(),
            sip_public_address: None,
            cdr_csv: false,
            sip_tls: None,
            http_tls: None,
            websocket: false,
            media_lines: Vec::new(),
            sip_lines: Vec::new(),
        }
    }
}

/// Where the running instance listens and writes.
#[derive(Debug, Clone, Copy)]
pub struct Endpoints<'a> {
    /// SIP over UDP and TCP (same port).
    pub sip: SocketAddr,
    /// SIP over TLS, when [`SwitchboardConfig::sip_tls`] is set.
    pub tls: Option<SocketAddr>,
    /// SIP over WebSocket, when [`SwitchboardConfig::websocket`] is set.
    pub ws: Option<SocketAddr>,
    /// SIP over secure WebSocket, with `websocket` and `sip_tls`.
    pub wss: Option<SocketAddr>,
    /// HTTP API.
    pub http: SocketAddr,
    /// CDR directory.
    pub cdr_dir: &'a Path,
    /// First and last port of the instance's own RTP range (`media.rtp_port_min/max`), so
    /// parallel instances never compete for media ports.
    pub rtp_ports: (u16, u16),
    /// Where recordings go.
    pub recordings_dir: &'a Path,
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
            "[sip]\nlisten_udp = [\"{sip}\"]\nlisten_tcp = [\"{sip}\"]\nrealm = \"switchboard\"\nring_timeout_s = {ring}\ndrain_timeout_s = {drain}",
            sip = endpoints.sip,
            ring = self.ring_timeout_s,
            drain = self.drain_timeout_s,
        )?;
        // RFC 3261's T1 unless a test sets its own in `sip_lines` (a shorter Timer B).
        if !self.sip_lines.iter().any(|line| line.starts_with("t1_ms")) {
            writeln!(toml, "t1_ms = 500")?;
        }
        if let (Some(files), Some(tls)) = (&self.sip_tls, endpoints.tls) {
            writeln!(
                toml,
                "listen_tls = [\"{tls}\"]\ntls_cert = {}\ntls_key = {}",
                toml_string(&files.cert.display().to_string()),
                toml_string(&files.key.display().to_string()),
            )?;
        }
        if let Some(ws) = endpoints.ws {
            writeln!(toml, "listen_ws = [\"{ws}\"]")?;
        }
        if let Some(wss) = endpoints.wss {
            writeln!(toml, "listen_wss = [\"{wss}\"]")?;
        }
        for line in &self.sip_lines {
            writeln!(toml, "{line}")?;
        }
        if let Some(host) = &self.sip_public_address {
            writeln!(toml, "public_address = {}", toml_string(host))?;
        }
        if let Some(max) = self.max_message_bytes {
            writeln!(toml, "max_message_bytes = {max}")?;
        }
        if let Some(algorithms) = &self.digest_algorithms {
            let list: Vec<String> = algorithms.iter().map(|a| toml_string(a)).collect();
            writeln!(toml, "digest_algorithms = [{}]", list.join(", "))?;
        }
        writeln!(
            toml,
            "\n[http]\nlisten = \"{}\"\n{}{}\n[[http.token]]\ntoken = {}\nrole = \"admin\"\n\n[cdr]\ndir = {}\ncsv = {}\n",
            endpoints.http,
            self.http_tls.as_ref().map_or(String::new(), |files| format!(
                "tls_cert = {}\ntls_key = {}\n",
                toml_string(&files.cert.display().to_string()),
                toml_string(&files.key.display().to_string()),
            )),
            self.http_lines
                .iter()
                .map(|line| format!("{line}\n"))
                .collect::<String>(),
            toml_string(ADMIN_TOKEN),
            toml_string(&endpoints.cdr_dir.display().to_string()),
            self.cdr_csv,
        )?;
        writeln!(
            toml,
            "[media]\naddress = \"127.0.0.1\"\nrtp_port_min = {}\nrtp_port_max = {}\ntimeout_s = {}\nrecordings_dir = {}\n",
            endpoints.rtp_ports.0,
            endpoints.rtp_ports.1,
            self.media_timeout_s,
            toml_string(&endpoints.recordings_dir.display().to_string()),
        )?;
        for line in &self.media_lines {
            writeln!(toml, "{line}\n")?;
        }
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
        for number in &self.numbers {
            write_number(toml, number)?;
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
        if let Some(overflow) = &self.overflow {
            writeln!(toml, "overflow = {}", toml_string(overflow))?;
        }
        for line in &self.support_queue_lines {
            writeln!(toml, "{line}")?;
        }
        for queue in &self.other_queues {
            writeln!(
                toml,
                "\n[[queue]]\nname = {}\nskills = {{ {} = 1 }}\nwrap_up_s = {}",
                toml_string(&queue.name),
                toml_string(&queue.skill),
                queue.wrap_up_s
            )?;
            if let Some(max_wait) = queue.max_wait_s {
                writeln!(toml, "max_wait_s = {max_wait}")?;
            }
            if let Some(overflow) = &queue.overflow {
                writeln!(toml, "overflow = {}", toml_string(overflow))?;
            }
            for line in &queue.lines {
                writeln!(toml, "{line}")?;
            }
        }
        writeln!(
            toml,
            "\n[acd]\nnot_ready_reasons = [\"break\", \"lunch\", \"missed\"]"
        )?;
        if let Some(reason) = &self.missed_call_reason {
            writeln!(toml, "missed_call_reason = {}", toml_string(reason))?;
        }
        toml.push('\n');
        for agent in &self.agents {
            writeln!(
                toml,
                "[[agent]]\nid = {}\nname = {}\npassword = {}\nskills = {}\nsupervisor = {}\n{}",
                toml_string(&agent.id),
                toml_string(&agent.name),
                toml_string(&agent.password),
                agent.skills_toml(),
                agent.supervisor,
                agent
                    .web_password_hash
                    .as_ref()
                    .map_or(String::new(), |hash| format!(
                        "web_password_hash = {}\n",
                        toml_string(hash)
                    )),
            )?;
            for line in &agent.lines {
                writeln!(toml, "{line}\n")?;
            }
            if !agent.outbound.is_empty() {
                let patterns: Vec<String> = agent.outbound.iter().map(|p| toml_string(p)).collect();
                writeln!(toml, "outbound = [{}]\n", patterns.join(", "))?;
            }
        }
        toml.push_str(&self.extra_toml);
        Ok(())
    }
}

/// One `[[number]]` with its caller lists.
fn write_number(toml: &mut String, number: &NumberSpec) -> std::fmt::Result {
    writeln!(
        toml,
        "[[number]]\ndid = {}\nqueue = {}\npriority = {}",
        toml_string(&number.did),
        toml_string(&number.queue),
        number.priority
    )?;
    if let Some(header) = &number.priority_header {
        writeln!(toml, "priority_header = {}", toml_string(header))?;
    }
    for list in &number.caller_priorities {
        let callers: Vec<String> = list.callers.iter().map(|c| toml_string(c)).collect();
        writeln!(
            toml,
            "[[number.caller_priority]]\ncallers = [{}]\npriority = {}",
            callers.join(", "),
            list.priority
        )?;
        if let Some(label) = &list.label {
            writeln!(toml, "label = {}", toml_string(label))?;
        }
    }
    toml.push('\n');
    Ok(())
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
            tls: None,
            ws: None,
            wss: None,
            http: "127.0.0.1:5556".parse().expect("literal"),
            cdr_dir: cdr,
            rtp_ports: (30000, 30063),
            recordings_dir: cdr,
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
    fn queues_numbers_and_skills_render() {
        let config = SwitchboardConfig {
            overflow: Some("backup".into()),
            other_queues: vec![QueueSpec {
                max_wait_s: Some(7),
                lines: vec!["service_level_s = 9".into()],
                ..QueueSpec::new("backup", "backup")
            }],
            numbers: vec![NumberSpec {
                priority_header: Some("X-Priority".into()),
                caller_priorities: vec![CallerPriority {
                    callers: vec!["2000".into()],
                    priority: 10,
                    label: Some("vip".into()),
                }],
                ..NumberSpec::new("200", "support")
            }],
            agents: vec![
                AgentAccount::new("1001", "Alice"),
                AgentAccount::new("1002", "Bob")
                    .without_support()
                    .with_skill("backup", 3),
            ],
            ..SwitchboardConfig::default()
        };
        let toml = config.to_toml(&Endpoints {
            sip: "127.0.0.1:5555".parse().expect("literal"),
            tls: None,
            ws: None,
            wss: None,
            http: "127.0.0.1:5556".parse().expect("literal"),
            cdr_dir: Path::new("/tmp/cdr"),
            rtp_ports: (30000, 30063),
            recordings_dir: Path::new("/tmp/recordings"),
        });
        for needle in [
            "overflow = \"backup\"\n",
            "[[queue]]\nname = \"backup\"\nskills = { \"backup\" = 1 }\nwrap_up_s = 0\nmax_wait_s = 7\nservice_level_s = 9\n",
            "[[number]]\ndid = \"200\"\nqueue = \"support\"\npriority = 0\npriority_header = \"X-Priority\"\n[[number.caller_priority]]\ncallers = [\"2000\"]\npriority = 10\nlabel = \"vip\"\n",
            "skills = { \"support\" = 5 }",
            "skills = { \"backup\" = 3 }",
        ] {
            assert!(toml.contains(needle), "missing {needle:?} in\n{toml}");
        }
    }

    #[test]
    fn strings_are_escaped() {
        assert_eq!(toml_string("a\"b\\c\n"), "\"a\\\"b\\\\c\\u000A\"");
    }
}
