//! The measured window of a step: receiver and sender threads run over the established calls
//! while the main thread samples Switchboard's and its own CPU time, the machine's load and
//! Switchboard's RSS halfway through.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::clock::MonotonicClock;
use crate::error::{LoadError, LoadResult};
use crate::media_call::MediaCall;
use crate::probe_packet::Direction;
use crate::proc_stats::{self, MachineCpu, Process};
use crate::receiver::{self, ReceiverReport};
use crate::sender::{self, SendSchedule, SenderReport};

/// Packet interval of every stream (50 packets/s).
pub const PTIME: Duration = Duration::from_millis(20);
/// How long the receiver keeps reading after the last packet was sent: anything later than
/// this through a loopback relay counts as lost.
const DRAIN: Duration = Duration::from_millis(500);

/// Everything measured in the media window.
#[derive(Debug, Clone)]
pub struct MediaOutcome {
    /// The sender's counts.
    pub sender: SenderReport,
    /// The receiver's counts and delays.
    pub receiver: ReceiverReport,
    /// Wall time from the first to the last packet sent.
    pub window: Duration,
    /// Switchboard's CPU seconds in the window.
    pub switchboard_cpu_s: f64,
    /// The generator's own CPU seconds in the window (all threads).
    pub generator_cpu_s: f64,
    /// The whole machine's busy time in the window, % of one core (cores x 100 = saturated).
    pub machine_busy_percent: f64,
    /// The part of it spent in soft interrupts, % of one core.
    pub softirq_percent: f64,
    /// Switchboard's RSS halfway through, KiB.
    pub switchboard_rss_kib: u64,
    /// Bytes queued halfway through in the receive buffers of Switchboard's RTP sockets and of
    /// the generator's (kernel accounting): which side is falling behind.
    pub queued_halfway: (u64, u64),
}

/// The sockets whose receive queues are sampled halfway through.
#[derive(Debug, Clone, Default)]
pub struct QueueWatch {
    /// Switchboard's RTP ports of the calls.
    pub switchboard_ports: HashSet<u16>,
    /// The generator's RTP ports.
    pub generator_ports: HashSet<u16>,
}

/// Runs `seconds` of media over `calls` and measures it.
pub fn run(
    calls: &[MediaCall],
    seconds: u32,
    switchboard_pid: u32,
    watch: &QueueWatch,
) -> LoadResult<MediaOutcome> {
    let clock = MonotonicClock::start();
    let stop = AtomicBool::new(false);
    let schedule = SendSchedule {
        period: PTIME,
        packets_per_stream: seconds * 50,
    };
    let switchboard = Process::Pid(switchboard_pid);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    std::thread::scope(|scope| {
        let receiver = scope.spawn(|| receiver::receive(calls, &clock, &stop));
        let sampled = (|| -> LoadResult<_> {
            let machine_before = MachineCpu::sample()?;
            let switchboard_before = proc_stats::cpu_seconds(switchboard)?;
            let generator_before = proc_stats::cpu_seconds(Process::SelfProcess)?;
            let started = Instant::now();
            let sender = scope.spawn(|| sender::send(calls, schedule, &clock));
            std::thread::sleep(Duration::from_secs(u64::from(seconds)) / 2);
            let rss = proc_stats::rss_kib(switchboard);
            let queued = (
                proc_stats::udp_receive_queued(|port| watch.switchboard_ports.contains(&port))?,
                proc_stats::udp_receive_queued(|port| watch.generator_ports.contains(&port))?,
            );
            let sent = sender
                .join()
                .map_err(|_| LoadError::ThreadPanicked("sender"))?;
            let window = started.elapsed();
            let switchboard_cpu_s = proc_stats::cpu_seconds(switchboard)? - switchboard_before;
            let generator_cpu_s = proc_stats::cpu_seconds(Process::SelfProcess)? - generator_before;
            let machine_after = MachineCpu::sample()?;
            let machine = (
                machine_after.busy_percent_since(&machine_before, cores),
                machine_after.softirq_percent_since(&machine_before, cores),
            );
            Ok((
                sent,
                rss?,
                queued,
                window,
                switchboard_cpu_s,
                generator_cpu_s,
                machine,
            ))
        })();
        if sampled.is_ok() {
            std::thread::sleep(DRAIN);
        }
        stop.store(true, Ordering::Relaxed);
        let received = receiver
            .join()
            .map_err(|_| LoadError::ThreadPanicked("receiver"))?;
        let (
            sender,
            switchboard_rss_kib,
            queued_halfway,
            window,
            switchboard_cpu_s,
            generator_cpu_s,
            machine,
        ) = sampled?;
        Ok(MediaOutcome {
            sender,
            receiver: received?,
            window,
            switchboard_cpu_s,
            generator_cpu_s,
            machine_busy_percent: machine.0,
            softirq_percent: machine.1,
            switchboard_rss_kib,
            queued_halfway,
        })
    })
}

/// p50, p99 and p99.9 of a direction's delay, µs.
#[derive(Debug, Clone, Copy, Default)]
pub struct DelayPercentiles {
    /// Median.
    pub p50: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th percentile.
    pub p999: u64,
}

impl MediaOutcome {
    fn window_seconds(&self) -> f64 {
        self.window.as_secs_f64().max(1e-9)
    }

    /// Packets lost in `direction`, % of those sent (skipped packets were never sent).
    pub fn loss_percent(&self, direction: Direction) -> f64 {
        let sent = self.sender.sent[direction.index()];
        let received = self.receiver.received[direction.index()];
        if sent == 0 {
            return 100.0;
        }
        100.0 * sent.saturating_sub(received) as f64 / sent as f64
    }

    /// Share of the scheduled packets the sender skipped for being too late, %.
    pub fn skipped_percent(&self) -> f64 {
        let skipped: u64 = self.sender.skipped.iter().sum();
        let scheduled = skipped
            + self.sender.sent.iter().sum::<u64>()
            + self.sender.send_errors.iter().sum::<u64>();
        if scheduled == 0 {
            return 0.0;
        }
        100.0 * skipped as f64 / scheduled as f64
    }

    /// Delay percentiles in `direction`; zeros when nothing arrived.
    pub fn delay(&self, direction: Direction) -> DelayPercentiles {
        let histogram = &self.receiver.delay[direction.index()];
        DelayPercentiles {
            p50: histogram.percentile(50.0).unwrap_or(0),
            p99: histogram.percentile(99.0).unwrap_or(0),
            p999: histogram.percentile(99.9).unwrap_or(0),
        }
    }

    /// Added jitter p99 = delay p99 − delay p50, µs.
    pub fn added_jitter_p99(&self, direction: Direction) -> u64 {
        let delay = self.delay(direction);
        delay.p99.saturating_sub(delay.p50)
    }

    /// Packets per second sent (both directions) over the window.
    pub fn pps_sent(&self) -> f64 {
        self.sender.sent.iter().sum::<u64>() as f64 / self.window_seconds()
    }

    /// Packets per second received (both directions) over the window.
    pub fn pps_received(&self) -> f64 {
        self.receiver.received.iter().sum::<u64>() as f64 / self.window_seconds()
    }

    /// A relay's CPU per packet it delivered (both directions), µs: its CPU seconds over the
    /// window divided by the packets the receiver got from it.
    pub fn cpu_us_per_relayed_packet(&self, cpu_seconds: f64) -> f64 {
        let received: u64 = self.receiver.received.iter().sum();
        if received == 0 {
            return f64::NAN;
        }
        1e6 * cpu_seconds / received as f64
    }

    /// A process's CPU seconds over the window as % of one core.
    pub fn cpu_percent(&self, cpu_seconds: f64) -> f64 {
        100.0 * cpu_seconds / self.window_seconds()
    }
}
