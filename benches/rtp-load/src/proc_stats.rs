//! What the kernel says about the processes and sockets under test: CPU time and RSS of a
//! process, how busy the whole machine is, and the per-socket UDP receive-buffer drops that
//! tell where lost packets were lost.

use std::collections::HashSet;

use crate::error::{LoadError, LoadResult};

/// Which process to read: Switchboard by pid, or the generator itself.
#[derive(Debug, Clone, Copy)]
pub enum Process {
    /// Another process.
    Pid(u32),
    /// This process (all its threads).
    SelfProcess,
}

impl Process {
    fn dir(self) -> String {
        match self {
            Process::Pid(pid) => format!("/proc/{pid}"),
            Process::SelfProcess => "/proc/self".to_owned(),
        }
    }
}

fn read(file: &str) -> LoadResult<String> {
    std::fs::read_to_string(file).map_err(|e| LoadError::io(format!("reading {file}"), e))
}

fn malformed(file: &str, reason: &str) -> LoadError {
    LoadError::Proc {
        file: file.to_owned(),
        reason: reason.to_owned(),
    }
}

/// User + system CPU seconds the process has used so far (all threads).
pub fn cpu_seconds(process: Process) -> LoadResult<f64> {
    let file = format!("{}/stat", process.dir());
    let ticks =
        parse_stat_cpu_ticks(&read(&file)?).ok_or_else(|| malformed(&file, "no utime/stime"))?;
    Ok(ticks as f64 / clock_ticks_per_second())
}

/// utime + stime from a `/proc/PID/stat` line. The command name may contain spaces and
/// parentheses, so fields are counted from the last `)`.
fn parse_stat_cpu_ticks(stat: &str) -> Option<u64> {
    let (_, after_name) = stat.rsplit_once(')')?;
    let mut fields = after_name.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

fn clock_ticks_per_second() -> f64 {
    // SAFETY: sysconf only reads a system constant; it has no memory-safety preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    // Linux has used 100 for decades; the fallback only matters if sysconf itself fails.
    if ticks > 0 {
        ticks as f64
    } else {
        100.0
    }
}

/// Resident set size in KiB.
pub fn rss_kib(process: Process) -> LoadResult<u64> {
    let file = format!("{}/status", process.dir());
    parse_vm_rss(&read(&file)?).ok_or_else(|| malformed(&file, "no VmRSS line"))
}

fn parse_vm_rss(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kib| kib.parse().ok())
}

/// Busy and total jiffies of all CPUs together, from the first line of /proc/stat.
#[derive(Debug, Clone, Copy)]
pub struct MachineCpu {
    busy: u64,
    softirq: u64,
    total: u64,
}

impl MachineCpu {
    /// Reads /proc/stat now.
    pub fn sample() -> LoadResult<MachineCpu> {
        let file = "/proc/stat";
        parse_machine_cpu(&read(file)?).ok_or_else(|| malformed(file, "no aggregate cpu line"))
    }

    /// Share of all CPUs' time that was busy between `earlier` and `self`, in % of one core
    /// times the core count (so 2 saturated cores = 200).
    pub fn busy_percent_since(&self, earlier: &MachineCpu, cores: usize) -> f64 {
        let total = self.total.saturating_sub(earlier.total);
        if total == 0 {
            return 0.0;
        }
        let busy = self.busy.saturating_sub(earlier.busy);
        100.0 * cores as f64 * busy as f64 / total as f64
    }

    /// The part of [`MachineCpu::busy_percent_since`] spent in soft interrupts (loopback
    /// packet delivery among them), which no process's utime/stime includes.
    pub fn softirq_percent_since(&self, earlier: &MachineCpu, cores: usize) -> f64 {
        let total = self.total.saturating_sub(earlier.total);
        if total == 0 {
            return 0.0;
        }
        let softirq = self.softirq.saturating_sub(earlier.softirq);
        100.0 * cores as f64 * softirq as f64 / total as f64
    }
}

fn parse_machine_cpu(stat: &str) -> Option<MachineCpu> {
    let line = stat.lines().find(|line| line.starts_with("cpu "))?;
    let values: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(|v| v.parse().ok())
        .collect::<Option<_>>()?;
    // user nice system idle iowait irq softirq steal [guest guest_nice]: guest time is
    // already counted in user, so only the first eight add up to the total.
    let first8 = values.get(..8)?;
    let total: u64 = first8.iter().sum();
    let idle = first8[3] + first8[4];
    Some(MachineCpu {
        busy: total - idle,
        softirq: first8[6],
        total,
    })
}

/// The 1, 5 and 15 minute load averages as printed by the kernel.
pub fn load_average() -> LoadResult<String> {
    let text = read("/proc/loadavg")?;
    Ok(text
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" "))
}

/// Datagrams the kernel dropped because a socket's receive buffer was full, summed over the
/// IPv4 UDP sockets whose local port satisfies `port_matches`.
pub fn udp_receive_drops(port_matches: impl Fn(u16) -> bool) -> LoadResult<u64> {
    let file = "/proc/net/udp";
    Ok(sum_udp_drops(&read(file)?, port_matches))
}

/// Sums the last column (`drops`) of /proc/net/udp rows whose local port matches; rows that
/// do not parse are skipped (the table is a kernel format, not input we control).
fn sum_udp_drops(table: &str, port_matches: impl Fn(u16) -> bool) -> u64 {
    table
        .lines()
        .skip(1)
        .filter_map(|row| {
            let mut columns = row.split_whitespace();
            let local = columns.nth(1)?;
            let (_, port_hex) = local.split_once(':')?;
            let port = u16::from_str_radix(port_hex, 16).ok()?;
            let drops: u64 = row.split_whitespace().last()?.parse().ok()?;
            port_matches(port).then_some(drops)
        })
        .sum()
}

/// Bytes waiting in the receive buffers (the `rx_queue` column, kernel memory accounting, so
/// about 4x the datagram bytes) of the IPv4 UDP sockets whose local port satisfies
/// `port_matches`: where a backlog builds up when one side cannot keep up.
pub fn udp_receive_queued(port_matches: impl Fn(u16) -> bool) -> LoadResult<u64> {
    let file = "/proc/net/udp";
    Ok(sum_udp_rx_queue(&read(file)?, port_matches))
}

/// Sums the `rx_queue` half of the `tx_queue:rx_queue` column (hex) of matching rows.
fn sum_udp_rx_queue(table: &str, port_matches: impl Fn(u16) -> bool) -> u64 {
    table
        .lines()
        .skip(1)
        .filter_map(|row| {
            let mut columns = row.split_whitespace();
            let local = columns.nth(1)?;
            let queues = columns.nth(2)?;
            let (_, port_hex) = local.split_once(':')?;
            let port = u16::from_str_radix(port_hex, 16).ok()?;
            let (_, rx_hex) = queues.split_once(':')?;
            let rx = u64::from_str_radix(rx_hex, 16).ok()?;
            port_matches(port).then_some(rx)
        })
        .sum()
}

/// The local ports of a set of sockets, for [`udp_receive_drops`].
pub fn port_set(ports: impl IntoIterator<Item = u16>) -> HashSet<u16> {
    ports.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_cpu_ticks_survive_odd_command_names() {
        let stat =
            "1234 (sw (itch) board) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 9 0";
        assert_eq!(parse_stat_cpu_ticks(stat), Some(325));
        assert_eq!(parse_stat_cpu_ticks("garbage"), None);
    }

    #[test]
    fn vm_rss_is_read_in_kib() {
        let status = "Name:\tswitchboard\nVmPeak:\t  9000 kB\nVmRSS:\t   51234 kB\n";
        assert_eq!(parse_vm_rss(status), Some(51234));
        assert_eq!(parse_vm_rss("Name: x\n"), None);
    }

    #[test]
    fn machine_cpu_counts_iowait_as_idle() {
        let before = parse_machine_cpu("cpu  100 0 100 700 100 0 0 0 0 0\ncpu0 1 2\n")
            .expect("well-formed line");
        let after = parse_machine_cpu("cpu  200 0 200 1300 300 0 0 0 0 0\n").expect("well-formed");
        // 200 busy jiffies out of 1000 on 2 cores = 40 % of 2 cores = 40 % "of one core" x 2.
        assert!((after.busy_percent_since(&before, 2) - 40.0).abs() < 1e-9);
        let with_softirq =
            parse_machine_cpu("cpu  200 0 200 1300 300 0 50 0 0 0\n").expect("well-formed");
        // 50 softirq jiffies out of 1050 on 2 cores.
        let expected = 100.0 * 2.0 * 50.0 / 1050.0;
        assert!((with_softirq.softirq_percent_since(&before, 2) - expected).abs() < 1e-9);
        assert!(parse_machine_cpu("cpu  1 2\n").is_none());
    }

    #[test]
    fn udp_drops_are_summed_for_matching_ports_only() {
        let table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops\n\
  1: 0100007F:4E20 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 111 2 0000000000000000 5\n\
  2: 0100007F:4E22 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 112 2 0000000000000000 7\n\
  3: 0100007F:1F90 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 113 2 0000000000000000 100\n\
  junk\n";
        assert_eq!(sum_udp_drops(table, |p| (20000..=20002).contains(&p)), 12);
        let ours = port_set([8080]);
        assert_eq!(sum_udp_drops(table, |p| ours.contains(&p)), 100);
    }

    #[test]
    fn udp_rx_queue_is_read_from_the_queue_column() {
        let table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops\n\
  1: 0100007F:4E20 00000000:0000 07 00000000:00000300 00:00000000 00000000     0        0 111 2 0000000000000000 5\n\
  2: 0100007F:4E22 00000000:0000 07 00000000:00000100 00:00000000 00000000     0        0 112 2 0000000000000000 7\n";
        assert_eq!(sum_udp_rx_queue(table, |p| p == 20000), 0x300);
        assert_eq!(sum_udp_rx_queue(table, |_| true), 0x400);
    }
}
