//! The validated configuration as plain typed values.
//!
//! Everything here has passed validation: addresses parsed, references resolved, ranges checked.
//! Code that consumes a `Config` does not need to re-check any of it.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use ipnet::IpNet;

/// The whole Switchboard configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// SIP listeners, timers and limits (`[sip]`).
    pub sip: SipConfig,
    /// HTTP API listener and bearer tokens (`[http]`).
    pub http: HttpConfig,
    /// Where call detail records go (`[cdr]`).
    pub cdr: CdrConfig,
    /// RTP anchoring, prompts and recordings (`[media]`).
    pub media: MediaConfig,
    /// Carriers and PBXes allowed to send calls in (`[[trunk]]`).
    pub trunks: Vec<TrunkConfig>,
    /// Inbound numbers and the queue or IVR each one routes to (`[[number]]`).
    pub numbers: Vec<NumberConfig>,
    /// ACD queues (`[[queue]]`).
    pub queues: Vec<QueueConfig>,
    /// Business-hours schedules (`[[schedule]]`).
    pub schedules: Vec<ScheduleConfig>,
    /// Voice menus (`[[ivr]]`).
    /// Shared with every call in the IVR, never copied per call.
    pub ivrs: Vec<std::sync::Arc<IvrConfig>>,
    /// ACD-wide settings (`[acd]`).
    pub acd: AcdSettings,
    /// Agents who can log in and take calls (`[[agent]]`).
    pub agents: Vec<AgentConfig>,
    /// Bans, rate limits, connection limits and the security log (`[security]`).
    pub security: super::SecurityConfig,
    /// The CRM asked about each arriving caller (`[lookup]`); `None`: no lookups.
    pub lookup: Option<super::LookupConfig>,
    /// Where agents' dialled numbers go out (`[[route]]`), in the order written.
    pub routes: Vec<RouteConfig>,
    /// Toll-fraud guards on calls out (`[outbound]`).
    pub outbound: OutboundLimits,
}

impl Config {
    /// The queue named `name` (calls only carry names the loader has checked).
    pub fn queue(&self, name: &str) -> Option<&QueueConfig> {
        self.queues.iter().find(|queue| queue.name == name)
    }
}

/// SIP listeners, RFC 3261 timers, registrar limits and overload limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SipConfig {
    /// UDP listen addresses; at least one of `listen_udp`/`listen_tcp` is non-empty.
    pub listen_udp: Vec<SocketAddr>,
    /// TCP listen addresses.
    pub listen_tcp: Vec<SocketAddr>,
    /// TLS listen addresses (SIP over TLS, RFC 3261 §26); non-empty only with `tls`.
    pub listen_tls: Vec<SocketAddr>,
    /// SIP over WebSocket (RFC 7118) listen addresses, for browser and WebRTC SIP clients.
    pub listen_ws: Vec<SocketAddr>,
    /// SIP over secure WebSocket listen addresses; non-empty only with `tls`.
    pub listen_wss: Vec<SocketAddr>,
    /// The certificate the TLS and WSS listeners present; set only with `listen_tls` or
    /// `listen_wss`.
    pub tls: Option<TlsCertificate>,
    /// CA certificates (PEM) that trunks' TLS client certificates must chain to; clients
    /// are asked for a certificate only when set (phones without one still connect).
    pub tls_client_ca: Option<std::path::PathBuf>,
    /// Extra CA certificates (PEM) trusted beside the Mozilla roots when Switchboard opens
    /// TLS connections (to TLS gateways, to phones with `tls_verify_phones`).
    pub tls_ca: Option<std::path::PathBuf>,
    /// Verify phones' certificates when Switchboard opens a TLS connection to a phone whose
    /// registration connection dropped (default off: most phones have no CA-issued one).
    pub tls_verify_phones: bool,
    /// Switchboard's own client certificate (`tls_client_cert`/`tls_client_key`), presented
    /// on TLS connections it opens when the server asks (carriers requiring mutual TLS).
    pub tls_client_certificate: Option<TlsCertificate>,
    /// Digest authentication realm; agent and trunk HA1 values are computed with it.
    pub realm: String,
    /// Host to put in Via/Contact/SDP instead of the listen IP (for NAT); `None` = listen IP.
    pub public_address: Option<String>,
    /// RFC 3261 T1, the round-trip time estimate.
    pub t1: Duration,
    /// RFC 3261 T2, the maximum retransmit interval for non-INVITE requests and responses; `t1 <= t2`.
    pub t2: Duration,
    /// RFC 3261 T4, how long a message may stay in the network.
    pub t4: Duration,
    /// Largest SIP message accepted; bigger requests get 513.
    pub max_message_bytes: usize,
    /// How long one agent's phone rings before the call is offered to someone else.
    pub ring_timeout: Duration,
    /// On shutdown, how long to wait for calls in progress before exiting.
    pub drain_timeout: Duration,
    /// Smallest registration Expires accepted (423 Interval Too Brief below it).
    pub min_expires: Duration,
    /// Registration Expires is capped to this; `min_expires <= max_expires`.
    pub max_expires: Duration,
    /// Concurrent calls before new ones get 503 with Retry-After.
    pub max_calls: usize,
    /// Digest algorithms offered in 401/407 challenges, in the order they are sent.
    pub digest_algorithms: Vec<DigestAlgorithm>,
    /// RFC 4028 Min-SE: a shorter Session-Expires gets 422.
    pub min_session_expires: Duration,
}

/// Where a TLS listener's certificate and key come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsCertificate {
    /// PEM files, read at start and again on SIGHUP.
    Files {
        /// Certificate chain, leaf first.
        cert: PathBuf,
        /// Private key (PKCS#8, PKCS#1 or SEC1).
        key: PathBuf,
    },
    /// A self-signed certificate for localhost/127.0.0.1 made at start (the demo only; no
    /// configuration file can ask for it).
    SelfSigned,
}

/// A digest algorithm Switchboard can challenge with (RFC 8760).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DigestAlgorithm {
    /// `MD5`
    Md5,
    /// `SHA-256`
    Sha256,
}

/// The HTTP API listener and who may use it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpConfig {
    /// Address of the HTTP API, web UI and `/metrics`.
    pub listen: SocketAddr,
    /// When set, the listener speaks HTTPS only, with this certificate.
    pub tls: Option<TlsCertificate>,
    /// Bearer tokens accepted by the API; each token is unique.
    pub tokens: Vec<ApiToken>,
    /// Supervisors, admins and analysts who log in to the web pages (`[[http.user]]`).
    pub users: Vec<WebUser>,
    /// A web session unused this long is logged out (`session_idle_s`).
    pub session_idle: std::time::Duration,
    /// Roles that see callers' numbers masked in the API, events and pages (`mask_caller_for`).
    pub mask_caller_for: Vec<RoleKind>,
}

/// A person who logs in to the web pages with a password but is not an agent.
#[derive(Clone, PartialEq, Eq)]
pub struct WebUser {
    /// The login name (unique among users and agent ids).
    pub name: String,
    /// Supervisor, admin or analyst.
    pub role: ApiRole,
    /// argon2 PHC string (`switchboard hash-password`).
    pub web_password_hash: String,
}

impl fmt::Debug for WebUser {
    // The hash is a credential: keep it out of logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebUser")
            .field("name", &self.name)
            .field("role", &self.role)
            .finish()
    }
}

/// A role without the agent id: what `mask_caller_for` lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoleKind {
    /// Any agent.
    Agent,
    /// Supervisors.
    Supervisor,
    /// Admins.
    Admin,
    /// Analysts.
    Analyst,
}

impl ApiRole {
    /// The role without its agent id.
    pub fn kind(&self) -> RoleKind {
        match self {
            ApiRole::Agent(_) => RoleKind::Agent,
            ApiRole::Supervisor => RoleKind::Supervisor,
            ApiRole::Admin => RoleKind::Admin,
            ApiRole::Analyst => RoleKind::Analyst,
        }
    }
}

/// One bearer token for the HTTP API and the role it grants.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiToken {
    /// The label shown in logs and the audit log (`name`, default `token-<n>` counting from 1).
    pub name: String,
    /// SHA-256 of the secret sent as `Authorization: Bearer <token>` (from `token` or
    /// `token_sha256`); the plain secret is not kept.
    pub digest: crate::token_digest::TokenDigest,
    /// What the holder may do.
    pub role: ApiRole,
}

impl fmt::Debug for ApiToken {
    // The token is a credential: keep it out of logs and panic messages.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiToken")
            .field("name", &self.name)
            .field("digest", &"<redacted>")
            .field("role", &self.role)
            .finish()
    }
}

/// What an API token holder may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiRole {
    /// An agent acting on their own state and calls; holds the agent id (it names a configured agent).
    Agent(String),
    /// Watches queues and agents, listens in, changes skills.
    Supervisor,
    /// Everything, including configuration.
    Admin,
    /// Reads reports and recordings.
    Analyst,
}

/// RTP anchoring: addresses, the port range, the silence limit, prompts and recordings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaConfig {
    /// Address the RTP sockets bind to.
    pub address: std::net::IpAddr,
    /// Address written into SDP instead of `address` (NAT, wildcard binds).
    pub public_address: Option<std::net::IpAddr>,
    /// First port of the RTP range (RTP on even ports, RTCP on the odd one above).
    pub rtp_port_min: u16,
    /// Last port of the RTP range.
    pub rtp_port_max: u16,
    /// Hang a call up after this long without RTP on a leg; `None` disables it.
    pub timeout: Option<Duration>,
    /// Folder of prompt sets (`<dir>/<language>/<name>.wav`); `None` = the built-in set.
    pub prompts_dir: Option<PathBuf>,
    /// Where call recordings are written.
    pub recordings_dir: PathBuf,
    /// Accept and send SDES keys (a=crypto) on legs whose signalling is not TLS. Off by
    /// default: over UDP/TCP the keys travel in clear text and the SRTP protects nothing.
    pub allow_sdes_without_tls: bool,
    /// Media worker threads (each relays the RTP of the calls pinned to it); `None` = one
    /// per core.
    pub workers: Option<u16>,
}

/// Whether a leg's media is SRTP (RFC 3711, keyed by SDES RFC 4568).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SrtpMode {
    /// Plain RTP only: RTP/SAVP offers get 488, Switchboard offers RTP/AVP.
    #[default]
    Off,
    /// RTP/SAVP or RTP/AVP offers are accepted; Switchboard offers RTP/SAVP only when the
    /// leg's signalling is TLS (the only way SDES keys stay secret), else RTP/AVP.
    Optional,
    /// SRTP only: RTP/AVP offers get 488; Switchboard offers RTP/SAVP, and does not ring a
    /// phone it could reach only without TLS (unless `allow_sdes_without_tls`).
    Required,
}

/// Where call detail records are written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CdrConfig {
    /// Directory for the JSON-lines CDR files and the journal.
    pub dir: PathBuf,
    /// Also send CDRs to this PostgreSQL database.
    pub postgres_url: Option<String>,
    /// Also write daily CSV files next to the JSON-lines files.
    pub csv: bool,
    /// This node's name in the PostgreSQL rows (they are keyed by node and journal sequence,
    /// so several nodes can share a database); `None` = the host name.
    pub node: Option<String>,
}

/// A carrier or PBX allowed to send calls in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrunkConfig {
    /// Unique name, referenced by `number.trunk` and written in CDRs.
    pub name: String,
    /// Source networks accepted without authentication (single IPs are /32 or /128).
    pub allow: Vec<IpNet>,
    /// Digest credentials the trunk may authenticate with instead.
    /// At least one of `allow` and `credentials` is set.
    pub credentials: Option<DigestCredentials>,
    /// The trunk asserts callers' identities (RFC 3325 trust domain): its
    /// P-Asserted-Identity and Diversion reach the agents; from other trunks they are dropped.
    pub trust_identity: bool,
    /// SRTP on this trunk's calls.
    pub srtp: SrtpMode,
    /// Mutual TLS: the trunk's calls are admitted only over TLS with a client certificate
    /// (verified against `sip.tls_client_ca`) whose subjectAltName covers this name.
    pub tls_client_name: Option<String>,
    /// Where calls out through this trunk are sent; `None` = the trunk only brings calls in.
    pub gateway: Option<TrunkGateway>,
}

/// The carrier side of a trunk: where Switchboard sends calls out, and how it authenticates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrunkGateway {
    /// The carrier's SIP address (an IP literal and port).
    pub address: SocketAddr,
    /// How requests reach it.
    pub transport: GatewayTransport,
    /// With TLS: the name the gateway's certificate must carry (sent as SNI); `None`: its IP
    /// address must be in the certificate.
    pub tls_name: Option<String>,
    /// Digest username and password for the carrier's 401/407 challenges.
    pub credentials: Option<(String, String)>,
    /// REGISTER with the carrier (with `credentials`), refreshed before it expires.
    pub register: bool,
}

/// The transport of a trunk's gateway (`gateway_transport`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GatewayTransport {
    /// `"udp"`, the default.
    Udp,
    /// `"tcp"`: one connection, opened by Switchboard on the first request.
    Tcp,
    /// `"tls"`: like TCP with a TLS handshake that verifies the gateway's certificate.
    Tls,
}

/// What a `[[route]]` matches in a dialled number.
#[derive(Debug, Clone)]
pub enum RouteMatch {
    /// Numbers starting with this text.
    Prefix(String),
    /// Numbers the whole of which match this regular expression.
    Pattern(regex::Regex),
}

impl PartialEq for RouteMatch {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (RouteMatch::Prefix(a), RouteMatch::Prefix(b)) => a == b,
            (RouteMatch::Pattern(a), RouteMatch::Pattern(b)) => a.as_str() == b.as_str(),
            _ => false,
        }
    }
}

impl Eq for RouteMatch {}

/// One outbound route (`[[route]]`): the numbers it takes and the trunks it tries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteConfig {
    /// Which dialled numbers take this route.
    pub matches: RouteMatch,
    /// Trunks (each with a `gateway`) in failover order; never empty.
    pub trunks: Vec<String>,
    /// Leading characters removed from the dialled number before `prepend`.
    pub strip: usize,
    /// Text put in front of the number the carrier is sent.
    pub prepend: String,
    /// The calling number the carrier sees (From and P-Asserted-Identity); `None` = the agent's
    /// SIP user.
    pub caller_id: Option<String>,
}

/// Toll-fraud guards on agents' calls out (`[outbound]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundLimits {
    /// Calls out in progress at once, all agents together.
    pub max_concurrent: usize,
    /// Calls out in progress at once per agent.
    pub max_per_agent: usize,
    /// Calls out an agent may start per UTC day; `None` = no daily limit.
    pub daily_limit_per_agent: Option<u32>,
    /// Numbers callbacks and campaigns never dial (read at start).
    pub dnc_file: Option<std::path::PathBuf>,
}

impl Default for OutboundLimits {
    fn default() -> Self {
        OutboundLimits {
            max_concurrent: 100,
            max_per_agent: 1,
            daily_limit_per_agent: None,
            dnc_file: None,
        }
    }
}

/// A digest username with its secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestCredentials {
    /// The digest username.
    pub username: String,
    /// The password or its HA1.
    pub secret: DigestSecret,
}

/// The secret side of digest credentials: a plain password, or HA1 so the password need not be stored.
#[derive(Clone, PartialEq, Eq)]
pub enum DigestSecret {
    /// The plain password.
    Password(String),
    /// `md5(username:realm:password)` as 32 lowercase hex digits.
    Ha1(String),
}

impl fmt::Debug for DigestSecret {
    // Both variants are credentials: keep them out of logs and panic messages.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DigestSecret::Password(_) => f.write_str("Password(<redacted>)"),
            DigestSecret::Ha1(_) => f.write_str("Ha1(<redacted>)"),
        }
    }
}

/// An inbound number (DID) and where its calls go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NumberConfig {
    /// The dialled number as it appears in the Request-URI user part.
    pub did: String,
    /// The queue or IVR that takes the call (it names a configured one).
    pub target: NumberTarget,
    /// Prompt language for calls to this number; `None` = the IVR's default (or `en` for a
    /// number that goes straight to a queue).
    pub language: Option<String>,
    /// If set, the number only matches calls from this trunk (it names a configured trunk).
    pub trunk: Option<String>,
    /// Base priority of calls to this number; higher is served first.
    pub priority: i32,
    /// SIP header whose integer value, when present, replaces the base priority.
    pub priority_header: Option<String>,
    /// Caller lists that give their calls a different priority (first match wins).
    pub caller_priorities: Vec<CallerPriority>,
}

impl NumberConfig {
    /// The queue calls go straight to, or `None` when the number routes to an IVR.
    pub fn queue(&self) -> Option<&str> {
        match &self.target {
            NumberTarget::Queue(queue) => Some(queue),
            NumberTarget::Ivr(_) => None,
        }
    }

    /// The IVR that answers calls, or `None` when the number routes straight to a queue.
    pub fn ivr(&self) -> Option<&str> {
        match &self.target {
            NumberTarget::Ivr(ivr) => Some(ivr),
            NumberTarget::Queue(_) => None,
        }
    }
}

/// Where calls to a number go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NumberTarget {
    /// Straight into this queue (`queue = "..."`).
    Queue(String),
    /// To this IVR (`ivr = "..."`).
    Ivr(String),
}

/// A list of callers whose calls get a given priority.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallerPriority {
    /// Caller numbers (From user part), matched exactly.
    pub callers: Vec<String>,
    /// Priority for their calls; higher is served first.
    pub priority: i32,
    /// Tag shown to agents and written in CDRs, e.g. `vip` or `complaint`.
    pub label: Option<String>,
}

/// An ACD queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueConfig {
    /// Unique name, referenced by `number.queue` and `queue.overflow`.
    pub name: String,
    /// Skills an agent needs, with the minimum level (1..=10) for each; never empty.
    pub skills: BTreeMap<String, u8>,
    /// How to choose among the agents that qualify.
    pub strategy: RoutingStrategy,
    /// Longest a caller waits before overflow (or being told to call back).
    pub max_wait: Option<Duration>,
    /// Most calls waiting at once; more overflow or get busy.
    pub max_length: Option<usize>,
    /// Queue that takes calls after `max_wait` or past `max_length` (another configured queue).
    pub overflow: Option<String>,
    /// Answer-time threshold for the service-level metric.
    pub service_level: Duration,
    /// After-call work time before the agent is offered the next call.
    pub wrap_up: Duration,
    /// How long a returning caller waits for the agent they spoke to last before anyone is offered.
    pub preferred_agent_wait: Duration,
    /// Steps that widen the set of eligible agents as a call waits, in increasing `after` order.
    pub expansions: Vec<SkillExpansion>,
    /// Prompt played in a loop to waiting callers (a prompt name; default `moh`).
    pub music_on_hold: String,
    /// Period of the position and estimated-wait announcement; `None` = never.
    pub announce_every: Option<Duration>,
    /// DTMF key that lets a waiting caller leave the queue with a callback request.
    pub callback_key: Option<char>,
    /// How long after an unanswered or busy callback attempt the customer is dialled again.
    pub callback_retry: Duration,
    /// Attempts to reach a customer who asked for a callback before it is given up.
    pub callback_max_attempts: u32,
    /// The `[[schedule]]` whose opening hours callbacks are dialled in; `None` = any time.
    pub callback_schedule: Option<String>,
    /// Which calls of this queue are recorded.
    pub record: RecordPolicy,
    /// When a call sent straight to this queue by a number is answered.
    pub answer: QueueAnswer,
    /// Waiting time worth one priority point; `None` (0 in the file) = strict priority.
    pub priority_aging: Option<Duration>,
    /// Handle time assumed for estimated waits until the queue has measured real calls.
    pub initial_handle_time: Duration,
    /// The post-call survey a caller hears when the agent hangs up first; `None` = none.
    pub survey: Option<SurveyConfig>,
}

/// A queue's post-call survey (`survey`, `survey_prompt`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SurveyConfig {
    /// The scores a caller may key.
    pub scale: SurveyScale,
    /// The prompt asking for the score (default `survey`); must exist at start.
    pub prompt: String,
}

/// The scores of a survey.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SurveyScale {
    /// `"1-5"`: keys 1 to 5.
    OneToFive,
    /// `"1-10"`: keys 1 to 9, and 0 for 10.
    OneToTen,
}

impl SurveyScale {
    /// The score key `key` gives on this scale, if any.
    pub fn score(self, key: char) -> Option<u8> {
        let score = match key {
            '0' => 10,
            '1'..='9' => u8::try_from(u32::from(key) - u32::from('0')).ok()?,
            _ => return None,
        };
        let top = match self {
            SurveyScale::OneToFive => 5,
            SurveyScale::OneToTen => 10,
        };
        (score <= top).then_some(score)
    }
}

/// Which calls of a queue are recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordPolicy {
    /// None (`"none"`).
    None,
    /// Every call (`"all"`).
    All,
    /// This percentage of calls, 1..=99 (`"25%"`).
    Percent(u8),
}

/// When a call that a number sends straight to a queue is answered (calls that come through
/// an IVR are already answered).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueAnswer {
    /// Answer (200 OK, music on hold) as soon as the call is queued (`"on-queue"`).
    OnQueue,
    /// Keep the caller hearing ringback (180) until an agent answers (`"on-agent"`).
    OnAgent,
}

/// How a queue picks among the ready agents that have the required skills.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoutingStrategy {
    /// The agent idle the longest (`longest-idle`).
    LongestIdle,
    /// The agent with the highest level in the queue's skills (`most-skilled`).
    MostSkilled,
    /// Agents in turn (`round-robin`).
    RoundRobin,
    /// The agent who has taken the fewest calls (`fewest-calls`).
    FewestCalls,
}

impl RoutingStrategy {
    /// Every strategy with its configuration name.
    pub const ALL: [(&'static str, RoutingStrategy); 4] = [
        ("longest-idle", RoutingStrategy::LongestIdle),
        ("most-skilled", RoutingStrategy::MostSkilled),
        ("round-robin", RoutingStrategy::RoundRobin),
        ("fewest-calls", RoutingStrategy::FewestCalls),
    ];

    /// The name used in the configuration file.
    pub fn name(self) -> &'static str {
        match self {
            RoutingStrategy::LongestIdle => "longest-idle",
            RoutingStrategy::MostSkilled => "most-skilled",
            RoutingStrategy::RoundRobin => "round-robin",
            RoutingStrategy::FewestCalls => "fewest-calls",
        }
    }
}

/// One step of skill expansion: after a call has waited `after`, more agents qualify.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkillExpansion {
    /// Wait time at which this step applies.
    pub after: Duration,
    /// Lower the minimum level of the queue's required skills to this (1..=10).
    pub min_level: Option<u8>,
    /// Also accept agents with these skills at these minimum levels.
    pub add_skills: BTreeMap<String, u8>,
}

/// ACD-wide settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcdSettings {
    /// Reasons an agent may give for being not ready; unique, non-empty.
    pub not_ready_reasons: Vec<String>,
    /// Reason set when an agent lets an offered call ring out; `None` = back to Ready.
    /// When set it is one of `not_ready_reasons`.
    pub missed_call_reason: Option<String>,
    /// After an offer fails, the call is not offered to that agent again for this long
    /// (`offer_retry_s`, 1..=3600 s, default 5 s).
    pub offer_retry_after: Duration,
    /// Wrap-up disposition codes an agent picks from after a call (`dispositions`).
    pub dispositions: Vec<String>,
    /// A caller's last answering agent is remembered this many days (`sticky_max_age_days`,
    /// 1..=3650, default 30); older memories no longer make the caller wait for that agent.
    pub sticky_max_age_days: u32,
    /// At most this many callers are remembered (`sticky_max_entries`, 0..=10000000, default
    /// 100000); past it the oldest memory is forgotten. 0 turns sticky routing off.
    pub sticky_max_entries: usize,
}

/// An agent who can log in and take calls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentConfig {
    /// Unique agent id, used by the API and CDRs.
    pub id: String,
    /// Display name.
    pub name: String,
    /// SIP user the agent registers as (unique); defaults to the id.
    pub sip_user: String,
    /// SIP digest password or HA1.
    pub secret: DigestSecret,
    /// Skills and level (1..=10).
    pub skills: BTreeMap<String, u8>,
    /// Calls the agent may hold at once (1 for voice).
    pub max_calls: u32,
    /// Networks the agent's phones may register from; empty = anywhere.
    pub allow: Vec<IpNet>,
    /// May listen to, whisper to and barge into other agents' calls from the phone
    /// (`*41`/`*42`/`*43` followed by the agent id).
    pub supervisor: bool,
    /// argon2 PHC string of the agent desktop password; `None` = no web login.
    pub web_password_hash: Option<String>,
    /// SRTP on the calls offered to this agent.
    pub srtp: SrtpMode,
    /// Numbers the agent may dial out: `"+86*"` (a prefix) or `"4000"` (exactly);
    /// empty = may not dial out.
    pub outbound: Vec<String>,
}

/// A business-hours schedule (`[[schedule]]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduleConfig {
    /// Unique name, referenced by `ivr.schedule`.
    pub name: String,
    /// The time zone, opening hours and holidays; `schedule.is_open(unix_seconds)` evaluates it.
    pub schedule: crate::ivr::schedule::Schedule,
}

/// A voice menu tree (`[[ivr]]`): greeting, menus and what happens outside business hours.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IvrConfig {
    /// Unique name, referenced by `number.ivr`.
    pub name: String,
    /// Default prompt language (a prompt-set folder name such as `en`).
    pub language: String,
    /// Business-hours schedule (it names a configured schedule); `None` = always open.
    pub schedule: Option<String>,
    /// What runs instead of the menus when the schedule is closed (ends in a final step).
    pub closed: Vec<IvrStep>,
    /// Prompts played once on entry, before the first menu.
    pub greeting: Vec<String>,
    /// Name of the first menu (one of `menus`).
    pub entry: String,
    /// The menus, never empty; names are unique within the IVR.
    pub menus: Vec<MenuConfig>,
}

/// One menu of an IVR (`[[ivr.menu]]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MenuConfig {
    /// Name, unique within its IVR, referenced by `menu:NAME` steps.
    pub name: String,
    /// Prompts read out, in order; never empty.
    pub prompt: Vec<String>,
    /// How long to wait for a key once the prompt has finished (1..=60 s).
    pub digit_timeout: Duration,
    /// Invalid keys or timeouts that replay the menu before `on_failure` runs (0..=10).
    pub retries: u32,
    /// Prompts played after an invalid key or a timeout, before the menu is replayed.
    pub invalid: Vec<String>,
    /// What each key does: steps ending in exactly one final step.
    pub keys: BTreeMap<char, Vec<IvrStep>>,
    /// What runs when the retries are used up (ends in a final step).
    pub on_failure: Vec<IvrStep>,
}

/// One step of an IVR action. `Play` and `Language` may come first; an action always ends with
/// exactly one of the final steps `Queue`, `Menu`, `Hangup` or `Voicemail`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IvrStep {
    /// `play:PROMPT`: play a prompt in the current language.
    Play(String),
    /// `language:LANG`: later prompts use this language.
    Language(String),
    /// `queue:QUEUE`: leave the IVR and wait in this queue.
    Queue(String),
    /// `menu:MENU`: go to this menu of the same IVR.
    Menu(String),
    /// `hangup`: end the call.
    Hangup,
    /// `voicemail:QUEUE`: leave the IVR and record a message for this queue.
    Voicemail(String),
}

impl IvrStep {
    /// Whether this step ends an action (queue, menu, hangup, voicemail).
    pub fn is_final(&self) -> bool {
        !matches!(self, IvrStep::Play(_) | IvrStep::Language(_))
    }
}
