//! The results of one step and how they are printed: one table row per step, a few
//! diagnostic lines that say where packets were lost or why the sender fell behind, the
//! optional generator-floor rows, and the final verdict line.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::call_signalling::HangupSummary;
use crate::media_phase::MediaOutcome;
use crate::probe_packet::Direction;

/// Loss below this (percent) passes.
pub const MAX_LOSS_PERCENT: f64 = 0.1;
/// Added jitter p99 at or below this (µs) passes.
pub const MAX_JITTER_US: u64 = 1_000;
/// Switchboard CPU at or below this share of all cores (percent) passes.
pub const MAX_CPU_SHARE_PERCENT: f64 = 80.0;
/// A step whose sender skipped more than this share of its schedule (percent) did not offer
/// the load it names, so it cannot pass.
pub const MAX_SKIPPED_PERCENT: f64 = 1.0;

/// Everything measured for one N.
#[derive(Debug, Clone)]
pub struct StepResult {
    /// Calls attempted.
    pub calls: usize,
    /// Calls up on both legs when media started.
    pub up: usize,
    /// Why the others did not come up.
    pub setup_failures: BTreeMap<String, usize>,
    /// SIP datagrams ignored as malformed or unmatched.
    pub sip_malformed: u64,
    /// The media window's measurements.
    pub media: MediaOutcome,
    /// Switchboard RSS after registration, before any call, KiB.
    pub rss_idle_kib: u64,
    /// Receive-buffer drops on Switchboard's RTP sockets of these calls.
    pub switchboard_socket_drops: u64,
    /// Receive-buffer drops on the generator's RTP sockets.
    pub generator_socket_drops: u64,
    /// Machine load average before and after the media window.
    pub load_average: (String, String),
    /// Logical CPUs of the machine.
    pub cores: usize,
    /// How hanging up went.
    pub hangup: HangupSummary,
    /// Seconds spent registering the agents and setting up the calls.
    pub setup_seconds: (f64, f64),
    /// The same calls' media sent socket to socket without Switchboard (`--baseline`).
    pub baseline: Option<MediaOutcome>,
    /// The same calls' packets relayed by the peer (`--peer`); its `switchboard_cpu_s` is
    /// the peer's CPU.
    pub peer: Option<MediaOutcome>,
}

impl StepResult {
    /// Switchboard CPU, % of one core.
    pub fn switchboard_cpu_percent(&self) -> f64 {
        self.media.cpu_percent(self.media.switchboard_cpu_s)
    }

    /// Generator CPU, % of one core.
    pub fn generator_cpu_percent(&self) -> f64 {
        self.media.cpu_percent(self.media.generator_cpu_s)
    }

    /// Switchboard's extra RSS per call, KiB.
    pub fn rss_per_call_kib(&self) -> f64 {
        self.media
            .switchboard_rss_kib
            .saturating_sub(self.rss_idle_kib) as f64
            / self.up.max(1) as f64
    }

    /// Packets per second the schedule asks for (both directions): 2 x 50 per call up.
    pub fn pps_offered(&self) -> f64 {
        (self.up * 100) as f64
    }

    /// Worst loss of the two directions, %.
    pub fn worst_loss_percent(&self) -> f64 {
        Direction::BOTH
            .map(|d| self.media.loss_percent(d))
            .into_iter()
            .fold(0.0, f64::max)
    }

    /// Every call up, the whole load offered, loss < 0.1 % and added jitter p99 <= 1 ms
    /// both ways, Switchboard at most 80 % of all cores.
    pub fn passes(&self) -> bool {
        self.up == self.calls
            && self.media.skipped_percent() <= MAX_SKIPPED_PERCENT
            && Direction::BOTH.iter().all(|&d| {
                self.media.loss_percent(d) < MAX_LOSS_PERCENT
                    && self.media.added_jitter_p99(d) <= MAX_JITTER_US
            })
            && self.switchboard_cpu_percent() / self.cores.max(1) as f64 <= MAX_CPU_SHARE_PERCENT
    }

    /// The table row.
    pub fn row(&self) -> String {
        let media = &self.media;
        let [to_agent, to_trunk] = Direction::BOTH.map(|d| media.delay(d));
        format!(
            "{:>6} {:>6} {:>8.0} {:>8.0} {:>8.0} {:>7.3} {:>7.3} {:>20} {:>20} {:>7} {:>7} {:>6.0} {:>6.0} {:>6.0} {:>8.1} {:>5}",
            self.calls,
            self.up,
            self.pps_offered(),
            media.pps_sent(),
            media.pps_received(),
            media.loss_percent(Direction::TrunkToAgent),
            media.loss_percent(Direction::AgentToTrunk),
            format!("{}/{}/{}", to_agent.p50, to_agent.p99, to_agent.p999),
            format!("{}/{}/{}", to_trunk.p50, to_trunk.p99, to_trunk.p999),
            media.added_jitter_p99(Direction::TrunkToAgent),
            media.added_jitter_p99(Direction::AgentToTrunk),
            self.switchboard_cpu_percent(),
            self.switchboard_cpu_percent() / self.cores.max(1) as f64,
            self.generator_cpu_percent(),
            self.rss_per_call_kib(),
            if self.passes() { "yes" } else { "no" },
        )
    }

    /// Switchboard's and the peer's rows side by side (empty without `--peer`).
    pub fn peer_rows(&self) -> Vec<String> {
        let Some(peer) = &self.peer else {
            return Vec::new();
        };
        [("switchboard", &self.media), ("rtpengine", peer)]
            .iter()
            .map(|(name, media)| {
                let [to_agent, to_trunk] = Direction::BOTH.map(|d| media.delay(d));
                format!(
                    "{:>11} {:>6} {:>8.0} {:>8.0} {:>7.3} {:>7.3} {:>20} {:>20} {:>6.0} {:>8.2} {:>6.0}",
                    name,
                    self.up,
                    media.pps_sent(),
                    media.pps_received(),
                    media.loss_percent(Direction::TrunkToAgent),
                    media.loss_percent(Direction::AgentToTrunk),
                    format!("{}/{}/{}", to_agent.p50, to_agent.p99, to_agent.p999),
                    format!("{}/{}/{}", to_trunk.p50, to_trunk.p99, to_trunk.p999),
                    media.cpu_percent(media.switchboard_cpu_s),
                    media.cpu_us_per_relayed_packet(media.switchboard_cpu_s),
                    media.machine_busy_percent,
                )
            })
            .collect()
    }

    /// The generator-floor row: the same sockets and schedule, no Switchboard in the path.
    pub fn baseline_row(&self) -> Option<String> {
        let media = self.baseline.as_ref()?;
        let [to_agent, to_trunk] = Direction::BOTH.map(|d| media.delay(d));
        Some(format!(
            "{:>6} {:>8.0} {:>8.0} {:>8.0} {:>7.3} {:>7.3} {:>20} {:>20} {:>7} {:>7} {:>6.0}",
            self.up,
            self.pps_offered(),
            media.pps_sent(),
            media.pps_received(),
            media.loss_percent(Direction::TrunkToAgent),
            media.loss_percent(Direction::AgentToTrunk),
            format!("{}/{}/{}", to_agent.p50, to_agent.p99, to_agent.p999),
            format!("{}/{}/{}", to_trunk.p50, to_trunk.p99, to_trunk.p999),
            media.added_jitter_p99(Direction::TrunkToAgent),
            media.added_jitter_p99(Direction::AgentToTrunk),
            media.cpu_percent(media.generator_cpu_s),
        ))
    }

    /// Diagnostic lines: where loss happened, how late the sender ran, machine load.
    pub fn details(&self) -> String {
        let media = &self.media;
        let mut text = String::new();
        let _ = writeln!(
            text,
            "  N={}: {} up in {:.1} s (registration {:.1} s){}; window {:.2} s",
            self.calls,
            self.up,
            self.setup_seconds.1,
            self.setup_seconds.0,
            if self.setup_failures.is_empty() {
                String::new()
            } else {
                format!(", failed: {:?}", self.setup_failures)
            },
            media.window.as_secs_f64()
        );
        for direction in Direction::BOTH {
            let i = direction.index();
            let _ = writeln!(
                text,
                "    {:<13} sent {} (skipped {}, send errors {}), received {}, lost {}, delay max {} us",
                direction.label(),
                media.sender.sent[i],
                media.sender.skipped[i],
                media.sender.send_errors[i],
                media.receiver.received[i],
                media.sender.sent[i].saturating_sub(media.receiver.received[i]),
                media.receiver.delay[i].max(),
            );
        }
        let _ = writeln!(
            text,
            "    socket receive-buffer drops: switchboard {} / generator {}; malformed {}, misdelivered {}, receive errors {}, SIP ignored {}",
            self.switchboard_socket_drops,
            self.generator_socket_drops,
            media.receiver.malformed,
            media.receiver.misdelivered,
            media.receiver.receive_errors,
            self.sip_malformed,
        );
        let _ = writeln!(
            text,
            "    sender lateness p50/p99/max {}/{}/{} us, skipped {:.1} % of schedule; machine busy {:.0} % of one core ({} cores; softirq {:.0} %, other processes {:.0} %); load average {} -> {}",
            media.sender.lateness.percentile(50.0).unwrap_or(0),
            media.sender.lateness.percentile(99.0).unwrap_or(0),
            media.sender.lateness.max(),
            media.skipped_percent(),
            media.machine_busy_percent,
            self.cores,
            media.softirq_percent,
            (media.machine_busy_percent
                - media.softirq_percent
                - self.switchboard_cpu_percent()
                - self.generator_cpu_percent())
            .max(0.0),
            self.load_average.0,
            self.load_average.1,
        );
        let _ = writeln!(
            text,
            "    queued in receive buffers halfway: switchboard sockets {} KiB / generator sockets {} KiB",
            media.queued_halfway.0 / 1024,
            media.queued_halfway.1 / 1024,
        );
        let _ = writeln!(
            text,
            "    switchboard RSS idle {} KiB, during media {} KiB; hang-up: {} BYE sent, {} answered, {} agent legs ended",
            self.rss_idle_kib,
            media.switchboard_rss_kib,
            self.hangup.sent,
            self.hangup.answered,
            self.hangup.agent_legs_ended,
        );
        text
    }
}

/// The table header (two lines).
pub fn header() -> String {
    format!(
        "{:>6} {:>6} {:>8} {:>8} {:>8} {:>7} {:>7} {:>20} {:>20} {:>7} {:>7} {:>6} {:>6} {:>6} {:>8} {:>5}\n{:>6} {:>6} {:>8} {:>8} {:>8} {:>7} {:>7} {:>20} {:>20} {:>7} {:>7} {:>6} {:>6} {:>6} {:>8} {:>5}",
        "calls", "up", "pps", "pps in", "pps out", "loss %", "loss %", "delay us t->a", "delay us a->t", "jit99", "jit99", "sb CPU", "sb CPU", "gen", "RSS/call", "pass",
        "", "", "offered", "total", "total", "t->a", "a->t", "p50/p99/p99.9", "p50/p99/p99.9", "t->a us", "a->t us", "%1core", "%2core", "%1core", "KiB", "",
    )
}

/// The header of the Switchboard-vs-peer table.
pub fn peer_header() -> String {
    format!(
        "{:>11} {:>6} {:>8} {:>8} {:>7} {:>7} {:>20} {:>20} {:>6} {:>8} {:>6}",
        "relay",
        "calls",
        "pps in",
        "pps out",
        "loss %",
        "loss %",
        "delay us t->a",
        "delay us a->t",
        "CPU %",
        "us CPU",
        "box %"
    ) + &format!(
        "\n{:>11} {:>6} {:>8} {:>8} {:>7} {:>7} {:>20} {:>20} {:>6} {:>8} {:>6}",
        "",
        "",
        "total",
        "total",
        "t->a",
        "a->t",
        "p50/p99/p99.9",
        "p50/p99/p99.9",
        "1core",
        "/packet",
        "busy"
    )
}

/// The generator-floor table header.
pub fn baseline_header() -> String {
    format!(
        "{:>6} {:>8} {:>8} {:>8} {:>7} {:>7} {:>20} {:>20} {:>7} {:>7} {:>6}",
        "calls",
        "offered",
        "pps in",
        "pps out",
        "loss %",
        "loss %",
        "delay us t->a",
        "delay us a->t",
        "jit99",
        "jit99",
        "gen %"
    )
}

/// What the columns mean, printed under the table.
pub const LEGEND: &str = "t->a = trunk->agent (carrier to agent phone), a->t = agent->trunk. Delay = one-way time \
from just before sendto() on the sending socket to just after recv() on the receiving socket, through \
Switchboard, on one monotonic clock. ADDED JITTER p99 (jit99) = delay p99 - delay p50 of that direction. \
pps offered = 2 x 50 x calls up; pps in = packets/s actually sent to Switchboard, pps out = packets/s received \
from it (both directions, over the send window; the sender skips a packet more than 20 ms late, so a \
saturated generator shows as pps in < offered). sb CPU = Switchboard utime+stime over the window \
(%2core = of all cores); gen = this generator (all threads). RSS/call = (Switchboard RSS halfway through \
media - RSS after registration, before any call) / calls up. pass = all calls up, < 1 % of the schedule \
skipped, loss < 0.1 %, jit99 <= 1000 us both ways, sb CPU <= 80 % of all cores.";

/// The verdict line over all steps.
pub fn verdict(results: &[StepResult]) -> String {
    let best = results
        .iter()
        .filter(|r| r.passes())
        .map(|r| r.calls)
        .max()
        .map_or_else(|| "none".to_owned(), |n| n.to_string());
    format!(
        "most calls with < {MAX_LOSS_PERCENT} % loss and added jitter p99 <= 1 ms and switchboard <= {MAX_CPU_SHARE_PERCENT:.0} % of {} cores: {best}",
        results.first().map_or(0, |r| r.cores)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::histogram::MicrosHistogram;
    use crate::receiver::ReceiverReport;
    use crate::sender::SenderReport;
    use std::time::Duration;

    fn step(received: u64, jitter_tail_us: u64, switchboard_cpu_s: f64) -> StepResult {
        let mut delay = MicrosHistogram::default();
        for i in 0..1000 {
            delay.record(if i >= 985 { 50 + jitter_tail_us } else { 50 });
        }
        StepResult {
            calls: 10,
            up: 10,
            setup_failures: BTreeMap::new(),
            sip_malformed: 0,
            media: MediaOutcome {
                sender: SenderReport {
                    sent: [10_000, 10_000],
                    ..SenderReport::default()
                },
                receiver: ReceiverReport {
                    received: [received, 10_000],
                    delay: [delay.clone(), delay],
                    ..ReceiverReport::default()
                },
                window: Duration::from_secs(10),
                switchboard_cpu_s,
                generator_cpu_s: 1.0,
                machine_busy_percent: 50.0,
                softirq_percent: 0.0,
                switchboard_rss_kib: 2_000,
                queued_halfway: (0, 0),
            },
            rss_idle_kib: 1_000,
            switchboard_socket_drops: 0,
            generator_socket_drops: 0,
            load_average: (String::new(), String::new()),
            cores: 2,
            hangup: HangupSummary::default(),
            setup_seconds: (0.0, 0.0),
            baseline: None,
            peer: None,
        }
    }

    #[test]
    fn the_peer_table_puts_both_relays_side_by_side_with_cpu_per_packet() {
        let mut result = step(10_000, 0, 0.2);
        assert!(result.peer_rows().is_empty());
        let mut peer = result.media.clone();
        peer.switchboard_cpu_s = 0.4;
        result.peer = Some(peer);
        // 20 000 packets received over the window: 0.2 s -> 10 us each, 0.4 s -> 20 us.
        assert_eq!(result.media.cpu_us_per_relayed_packet(0.2), 10.0);
        let rows = result.peer_rows();
        assert_eq!(rows.len(), 2);
        assert!(rows[0].trim_start().starts_with("switchboard"));
        assert!(rows[0].contains(" 10.00 "), "{}", rows[0]);
        assert!(rows[1].trim_start().starts_with("rtpengine"));
        assert!(rows[1].contains(" 20.00 "), "{}", rows[1]);
    }

    #[test]
    fn derived_figures() {
        let result = step(9_990, 500, 4.0);
        assert!((result.media.loss_percent(Direction::TrunkToAgent) - 0.1).abs() < 1e-9);
        assert_eq!(result.media.added_jitter_p99(Direction::AgentToTrunk), 500);
        assert!((result.switchboard_cpu_percent() - 40.0).abs() < 1e-9);
        assert!((result.rss_per_call_kib() - 100.0).abs() < 1e-9);
        assert!((result.pps_offered() - 1000.0).abs() < 1e-9);
        assert!((result.media.pps_sent() - 2000.0).abs() < 1e-9);
    }

    #[test]
    fn each_criterion_can_fail_a_step() {
        assert!(step(10_000, 500, 4.0).passes());
        assert!(!step(9_990, 500, 4.0).passes(), "0.1 % loss is not < 0.1 %");
        assert!(!step(10_000, 1_001, 4.0).passes(), "jitter over 1 ms");
        assert!(!step(10_000, 500, 16.1).passes(), "over 80 % of 2 cores");
        let mut partial = step(10_000, 500, 4.0);
        partial.up = 9;
        assert!(!partial.passes());
        assert!(verdict(&[step(10_000, 500, 4.0)]).ends_with("of 2 cores: 10"));
    }
}
