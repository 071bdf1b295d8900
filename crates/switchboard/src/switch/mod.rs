//! Call control: the B2BUA, the registrar front and the ACD glue, as one sans-IO state
//! machine. The I/O loop (`runtime`) feeds it received messages, timer expiries and API
//! commands with the current time, then drains what it must send and when to wake it next.
//!
//! Everything that touches one call happens here on one task, so call state needs no locks;
//! the ACD it drives is itself lock-free and shared with the HTTP API for reads.

mod admission;
pub mod b2bua;
pub mod call;
mod call_driver;
mod call_index;
pub mod callback;
mod caller_lookup;
mod caller_media;
pub mod campaign;
mod cdr;
pub mod command;
mod config_index;
pub mod consult;
mod cti;
mod emergency_first;
mod extra_leg_invite;
mod feature_code;
mod identity;
mod ids;
pub use ids::IdSource;
mod in_dialog;
#[cfg(test)]
mod interop_tests;
pub mod live_calls;
mod live_calls_out;
mod media_events;
pub mod media_plane;
mod message_counters;
mod outbound;
mod overload;
mod preferred_agent;
#[cfg(test)]
mod race_tests;
mod refusal;
mod registration;
mod reload;
mod routing;
pub mod screening;
mod sdes_legs;
mod session_timer;
#[cfg(test)]
mod settings_tests;
mod sips;
mod standing_queue;
pub mod supervision;
mod survey;
mod timer;
mod transfer;
mod transport_failure;
mod trunk_certificate;
mod uac_leg;
mod wall_clock;
mod webrtc_legs;
#[cfg(test)]
mod webrtc_offer_tests;

use crate::config::Config;
use crate::metrics::Metrics;
use acd::{Acd, AgentId};
use call::CallNumber;
use message_counters::Direction;
use sip::digest::NonceManager;
use sip::registrar::Registrar;
use sip::rsip::Request;
use sip::transaction::{TimerConfig, TransactionEvent, TransactionKey, TransactionLayer};
use sip::{Peer, Transmit, Transport};
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};

use std::sync::Arc;
use std::time::{Duration, Instant};
use timer::TimerQueue;
use transport::{Inbound, Payload};

/// The name this server gives in Warning, Server and User-Agent headers.
pub const AGENT_NAME: &str = "switchboard";

/// How long a 503 tells the sender to wait before trying again.
const RETRY_AFTER_SECS: u32 = 5;

/// When a message waited this long between the socket and the core, the core is behind:
/// new calls are refused with 503 (Retry-After) rather than queued, so the calls already in
/// progress keep being served instead of every call timing out (retransmissions would
/// otherwise multiply the backlog). 500 ms is the default T1: a request that waited that long
/// has already been retransmitted by its sender.
const OVERLOAD_QUEUE_DELAY: Duration = Duration::from_millis(500);

/// After the drain deadline has ended the remaining calls, how long their BYEs may take.
const DRAIN_BYE_GRACE: Duration = Duration::from_secs(2);

/// The addresses Switchboard puts in its Via and Contact headers.
#[derive(Debug, Clone)]
pub struct LocalAddresses {
    /// Bound UDP address.
    pub udp: Option<SocketAddr>,
    /// Bound TCP address.
    pub tcp: Option<SocketAddr>,
    /// Bound TLS address (Via `SIP/2.0/TLS` and Contact `;transport=tls` name it).
    pub tls: Option<SocketAddr>,
    /// Bound SIP over WebSocket address (Via `SIP/2.0/WS`, Contact `;transport=ws`).
    pub ws: Option<SocketAddr>,
    /// Bound SIP over secure WebSocket address.
    pub wss: Option<SocketAddr>,
    /// Host to advertise instead of the bound IP (NAT / wildcard binds).
    pub public_host: Option<String>,
}

impl LocalAddresses {
    fn addr(&self, transport: Transport) -> Option<SocketAddr> {
        match transport {
            Transport::Udp => self.udp.or(self.tcp),
            Transport::Tls => self.tls.or(self.tcp).or(self.udp),
            Transport::Ws => self.ws.or(self.tcp).or(self.udp),
            Transport::Wss => self.wss.or(self.tls).or(self.tcp).or(self.udp),
            Transport::Tcp => self.tcp.or(self.udp),
        }
    }

    /// `host:port` to advertise for `transport`.
    pub fn host_port(&self, transport: Transport) -> String {
        let addr = self.addr(transport);
        let port = addr.map_or(5060, |a| a.port());
        match (&self.public_host, addr) {
            (Some(host), _) => format!("{host}:{port}"),
            (None, Some(a)) if a.ip().is_unspecified() => format!("127.0.0.1:{port}"),
            (None, Some(a)) => a.to_string(),
            (None, None) => format!("127.0.0.1:{port}"),
        }
    }
}

/// [`LocalAddresses::host_port`] and our Contact header value for each transport, written
/// once when call control starts: they depend only on the bound addresses, and formatting them
/// again for every request and 2xx was an allocation or two per message (issue 12).
#[derive(Debug)]
struct LocalNames {
    host_ports: [String; 5],
    contacts: [String; 5],
}

impl LocalNames {
    const TRANSPORTS: [Transport; 5] = [
        Transport::Udp,
        Transport::Tcp,
        Transport::Tls,
        Transport::Ws,
        Transport::Wss,
    ];

    fn new(local: &LocalAddresses) -> Self {
        let host_ports = Self::TRANSPORTS.map(|transport| local.host_port(transport));
        let contacts = Self::TRANSPORTS.map(|transport| {
            let host_port = &host_ports[Self::index(transport)];
            match transport {
                Transport::Udp => format!("<sip:{AGENT_NAME}@{host_port}>"),
                other => format!(
                    "<sip:{AGENT_NAME}@{host_port};transport={}>",
                    other.via_token().to_ascii_lowercase()
                ),
            }
        });
        Self {
            host_ports,
            contacts,
        }
    }

    fn index(transport: Transport) -> usize {
        match transport {
            Transport::Udp => 0,
            Transport::Tcp => 1,
            Transport::Tls => 2,
            Transport::Ws => 3,
            Transport::Wss => 4,
        }
    }

    fn host_port(&self, transport: Transport) -> &str {
        &self.host_ports[Self::index(transport)]
    }

    fn contact(&self, transport: Transport) -> &str {
        &self.contacts[Self::index(transport)]
    }
}

/// Gauges of call-control state, read by the metrics exporter and the readiness probe.
#[derive(Debug, Default)]
pub struct SwitchStats {
    /// Calls in progress.
    pub active_calls: AtomicU64,
    /// Live SIP transactions.
    pub transactions: AtomicU64,
    /// Live registrar bindings.
    pub registrations: AtomicU64,
    /// Shutdown has begun (readiness goes false).
    pub draining: std::sync::atomic::AtomicBool,
}

/// What call control shares with the rest of the node (API, exporter, media loader).
pub struct SharedState {
    /// The ACD.
    pub acd: Arc<Acd>,
    /// Call-control gauges.
    pub stats: Arc<SwitchStats>,
    /// The exporter.
    pub metrics: Arc<Metrics>,
    /// Prompts and music on hold.
    pub prompts: Arc<crate::prompt_library::PromptLibrary>,
    /// Emergency announcements per DID.
    pub emergency: Arc<crate::emergency::EmergencyBoard>,
    /// Bans, per-source rates and the security log, shared with the transports.
    pub gate: Arc<crate::security::gate::Gate>,
    /// The audit log (feature codes are audited).
    pub audit: crate::audit::AuditLog,
    /// Where CTI events go (`/api/events`).
    pub events: Arc<crate::web::events::EventHub>,
}

/// Timers call control sets for itself.
#[derive(Debug, Clone)]
enum SwitchTimer {
    /// One of a call's own timers may be due (see `call::timers`).
    Call { call: CallNumber },
    /// A deadline the ACD asked to be woken for.
    Acd(acd::Timer),
    /// The registrar's next binding expiry.
    Registrations,
    /// Drain time is up: end whatever calls remain.
    DrainDeadline,
    /// The BYEs sent at the drain deadline had their chance to be answered.
    DrainGraceOver,
    /// A parked CDR has waited long enough for its media session's report.
    FlushCdr { call: CallNumber },
    /// Time to REGISTER (again) with the carrier of `[[trunk]]` number `trunk`.
    CarrierRegister { trunk: usize },
    /// A port pair found held by another process may go back to the pool.
    PortQuarantineOver { pair: media::PortPair },
    /// INVITE `seq` of a callback (to the agent or the customer) rang long enough.
    CallbackRing { call: CallNumber, seq: u32 },
    /// A callback's next attempt is due.
    CallbackRetry { call: CallNumber },
    /// A campaign contact's retry may be due.
    CampaignRetry,
    /// Campaign changes held back by the journal's interval may be written now.
    CampaignJournal,
}

/// What a client transaction we started was for, so its responses go to the right place.
#[derive(Debug)]
enum ClientPurpose {
    /// The INVITE of an agent attempt.
    AgentInvite { call: CallNumber, attempt: u32 },
    /// An agent INVITE we gave up on (cancelled); a late 2xx must be ACKed and hung up.
    AbandonedInvite,
    /// A request relayed from one leg to the other; its response goes back on `server_key`.
    Relay {
        call: CallNumber,
        original: Box<Request>,
        server_key: TransactionKey,
        toward_agent: bool,
    },
    /// Switchboard's refresh of a trunk leg's session (RFC 4028).
    SessionRefresh { call: CallNumber },
    /// Switchboard ringing a supervisor's phone for the API.
    MonitorInvite { call: CallNumber, leg: media::Leg },
    /// A request whose answer needs no action (BYE, CANCEL).
    Fire,
    /// An agent's call out sent to a carrier (`attempt` counts its INVITEs).
    Outbound { call: CallNumber, attempt: u32 },
    /// A REGISTER to the carrier of `[[trunk]]` number `trunk`; `authenticated`: it already
    /// answers a challenge.
    CarrierRegister { trunk: usize, authenticated: bool },
    /// INVITE `seq` of a callback: the agent's preview or the customer's call.
    CallbackInvite { call: CallNumber, seq: u32 },
}

/// Per-agent facts call control needs beyond the ACD: how to reach and authenticate them,
/// and how to secure their calls. Looked up by id or SIP user in O(1) on every offer, so no
/// per-call path scans `config.agents` (issue 12: 10,000 agents cost a scan of 10,000).
#[derive(Debug, Clone)]
struct AgentEntry {
    id: AgentId,
    sip_user: String,
    srtp: crate::config::SrtpMode,
}

impl AgentEntry {
    fn from_config(agent: &crate::config::AgentConfig) -> Self {
        Self {
            id: AgentId::from(agent.id.as_str()),
            sip_user: agent.sip_user.clone(),
            srtp: agent.srtp,
        }
    }
}

/// The call-control state machine.
pub struct Switch {
    config: Arc<Config>,
    local: LocalAddresses,
    local_names: LocalNames,
    txn: TransactionLayer,
    registrar: Registrar,
    nonces: NonceManager,
    acd: Arc<Acd>,
    stats: Arc<SwitchStats>,
    metrics: Arc<Metrics>,
    /// The SIP message counters of `metrics`, each resolved once.
    messages: message_counters::MessageCounters,
    timers: TimerQueue<SwitchTimer>,
    calls: call_index::CallIndex,
    /// Numbers and queues of `config` by key, for the per-call path.
    index: config_index::ConfigIndex,
    next_call: CallNumber,
    client_txns: HashMap<TransactionKey, ClientPurpose>,
    agents_by_user: HashMap<String, AgentEntry>,
    agents_by_id: HashMap<AgentId, AgentEntry>,
    /// Agents a reload removed while they were on a call: they leave the ACD once logged out.
    retiring_agents: std::collections::HashSet<AgentId>,
    draining: bool,
    /// The drain deadline's BYEs have had their grace: unanswered ones no longer hold the exit.
    drain_grace_over: bool,
    /// Feature-code calls answered and waiting for their ACK, by Call-ID.
    feature_dialogs: HashMap<String, (TransactionKey, sip::dialog::Dialog)>,
    /// Records for the CDR writer, with the token it reports back once they are durable.
    cdr_out: VecDeque<(::cdr::Record, CallNumber)>,
    /// Final responses of ended calls, sent once the call's record is durable.
    held_responses: HashMap<CallNumber, Vec<(TransactionKey, sip::rsip::Response)>>,
    /// How long the message being handled waited in the inbound queue.
    queue_delay: Duration,
    /// Messages waiting in the inbound queue behind the current one (see `overload`).
    inbound_backlog: usize,
    /// Whether that queue stands or only bursts, from the waits of the messages taken from it.
    standing_queue: standing_queue::StandingQueue,
    /// Supervision sessions in progress by supervisor id: a supervisor is kept out of queue
    /// calls from the first to the last (see supervision.rs).
    supervising: HashMap<String, u32>,
    /// Replies built from raw bytes that never became a message (400/513 to garbage).
    pending_raw: VecDeque<Transmit>,
    /// Verified TLS client certificates by connection, for trunks with `tls_client_name`.
    client_certificates: transport::ClientCertificates,
    /// Tags, Call-IDs, branches and every other random choice (seeded in tests).
    ids: ids::IdSource,
    /// Monotonic to wall-clock time (nonces and records carry wall time); its anchor names
    /// this run in record ids.
    clock: wall_clock::WallClock,
    /// Ports and media-session operations.
    media: media_plane::MediaPlane,
    /// Prompts and music, per language.
    prompts: Arc<crate::prompt_library::PromptLibrary>,
    /// Emergency announcements switched on per DID over the API.
    emergency: Arc<crate::emergency::EmergencyBoard>,
    /// Tokens identifying what is played to callers.
    play_tokens: u64,
    /// Records of ended calls waiting for their media session's final report.
    parked_cdrs: HashMap<CallNumber, ::cdr::CallRecord>,
    /// Bans, rate limits and the security log, applied before the transaction layer.
    screening: screening::Screening,
    /// Where feature codes are audited.
    audit: crate::audit::AuditLog,
    /// CTI events out (`/api/events`) and today's tallies.
    events: Arc<crate::web::events::EventHub>,
    /// The source of the request being handled (auth failures are counted against it).
    request_source: Option<Peer>,
    /// Which agent last answered each caller (sticky routing).
    sticky: crate::sticky_routing::StickyIndex,
    /// Caller lookups for the edge to make.
    lookups_out: VecDeque<crate::caller_lookup::LookupRequest>,
    /// Agents' calls out in progress.
    outbound: outbound::call::OutboundCalls,
    /// Callbacks waiting, being made, and recently finished.
    callbacks: callback::book::CallbackBook,
    /// Return-visit campaigns.
    campaigns: campaign::Campaigns,
}

impl Switch {
    /// Builds call control over `config`. `now`/`unix_now` anchor the clock used for nonces.
    pub fn new(
        config: Arc<Config>,
        local: LocalAddresses,
        shared: SharedState,
        ids: ids::IdSource,
        now: Instant,
        unix_now: u64,
    ) -> Self {
        let SharedState {
            acd,
            stats,
            metrics,
            prompts,
            emergency,
            gate,
            audit,
            events,
        } = shared;
        let sip = &config.sip;
        let txn = TransactionLayer::new(TimerConfig {
            t1: sip.t1,
            t2: sip.t2,
            t4: sip.t4,
        });
        let min_expires = duration_secs(sip.min_expires);
        let max_expires = duration_secs(sip.max_expires).max(min_expires);
        let registrar_config = sip::registrar::RegistrarConfig {
            min_expires,
            max_expires,
            default_expires: 3600u32.clamp(min_expires, max_expires),
            max_bindings_per_aor: 10,
        };
        // The config loader already enforces min <= max; the clamp above makes the rest hold.
        let registrar = Registrar::new(registrar_config)
            .expect("registrar bounds are clamped into a valid range above");
        let nonces = NonceManager::new(ids.secret(), Duration::from_secs(300));
        let mut agents_by_user = HashMap::new();
        let mut agents_by_id = HashMap::new();
        for agent in &config.agents {
            let entry = AgentEntry::from_config(agent);
            agents_by_user.insert(agent.sip_user.clone(), entry.clone());
            agents_by_id.insert(entry.id.clone(), entry);
        }
        let index = config_index::ConfigIndex::of(&config);
        let mut switch = Self {
            ids,
            media: media_plane::MediaPlane::new(&config.media)
                .expect("the config loader guarantees the RTP port range holds port pairs"),
            prompts,
            emergency,
            // Above any token an IVR session hands out, so the two can never be confused.
            play_tokens: 1 << 32,
            parked_cdrs: HashMap::new(),
            screening: screening::Screening::new(gate),
            audit,
            events,
            request_source: None,
            sticky: crate::sticky_routing::StickyIndex::for_settings(&config.acd),
            lookups_out: VecDeque::new(),
            outbound: Default::default(),
            callbacks: Default::default(),
            campaigns: Default::default(),
            config,
            local_names: LocalNames::new(&local),
            local,
            txn,
            registrar,
            nonces,
            acd,
            stats,
            messages: message_counters::MessageCounters::new(
                metrics.sip_requests.clone(),
                metrics.sip_responses.clone(),
            ),
            metrics,
            timers: TimerQueue::default(),
            calls: call_index::CallIndex::default(),
            index,
            next_call: 1,
            client_txns: HashMap::new(),
            agents_by_user,
            agents_by_id,
            retiring_agents: Default::default(),
            draining: false,
            drain_grace_over: false,
            pending_raw: VecDeque::new(),
            client_certificates: transport::ClientCertificates::default(),
            queue_delay: Duration::ZERO,
            inbound_backlog: 0,
            standing_queue: Default::default(),
            supervising: HashMap::new(),
            feature_dialogs: HashMap::new(),
            cdr_out: VecDeque::new(),
            held_responses: HashMap::new(),
            clock: wall_clock::WallClock::anchored(now, unix_now),
        };
        switch.schedule_carrier_registrations(now);
        switch
    }

    /// The transports' table of verified client certificates (mutual TLS for trunks).
    pub fn use_client_certificates(&mut self, certificates: transport::ClientCertificates) {
        self.client_certificates = certificates;
    }

    /// A message (or a refusal of one) from the transports.
    pub fn handle_inbound(&mut self, now: Instant, inbound: Inbound) {
        self.queue_delay = now.saturating_duration_since(inbound.received);
        self.standing_queue.observe(now, self.queue_delay);
        match inbound.payload {
            Payload::Message(message) => {
                let screened = match &message {
                    sip::rsip::SipMessage::Request(request) => {
                        self.screen(now, request, inbound.source)
                            || self.refuse_when_overloaded(request, inbound.source)
                            || self.refuse_without_rtp_ports(request, inbound.source)
                    }
                    sip::rsip::SipMessage::Response(_) => false,
                };
                if !screened {
                    self.txn.handle_message(now, message, inbound.source);
                }
            }
            Payload::Malformed { bytes, error } => {
                self.metrics.sip_malformed.inc();
                tracing::info!(peer = %inbound.source, reason = %error.reason, "malformed SIP message");
                self.raw_reply(&bytes, error.status, &error.reason, inbound.source);
            }
            Payload::TooLarge { bytes, size } => {
                self.metrics.sip_malformed.inc();
                let reason = format!(
                    "message of {size} bytes exceeds the limit of {}",
                    self.config.sip.max_message_bytes
                );
                tracing::info!(peer = %inbound.source, %reason, "oversized SIP message");
                self.raw_reply(&bytes, 513, &reason, inbound.source);
            }
            Payload::Closed => self.flow_closed(now, inbound.source),
            Payload::ConnectFailed { reason } => {
                self.connection_failed(now, inbound.source, &reason)
            }
        }
        self.process_transaction_events(now);
    }

    /// Answers bytes that did not parse, when they carry enough to address a response.
    fn raw_reply(&mut self, bytes: &[u8], code: u16, reason: &str, source: Peer) {
        let Some(data) = sip::message::raw_error_response(bytes, code, reason, AGENT_NAME) else {
            return;
        };
        // The Via could not be trusted to parse, so reply to the source (symmetric response).
        self.pending_raw.push_back(Transmit { peer: source, data });
    }

    /// Timers due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.screening_timeout(now);
        self.txn.handle_timeout(now);
        self.process_transaction_events(now);
        while let Some(timer) = self.timers.pop_due(now) {
            match timer {
                SwitchTimer::Call { call } => self.fire_call_timers(now, call),
                SwitchTimer::Acd(timer) => {
                    let actions = self.acd.handle_timer(now, timer);
                    self.apply_acd(now, actions);
                }
                SwitchTimer::Registrations => self.expire_registrations(now),
                SwitchTimer::FlushCdr { call } => self.flush_parked_cdr(call),
                SwitchTimer::CarrierRegister { trunk } => {
                    self.register_with_carrier(now, trunk, None)
                }
                SwitchTimer::PortQuarantineOver { pair } => self.media.release_quarantined(pair),
                SwitchTimer::CallbackRing { call, seq } => {
                    self.callback_ring_timeout(now, call, seq)
                }
                SwitchTimer::CallbackRetry { call } => self.callback_retry_due(now, call),
                SwitchTimer::CampaignRetry => self.feed_campaigns(now),
                // Nothing to do here: the edge takes the journal after every wake-up.
                SwitchTimer::CampaignJournal => {}
                SwitchTimer::DrainGraceOver => self.drain_grace_over = true,
                SwitchTimer::DrainDeadline => {
                    // Peers that do not answer the BYEs below must not hold the exit for the
                    // 32 s of a transaction timeout: a short grace is enough for live ones.
                    self.timers
                        .schedule(now + DRAIN_BYE_GRACE, SwitchTimer::DrainGraceOver);
                    let calls: Vec<CallNumber> = self.calls.keys().copied().collect();
                    for call in calls {
                        self.end_call(now, call, b2bua::EndCause::Shutdown);
                    }
                    self.end_calls_out(now);
                    self.end_callbacks(now);
                }
            }
            self.process_transaction_events(now);
        }
        self.update_gauges();
    }

    /// Stop taking new calls (they get 503 + Retry-After) and end the rest at `deadline`.
    pub fn begin_drain(&mut self, now: Instant, deadline: Duration) {
        if !self.draining {
            self.draining = true;
            self.stats.draining.store(true, Ordering::Relaxed);
            self.timers
                .schedule(now + deadline, SwitchTimer::DrainDeadline);
            tracing::info!(calls = self.calls.len(), "draining: new calls refused");
        }
    }

    /// Draining and nothing left in flight: the process may exit. Every call's CDR is
    /// durable and every held final response sent; requests still awaiting an answer (the
    /// BYEs of the drain deadline) are waited for only for a short grace.
    pub fn is_drained(&self) -> bool {
        self.draining
            && self.calls.is_empty()
            && self.outbound.is_empty()
            && !self.callbacks.has_live_legs()
            && (self.client_txns.is_empty() || self.drain_grace_over)
            && self.feature_dialogs.is_empty()
            && self.held_responses.is_empty()
            && self.parked_cdrs.is_empty()
    }

    /// The next message to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.pending_raw
            .pop_front()
            .or_else(|| self.txn.poll_transmit())
    }

    /// When to call [`Switch::handle_timeout`] next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        [
            self.txn.poll_timeout(),
            self.timers.next_deadline(),
            self.screening.poll_timeout(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Calls in progress.
    pub fn active_calls(&self) -> usize {
        self.calls.len()
    }

    fn unix_now(&self, now: Instant) -> u64 {
        u64::try_from(self.clock.at(now).unix_timestamp()).unwrap_or_default()
    }

    fn update_gauges(&self) {
        self.stats.active_calls.store(
            (self.calls.len() + self.calls_out_in_progress()) as u64,
            Ordering::Relaxed,
        );
        self.stats
            .transactions
            .store(self.txn.len() as u64, Ordering::Relaxed);
        self.stats
            .registrations
            .store(self.registrar.len() as u64, Ordering::Relaxed);
    }

    fn process_transaction_events(&mut self, now: Instant) {
        while let Some(event) = self.txn.poll_event() {
            match event {
                TransactionEvent::Request {
                    key,
                    request,
                    source,
                } => self.on_request(now, key, request, source),
                TransactionEvent::Cancelled { invite, cancel } => {
                    self.count_request(Direction::In, &cancel.method);
                    self.on_cancelled(now, &invite)
                }
                TransactionEvent::Response {
                    key,
                    response,
                    source,
                } => {
                    self.messages
                        .response(Direction::In, response.status_code.code());
                    self.on_response(now, key, response, source)
                }
                TransactionEvent::Timeout { key } => self.on_client_timeout(now, key),
                TransactionEvent::TransportError { key } => {
                    self.on_client_transport_error(now, key)
                }
                TransactionEvent::CancelSent { .. } => {
                    self.count_request(Direction::Out, &sip::rsip::Method::Cancel)
                }
                TransactionEvent::AckTimeout { key } => {
                    self.forget_feature_dialog(&key);
                    self.on_ack_timeout(now, &key)
                }
            }
        }
        self.quarantine_busy_pairs(now);
        self.update_gauges();
    }

    fn on_request(
        &mut self,
        now: Instant,
        key: Option<TransactionKey>,
        request: Request,
        source: Peer,
    ) {
        self.count_request(Direction::In, &request.method);
        self.request_source = Some(source);
        let Some(key) = key else {
            // ACKs for a 2xx confirm the dialog (the transaction layer already stopped
            // retransmitting). They matter in two cases: a feature-code call is hung up once
            // confirmed, and an ACK may carry the trunk's answer to Switchboard's offer.
            if request.method == sip::rsip::Method::Ack {
                if let Some(call_id) = sip::headers::call_id_of(&request.headers) {
                    let call_id = call_id.to_string();
                    self.on_feature_ack(now, &call_id);
                }
                self.on_trunk_ack(now, &request);
                self.on_reoffer_ack(now, &request);
            }
            return;
        };
        if let Some(refusal) =
            admission::check_request(&request).or_else(|| sips::refusal(&request, source.transport))
        {
            self.refuse(now, &key, &request, &refusal);
            return;
        }
        let in_dialog = sip::headers::to_tag(&request.headers).is_some();
        if in_dialog {
            self.on_in_dialog_request(now, key, request);
            return;
        }
        use sip::rsip::Method;
        match request.method {
            Method::Register => self.on_register(now, key, request, source),
            Method::Invite => self.on_invite(now, key, request, source),
            // A draining node says so to health probes (a Kamailio dispatcher marks it
            // inactive and sends new calls elsewhere) while its calls finish.
            Method::Options if self.draining => {
                self.reply_error(now, &key, &request, 503, DRAINING_REASON);
            }
            Method::Options => {
                let mut response = sip::message::response_to(&request, 200, Some(&self.ids.tag()));
                self.add_capabilities(&mut response.headers);
                self.send_response(now, &key, response);
            }
            Method::Bye | Method::Cancel | Method::Update | Method::Info | Method::PRack => {
                self.reply_error(now, &key, &request, 481, "no such dialog");
            }
            _ => {
                let mut response = sip::message::response_to(&request, 405, Some(&self.ids.tag()));
                self.add_capabilities(&mut response.headers);
                self.send_response(now, &key, response);
            }
        }
    }

    fn add_capabilities(&self, headers: &mut sip::rsip::Headers) {
        sip::message::push_header(headers, "Allow", ALLOW);
        sip::message::push_header(headers, "Accept", "application/sdp");
        sip::message::push_header(headers, "Supported", "timer");
    }

    /// Sends an error response with a Warning naming the reason, and logs it.
    fn reply_error(
        &mut self,
        now: Instant,
        key: &TransactionKey,
        request: &Request,
        code: u16,
        reason: &str,
    ) {
        let mut response = sip::message::response_to(request, code, Some(&self.ids.tag()));
        sip::message::add_warning(&mut response, AGENT_NAME, reason);
        match code {
            420 => sip::message::push_header(
                &mut response.headers,
                "Unsupported",
                admission::unsupported_extensions(request).join(", "),
            ),
            405 => sip::message::push_header(&mut response.headers, "Allow", ALLOW),
            415 => sip::message::push_header(&mut response.headers, "Accept", "application/sdp"),
            422 => sip::message::push_header(
                &mut response.headers,
                "Min-SE",
                self.config.sip.min_session_expires.as_secs().to_string(),
            ),
            503 => sip::message::push_header(
                &mut response.headers,
                "Retry-After",
                RETRY_AFTER_SECS.to_string(),
            ),
            _ => {}
        }
        tracing::info!(method = %request.method, code, reason, "request refused");
        self.send_response(now, key, response);
    }

    fn send_response(&mut self, now: Instant, key: &TransactionKey, response: sip::rsip::Response) {
        self.messages
            .response(Direction::Out, response.status_code.code());
        if let Err(error) = self.txn.send_response(now, key, response) {
            tracing::debug!(%error, "response not sent: transaction gone");
        }
    }

    /// Sends a request on a new client transaction and remembers what it was for.
    fn send_request(
        &mut self,
        now: Instant,
        request: Request,
        peer: Peer,
        purpose: ClientPurpose,
    ) -> TransactionKey {
        self.send_kept_request(now, &request, peer, purpose)
    }

    /// [`Switch::send_request`] for a request the caller keeps (a leg's INVITE, from which its
    /// CANCEL and ACKs are built): sent without being copied.
    fn send_kept_request(
        &mut self,
        now: Instant,
        request: &Request,
        peer: Peer,
        purpose: ClientPurpose,
    ) -> TransactionKey {
        self.count_request(Direction::Out, &request.method);
        let key = self.txn.send_kept_request(now, request, peer);
        self.client_txns.insert(key.clone(), purpose);
        key
    }

    /// Sends a request outside any transaction (an ACK for a 2xx).
    fn send_stateless_request(&mut self, request: Request, peer: Peer) {
        self.count_request(Direction::Out, &request.method);
        self.txn
            .send_stateless(sip::rsip::SipMessage::Request(request), peer);
    }

    fn count_request(&mut self, direction: Direction, method: &sip::rsip::Method) {
        self.messages.request(direction, method);
    }

    /// Our Via header value for a request to `peer`, with a fresh branch.
    fn via(&self, peer: Peer) -> String {
        format!(
            "SIP/2.0/{} {};branch={};rport",
            peer.transport.via_token(),
            self.local_names.host_port(peer.transport),
            self.ids.branch()
        )
    }

    /// Our Contact for a dialog with `peer`.
    fn contact(&self, transport: Transport) -> String {
        self.local_names.contact(transport).to_owned()
    }

    /// Runs the ACD's actions, and any actions those produce, to completion.
    fn apply_acd(&mut self, now: Instant, actions: Vec<acd::Action>) {
        let mut work: VecDeque<acd::Action> = actions.into();
        while let Some(action) = work.pop_front() {
            let more = self.apply_one(now, action);
            work.extend(more);
        }
    }

    fn apply_one(&mut self, now: Instant, action: acd::Action) -> Vec<acd::Action> {
        match action {
            acd::Action::Offer { call, agent, .. } if self.is_callback(call.0) => {
                return self.preview_callback(now, call.0, agent)
            }
            acd::Action::Timeout { call, .. } | acd::Action::Rejected { call, .. }
                if self.is_callback(call.0) =>
            {
                let rejected = matches!(action, acd::Action::Rejected { .. });
                self.callback_left_queue(now, call.0, rejected)
            }
            acd::Action::Overflow { call, to, .. } if self.is_callback(call.0) => {
                if let Some(callback) = self.callbacks.get_mut(call.0) {
                    callback.queue = to.to_string();
                }
            }
            acd::Action::Offer { call, agent, .. } => return self.offer(now, call.0, agent),
            acd::Action::SetTimer { timer, at } => {
                self.timers.schedule(at, SwitchTimer::Acd(timer))
            }
            acd::Action::Timeout { call, .. } => {
                self.end_call(now, call.0, b2bua::EndCause::QueueTimeout)
            }
            acd::Action::Overflow { call, to, .. } => {
                let to = to.to_string();
                self.call_input(now, call.0, call::CallInput::Overflowed { to });
            }
            acd::Action::Rejected { call, reason, .. } => self.end_call(
                now,
                call.0,
                b2bua::EndCause::QueueFull(format!("{reason:?}")),
            ),
            acd::Action::Event(event) => {
                self.publish_cti(now, &event);
                match event {
                    acd::AcdEvent::AgentStateChanged {
                        agent,
                        from,
                        to,
                        duration_in_previous,
                        ..
                    } => {
                        self.record_agent_state(now, &agent, &from, &to, duration_in_previous);
                        if to == acd::AgentState::Ready {
                            // A free agent may take the next campaign contact.
                            self.feed_campaigns(now);
                        }
                        return self.forget_retired_agent(now, &agent, &to);
                    }
                    event => tracing::debug!(?event, "acd event"),
                }
            }
        }
        Vec::new()
    }

    fn expire_registrations(&mut self, now: Instant) {
        for aor in self.registrar.expire(now) {
            self.agent_offline(now, &aor);
        }
        self.schedule_registrar_timer();
    }

    fn schedule_registrar_timer(&mut self) {
        if let Some(at) = self.registrar.poll_timeout() {
            self.timers.schedule(at, SwitchTimer::Registrations);
        }
    }
}

/// The Warning text of every refusal a drain causes (new calls, health probes).
const DRAINING_REASON: &str = "server is draining for shutdown";

/// Methods Switchboard accepts.
const ALLOW: &str = "INVITE, ACK, CANCEL, BYE, OPTIONS, UPDATE, INFO, REGISTER, REFER";

/// Whether a number is plausible to dial (digits, optional leading `+`).
pub fn is_dialable(number: &str) -> bool {
    outbound::route::is_dialable(number)
}

/// A duration in whole seconds, for CDR and API fields.
fn duration_secs(d: Duration) -> u32 {
    u32::try_from(d.as_secs()).unwrap_or(u32::MAX)
}

/// Building a `Switch` for unit tests.
#[cfg(test)]
pub(crate) mod testing {
    use super::*;

    /// A switch over `config` listening on 127.0.0.1:5060, with the built-in prompts.
    pub(crate) fn switch(
        now: Instant,
        config: Arc<Config>,
        emergency: Arc<crate::emergency::EmergencyBoard>,
    ) -> Switch {
        let acd = Arc::new(crate::runtime::build_acd(&config).expect("test ACD"));
        Switch::new(
            config.clone(),
            LocalAddresses {
                udp: Some("127.0.0.1:5060".parse().expect("addr")),
                tcp: None,
                tls: None,
                ws: None,
                wss: None,
                public_host: None,
            },
            SharedState {
                acd,
                stats: Arc::new(SwitchStats::default()),
                metrics: Arc::new(Metrics::new(&config)),
                prompts: Arc::new(
                    crate::prompt_library::PromptLibrary::load(None, &["en".to_owned()])
                        .expect("the built-in prompts always load"),
                ),
                emergency,
                gate: Arc::new(crate::security::gate::Gate::new(
                    &config,
                    prometheus::IntCounterVec::new(
                        prometheus::Opts::new("test_security_events", "test"),
                        &["event"],
                    )
                    .expect("valid metric"),
                )),
                audit: crate::audit::AuditLog::disabled(),
                events: Arc::new(crate::web::events::EventHub::new()),
            },
            ids::IdSource::seeded(0x5b),
            now,
            1_800_000_000,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use transport::{Inbound, Payload};

    /// DID 101 rings the agents of queue `support` (the trunk is answered only by an agent).
    const RINGING: &str = "[sip]\nlisten_udp = [\"127.0.0.1:5060\"]\n\
        [[trunk]]\nname = \"t\"\nallow = [\"127.0.0.0/8\"]\n\
        [[number]]\ndid = \"101\"\nqueue = \"support\"\n\
        [[queue]]\nname = \"support\"\nskills = { support = 1 }\n";

    fn switch(now: Instant) -> Switch {
        let config = crate::config::load_str("t.toml", RINGING).expect("valid test config");
        testing::switch(now, Arc::new(config), Default::default())
    }

    fn invite(received: Instant) -> Inbound {
        let text = "INVITE sip:101@127.0.0.1 SIP/2.0\r\n\
Via: SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bKoverload;rport\r\n\
Max-Forwards: 70\r\nTo: <sip:101@127.0.0.1>\r\nFrom: <sip:2000@127.0.0.1>;tag=a\r\n\
Call-ID: overload-1\r\nCSeq: 1 INVITE\r\nContact: <sip:2000@127.0.0.1:5999>\r\n\
Content-Length: 0\r\n\r\n";
        Inbound {
            source: Peer::udp("127.0.0.1:5999".parse().expect("addr")),
            local: "127.0.0.1:5060".parse().expect("addr"),
            payload: Payload::Message(sip::parse::parse(text.as_bytes()).expect("valid")),
            received,
        }
    }

    fn sent(switch: &mut Switch) -> Vec<String> {
        std::iter::from_fn(|| switch.poll_transmit())
            .map(|t| String::from_utf8_lossy(&t.data).into_owned())
            .collect()
    }

    #[test]
    fn a_core_that_fell_behind_refuses_new_calls_with_503_retry_after() {
        let now = Instant::now();
        let mut switch = switch(now);
        // The INVITE waited two seconds between the socket and the core.
        switch.handle_inbound(now + Duration::from_secs(2), invite(now));
        let out = sent(&mut switch);
        let refusal = out
            .iter()
            .find(|m| m.starts_with("SIP/2.0 503"))
            .unwrap_or_else(|| panic!("no 503 in {out:?}"));
        assert!(refusal.contains("Retry-After: 5\r\n"), "{refusal}");
        assert!(
            refusal.contains("Warning: 399 switchboard \"overloaded"),
            "{refusal}"
        );
        assert_eq!(switch.active_calls(), 0);
    }

    #[test]
    fn a_prompt_invite_is_routed_and_its_final_response_waits_for_the_cdr() {
        let now = Instant::now();
        let mut switch = switch(now);
        switch.handle_inbound(now, invite(now));
        let out = sent(&mut switch);
        assert!(out.iter().all(|m| !m.starts_with("SIP/2.0 503")), "{out:?}");
        assert!(out.iter().any(|m| m.starts_with("SIP/2.0 100")), "{out:?}");
        // No agent is logged in in the bare demo: the call ends with 480, but that final
        // response waits until the call's CDR is durable.
        assert!(out.iter().all(|m| !m.starts_with("SIP/2.0 480")), "{out:?}");
        let mut tokens = Vec::new();
        while let Some((record, token)) = switch.poll_cdr() {
            assert!(matches!(record, ::cdr::Record::Call(_)), "{record:?}");
            tokens.push(token);
        }
        assert_eq!(tokens.len(), 1);
        switch.cdr_durable(now, &tokens);
        let out = sent(&mut switch);
        assert!(out.iter().any(|m| m.starts_with("SIP/2.0 480")), "{out:?}");
    }
}
