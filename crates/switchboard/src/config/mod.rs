//! Switchboard configuration: one TOML file, read into plain typed values.
//!
//! [`load_file`] and [`load_str`] check the whole file and report every problem at once, each
//! naming the file, line, column and dotted field path (`demo.toml:27:9: queue[0].skills.support:
//! level 11 out of range 1..=10`). Unknown keys are errors, so a typo never silently falls back
//! to a default. [`demo`] is the embedded configuration `switchboard run` uses without a file.
//!
//! The file is parsed with `toml_edit`, which keeps the position of every key and value, and read
//! by hand-written section readers rather than serde derive: serde stops at the first error in a
//! struct, while `check-config` must list them all.

mod acd;
mod acd_check;
mod agent;
mod cdr;
mod credentials;
mod diagnostics;
pub mod diff;
mod error;
mod http;
mod ivr;
mod lookup;
mod media;
mod model;
mod names;
mod number;
mod outbound;
mod path;
mod queue;
mod reader;
mod schedule;
mod security;
mod sip;
mod skills;
mod tls;
mod trunk;

use std::net::SocketAddr;
use std::path::Path;

use toml_edit::ImDocument;

use diagnostics::Diagnostics;
use reader::TableReader;

pub use error::{ConfigError, ConfigErrors, Position};
pub use lookup::{LookupConfig, LookupMethod};
pub use model::{
    AcdSettings, AgentConfig, ApiRole, ApiToken, CallerPriority, CdrConfig, Config,
    DigestAlgorithm, DigestCredentials, DigestSecret, GatewayTransport, HttpConfig, IvrConfig,
    IvrStep, MediaConfig, MenuConfig, NumberConfig, NumberTarget, OutboundLimits, QueueAnswer,
    QueueConfig, RecordPolicy, RoleKind, RouteConfig, RouteMatch, RoutingStrategy, ScheduleConfig,
    SipConfig, SkillExpansion, SrtpMode, SurveyConfig, SurveyScale, TlsCertificate, TrunkConfig,
    TrunkGateway, WebUser,
};
pub use security::SecurityConfig;

/// An error about the value at the dotted `keys` (e.g. `["media", "prompts_dir"]`) of the
/// configuration `text`, located like the loader's own errors. For checks made after loading,
/// against the host (the prompt files).
pub fn error_at(source_name: &str, text: &str, keys: &[&str], message: String) -> ConfigErrors {
    let path = keys
        .iter()
        .fold(path::FieldPath::root(), |path, key| path.key(key));
    located_error(source_name, text, &path, message)
}

/// [`error_at`] for the field `key` of the `index`th `[[queue]]` (e.g. its `survey_prompt`).
pub fn queue_error_at(
    source_name: &str,
    text: &str,
    index: usize,
    key: &str,
    message: String,
) -> ConfigErrors {
    let path = path::FieldPath::root().key("queue").index(index).key(key);
    located_error(source_name, text, &path, message)
}

fn located_error(
    source_name: &str,
    text: &str,
    path: &path::FieldPath,
    message: String,
) -> ConfigErrors {
    let located = ImDocument::parse(text).ok().and_then(|document| {
        let mut diagnostics = Diagnostics::new(source_name, text, document.as_table());
        diagnostics.error(path, message.clone());
        ConfigErrors::new(diagnostics.into_errors())
    });
    located.unwrap_or_else(|| ConfigErrors::whole_file(source_name, message))
}

/// The embedded demo configuration (see [`demo`]).
pub const DEMO_TOML: &str = include_str!("demo.toml");

const TOP_LEVEL_KEYS: &[&str] = &[
    "sip", "http", "cdr", "media", "trunk", "number", "queue", "acd", "agent", "schedule", "ivr",
    "security", "lookup", "route", "outbound",
];

/// Reads and checks the configuration file at `path`.
///
/// Errors name the file as `path` was given; an unreadable file is a single error without a position.
pub fn load_file(path: &Path) -> Result<Config, ConfigErrors> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path)
        .map_err(|error| ConfigErrors::whole_file(&file, format!("cannot read file: {error}")))?;
    load_str(&file, &text)
}

/// Reads and checks configuration `text`; `source_name` is the file name used in errors.
pub fn load_str(source_name: &str, text: &str) -> Result<Config, ConfigErrors> {
    let document =
        ImDocument::parse(text).map_err(|error| syntax_error(source_name, text, &error))?;
    let mut diagnostics = Diagnostics::new(source_name, text, document.as_table());
    let config = read_config(&mut diagnostics, document.as_table());
    match (config, ConfigErrors::new(diagnostics.into_errors())) {
        (_, Some(errors)) => Err(errors),
        (Some(config), None) => Ok(config),
        // Every reader records an error before returning `None`; if one ever does not, refuse
        // the file rather than run with a half-read configuration.
        (None, None) => Err(ConfigErrors::whole_file(
            source_name,
            "configuration rejected without a recorded reason (this is a bug in Switchboard)"
                .to_owned(),
        )),
    }
}

/// The embedded demo configuration: SIP on 127.0.0.1:5060 (UDP and TCP) and 127.0.0.1:5061
/// (TLS, with a self-signed certificate made at start), HTTP on 127.0.0.1:8080 with token
/// `demo-token`, a trunk for 127.0.0.0/8, DID `100` to the voice
/// menu `main`, DID `101` straight to queue `support`, queues `support` and `sales`, and agents
/// 1001-1003 with passwords `secret1001`-`secret1003`.
pub fn demo() -> Config {
    with_demo_tls(
        load_str("demo.toml", DEMO_TOML).expect(
            "the embedded demo.toml is valid: the demo_configuration_is_valid test proves it",
        ),
    )
}

/// A file cannot ask for a made-up certificate (a node on the Internet must present a real
/// one); the demo gets one so SIP over TLS works out of the box.
fn with_demo_tls(mut config: Config) -> Config {
    config.sip.listen_tls = vec![SocketAddr::from(([127, 0, 0, 1], 5061))];
    config.sip.tls = Some(TlsCertificate::SelfSigned);
    config
}

fn syntax_error(source_name: &str, text: &str, error: &toml_edit::TomlError) -> ConfigErrors {
    // toml_edit's messages span several lines ("invalid array\nexpected `]`"); keep one line an error.
    let message = error
        .message()
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .collect::<Vec<_>>()
        .join("; ");
    let message = if message.is_empty() {
        "invalid TOML".to_owned()
    } else {
        format!("invalid TOML: {message}")
    };
    let offset = error.span().map_or(0, |span| span.start);
    let error = ConfigError {
        file: source_name.to_owned(),
        position: Some(Position::from_offset(text, offset)),
        field: String::new(),
        message,
    };
    ConfigErrors::new(vec![error]).expect("a list with one error is not empty")
}

/// Reads every section. Sections are read in dependency order so references (a number's queue,
/// a token's agent) are checked against names already declared. `None` means an error was recorded.
fn read_config(d: &mut Diagnostics<'_>, root: &toml_edit::Table) -> Option<Config> {
    let root = TableReader::root(d, root, TOP_LEVEL_KEYS);
    let sip = sip::read(d, &root);
    let cdr = cdr::read(d, &root);
    let media = media::read(d, &root);
    let acd = acd::read(d, &root);
    let (trunks, trunk_names) = trunk::read(d, &root);
    let (queues, queue_names) = queue::read(d, &root);
    let (agents, agent_ids) = agent::read(d, &root);
    let (schedules, schedule_names) = schedule::read(d, &root);
    let ivr_targets = ivr::Targets {
        queues: &queue_names,
        schedules: &schedule_names,
    };
    let (ivrs, ivr_names) = ivr::read(d, &root, &ivr_targets);
    let targets = number::Targets {
        trunks: &trunk_names,
        queues: &queue_names,
        ivrs: &ivr_names,
    };
    let numbers = number::read(d, &root, &targets);
    let routes = outbound::read_routes(d, &root, &trunk_names, trunks.as_deref());
    let outbound = outbound::read_limits(d, &root);
    let http = http::read(d, &root, &agent_ids);
    if let (Some(queues), Some(numbers)) = (&queues, &numbers) {
        queue::check_callback_keys(d, queues, numbers);
    }
    if let Some(queues) = &queues {
        queue::check_callback_schedules(d, queues, &schedule_names);
    }
    let security = security::read(d, &root);
    let lookup = lookup::read(d, &root);
    if let (Some(sip), Some(trunks)) = (&sip, &trunks) {
        trunk::check_client_names(d, sip, trunks);
        trunk::check_tls_gateways(d, sip, trunks);
    }
    let config = Config {
        sip: sip?,
        http: http?,
        cdr: cdr?,
        media: media?,
        trunks: trunks?,
        numbers: numbers?,
        queues: queues?,
        acd: acd?,
        agents: agents?,
        schedules: schedules?,
        ivrs: ivrs?,
        security: security?,
        lookup: lookup?,
        routes: routes?,
        outbound: outbound?,
    };
    // Only on an otherwise valid file: the readers' own, better placed errors come first.
    if !d.has_errors() {
        acd_check::check(d, &config);
    }
    Some(config)
}

/// Helpers shared by the tests of every section.
#[cfg(test)]
pub(crate) mod testing {
    /// The errors `text` produces, one rendered line each (empty if it is valid).
    pub(crate) fn error_lines(text: &str) -> Vec<String> {
        match super::load_str("t.toml", text) {
            Ok(_) => Vec::new(),
            Err(errors) => errors.into_iter().map(|error| error.to_string()).collect(),
        }
    }

    /// Parses `text`, failing the test with the errors if it is invalid.
    pub(crate) fn valid(text: &str) -> super::Config {
        match super::load_str("t.toml", text) {
            Ok(config) => config,
            Err(errors) => panic!("expected a valid configuration, got:\n{errors}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, SocketAddr};
    use std::time::Duration;

    use proptest::prelude::*;

    use super::testing::{error_lines, valid};
    use super::*;

    /// Every key the schema knows, with a comment on each: the reference example for the docs.
    const FULL_EXAMPLE: &str = r#"
[sip]
listen_udp = ["0.0.0.0:5060", "[::]:5060"]  # UDP listeners; may be [] if listen_tcp is not
listen_tcp = ["0.0.0.0:5060"]               # TCP listeners
listen_tls = ["0.0.0.0:5061"]               # SIP over TLS listeners; need tls_cert and tls_key
listen_ws = ["127.0.0.1:5066"]              # SIP over WebSocket (RFC 7118) for WebRTC phones; plain: behind a TLS proxy
listen_wss = ["0.0.0.0:7443"]               # SIP over secure WebSocket; uses tls_cert and tls_key
tls_cert = "/etc/switchboard/tls/fullchain.pem"  # PEM certificate chain, leaf first; re-read on SIGHUP
tls_key = "/etc/switchboard/tls/privkey.pem"     # PEM private key (PKCS#8, PKCS#1 or SEC1)
realm = "example.com"                       # digest realm; HA1 values are computed with it
public_address = "sip.example.com"          # host for Via and Contact; "" = the listen IP (SDP: media.public_address)
t1_ms = 500                                 # RFC 3261 T1 (1..=60000), must be <= t2_ms
t2_ms = 4000                                # RFC 3261 T2 (1..=600000)
t4_ms = 5000                                # RFC 3261 T4 (1..=600000)
max_message_bytes = 65535                   # larger requests get 513 (1024..=16777216)
ring_timeout_s = 20                         # per agent attempt (1..=3600)
drain_timeout_s = 30                        # graceful shutdown (0..=86400)
min_expires_s = 60                          # registrar: shorter gets 423 (1..=86400)
max_expires_s = 3600                        # registrar: longer is capped (>= min_expires_s)
max_calls = 10000                           # concurrent calls before 503 (1..=1000000)
digest_algorithms = ["SHA-256", "MD5"]       # challenges sent, in order; default ["MD5"] (see below)
min_session_expires_s = 90                  # RFC 4028 Min-SE: a trunk asking a shorter Session-Expires gets 422 (90..=86400)
tls_client_ca = "/etc/switchboard/tls/trunk-ca.pem"  # optional: CAs for trunks' client certificates (mutual TLS, see tls_client_name)
tls_ca = "/etc/switchboard/tls/extra-ca.pem"  # optional: CAs trusted beside the Mozilla roots when Switchboard opens TLS (gateways, phones)
tls_verify_phones = false                   # default false: TLS connections Switchboard opens to phones are encrypted but their certificate not checked
tls_client_cert = "/etc/switchboard/tls/client.pem"  # optional, with tls_client_key: our client certificate on TLS connections Switchboard opens (carriers requiring mutual TLS)
tls_client_key = "/etc/switchboard/tls/client-key.pem"  # re-read on SIGHUP like tls_cert

[http]
listen = "127.0.0.1:8080"                   # API, /metrics, the agent desktop (/agent) and the wallboard (/wallboard)
tls_cert = "/etc/switchboard/tls/fullchain.pem"  # optional, with tls_key: HTTPS only on this listener
tls_key = "/etc/switchboard/tls/privkey.pem"     # re-read on SIGHUP like the SIP certificate
session_idle_s = 1800                       # a web session unused this long is logged out (5..=43200, default 1800)
mask_caller_for = ["analyst", "agent"]      # roles that see callers' numbers as +86138****1234 in the API,
                                            # events and pages (default ["analyst"])

[[http.token]]
name = "ops-desk"                           # optional label in the audit and security logs; default token-<n>
token = "change-me-admin"                   # Authorization: Bearer <token>; unique
role = "admin"                              # agent | supervisor | admin | analyst

[[http.token]]
name = "alice-softphone"
token_sha256 = "c50c7a2d4b97ac53d95b5b08ea9eca416f81cd60594ff9d74de5511ce21352bb"  # instead of token: SHA-256 hex (switchboard hash-token)
role = "agent"
agent = "1001"                              # required for role = "agent", only allowed there

[[http.user]]                               # a supervisor, admin or analyst who logs in to the web pages
name = "sue"                                # login name; unique, not an agent id (agents log in with their id)
role = "supervisor"                         # supervisor | admin | analyst
web_password_hash = "$argon2id$v=19$m=19456,t=2,p=1$j0GNhg7PZcFwstzI5dxB7w$3TIXKS5y6WEhxfNiefvEYW9yNJ8X6dxgG2s3jvsusBI"  # switchboard hash-password

[cdr]
dir = "/var/lib/switchboard/cdr"            # JSON-lines CDR files
postgres_url = "postgres://switchboard:secret@db.example.com/cdr"  # optional: also insert CDRs and audit records there
csv = false                                 # also write daily CSV files next to the JSON lines
node = "paris-1"                            # name in PostgreSQL rows (keyed by node + seq); default the host name

[media]
address = "0.0.0.0"                         # RTP sockets bind here (default 127.0.0.1)
public_address = "203.0.113.10"             # optional: IP written into SDP (NAT); default address
rtp_port_min = 20000                        # RTP on even ports, RTCP on the odd one above; four
rtp_port_max = 29999                        #   ports a call (1024..=65535, max >= min + 3)
timeout_s = 30                              # hang up after this long without RTP; 0 = never (0..=3600)
prompts_dir = "/var/lib/switchboard/prompts"  # optional: <dir>/<language>/<name>.wav; default built-in English
recordings_dir = "/var/lib/switchboard/recordings"  # default ./switchboard-data/recordings
allow_sdes_without_tls = false              # default false: SRTP keys (a=crypto) only on TLS legs; else 488 (see docs/security.md)
workers = 2                                 # threads relaying RTP (1..=64); default one per core (see docs/scaling.md)

[[trunk]]
name = "carrier"                            # unique
allow = ["192.0.2.0/24", "198.51.100.7", "2001:db8::/32"]  # source IPs/CIDRs let in without auth
trust_identity = true                       # default false: pass P-Asserted-Identity/Diversion to agents (see below)
srtp = "optional"                           # off (default) | optional | required: SRTP with SDES keys (see docs/media.md)
tls_client_name = "carrier.example"         # optional: calls only over TLS with a client certificate for this name (needs sip.tls_client_ca)

[[trunk]]
name = "pbx"
username = "pbx"                            # digest credentials: username plus exactly one of
ha1 = "0123456789abcdef0123456789ABCDEF"    # password or ha1 = md5("pbx:example.com:password")

[[trunk]]
name = "carrier-out"                        # a trunk for calls out (it may also have allow/username)
gateway = "192.0.2.50:5060"                 # the carrier's IP and port; calls out are sent here
gateway_transport = "udp"                   # default "udp"; or "tcp" / "tls" (Switchboard connects)
outbound_username = "acct-77"               # optional: answers the carrier's 401/407 with Digest;
outbound_password = "carrier-secret"        #   both or neither
register = true                             # default false: REGISTER with the carrier (needs the credentials), refreshed before expiry

[[trunk]]
name = "carrier-tls"                        # a carrier reachable only over TLS
gateway = "192.0.2.60:5061"
gateway_transport = "tls"                   # Switchboard opens the TLS connection and verifies the certificate
gateway_tls_name = "sip.carrier.example"    # optional (TLS only): the name its certificate must carry, sent as SNI; default: the gateway's IP

[[number]]
did = "+15550100"                           # Request-URI user part; unique per trunk restriction
queue = "support"                           # a [[queue]]; exactly one of queue / ivr
trunk = "carrier"                           # optional: only calls from this trunk (beats an entry without trunk)
language = "en"                             # optional: prompt language (default: the IVR's, or "en")
priority = 0                                # base priority, higher first (-1000000..=1000000); see "Priority"
priority_header = "X-Priority"              # optional: header whose integer value sets the priority

[[number.caller_priority]]                  # optional: these callers get this priority (unless the header sets one)
callers = ["+15551234567", "2000"]          # From user parts; a caller may appear only once
priority = 10
label = "vip"                               # optional tag: X-Switchboard-Label to agents, `label` in the CDR

[[queue]]
name = "support"                            # unique
skills = { support = 1 }                    # required skills -> minimum level (1..=10), not empty
strategy = "longest-idle"                   # longest-idle | most-skilled | round-robin | fewest-calls
max_wait_s = 300                            # optional (1..=86400)
max_length = 100                            # optional (1..=1000000)
overflow = "billing"                        # optional: another queue
service_level_s = 20                        # service-level threshold
wrap_up_s = 10                              # after-call work
preferred_agent_wait_s = 15                 # wait for the caller's previous agent
music_on_hold = "moh"                       # prompt looped to waiting callers (default "moh")
announce_every_s = 30                       # position + estimated wait announcement (0 = never; 0..=3600)
callback_key = "*"                          # optional: key a waiting caller presses to be called back (answered callers only)
callback_retry_s = 300                      # wait before dialling a callback customer again after busy/no answer (1..=86400)
callback_max_attempts = 3                   # dial attempts per callback before it is given up (1..=20)
callback_schedule = "office"                # optional: a [[schedule]]; callbacks are dialled only while it is open
record = "25%"                              # none | all | NN% (default "none")
answer = "on-queue"                         # on-agent (default: ring until an agent answers) | on-queue (answer + MOH)
priority_aging_s = 30                       # waiting that counts as one priority point (0 = strict priority; 0..=86400)
initial_handle_time_s = 180                 # handle time for wait estimates until calls are measured (1..=86400)
survey = "1-10"                             # optional post-call survey when the agent hangs up first:
                                            # "1-10" (keys 1-9, 0 = 10) or "1-5" (keys 1-5)
survey_prompt = "survey"                    # prompt asking for the score (default "survey"; must exist)

[[queue.expansion]]                         # optional, in increasing after_s order
after_s = 30
min_level = 5                               # optional: lower the required levels to this

[[queue.expansion]]
after_s = 60
add_skills = { billing = 1 }                # optional: also accept these skills

[[queue]]
name = "billing"
skills = { billing = 3 }
strategy = "most-skilled"

[[number]]
did = "+15550199"
ivr = "main"                                # an [[ivr]] instead of a queue
language = "zh"

[[schedule]]
name = "office"                             # unique
time_zone = "Asia/Shanghai"                 # IANA time zone name
open = ["mon-fri 09:00-18:00", "sat 10:00-14:00"]  # DAYS HH:MM-HH:MM; days mon..sun, lists and ranges
holidays = ["2026-10-01", "2026-12-25"]     # optional: local dates closed all day

[[ivr]]
name = "main"                               # unique
language = "en"                             # default prompt language (default "en")
schedule = "office"                         # optional: outside its hours `closed` runs instead of the menus
closed = ["play:closed", "voicemail:support"]  # default ["play:closed", "hangup"]; only with schedule
greeting = ["welcome"]                      # played once on entry (default [])
entry = "top"                               # first menu (default: the first [[ivr.menu]])

[[ivr.menu]]
name = "top"                                # unique within the ivr
prompt = ["menu"]                           # prompt names, played in order
digit_timeout_s = 5                         # wait for a key after the prompt (1..=60)
retries = 2                                 # invalid key / timeout replays before on_failure (0..=10)
invalid = ["invalid-choice"]                # played before each replay (default ["invalid-choice"])
keys = { "1" = "queue:billing", "2" = "menu:more", "9" = ["language:zh", "menu:top"], "0" = ["play:goodbye", "hangup"] }
on_failure = ["play:goodbye", "hangup"]     # default ["play:goodbye", "hangup"]

[[ivr.menu]]
name = "more"
prompt = ["support-menu"]
keys = { "1" = "queue:support", "2" = "voicemail:support", "*" = "menu:top" }

[acd]
not_ready_reasons = ["break", "lunch", "training", "meeting", "missed"]
missed_call_reason = "missed"               # optional: not-ready reason set when an agent misses an
                                            # offer (no answer, busy, declined); absent = the agent
                                            # stays Ready for other calls, and gets the missed call
                                            # again only after offer_retry_s
dispositions = ["resolved", "follow-up", "escalated", "wrong-number"]  # wrap-up codes on the agent desktop (the default)
offer_retry_s = 7                           # after an offer fails (no answer, busy, declined, unreachable)
                                            # that call goes to that agent again only after this long;
                                            # other agents may take it at once (1..=3600, default 5).
                                            # A phone that cannot take the call's codecs (488, or an
                                            # unusable SDP answer) never gets it again while it waits
                                            # in that queue
sticky_max_age_days = 30                    # sticky routing: a caller's last answering agent is remembered
                                            # this long (1..=3650, default 30), rebuilt from the CDRs at start
sticky_max_entries = 100000                 # callers remembered; past it the oldest is forgotten
                                            # (0..=10000000, default 100000; 0 = sticky routing off)

[lookup]                                    # optional: ask a CRM about each caller as the call arrives
url = "http://crm.example.com:8080/caller"  # http:// only; GET ?caller=..&did=.. or POST {"caller","did"}
method = "GET"                              # "GET" (default) or "POST"
timeout_ms = 300                            # the call goes on unchanged without an answer by then (10..=10000)
cache_s = 60                                # a caller's answer is reused this long (0..=86400; 0 = no cache)
cache_entries = 10000                       # answers kept (0..=1000000)

[[agent]]
id = "1001"                                 # unique
name = "Alice"
sip_user = "alice"                          # default = id; unique
password = "secret1001"                     # exactly one of password / ha1
skills = { support = 5, billing = 2 }       # default {}; levels 1..=10
max_calls = 1                               # default 1, the only value: a voice agent takes one call at a time
allow = ["192.0.2.0/24"]                    # default [] = anywhere; registrations from elsewhere get 403
supervisor = true                           # default false: may listen/whisper/barge with *41/*42/*43<agent>
web_password_hash = "$argon2id$v=19$m=19456,t=2,p=1$j0GNhg7PZcFwstzI5dxB7w$3TIXKS5y6WEhxfNiefvEYW9yNJ8X6dxgG2s3jvsusBI"  # optional: agent desktop login with the id; switchboard hash-password
srtp = "required"                           # off (default) | optional | required: calls to this phone are SRTP
outbound = ["+86*", "4000"]                 # default [] = may not dial out; "+86*" a prefix, "4000" exactly

[[agent]]
id = "1002"
name = "Bob"
ha1 = "fedcba9876543210fedcba9876543210"

[[route]]                                   # calls out: the first route whose prefix/pattern matches
prefix = "+86"                              # exactly one of prefix / pattern (a regex the whole number matches)
trunks = ["carrier-out"]                    # trunks with a gateway, in failover order
strip = 3                                   # default 0: leading characters removed ("+86" here)
prepend = "0086"                            # default "": put in front of what is left
caller_id = "+8610555000"                   # optional: the calling number the carrier sees; default the agent's SIP user

[[route]]
pattern = "4000[0-9]{3}"
trunks = ["carrier-out"]

[outbound]
max_concurrent = 20                         # default 100: calls out at once, all agents (0..=100000)
max_per_agent = 1                           # default 1: calls out at once per agent (0..=100)
daily_limit_per_agent = 200                 # optional: calls out an agent may start per UTC day
dnc_file = "/etc/switchboard/dnc.txt"       # optional: do-not-call numbers (one a line, # comments) callbacks and campaigns never dial; read at start
"#;

    #[test]
    fn demo_configuration_is_valid() {
        let config = valid(DEMO_TOML);
        assert_eq!(with_demo_tls(config.clone()), demo());
        let local: SocketAddr = "127.0.0.1:5060".parse().expect("literal address");
        assert_eq!(config.sip.listen_udp, vec![local]);
        assert_eq!(config.sip.listen_tcp, vec![local]);
        assert_eq!(
            config.http.listen,
            "127.0.0.1:8080"
                .parse::<SocketAddr>()
                .expect("literal address")
        );
        assert_eq!(config.http.tokens.len(), 1);
        assert!(config.http.tokens[0]
            .digest
            .matches(&crate::token_digest::TokenDigest::of("demo-token")));
        assert_eq!(config.http.tokens[0].name, "token-1");
        assert_eq!(config.http.tokens[0].role, ApiRole::Admin);

        let [trunk] = config.trunks.as_slice() else {
            panic!("the demo has one trunk");
        };
        let inside: IpAddr = "127.9.8.7".parse().expect("literal address");
        let outside: IpAddr = "10.0.0.1".parse().expect("literal address");
        assert!(trunk.allow.iter().any(|net| net.contains(&inside)));
        assert!(!trunk.allow.iter().any(|net| net.contains(&outside)));

        let [menu, direct] = config.numbers.as_slice() else {
            panic!("the demo has two numbers");
        };
        assert_eq!((menu.did.as_str(), menu.ivr()), ("100", Some("main")));
        assert_eq!(
            (direct.did.as_str(), direct.queue()),
            ("101", Some("support"))
        );
        let [support, sales] = config.queues.as_slice() else {
            panic!("the demo has two queues");
        };
        assert_eq!(support.name, "support");
        assert_eq!(support.skills.get("support"), Some(&1));
        assert_eq!(support.answer, QueueAnswer::OnQueue);
        assert_eq!(sales.name, "sales");
        assert_eq!(sales.answer, QueueAnswer::OnAgent);
        let [office] = config.schedules.as_slice() else {
            panic!("the demo has one schedule");
        };
        assert!(
            (0..7 * 24).all(|hour| office.schedule.is_open(1_800_000_000 + hour * 3600)),
            "the demo schedule is always open"
        );
        let [main] = config.ivrs.as_slice() else {
            panic!("the demo has one IVR");
        };
        assert_eq!(main.entry, "top");
        let keys = |menu: &str| -> Vec<(char, Vec<IvrStep>)> {
            main.menus
                .iter()
                .find(|m| m.name == menu)
                .expect("menu exists")
                .keys
                .clone()
                .into_iter()
                .collect()
        };
        let step = |text: &str| match text.split_once(':') {
            Some(("menu", name)) => IvrStep::Menu(name.into()),
            Some(("queue", name)) => IvrStep::Queue(name.into()),
            Some(("voicemail", name)) => IvrStep::Voicemail(name.into()),
            Some(("language", name)) => IvrStep::Language(name.into()),
            _ => panic!("test step {text}"),
        };
        assert_eq!(
            keys("top"),
            vec![
                ('1', vec![step("menu:sales")]),
                ('2', vec![step("menu:support")]),
                ('3', vec![step("voicemail:support")]),
                ('9', vec![step("language:zh"), step("menu:top")]),
            ]
        );
        assert_eq!(
            keys("sales"),
            vec![
                ('*', vec![step("menu:top")]),
                ('1', vec![step("queue:sales")]),
                ('2', vec![step("queue:support")]),
            ]
        );
        assert_eq!(keys("support").len(), 3);

        let agents: Vec<(&str, &str, &DigestSecret)> = config
            .agents
            .iter()
            .map(|agent| (agent.id.as_str(), agent.sip_user.as_str(), &agent.secret))
            .collect();
        let password = |p: &str| DigestSecret::Password(p.to_owned());
        assert_eq!(
            agents,
            vec![
                ("1001", "1001", &password("secret1001")),
                ("1002", "1002", &password("secret1002")),
                ("1003", "1003", &password("secret1003")),
            ]
        );
        let has = |agent: &AgentConfig, skill: &str| agent.skills.contains_key(skill);
        // Every queue has someone, and Alice takes both kinds of call.
        assert!(has(&config.agents[0], "support") && has(&config.agents[0], "sales"));
        assert!(config.agents.iter().filter(|a| has(a, "support")).count() >= 2);
        assert!(config.agents.iter().filter(|a| has(a, "sales")).count() >= 2);
    }

    #[test]
    fn empty_file_takes_every_default() {
        let config = valid("");
        let local: SocketAddr = "127.0.0.1:5060".parse().expect("literal address");
        assert_eq!(config.sip.listen_udp, vec![local]);
        assert_eq!(config.sip.realm, "switchboard");
        assert_eq!(config.sip.public_address, None);
        assert_eq!(config.sip.t1, Duration::from_millis(500));
        assert_eq!(config.sip.t2, Duration::from_millis(4000));
        assert_eq!(config.sip.t4, Duration::from_millis(5000));
        assert_eq!(config.sip.max_message_bytes, 65_535);
        assert_eq!(config.sip.ring_timeout, Duration::from_secs(20));
        assert_eq!(config.sip.drain_timeout, Duration::from_secs(30));
        assert_eq!(config.sip.min_expires, Duration::from_secs(60));
        assert_eq!(config.sip.max_expires, Duration::from_secs(3600));
        assert_eq!(config.sip.max_calls, 10_000);
        assert_eq!(config.http.listen.port(), 8080);
        assert!(config.http.tokens.is_empty());
        assert_eq!(
            config.cdr.dir,
            std::path::PathBuf::from("/var/lib/switchboard/cdr")
        );
        assert_eq!(config.acd.not_ready_reasons.len(), 5);
        assert_eq!(config.acd.missed_call_reason, None);
        assert_eq!(config.acd.offer_retry_after, Duration::from_secs(5));
        assert!(config.trunks.is_empty() && config.numbers.is_empty());
        assert!(config.queues.is_empty() && config.agents.is_empty());
        assert!(config.schedules.is_empty() && config.ivrs.is_empty());
    }

    #[test]
    fn full_example_reads_every_field() {
        let config = valid(FULL_EXAMPLE);
        assert_eq!(config.acd.sticky_max_entries, 100_000);
        assert_eq!(
            config.lookup.as_ref().map(|l| l.timeout),
            Some(Duration::from_millis(300))
        );
        assert_eq!(config.sip.listen_udp.len(), 2);
        assert_eq!(config.sip.listen_tls[0].port(), 5061);
        assert!(config.sip.tls.is_some() && config.http.tls.is_some());
        assert!(config.sip.tls_client_certificate.is_some());
        assert_eq!(config.cdr.node.as_deref(), Some("paris-1"));
        assert_eq!(config.media.rtp_port_max, 29_999);
        assert_eq!(
            config.media.public_address.map(|a| a.to_string()),
            Some("203.0.113.10".to_owned())
        );
        assert_eq!(
            config.sip.public_address.as_deref(),
            Some("sip.example.com")
        );
        assert_eq!(
            config.http.tokens[1].role,
            ApiRole::Agent("1001".to_owned())
        );
        assert_eq!(config.http.tokens[0].name, "ops-desk");
        assert_eq!(config.http.tokens[1].name, "alice-softphone");
        assert!(config.http.tokens[1]
            .digest
            .matches(&crate::token_digest::TokenDigest::of("change-me-alice")));
        assert_eq!(config.trunks[0].allow.len(), 3);
        assert_eq!(
            config.trunks[0].allow[1].to_string(),
            "198.51.100.7/32",
            "a single address is a /32"
        );
        let pbx = config.trunks[1]
            .credentials
            .as_ref()
            .expect("pbx has credentials");
        assert_eq!(pbx.username, "pbx");
        assert_eq!(
            pbx.secret,
            DigestSecret::Ha1("0123456789abcdef0123456789abcdef".to_owned()),
            "HA1 is stored lowercase"
        );
        assert_eq!(config.acd.offer_retry_after, Duration::from_secs(7));
        let number = &config.numbers[0];
        assert_eq!(number.trunk.as_deref(), Some("carrier"));
        assert_eq!(number.priority_header.as_deref(), Some("X-Priority"));
        assert_eq!(number.caller_priorities[0].callers.len(), 2);
        assert_eq!(number.caller_priorities[0].priority, 10);
        assert_eq!(number.caller_priorities[0].label.as_deref(), Some("vip"));
        assert_eq!(number.language.as_deref(), Some("en"));
        assert_eq!(
            config.numbers[1].target,
            NumberTarget::Ivr("main".to_owned())
        );
        let support = &config.queues[0];
        assert_eq!(support.music_on_hold, "moh");
        assert_eq!(support.announce_every, Some(Duration::from_secs(30)));
        assert_eq!(support.callback_key, Some('*'));
        assert_eq!(support.record, RecordPolicy::Percent(25));
        assert_eq!(support.answer, QueueAnswer::OnQueue);
        assert_eq!(support.priority_aging, Some(Duration::from_secs(30)));
        assert_eq!(support.initial_handle_time, Duration::from_secs(180));
        assert_eq!(config.schedules[0].schedule.holidays.len(), 2);
        let main = &config.ivrs[0];
        assert_eq!(main.schedule.as_deref(), Some("office"));
        assert_eq!(main.menus.len(), 2);
        assert_eq!(main.menus[0].keys.len(), 4);
        assert_eq!(main.menus[0].digit_timeout, Duration::from_secs(5));
        assert_eq!(support.max_wait, Some(Duration::from_secs(300)));
        assert_eq!(support.max_length, Some(100));
        assert_eq!(support.overflow.as_deref(), Some("billing"));
        assert_eq!(support.expansions.len(), 2);
        assert_eq!(support.expansions[0].min_level, Some(5));
        assert_eq!(support.expansions[1].add_skills.get("billing"), Some(&1));
        assert_eq!(config.queues[1].strategy, RoutingStrategy::MostSkilled);
        assert_eq!(config.agents[0].sip_user, "alice");
        assert_eq!(config.agents[0].skills.len(), 2);
        assert_eq!(config.agents[1].sip_user, "1002");
        assert!(matches!(config.agents[1].secret, DigestSecret::Ha1(_)));
    }

    /// docs/configuration.md shows this exact example, so the reference cannot drift.
    #[test]
    fn the_documented_complete_example_is_this_one() {
        let docs = include_str!("../../../../docs/configuration.md");
        let start = docs
            .find("```toml\n[sip]")
            .expect("the complete example opens with [sip]")
            + "```toml".len();
        let end = start + docs[start..].find("```").expect("the example is closed");
        assert_eq!(&docs[start..end], FULL_EXAMPLE);
    }

    #[test]
    fn cdr_postgres_url_must_be_postgres() {
        assert_eq!(
            error_lines("[cdr]\npostgres_url = \"mysql://x\"\n"),
            vec!["t.toml:2:16: cdr.postgres_url: must be a PostgreSQL URL: postgres://user:password@host:port/database"]
        );
        assert_eq!(
            error_lines("[cdr]\ncsv = \"yes\"\n"),
            vec!["t.toml:2:7: cdr.csv: expected true or false, found a string"]
        );
        let node = error_lines("[cdr]\nnode = \"paris 1\"\n");
        assert!(
            node.len() == 1 && node[0].starts_with("t.toml:2:8: cdr.node: "),
            "{node:?}"
        );
    }

    #[test]
    fn digest_algorithms_are_checked() {
        assert_eq!(
            error_lines("[sip]\ndigest_algorithms = [\"SHA-1\"]\n"),
            vec!["t.toml:2:22: sip.digest_algorithms[0]: unknown digest algorithm \"SHA-1\": expected \"MD5\" or \"SHA-256\""]
        );
        assert_eq!(
            error_lines("[sip]\ndigest_algorithms = [\"MD5\", \"MD5\"]\n").len(),
            1
        );
        let config =
            load_str("t.toml", "[sip]\ndigest_algorithms = [\"SHA-256\"]\n").expect("valid");
        assert_eq!(config.sip.digest_algorithms, vec![DigestAlgorithm::Sha256]);
    }

    #[test]
    fn syntax_errors_give_one_line_with_a_position() {
        assert_eq!(
            error_lines("[sip]\nrealm = \"x\"\nt1_ms = [1,\n"),
            vec!["t.toml:4:1: invalid TOML: invalid array; expected `]`"]
        );
        // toml_edit's exact quoting of the key differs between releases; the position and
        // the problem are what matter.
        let lines = error_lines("[sip]\n[sip]\n");
        assert_eq!(lines.len(), 1);
        assert!(
            lines[0].starts_with("t.toml:2:1: invalid TOML: invalid table header; duplicate key")
                && lines[0].contains("sip"),
            "{lines:?}"
        );
    }

    #[test]
    fn unknown_keys_are_named_with_their_line_at_every_level() {
        let text = r#"
colour = 1
[sip]
relam = "x"
[http]
[[http.token]]
token = "t"
role = "admin"
rol = "x"
[[trunk]]
name = "t"
allow = ["10.0.0.1"]
passwrd = "p"
[[number]]
did = "1"
queue = "q"
[[number.caller_priority]]
callers = ["2"]
priority = 1
lable = "vip"
[[queue]]
name = "q"
skills = { s = 1 }
[[queue.expansion]]
after_s = 5
min_level = 1
add_skill = { s = 1 }
[acd]
reasons = []
[[agent]]
id = "a"
name = "A"
password = "p"
skils = { s = 1 }
[cdr]
directory = "x"
"#;
        let lines = error_lines(text);
        let expected = [
            ("2:1", "colour"),
            ("4:1", "sip.relam"),
            ("9:1", "http.token[0].rol"),
            ("13:1", "trunk[0].passwrd"),
            ("20:1", "number[0].caller_priority[0].lable"),
            ("27:1", "queue[0].expansion[0].add_skill"),
            ("29:1", "acd.reasons"),
            ("34:1", "agent[0].skils"),
            ("36:1", "cdr.directory"),
        ];
        assert_eq!(lines.len(), expected.len(), "{lines:#?}");
        for (line, (position, field)) in lines.iter().zip(expected) {
            let key = field
                .rsplit('.')
                .next()
                .expect("split yields at least one part");
            let key = key
                .rsplit(']')
                .next()
                .expect("split yields at least one part");
            assert!(
                line.starts_with(&format!(
                    "t.toml:{position}: {field}: unknown key `{key}`; expected one of: "
                )),
                "{line}"
            );
        }
    }

    #[test]
    fn unknown_key_in_an_inline_table_is_reported_at_the_key() {
        assert_eq!(
            error_lines("trunk = [{ name = \"t\", allow = [\"10.0.0.1\"], nmae = \"x\" }]\n"),
            vec!["t.toml:1:46: trunk[0].nmae: unknown key `nmae`; expected one of: name, allow, username, password, ha1, trust_identity, srtp, tls_client_name, gateway, gateway_transport, gateway_tls_name, outbound_username, outbound_password, register"]
        );
    }

    #[test]
    fn every_error_is_collected_not_just_the_first() {
        let text = r#"
[sip]
listen_udp = ["nope"]
t1_ms = "fast"
t4_ms = 0
colour = 1

[[trunk]]
name = "t"
allow = ["300.0.0.1", "10.0.0.0/8", "x/y"]

[[agent]]
id = "a"
name = "A"
password = "p"
skills = { s = 0, t = 11, u = "high" }
max_calls = 0
"#;
        let lines = error_lines(text);
        assert_eq!(
            lines,
            vec![
                "t.toml:3:15: sip.listen_udp[0]: invalid socket address \"nope\": expected IP:PORT such as \"127.0.0.1:5060\" or \"[::1]:5060\"",
                "t.toml:4:9: sip.t1_ms: expected an integer, found a string",
                "t.toml:5:9: sip.t4_ms: 0 out of range 1..=600000",
                "t.toml:6:1: sip.colour: unknown key `colour`; expected one of: listen_udp, listen_tcp, listen_tls, listen_ws, listen_wss, tls_cert, tls_key, realm, public_address, t1_ms, t2_ms, t4_ms, max_message_bytes, ring_timeout_s, drain_timeout_s, min_expires_s, max_expires_s, max_calls, digest_algorithms, min_session_expires_s, tls_client_ca, tls_ca, tls_verify_phones, tls_client_cert, tls_client_key",
                "t.toml:10:10: trunk[0].allow[0]: invalid IP address or CIDR \"300.0.0.1\": expected e.g. \"192.0.2.10\", \"192.0.2.0/24\" or \"2001:db8::/32\"",
                "t.toml:10:37: trunk[0].allow[2]: invalid IP address or CIDR \"x/y\": expected e.g. \"192.0.2.10\", \"192.0.2.0/24\" or \"2001:db8::/32\"",
                "t.toml:16:16: agent[0].skills.s: level 0 out of range 1..=10",
                "t.toml:16:23: agent[0].skills.t: level 11 out of range 1..=10",
                "t.toml:16:31: agent[0].skills.u: expected an integer skill level 1..=10, found a string",
                "t.toml:17:13: agent[0].max_calls: 0 out of range 1..=100",
            ]
        );
    }

    #[test]
    fn wrong_section_types_are_reported() {
        assert_eq!(
            error_lines("sip = 5\nagent = \"x\"\ntrunk = [1]\n"),
            vec![
                "t.toml:1:7: sip: expected a table, found an integer",
                "t.toml:2:9: agent: expected an array, found a string",
                "t.toml:3:10: trunk[0]: expected a table, found an integer",
            ]
        );
        assert_eq!(
            error_lines("[queue]\nname = \"q\"\n"),
            vec!["t.toml:1:1: queue: expected an array (write [[queue]] for each entry), found a table"]
        );
    }

    #[test]
    fn load_file_names_the_file() {
        let dir =
            std::env::temp_dir().join(format!("switchboard-config-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir is writable");
        let path = dir.join("bad.toml");
        std::fs::write(&path, "[sip]\nt1_ms = -1\n").expect("temp file is writable");
        let errors = load_file(&path).expect_err("t1_ms is negative");
        assert_eq!(
            errors.to_string(),
            format!(
                "{}:2:9: sip.t1_ms: -1 out of range 1..=60000",
                path.display()
            )
        );
        std::fs::write(&path, DEMO_TOML).expect("temp file is writable");
        assert_eq!(load_file(&path).map(with_demo_tls), Ok(demo()));
        std::fs::remove_dir_all(&dir).expect("temp dir can be removed");

        let missing = dir.join("missing.toml");
        let errors = load_file(&missing).expect_err("the file does not exist");
        assert_eq!(errors.len(), 1);
        let line = errors.to_string();
        assert!(
            line.starts_with(&format!("{}: cannot read file: ", missing.display())),
            "{line}"
        );
    }

    /// Lines that are plausible in a config file, to mutate the demo with.
    fn config_line() -> impl Strategy<Value = String> {
        let key = prop::sample::select(vec![
            "listen_udp",
            "t1_ms",
            "t2_ms",
            "name",
            "id",
            "did",
            "queue",
            "skills",
            "allow",
            "password",
            "ha1",
            "role",
            "agent",
            "overflow",
            "after_s",
            "min_level",
            "bogus",
        ]);
        let value = prop_oneof![
            any::<i64>().prop_map(|n| n.to_string()),
            "[a-z0-9.:/\\[\\]]{0,12}".prop_map(|s| format!("{s:?}")),
            Just("{ support = 11 }".to_owned()),
            Just("[\"10.0.0.0/8\", 3]".to_owned()),
            Just("\"1001\"".to_owned()),
        ];
        let table = prop::sample::select(vec![
            "[sip]",
            "[[agent]]",
            "[[queue]]",
            "[[trunk]]",
            "[[number]]",
            "[[http.token]]",
            "[[queue.expansion]]",
            "[acd]",
            "[cdr]",
        ]);
        prop_oneof![
            (key, value).prop_map(|(key, value)| format!("{key} = {value}")),
            table.prop_map(str::to_owned),
        ]
    }

    proptest! {
        #[test]
        fn arbitrary_text_never_panics(text in any::<String>()) {
            let _ = load_str("p.toml", &text);
        }

        #[test]
        fn mutated_demo_never_panics_and_errors_are_located(
            edits in prop::collection::vec((any::<prop::sample::Index>(), config_line()), 1..6)
        ) {
            let mut lines: Vec<String> = DEMO_TOML.lines().map(str::to_owned).collect();
            for (at, line) in edits {
                let at = at.index(lines.len() + 1);
                lines.insert(at, line);
            }
            let text = lines.join("\n");
            if let Err(errors) = load_str("p.toml", &text) {
                let line_count = text.lines().count().max(1);
                for error in errors {
                    let position = error.position.expect("errors in text always have a position");
                    prop_assert!(position.line >= 1 && position.line <= line_count + 1, "{error}");
                    prop_assert!(position.column >= 1, "{error}");
                    prop_assert!(!error.message.contains('\n'), "{error}");
                }
            }
        }
    }
}
