//! The Prometheus exporter. Counters and histograms are updated where things happen (the core
//! task); gauges that describe current state (queues, agents, transactions) are read from the
//! lock-free ACD and the core's counters when `/metrics` is scraped, so nothing polls.
//! Every name is listed with its meaning in docs/metrics.md.

use crate::config::Config;
use crate::runtime::Node;
use prometheus::{
    Encoder, Gauge, GaugeVec, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};
use std::sync::atomic::Ordering;
use std::time::Instant;

/// Every metric Switchboard exports.
pub struct Metrics {
    registry: Registry,
    /// Calls accepted from a trunk and routed to a queue.
    pub calls_offered: IntCounterVec,
    /// Calls connected to an agent.
    pub calls_answered: IntCounterVec,
    /// Agents' calls out by how they ended (`answered`, `forbidden`, `unroutable`, `limit`,
    /// `failed`, `cancelled`).
    pub outbound_calls: IntCounterVec,
    /// Calls the caller left before an agent answered.
    pub calls_abandoned: IntCounterVec,
    /// Calls refused or ended by Switchboard before an answer, by reason.
    pub calls_rejected: IntCounterVec,
    /// Transfers asked for by agents, by kind and result.
    pub transfers: IntCounterVec,
    /// Caller lookups (`[lookup]`), by result: ok, timeout, error, invalid, cached.
    pub lookups: IntCounterVec,
    /// Time from arrival to answer, of answered calls.
    pub wait_seconds: HistogramVec,
    /// Time from arrival to leaving, of abandoned calls.
    pub abandon_wait_seconds: HistogramVec,
    /// Talk time of answered calls.
    pub talk_seconds: HistogramVec,
    /// SIP requests by direction and method.
    pub sip_requests: IntCounterVec,
    /// SIP responses by direction and status code.
    pub sip_responses: IntCounterVec,
    /// Messages refused as malformed or oversized.
    pub sip_malformed: IntCounter,
    /// CDR journal or sink errors.
    pub cdr_errors: IntCounter,
    /// Calls hung up because a leg sent no RTP for the media timeout.
    pub media_timeouts: IntCounter,
    /// RTP port pairs found held by another socket when a session bound them.
    pub rtp_ports_busy: IntCounter,
    /// Media sessions running now.
    pub media_sessions: IntGauge,
    /// SRTP/SRTCP packets dropped: failed authentication (wrong key, tampered), replays;
    /// by stream (`rtp`, `rtcp`).
    pub srtp_auth_failures: IntCounterVec,
    /// Recordings that failed (disk full, unwritable directory).
    pub recording_errors: IntCounter,
    /// Security events (auth failures, bans, drops, refused connections), by event.
    pub security_events: IntCounterVec,
    /// Registrations of an agent from an address it had not used before, by agent.
    pub agent_new_source: IntCounterVec,
    /// API requests refused for a missing or unknown bearer token, by reason.
    pub api_auth_failures: IntCounterVec,
    /// Audit records that could not be written.
    pub audit_errors: IntCounter,
    /// Configuration reloads, by result (`applied`, `refused`).
    pub config_reloads: IntCounterVec,
    /// Failed attempts to ship audit records to PostgreSQL.
    pub audit_postgres_failures: IntCounter,
    cdr_backlog: IntGauge,
    cdr_unforwarded: IntGauge,
    cdr_written: IntCounter,
    queue_waiting: IntGaugeVec,
    queue_longest_wait: GaugeVec,
    agents: IntGaugeVec,
    active_calls: IntGauge,
    transactions: IntGauge,
    registrations: IntGauge,
    dropped: IntCounter,
    connections_refused: IntCounter,
    read_timeouts: IntCounter,
    tls_connect_failures: IntCounter,
    connections: IntGauge,
    websocket_connections: IntGauge,
    websocket_handshake_failures: IntCounter,
    draining: IntGauge,
    process_resident: IntGauge,
    process_cpu: Gauge,
    process_start: Gauge,
}

/// Registers a metric built from static names; both steps can only fail on a programming
/// error (an invalid or duplicate name), which the unit test below would catch.
fn register<M: prometheus::core::Collector + Clone + 'static>(
    registry: &Registry,
    metric: Result<M, prometheus::Error>,
) -> M {
    let metric = metric.expect("metric names and labels are static and valid");
    registry
        .register(Box::new(metric.clone()))
        .expect("each metric is registered once");
    metric
}

fn counter(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    register(registry, IntCounterVec::new(Opts::new(name, help), labels))
}

fn gauge(registry: &Registry, name: &str, help: &str) -> IntGauge {
    register(registry, IntGauge::new(name, help))
}

fn plain_counter(registry: &Registry, name: &str, help: &str) -> IntCounter {
    register(registry, IntCounter::new(name, help))
}

impl Metrics {
    /// Builds the registry. Wait-time buckets include every queue's service-level threshold,
    /// so service level is `bucket{le=threshold} / count` in PromQL.
    pub fn new(config: &Config) -> Self {
        let registry = Registry::new();
        let mut wait_buckets = vec![
            1.0, 2.0, 5.0, 10.0, 15.0, 20.0, 30.0, 45.0, 60.0, 90.0, 120.0, 180.0, 300.0, 600.0,
        ];
        for queue in &config.queues {
            wait_buckets.push(queue.service_level.as_secs_f64());
        }
        wait_buckets.sort_by(f64::total_cmp);
        wait_buckets.dedup();
        let histogram = |name: &str, help: &str, buckets: Vec<f64>| {
            register(
                &registry,
                HistogramVec::new(HistogramOpts::new(name, help).buckets(buckets), &["queue"]),
            )
        };
        let wait_seconds = histogram(
            "switchboard_queue_wait_seconds",
            "Seconds from arrival to answer of answered calls, per queue.",
            wait_buckets.clone(),
        );
        let abandon_wait_seconds = histogram(
            "switchboard_queue_abandon_wait_seconds",
            "Seconds from arrival until the caller left, of abandoned calls, per queue.",
            wait_buckets,
        );
        let talk_seconds = histogram(
            "switchboard_talk_seconds",
            "Talk seconds of answered calls, per queue.",
            vec![
                10.0, 30.0, 60.0, 120.0, 180.0, 300.0, 600.0, 900.0, 1800.0, 3600.0,
            ],
        );
        let int_gauge_vec = |name: &str, help: &str, labels: &[&str]| {
            register(&registry, IntGaugeVec::new(Opts::new(name, help), labels))
        };
        let queue_waiting = int_gauge_vec(
            "switchboard_queue_waiting_calls",
            "Calls waiting in the queue now.",
            &["queue"],
        );
        let agents = int_gauge_vec(
            "switchboard_agents",
            "Agents able to serve the queue, by state.",
            &["queue", "state"],
        );
        let queue_longest_wait = register(
            &registry,
            GaugeVec::new(
                Opts::new(
                    "switchboard_queue_longest_wait_seconds",
                    "How long the oldest waiting call has waited.",
                ),
                &["queue"],
            ),
        );
        let float_gauge = |name: &str, help: &str| register(&registry, Gauge::new(name, help));
        let process_cpu = float_gauge(
            "process_cpu_seconds_total",
            "User and system CPU time spent, in seconds.",
        );
        let process_start = float_gauge(
            "process_start_time_seconds",
            "Start time of the process since the Unix epoch, in seconds.",
        );
        let metrics = Self {
            calls_offered: counter(
                &registry,
                "switchboard_calls_offered_total",
                "Calls routed to a queue.",
                &["queue", "trunk"],
            ),
            calls_answered: counter(
                &registry,
                "switchboard_calls_answered_total",
                "Calls answered by an agent.",
                &["queue"],
            ),
            outbound_calls: counter(
                &registry,
                "switchboard_outbound_calls_total",
                "Calls out dialled by agents, by result.",
                &["result"],
            ),
            calls_abandoned: counter(
                &registry,
                "switchboard_calls_abandoned_total",
                "Calls the caller left before an answer.",
                &["queue"],
            ),
            calls_rejected: counter(
                &registry,
                "switchboard_calls_rejected_total",
                "Calls refused or ended before an answer by Switchboard.",
                &["reason"],
            ),
            lookups: counter(
                &registry,
                "switchboard_lookup_total",
                "Caller lookups, by result: ok, timeout, error, invalid (not JSON or too large), cached (answered from the cache).",
                &["result"],
            ),
            transfers: counter(
                &registry,
                "switchboard_transfers_total",
                "Transfers agents asked for (kind blind; result accepted or refused).",
                &["kind", "result"],
            ),
            wait_seconds,
            abandon_wait_seconds,
            talk_seconds,
            sip_requests: counter(
                &registry,
                "switchboard_sip_requests_total",
                "SIP requests by direction and method.",
                &["direction", "method"],
            ),
            sip_responses: counter(
                &registry,
                "switchboard_sip_responses_total",
                "SIP responses by direction and status code.",
                &["direction", "code"],
            ),
            sip_malformed: plain_counter(
                &registry,
                "switchboard_sip_malformed_total",
                "SIP messages refused as malformed (400) or oversized (513).",
            ),
            cdr_errors: plain_counter(
                &registry,
                "switchboard_cdr_write_errors_total",
                "CDR journal or sink write errors.",
            ),
            media_timeouts: plain_counter(
                &registry,
                "switchboard_media_timeouts_total",
                "Calls hung up because a leg sent no RTP for the media timeout.",
            ),
            rtp_ports_busy: plain_counter(
                &registry,
                "switchboard_rtp_port_pairs_busy_total",
                "RTP port pairs of the range found held by another process (each kept out of use for a while).",
            ),
            media_sessions: gauge(
                &registry,
                "switchboard_media_sessions",
                "Anchored media sessions running now.",
            ),
            srtp_auth_failures: counter(
                &registry,
                "switchboard_srtp_auth_failures_total",
                "SRTP (stream=rtp) and SRTCP (stream=rtcp) packets dropped at the media edge: failed authentication (wrong key, tampered), replayed or unreadable; counted when the call's media ends.",
                &["stream"],
            ),
            recording_errors: plain_counter(
                &registry,
                "switchboard_recording_errors_total",
                "Call recordings that failed (the call went on without them).",
            ),
            security_events: counter(
                &registry,
                "switchboard_security_events_total",
                "Security events: auth failures, bans, dropped and refused requests or connections.",
                &["event"],
            ),
            api_auth_failures: counter(
                &registry,
                "switchboard_api_auth_failures_total",
                "API requests refused for a missing or unknown bearer token.",
                &["reason"],
            ),
            config_reloads: counter(
                &registry,
                "switchboard_config_reloads_total",
                "Configuration reloads (SIGHUP, switchboard reload, POST /api/reload), by result: applied or refused.",
                &["result"],
            ),
            audit_errors: plain_counter(
                &registry,
                "switchboard_audit_errors_total",
                "Audit records that could not be written (disk full, unwritable directory).",
            ),
            audit_postgres_failures: plain_counter(
                &registry,
                "switchboard_audit_postgres_failures_total",
                "Failed attempts to insert audit records into PostgreSQL (retried; the files have them).",
            ),
            agent_new_source: counter(
                &registry,
                "switchboard_agent_new_source_total",
                "Registrations of an agent from an address it had not registered from before.",
                &["agent"],
            ),
            cdr_backlog: gauge(
                &registry,
                "switchboard_cdr_backlog_records",
                "CDRs waiting to be made durable.",
            ),
            cdr_unforwarded: gauge(
                &registry,
                "switchboard_cdr_unforwarded_records",
                "CDRs durable in the journal but not yet in every sink (files, PostgreSQL).",
            ),
            cdr_written: plain_counter(
                &registry,
                "switchboard_cdr_written_total",
                "CDRs made durable in the journal.",
            ),
            queue_waiting,
            queue_longest_wait,
            agents,
            active_calls: gauge(
                &registry,
                "switchboard_active_calls",
                "Calls in progress (queued, ringing or connected).",
            ),
            transactions: gauge(
                &registry,
                "switchboard_sip_transactions",
                "Live SIP transactions.",
            ),
            registrations: gauge(
                &registry,
                "switchboard_registrations",
                "Live registrar bindings.",
            ),
            dropped: plain_counter(
                &registry,
                "switchboard_sip_dropped_overload_total",
                "Datagrams dropped because the core's queue was full.",
            ),
            connections_refused: plain_counter(
                &registry,
                "switchboard_sip_connections_refused_total",
                "SIP stream connections closed at once because a connection cap was reached.",
            ),
            read_timeouts: plain_counter(
                &registry,
                "switchboard_sip_read_timeouts_total",
                "SIP stream connections closed because a message did not arrive in time.",
            ),
            tls_connect_failures: plain_counter(
                &registry,
                "switchboard_sip_tls_connect_failures_total",
                "Outgoing TLS connections that failed: refused, timed out, or a certificate the verifier refused.",
            ),
            connections: gauge(
                &registry,
                "switchboard_sip_connections",
                "Open SIP stream connections (TCP, TLS, WS and WSS).",
            ),
            websocket_connections: gauge(
                &registry,
                "switchboard_sip_websocket_connections",
                "Open SIP over WebSocket connections (ws and wss), also in switchboard_sip_connections.",
            ),
            websocket_handshake_failures: plain_counter(
                &registry,
                "switchboard_sip_websocket_handshake_failures_total",
                "WebSocket connections refused or failed before the upgrade: no sip subprotocol, not a WebSocket request, TLS failure.",
            ),
            draining: gauge(
                &registry,
                "switchboard_draining",
                "1 while shutting down (new calls refused).",
            ),
            process_resident: gauge(
                &registry,
                "process_resident_memory_bytes",
                "Resident memory size in bytes.",
            ),
            process_cpu,
            process_start,
            registry,
        };
        metrics.process_start.set(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64()),
        );
        // Both series exist from the start, so an alert on `refused` has something to watch.
        for result in ["applied", "refused"] {
            metrics.config_reloads.with_label_values(&[result]);
        }
        metrics
    }

    /// Drops a removed queue's state gauges, so they do not stay frozen at their last value.
    pub fn forget_queue(&self, name: &str) {
        let _ = self.queue_waiting.remove_label_values(&[name]);
        let _ = self.queue_longest_wait.remove_label_values(&[name]);
        for state in [
            "ready",
            "reserved",
            "on-call",
            "wrap-up",
            "not-ready",
            "logged-out",
        ] {
            let _ = self.agents.remove_label_values(&[name, state]);
        }
    }

    /// Renders the text exposition format, refreshing the state gauges first.
    pub fn render(&self, node: &Node) -> String {
        let now = Instant::now();
        for queue in node.acd.queues() {
            let name = queue.id.as_str();
            self.queue_waiting
                .with_label_values(&[name])
                .set(queue.waiting as i64);
            self.queue_longest_wait.with_label_values(&[name]).set(
                queue
                    .oldest_waiting_since
                    .map_or(0.0, |t| now.saturating_duration_since(t).as_secs_f64()),
            );
            let a = queue.agents;
            for (state, count) in [
                ("ready", a.ready),
                ("reserved", a.reserved),
                ("on-call", a.on_call),
                ("wrap-up", a.wrap_up),
                ("not-ready", a.not_ready),
                ("logged-out", a.logged_out),
            ] {
                self.agents
                    .with_label_values(&[name, state])
                    .set(count as i64);
            }
        }
        let stats = &node.stats;
        self.active_calls
            .set(stats.active_calls.load(Ordering::Relaxed) as i64);
        self.transactions
            .set(stats.transactions.load(Ordering::Relaxed) as i64);
        self.registrations
            .set(stats.registrations.load(Ordering::Relaxed) as i64);
        self.draining
            .set(i64::from(stats.draining.load(Ordering::Relaxed)));
        let transport = node.transports.stats();
        self.cdr_backlog
            .set(node.cdr.backlog.load(Ordering::Relaxed) as i64);
        self.cdr_unforwarded
            .set(node.cdr.unforwarded.load(Ordering::Relaxed) as i64);
        let written = node.cdr.written.load(Ordering::Relaxed);
        self.cdr_written
            .inc_by(written.saturating_sub(self.cdr_written.get()));
        // The transport counts on its own atomic; carry the increase over to the counter.
        let dropped = transport.dropped_overload.load(Ordering::Relaxed);
        self.dropped
            .inc_by(dropped.saturating_sub(self.dropped.get()));
        let refused = transport.connections_refused.load(Ordering::Relaxed);
        self.connections_refused
            .inc_by(refused.saturating_sub(self.connections_refused.get()));
        let timeouts = transport.read_timeouts.load(Ordering::Relaxed);
        self.read_timeouts
            .inc_by(timeouts.saturating_sub(self.read_timeouts.get()));
        let tls_failures = transport.tls_connect_failures.load(Ordering::Relaxed);
        self.tls_connect_failures
            .inc_by(tls_failures.saturating_sub(self.tls_connect_failures.get()));
        self.connections
            .set(transport.connections.load(Ordering::Relaxed) as i64);
        self.websocket_connections
            .set(transport.websocket_connections.load(Ordering::Relaxed) as i64);
        let failures = transport
            .websocket_handshake_failures
            .load(Ordering::Relaxed);
        self.websocket_handshake_failures
            .inc_by(failures.saturating_sub(self.websocket_handshake_failures.get()));
        if let Some((cpu, rss)) = process_usage() {
            self.process_cpu.set(cpu);
            self.process_resident.set(rss);
        }
        let mut out = Vec::new();
        if let Err(error) = TextEncoder::new().encode(&self.registry.gather(), &mut out) {
            tracing::warn!(%error, "metrics encoding failed");
        }
        String::from_utf8(out).unwrap_or_default()
    }
}

/// CPU seconds and resident bytes of this process, from /proc (Linux).
fn process_usage() -> Option<(f64, i64)> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    let pages: i64 = fields.get(21)?.parse().ok()?;
    // SAFETY: sysconf only reads a system constant; it has no preconditions.
    let (tick_hz, page_size) = unsafe {
        (
            libc::sysconf(libc::_SC_CLK_TCK),
            libc::sysconf(libc::_SC_PAGESIZE),
        )
    };
    if tick_hz <= 0 || page_size <= 0 {
        return None;
    }
    Some((ticks / tick_hz as f64, pages * page_size))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_metric_registers_and_renders() {
        let metrics = Metrics::new(&crate::config::demo());
        metrics.calls_answered.with_label_values(&["support"]).inc();
        let families = metrics.registry.gather();
        let names: Vec<&str> = families.iter().map(|f| f.name()).collect();
        assert!(
            names.contains(&"switchboard_calls_answered_total"),
            "{names:?}"
        );
        let mut out = Vec::new();
        TextEncoder::new()
            .encode(&families, &mut out)
            .expect("encodes");
        let text = String::from_utf8(out).expect("utf8");
        assert!(text.contains("switchboard_calls_answered_total{queue=\"support\"} 1"));
        // The service-level threshold of the demo queue (20 s) is a bucket boundary.
        metrics
            .wait_seconds
            .with_label_values(&["support"])
            .observe(3.0);
        let mut out = Vec::new();
        TextEncoder::new()
            .encode(&metrics.registry.gather(), &mut out)
            .expect("encodes");
        assert!(String::from_utf8_lossy(&out)
            .contains("switchboard_queue_wait_seconds_bucket{queue=\"support\",le=\"20\"} 1"));
    }
}
