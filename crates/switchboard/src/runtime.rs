//! The I/O edge: binds the transports, runs the call-control state machine on one task (on a
//! thread of its own that also reads the SIP UDP sockets), and turns its outputs into socket
//! writes and a single timer.

use crate::cdr_writer::{CdrSinks, CdrStats, CdrWriter};
use crate::config::Config;
use crate::emergency::EmergencyBoard;
use crate::http::{AgentCommand, CallCommand};
use crate::metrics::Metrics;
use crate::prompt_library::PromptLibrary;
use crate::switch::media_plane::MediaOp;
use crate::switch::SharedState;
use crate::switch::{LocalAddresses, Switch, SwitchStats};
use crate::tls_certificates::LoadedCertificate;
use acd::Acd;
use anyhow::Context;
use media::{MediaCommand, MediaEvent, MediaSession, MediaWorkers, RecorderMetrics, RecorderPool};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::mpsc;
use transport::{TransportConfig, Transports};

/// How many received messages the core takes per wake-up before it sends what it has.
const BATCH: usize = 64;

/// Messages that may wait for the core; past this, UDP datagrams are dropped (and counted).
const INBOUND_QUEUE: usize = 65_536;

/// Everything a running node shares with its HTTP side.
pub struct Node {
    /// The ACD (lock-free; read by the API directly).
    pub acd: Arc<Acd>,
    /// Call-control counters.
    pub stats: Arc<SwitchStats>,
    /// The Prometheus exporter.
    pub metrics: Arc<Metrics>,
    /// The CDR writer's counters.
    pub cdr: Arc<CdrStats>,
    /// Emergency announcements per DID, switched on over the API.
    pub emergency: Arc<EmergencyBoard>,
    /// Sources banned for failed authentications (`/api/bans`).
    pub bans: crate::security::gate::SharedBans,
    /// The transports (for their counters and bound addresses).
    pub transports: Transports,
    /// The security log and its counters (refused API tokens are logged there).
    pub gate: Arc<crate::security::gate::Gate>,
    /// The audit log next to the CDRs.
    pub audit: crate::audit::AuditLog,
    /// CTI events and today's tallies (the web pages and `/api/events`).
    pub events: Arc<crate::web::events::EventHub>,
    /// The configuration in force (a reload replaces it).
    pub config: Arc<crate::reload::LiveConfig>,
    /// Where `POST /api/reload` sends its request.
    pub reload: mpsc::Sender<crate::reload::ReloadRequest>,
}

/// Builds the ACD from configuration.
pub fn build_acd(config: &Config) -> anyhow::Result<Acd> {
    let acd = Acd::new(crate::acd_config::acd_config(config)).context("ACD configuration")?;
    let now = Instant::now();
    for agent in crate::acd_config::agent_configs(config) {
        acd.upsert_agent(now, agent).context("ACD agent")?;
    }
    Ok(acd)
}

/// Runs Switchboard until `shutdown` resolves, then drains and returns. Without a file to
/// re-read, a reload is refused.
pub async fn run(
    config: Config,
    shutdown: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    run_from_file(config, None, shutdown).await
}

/// Runs Switchboard with `config`, loaded from `path` (what a reload re-reads).
pub async fn run_from_file(
    config: Config,
    path: Option<std::path::PathBuf>,
    shutdown: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    let config = Arc::new(config);
    let fd_limit = crate::security::connection_limits::raise_fd_limit();
    tracing::info!(
        fd_limit,
        rtp_sockets = crate::security::connection_limits::rtp_sockets(&config),
        max_connections =
            crate::security::connection_limits::stream_limits(&config).max_connections,
        "file descriptors: the RTP range is reserved; SIP streams and HTTP are capped at this each"
    );
    if fd_limit < crate::security::connection_limits::rtp_sockets(&config) + 512 {
        tracing::warn!(
            fd_limit,
            "RLIMIT_NOFILE is smaller than the RTP port range needs: raise LimitNOFILE (systemd) or ulimit -n, or narrow media.rtp_port_min..rtp_port_max"
        );
    }
    let mut certificates = Certificates::load(&config)?;
    let core_thread = CoreThread::spawn()?;
    let (inbound_tx, inbound_rx) = mpsc::channel(INBOUND_QUEUE);
    let metrics = Arc::new(Metrics::new(&config));
    let gate = Arc::new(crate::security::gate::Gate::new(
        &config,
        metrics.security_events.clone(),
    ));
    let (client_cas, extra_cas) = crate::tls_trust::load(&config)?;
    let tls_connector = Arc::new(
        transport::TlsConnector::new(extra_cas.as_deref())
            .context("the TLS client configuration")?,
    );
    certificates.own = Some(crate::tls_client_certificate::OwnCertificate::load(
        config.sip.tls_client_certificate.clone(),
        tls_connector.clone(),
    )?);
    let transports = Transports::start_placed(
        TransportConfig {
            udp: config.sip.listen_udp.clone(),
            tcp: config.sip.listen_tcp.clone(),
            tls: config.sip.listen_tls.clone(),
            ws: config.sip.listen_ws.clone(),
            wss: config.sip.listen_wss.clone(),
            tls_identity: certificates.sip.as_ref().map(|c| c.identity.clone()),
            tls_client_roots: client_cas,
            tls_connector: Some(tls_connector),
            max_message_bytes: config.sip.max_message_bytes,
            idle_timeout: config.security.idle_timeout,
            limits: crate::security::connection_limits::stream_limits(&config),
        },
        inbound_tx,
        Some(gate.clone()),
        core_thread.runtime.clone(),
    )
    .await
    .context("binding SIP listeners")?;
    certificates.trust = Some(crate::tls_trust::TrustFiles::new(
        &config,
        transports.clone(),
    ));
    for (gateway, route) in crate::tls_routes::gateway_routes(&config) {
        transports.route_tls(gateway, Some(route));
    }
    let acd = Arc::new(build_acd(&config)?);
    let stats = Arc::new(SwitchStats::default());
    let (durable_tx, durable_rx) = mpsc::unbounded_channel::<Vec<u64>>();
    let sinks = CdrSinks {
        dir: &config.cdr.dir,
        csv: config.cdr.csv,
        postgres_url: config.cdr.postgres_url.as_deref(),
        node: config.cdr.node.as_deref(),
    };
    let cdr = CdrWriter::start(sinks, durable_tx, metrics.cdr_errors.clone())
        .with_context(|| format!("opening the CDR directory {}", config.cdr.dir.display()))?;
    let local = LocalAddresses {
        udp: transports.udp_addrs().first().copied(),
        tcp: transports.tcp_addrs().first().copied(),
        tls: transports.tls_addrs().first().copied(),
        ws: transports.ws_addrs().first().copied(),
        wss: transports.wss_addrs().first().copied(),
        public_host: config.sip.public_address.clone(),
    };
    let unix_now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let prompts = Arc::new(
        PromptLibrary::load(
            config.media.prompts_dir.as_deref(),
            &prompt_languages(&config),
        )
        .context("loading prompts")?,
    );
    // Kept with the node's other lasting data (the CDR directory exists by now).
    let emergency = Arc::new(EmergencyBoard::open(
        &config.cdr.dir.join("emergency.json"),
    )?);
    let shipping = match &config.cdr.postgres_url {
        Some(url) => Some(crate::audit::Shipping {
            table: cdr::audit_table::AuditTable::new(
                &cdr::PostgresConfig::new(url.as_str())
                    .with_node(crate::cdr_writer::node_name(config.cdr.node.as_deref())),
            )
            .context("the audit log's PostgreSQL connection")?,
            failures: metrics.audit_postgres_failures.clone(),
        }),
        None => None,
    };
    let audit =
        crate::audit::AuditLog::start(&config.cdr.dir, metrics.audit_errors.clone(), shipping)
            .with_context(|| format!("starting the audit log in {}", config.cdr.dir.display()))?;
    let (media_tx, media_rx) = mpsc::unbounded_channel();
    let media = MediaSessions::new(
        media_tx,
        metrics.clone(),
        media::worker_count(config.media.workers.map(usize::from)),
    )?;
    let events = Arc::new(crate::web::events::EventHub::new());
    let mut switch = Switch::new(
        config.clone(),
        local,
        SharedState {
            acd: acd.clone(),
            stats: stats.clone(),
            metrics: metrics.clone(),
            prompts: prompts.clone(),
            emergency: emergency.clone(),
            gate: gate.clone(),
            audit: audit.clone(),
            events: events.clone(),
        },
        crate::switch::IdSource::from_entropy(),
        Instant::now(),
        unix_now,
    );
    // Ports are bound when call control takes them for a call, so a port another process
    // holds is passed over before any SDP names it (and cannot be taken after).
    switch.hold_ports_with(Box::new(media.workers.sockets().clone()));
    let live_config = Arc::new(crate::reload::LiveConfig::new(
        config.clone(),
        prompts.clone(),
    ));
    let (reload_tx, reload_rx) = mpsc::channel::<crate::reload::ReloadRequest>(8);
    let (core_reload_tx, core_reload_rx) = mpsc::channel::<crate::reload::CoreReload>(1);
    restore_sticky_routing(&mut switch, &config);
    let callback_journal = crate::callback_journal::path(&config.cdr.dir);
    switch.restore_callbacks(
        Instant::now(),
        crate::callback_journal::load(&callback_journal),
    );
    let callback_writer = crate::callback_journal::spawn_writer(callback_journal);
    let (lookup_tx, lookup_rx) = mpsc::unbounded_channel();
    let lookups = config
        .lookup
        .clone()
        .map(|lookup| crate::caller_lookup::client::LookupClient::new(lookup, metrics.clone()));
    switch.use_client_certificates(transports.client_certificates());
    if let Some(path) = &config.outbound.dnc_file {
        switch.use_do_not_call(crate::do_not_call::load(path).map_err(anyhow::Error::msg)?);
    }
    let campaign_journal = crate::campaign_journal::path(&config.cdr.dir);
    switch.restore_campaigns(
        Instant::now(),
        crate::campaign_journal::load(&campaign_journal),
    );
    let campaign_writer = crate::campaign_journal::spawn_writer(campaign_journal);
    let node = Arc::new(Node {
        config: live_config.clone(),
        reload: reload_tx,
        acd,
        stats,
        metrics: metrics.clone(),
        cdr: cdr.stats.clone(),
        transports: transports.clone(),
        emergency,
        bans: switch.bans(),
        gate,
        audit: audit.clone(),
        events,
    });
    let (command_tx, command_rx) = mpsc::channel::<AgentCommand>(256);
    let (calls_tx, calls_rx) = mpsc::channel::<CallCommand>(64);
    let http = crate::http::serve(
        config.clone(),
        node.clone(),
        command_tx,
        calls_tx,
        certificates.http.as_ref().map(|c| c.identity.clone()),
    )
    .await?;
    let reloader = crate::reload::Reloader {
        path,
        live: live_config,
        core: core_reload_tx,
        certificates: Box::new(certificates),
        audit: audit.clone(),
        metrics: metrics.clone(),
        gate: node.gate.clone(),
        history: crate::reload::ReloadHistory::default(),
    };
    tokio::spawn(reloader.run(reload_rx));
    tracing::info!(
        udp = ?transports.udp_addrs(),
        tcp = ?transports.tcp_addrs(),
        tls = ?transports.tls_addrs(),
        ws = ?transports.ws_addrs(),
        wss = ?transports.wss_addrs(),
        http = %http,
        "switchboard ready"
    );

    core_thread
        .run(
            CallControl {
                switch,
                media,
                cdr,
                transports,
                inbound: inbound_rx,
                durable: durable_rx,
                media_events: media_rx,
                agent_commands: command_rx,
                call_commands: calls_rx,
                reloads: core_reload_rx,
                lookups,
                lookup_tx,
                lookup_rx,
                callback_writer,
                campaign_writer,
                drain_timeout: config.sip.drain_timeout,
            },
            shutdown,
        )
        .await
}

/// Call control's own thread, with a single-threaded runtime that also reads the SIP UDP
/// sockets: a datagram is received, parsed and handled on this thread without crossing to
/// another (the hand-over between threads cost about a sixth of a call's CPU; docs/scaling.md
/// "call control and the UDP transport on one thread"). The HTTP API, the WebSocket events and
/// the stream transports stay on the process's multi-threaded runtime, so a scan of the API
/// or a TLS handshake never stalls call control.
struct CoreThread {
    /// The thread's runtime (the UDP sockets are registered with it).
    runtime: tokio::runtime::Handle,
    /// Hands call control to the thread, which runs it until drained.
    start: tokio::sync::oneshot::Sender<(CallControl, tokio::sync::oneshot::Receiver<()>)>,
    /// Resolves when the thread is done (an error if it panicked).
    done: tokio::sync::oneshot::Receiver<()>,
}

impl CoreThread {
    /// Starts the thread; it waits for [`CoreThread::run`] and ends at once if the node fails
    /// to start before that (its runtime is then dropped there, outside any async context).
    fn spawn() -> anyhow::Result<Self> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("starting call control's runtime")?;
        let handle = runtime.handle().clone();
        let (start, started) =
            tokio::sync::oneshot::channel::<(CallControl, tokio::sync::oneshot::Receiver<()>)>();
        let (finished, done) = tokio::sync::oneshot::channel();
        std::thread::Builder::new()
            .name("call-control".to_owned())
            .spawn(move || {
                runtime.block_on(async move {
                    if let Ok((core, stop)) = started.await {
                        core.run(stop).await;
                    }
                });
                // Dropped before the node is told, so the UDP sockets' receive tasks are gone.
                drop(runtime);
                let _ = finished.send(());
            })
            .context("starting call control's thread")?;
        Ok(Self {
            runtime: handle,
            start,
            done,
        })
    }

    /// Runs `core` on the thread until it has drained after `shutdown` resolved.
    async fn run(
        self,
        core: CallControl,
        shutdown: impl std::future::Future<Output = ()>,
    ) -> anyhow::Result<()> {
        let (stop, stopped) = tokio::sync::oneshot::channel();
        if self.start.send((core, stopped)).is_err() {
            anyhow::bail!("call control's thread ended before it started");
        }
        let mut done = self.done;
        tokio::select! {
            finished = &mut done => return finished.context("call control stopped unexpectedly"),
            () = shutdown => {
                let _ = stop.send(());
            }
        }
        done.await.context("call control stopped unexpectedly")
    }
}

/// Call control and what it drives: the state machine, its input channels, and the edges it
/// writes to (sockets, media sessions, CDRs, journals).
struct CallControl {
    switch: Switch,
    media: MediaSessions,
    cdr: CdrWriter,
    transports: Transports,
    inbound: mpsc::Receiver<transport::Inbound>,
    durable: mpsc::UnboundedReceiver<Vec<u64>>,
    media_events: mpsc::UnboundedReceiver<(u64, MediaEvent)>,
    agent_commands: mpsc::Receiver<AgentCommand>,
    call_commands: mpsc::Receiver<CallCommand>,
    reloads: mpsc::Receiver<crate::reload::CoreReload>,
    lookups: Option<crate::caller_lookup::client::LookupClient>,
    lookup_tx: mpsc::UnboundedSender<crate::caller_lookup::client::Finished>,
    lookup_rx: mpsc::UnboundedReceiver<crate::caller_lookup::client::Finished>,
    callback_writer:
        tokio::sync::watch::Sender<Vec<crate::switch::callback::book::PendingCallback>>,
    campaign_writer: tokio::sync::watch::Sender<Vec<crate::switch::campaign::SavedCampaign>>,
    drain_timeout: std::time::Duration,
}

impl CallControl {
    /// Handles events until the inbound queue closes or, once `stop` resolves, the calls in
    /// progress have drained.
    async fn run(self, stop: tokio::sync::oneshot::Receiver<()>) {
        let CallControl {
            mut switch,
            mut media,
            cdr,
            transports,
            mut inbound,
            mut durable,
            mut media_events,
            mut agent_commands,
            mut call_commands,
            mut reloads,
            mut lookups,
            lookup_tx,
            mut lookup_rx,
            callback_writer,
            campaign_writer,
            drain_timeout,
        } = self;
        tokio::pin!(stop);
        let mut shutting_down = false;
        // Whether a batch left messages in the queue: the UDP receive task (on this thread)
        // then gets its turn before the next batch (below).
        let mut behind = false;
        let sleep = tokio::time::sleep(std::time::Duration::from_secs(3600));
        tokio::pin!(sleep);
        loop {
            if let Some(at) = switch.poll_timeout() {
                sleep.as_mut().reset(tokio::time::Instant::from_std(at));
            } else {
                sleep
                    .as_mut()
                    .reset(tokio::time::Instant::now() + std::time::Duration::from_secs(3600));
            }
            tokio::select! {
                received = inbound.recv() => {
                    let Some(message) = received else { break };
                    let now = Instant::now();
                    // Overload control refuses new calls by the depth of this queue.
                    switch.note_inbound_backlog(inbound.len());
                    switch.handle_inbound(now, message);
                    behind = true;
                    for _ in 0..BATCH {
                        match inbound.try_recv() {
                            Ok(more) => {
                                switch.note_inbound_backlog(inbound.len());
                                // Each message's own time: how long it waited is what tells a
                                // standing queue from a burst (switch/standing_queue.rs), and the
                                // batch's start would understate it by the batch's work.
                                switch.handle_inbound(Instant::now(), more)
                            }
                            Err(_) => {
                                behind = false;
                                break;
                            }
                        }
                    }
                }
                () = &mut sleep => switch.handle_timeout(Instant::now()),
                Some(tokens) = durable.recv() => switch.cdr_durable(Instant::now(), &tokens),
                Some((call, event)) = media_events.recv() => {
                    let now = Instant::now();
                    media.observe(call, &event);
                    switch.handle_media_event(now, call, event);
                    // Batched like inbound messages: a session's `Ended` gives its call's ports
                    // back, and one event per wake-up against 65 messages let those events fall
                    // behind under load until the port range ran out (issue 12, docs/scaling.md).
                    for _ in 0..BATCH {
                        match media_events.try_recv() {
                            Ok((call, event)) => {
                                media.observe(call, &event);
                                switch.handle_media_event(now, call, event);
                            }
                            Err(_) => break,
                        }
                    }
                }
                Some(command) = agent_commands.recv() => {
                    let outcome = switch.set_agent_state(Instant::now(), &command.agent, command.state);
                    let _ = command.reply.send(outcome);
                }
                Some(reload) = reloads.recv() => {
                    for (gateway, route) in crate::tls_routes::gateway_routes(&reload.config) {
                        transports.route_tls(gateway, Some(route));
                    }
                    switch.reload(Instant::now(), reload.config, &reload.changes, reload.prompts);
                    let _ = reload.applied.send(());
                }
                Some(command) = call_commands.recv() => match command {
                    CallCommand::List { reply } => {
                        let _ = reply.send(switch.live_calls(Instant::now()));
                    }
                    CallCommand::Act { call, action, reply } => {
                        let _ = reply.send(switch.act_on_call(Instant::now(), call, action));
                    }
                    CallCommand::Campaign { command, reply } => {
                        let _ = reply.send(switch.campaign_command(Instant::now(), command));
                    }
                    CallCommand::Callbacks { reply } => {
                        let _ = reply.send(switch.callbacks(Instant::now()));
                    }
                },
                Some(finished) = lookup_rx.recv() => {
                    let now = Instant::now();
                    let answer = lookups.as_mut().and_then(|client| client.finished(now, finished));
                    if let Some((call, info)) = answer {
                        switch.caller_looked_up(now, call, info);
                    }
                }
                _ = &mut stop, if !shutting_down => {
                    shutting_down = true;
                    switch.begin_drain(Instant::now(), drain_timeout);
                }
            }
            while let Some(request) = switch.poll_lookup() {
                let Some(client) = lookups.as_mut() else {
                    break;
                };
                let call = request.call;
                if let Some(cached) = client.start(Instant::now(), request, &lookup_tx) {
                    switch.caller_looked_up(Instant::now(), call, cached);
                }
            }
            while let Some((record, token)) = switch.poll_cdr() {
                cdr.write(record, token);
            }
            if let Some(pending) = switch.poll_callback_journal(Instant::now()) {
                callback_writer.send_replace(pending);
            }
            if let Some(campaigns) = switch.poll_campaign_journal(Instant::now()) {
                campaign_writer.send_replace(campaigns);
            }
            while let Some(op) = switch.poll_media() {
                if let Err(RecordingFailed { call, error }) = media.apply(op) {
                    switch.recording_failed(call, &error)
                }
            }
            media.workers.flush_starts();
            while let Some(transmit) = switch.poll_transmit() {
                transports.send(transmit);
            }
            while let Some((peer, until)) = switch.poll_connection_pin() {
                transports.keep_connection(peer, until);
            }
            while let Some((peer, route)) = switch.poll_tls_route() {
                transports.route_tls(peer, route);
            }
            if shutting_down && switch.is_drained() {
                break;
            }
            if std::mem::take(&mut behind) {
                // Lets the runtime poll the sockets, so the UDP receive task moves what waits in
                // the kernel's buffer into the queue. Without this, tokio's cooperative budget
                // held this task for some 128 batches (8 000 messages, 200 ms at capacity)
                // while datagrams piled up unseen: overload control reads the queue's depth
                // and each message's wait since it was read, and past capacity INVITE→180 p99
                // rose to 126 ms against 32 ms with the transports on other threads.
                tokio::task::yield_now().await;
            }
        }
        media.stop_all();
        cdr.stop();
        tracing::info!("drained; exiting");
    }
}

/// Rebuilds sticky routing's memory of who answered whom from the CDR files.
fn restore_sticky_routing(switch: &mut Switch, config: &Config) {
    let (index, stats) = crate::sticky_routing::rebuild(
        &config.cdr.dir,
        &config.acd,
        time::OffsetDateTime::now_utc(),
    );
    tracing::info!(
        callers = index.len(),
        files = stats.files,
        answered_calls = stats.answered_calls,
        unreadable_lines = stats.unreadable_lines,
        "sticky routing rebuilt from the CDRs"
    );
    switch.restore_sticky(index);
}

/// The certificates of the SIP TLS and HTTPS listeners, reloaded together on SIGHUP.
struct Certificates {
    sip: Option<Arc<LoadedCertificate>>,
    http: Option<Arc<LoadedCertificate>>,
    demo_dir: std::path::PathBuf,
    /// The CA files of SIP over TLS, once the transports run.
    trust: Option<crate::tls_trust::TrustFiles>,
    /// Our client certificate for TLS connections we open, once loaded.
    own: Option<crate::tls_client_certificate::OwnCertificate>,
}

impl Certificates {
    fn load(config: &Config) -> anyhow::Result<Self> {
        let demo_dir = crate::tls_certificates::demo_dir(&config.cdr.dir);
        let load = |source: &Option<crate::config::TlsCertificate>, label| {
            source
                .as_ref()
                .map(|source| LoadedCertificate::load(source, label, &demo_dir).map(Arc::new))
                .transpose()
        };
        Ok(Self {
            sip: load(&config.sip.tls, "SIP").context("SIP TLS certificate")?,
            http: load(&config.http.tls, "HTTPS").context("HTTPS certificate")?,
            demo_dir: demo_dir.clone(),
            trust: None,
            own: None,
        })
    }
}

impl crate::reload::CertificateReload for Certificates {
    /// Re-reads the certificate files (certbot's deploy hook sends SIGHUP); each reload is
    /// audited (who = the node itself).
    fn reload_certificates(&self, audit: &crate::audit::AuditLog) {
        let trust = self.trust.as_ref().filter(|trust| !trust.is_empty());
        let reloads = self
            .sip
            .iter()
            .chain(&self.http)
            .map(|certificate| (certificate.label(), certificate.reload(&self.demo_dir)))
            .chain(trust.map(|trust| ("SIP CA", trust.reload())))
            .chain(
                self.own
                    .as_ref()
                    .filter(|own| own.is_set())
                    .map(|own| ("SIP client", own.reload())),
            );
        for (label, reloaded) in reloads {
            audit.record(crate::audit::AuditRecord::now(
                crate::audit::Who {
                    role: Some("system".to_owned()),
                    ..Default::default()
                },
                None,
                "certificates-reload",
                Some(label.to_owned()),
                if reloaded { "ok" } else { "failed" },
            ));
        }
    }
}

/// Every prompt language the configuration can ask for, the default `en` first.
pub(crate) fn prompt_languages(config: &Config) -> Vec<String> {
    let mut languages = vec!["en".to_owned()];
    let named = config
        .ivrs
        .iter()
        .map(|ivr| ivr.language.clone())
        .chain(config.numbers.iter().filter_map(|n| n.language.clone()))
        .chain(config.ivrs.iter().flat_map(|ivr| {
            ivr.menus
                .iter()
                .flat_map(|m| m.keys.values().flatten().chain(&m.on_failure))
                .chain(&ivr.closed)
                .filter_map(|step| match step {
                    crate::config::IvrStep::Language(language) => Some(language.clone()),
                    _ => None,
                })
                .collect::<Vec<_>>()
        }));
    for language in named {
        if !languages.contains(&language) {
            languages.push(language);
        }
    }
    languages
}

/// A recording that could not be started: its file could not be created.
struct RecordingFailed {
    call: u64,
    error: String,
}

/// The running media sessions, by call: the I/O side of [`crate::switch::media_plane`].
/// Sessions run on their own worker threads, never on this runtime (issue 12).
struct MediaSessions {
    sessions: HashMap<u64, MediaSession>,
    workers: MediaWorkers,
    events: mpsc::UnboundedSender<(u64, MediaEvent)>,
    metrics: Arc<Metrics>,
    recorder: RecorderPool,
}

impl MediaSessions {
    fn new(
        events: mpsc::UnboundedSender<(u64, MediaEvent)>,
        metrics: Arc<Metrics>,
        workers: usize,
    ) -> anyhow::Result<Self> {
        Ok(MediaSessions {
            sessions: HashMap::new(),
            workers: MediaWorkers::start(workers).context("starting the media worker threads")?,
            events,
            metrics,
            recorder: RecorderPool::new(1, Arc::new(RecorderMetrics::default()))
                .context("starting the recording writer")?,
        })
    }

    /// Carries out one operation.
    fn apply(&mut self, op: MediaOp) -> Result<(), RecordingFailed> {
        match op {
            MediaOp::Start(config) => {
                let call = config.id;
                // Handed to its worker by `flush_starts` after this round of operations; a
                // session that cannot bind its ports reports `StartFailed`.
                let session = self.workers.start_session(config, self.events.clone());
                self.sessions.insert(call, session);
                self.metrics.media_sessions.set(self.sessions.len() as i64);
            }
            MediaOp::Command { call, command } => {
                if let Some(session) = self.sessions.get(&call) {
                    session.command(command);
                }
            }
            MediaOp::Record { call, path } => {
                let Some(session) = self.sessions.get(&call) else {
                    return Ok(());
                };
                // The folder and the file are created by the recorder's writer thread, off
                // this task; a failure there comes back in the session's final report.
                match self.recorder.start(&path).map_err(|e| e.to_string()) {
                    Ok(recording) => session.command(MediaCommand::Record(recording)),
                    Err(error) => return Err(RecordingFailed { call, error }),
                }
            }
            MediaOp::Stop { call } => {
                if let Some(session) = self.sessions.get(&call) {
                    session.stop();
                }
            }
        }
        Ok(())
    }

    /// Forgets a session once it reports its end (its sockets are given back by then) or
    /// that it could not start.
    fn observe(&mut self, call: u64, event: &MediaEvent) {
        if matches!(event, MediaEvent::Ended(_) | MediaEvent::StartFailed { .. }) {
            self.sessions.remove(&call);
            self.metrics.media_sessions.set(self.sessions.len() as i64);
        }
    }

    fn stop_all(&mut self) {
        for session in self.sessions.values() {
            session.stop();
        }
    }
}
