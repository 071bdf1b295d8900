//! Free ports on 127.0.0.1: each Switchboard and each SIPp in a test gets its own, so tests can
//! run in parallel processes (nextest) without stepping on each other.

use std::collections::HashSet;
use std::io::Read;
use std::net::{Ipv4Addr, TcpListener, UdpSocket};
use std::sync::Mutex;

use crate::error::{HarnessError, HarnessResult};

/// Ports already handed out by this process: the kernel may offer a released port again, and two
/// helpers of one test must never get the same one.
static HANDED_OUT: Mutex<Option<HashSet<u16>>> = Mutex::new(None);

/// How many candidate blocks to try before giving up; each try costs a few syscalls.
const ATTEMPTS: usize = 500;

/// Returns one port free for both UDP and TCP on 127.0.0.1.
pub fn free_port() -> HarnessResult<u16> {
    free_port_block(1)
}

/// Returns the first of `count` consecutive ports that are all free for both UDP and TCP on
/// 127.0.0.1 (SIPp's media port uses several after the one given).
///
/// The ports are released before returning, so another process could in principle take one
/// before its user binds it; the kernel spreads ephemeral ports widely, which makes that rare.
pub fn free_port_block(count: u16) -> HarnessResult<u16> {
    let mut handed_out = HANDED_OUT
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let handed_out = handed_out.get_or_insert_with(HashSet::new);
    for _ in 0..ATTEMPTS {
        let Some(base) = kernel_chosen_port() else {
            continue;
        };
        let Some(last) = base.checked_add(count.saturating_sub(1)) else {
            continue;
        };
        let block = base..=last;
        if block.clone().any(|port| handed_out.contains(&port)) {
            continue;
        }
        if block.clone().all(is_free) {
            handed_out.extend(block);
            return Ok(base);
        }
    }
    Err(HarnessError::NoFreePorts { count })
}

/// Ports below the kernel's ephemeral range (32768 up by default), where media blocks are
/// looked for: outgoing sockets of other processes never land there, so a block found free
/// stays free until its Switchboard binds it.
const MEDIA_BLOCKS: std::ops::Range<u32> = 10_000..32_000;

/// Returns the first of `count` consecutive even-aligned ports free for UDP and TCP, from
/// below the ephemeral range (for RTP ranges, which are large and bound late).
pub fn free_media_block(count: u16) -> HarnessResult<u16> {
    let mut handed_out = HANDED_OUT
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let handed_out = handed_out.get_or_insert_with(HashSet::new);
    // Spread the starting points by process and time, so parallel test processes (nextest)
    // look in different places first.
    let seed = std::process::id().wrapping_mul(2_654_435_761).wrapping_add(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos()),
    );
    let span = MEDIA_BLOCKS.end - MEDIA_BLOCKS.start - u32::from(count);
    for attempt in 0..ATTEMPTS as u32 {
        let offset = seed.wrapping_add(attempt.wrapping_mul(7_919)) % span;
        let Ok(base) = u16::try_from((MEDIA_BLOCKS.start + offset) & !1) else {
            continue;
        };
        let block = base..base + count;
        if block.clone().any(|port| handed_out.contains(&port)) {
            continue;
        }
        if block.clone().all(is_free) {
            handed_out.extend(block);
            return Ok(base);
        }
    }
    Err(HarnessError::NoFreePorts { count })
}

/// Checks that the `count` ports from `base` are free for UDP and TCP and hands them out: for
/// callers that place their media range themselves (the site tests, in a range no other test
/// uses, so parallel test processes never compete for it).
pub fn claim_block(base: u16, count: u16) -> HarnessResult<u16> {
    let mut handed_out = HANDED_OUT
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let handed_out = handed_out.get_or_insert_with(HashSet::new);
    let last = base
        .checked_add(count.saturating_sub(1))
        .ok_or(HarnessError::NoFreePorts { count })?;
    let block = base..=last;
    if block.clone().any(|port| handed_out.contains(&port)) || !block.clone().all(is_free) {
        return Err(HarnessError::NoFreePorts { count });
    }
    handed_out.extend(block);
    Ok(base)
}

/// A port the kernel considers free for UDP right now.
fn kernel_chosen_port() -> Option<u16> {
    let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).ok()?;
    socket.local_addr().ok().map(|addr| addr.port())
}

/// Whether `port` can be bound for both UDP and TCP (Switchboard listens on both).
fn is_free(port: u16) -> bool {
    let udp = UdpSocket::bind((Ipv4Addr::LOCALHOST, port));
    let tcp = TcpListener::bind((Ipv4Addr::LOCALHOST, port));
    udp.is_ok() && tcp.is_ok()
}

/// Whether some process has a UDP socket bound to 127.0.0.1:`port` (or the wildcard address),
/// read from /proc so that checking never races with the process about to bind it.
///
/// /proc lists sockets in chunks and may skip one while others come and go, so `false` can be
/// wrong for a moment: callers check again until a deadline. `true` is always right.
pub fn udp_port_is_bound(port: u16) -> bool {
    ["/proc/net/udp", "/proc/net/udp6"]
        .iter()
        .any(|table| read_proc_table(table).is_some_and(|text| proc_table_has_port(&text, port)))
}

/// Reads a /proc table with one large read where possible: every extra read() restarts the
/// kernel's walk of the socket table, which is where entries get skipped.
fn read_proc_table(path: &str) -> Option<String> {
    let mut file = std::fs::File::open(path).ok()?;
    let mut bytes = vec![0u8; 1 << 20];
    let mut filled = 0;
    loop {
        let buffer = bytes.get_mut(filled..)?;
        if buffer.is_empty() {
            bytes.resize(bytes.len() * 2, 0);
            continue;
        }
        match file.read(buffer) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(_) => return None,
        }
    }
    bytes.truncate(filled);
    String::from_utf8(bytes).ok()
}

/// Whether a /proc/net/udp-style table lists a local address with `port`.
fn proc_table_has_port(table: &str, port: u16) -> bool {
    let wanted = format!("{port:04X}");
    table.lines().skip(1).any(|line| {
        line.split_whitespace()
            .nth(1)
            .and_then(|local| local.rsplit_once(':'))
            .is_some_and(|(_, hex_port)| hex_port.eq_ignore_ascii_case(&wanted))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_are_free_and_never_repeat() {
        let first = free_port_block(4).expect("loopback has free ports");
        let second = free_port_block(4).expect("loopback has free ports");
        assert!(
            second + 3 < first || first + 3 < second,
            "{first} and {second} overlap"
        );
        for port in first..first + 4 {
            assert!(is_free(port), "port {port} was handed out but is busy");
        }
    }

    #[test]
    fn media_blocks_are_even_free_and_below_the_ephemeral_range() {
        let base = free_media_block(64).expect("loopback has free ports");
        assert_eq!(base % 2, 0);
        assert!(u32::from(base) + 64 <= MEDIA_BLOCKS.end);
        for port in base..base + 64 {
            assert!(is_free(port), "port {port} was handed out but is busy");
        }
    }

    #[test]
    fn a_bound_socket_shows_in_proc() {
        let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).expect("loopback bind works");
        let port = socket
            .local_addr()
            .expect("bound socket has an address")
            .port();
        // A miss is possible while other tests open sockets (see udp_port_is_bound).
        assert!((0..100).any(|_| udp_port_is_bound(port)));
        drop(socket);
        assert!(!udp_port_is_bound(port));
    }

    #[test]
    fn proc_table_parsing_reads_the_local_port_column() {
        let table = "  sl  local_address rem_address   st\n   0: 0100007F:13C4 00000000:0000 07\n";
        assert!(proc_table_has_port(table, 0x13C4));
        assert!(!proc_table_has_port(table, 0x13C5));
        assert!(!proc_table_has_port("header only\n", 0x13C4));
    }
}
