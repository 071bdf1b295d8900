//! An unauthenticated INVITE flood from 127.0.0.2 (outside every trunk ACL) at 20,000
//! messages a second for 15 s, while the SIPp trunk on 127.0.0.1 places 100 calls a second to
//! agents: at least 99 % of the legitimate calls complete, the flooder gets at most one answer
//! per request (never a retransmission), far fewer bytes than it sent, and Switchboard's
//! memory after the flood is what the same calls without a flood leave.
//!
//! The rate and duration can be lowered on a slow machine with SB_FLOOD_RATE / SB_FLOOD_SECONDS.

use std::collections::HashMap;
use std::net::UdpSocket;
use std::path::PathBuf;
use std::thread;
use std::time::{Duration, Instant};

use sip_tests::agent::register_agent;
use sip_tests::ports::free_port;
use sip_tests::switchboard::Placement;
use sip_tests::{
    AgentAccount, HarnessError, HarnessResult, Sipp, Switchboard, SwitchboardConfig, TrunkConfig,
};

const AGENTS: u32 = 20;
const CALLS_PER_SECOND: u32 = 100;

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// What the flooder saw.
#[derive(Debug, Default)]
struct FloodReport {
    sent: u64,
    sent_bytes: u64,
    received: u64,
    received_bytes: u64,
    answered_twice: u64,
}

fn flood(
    target: std::net::SocketAddr,
    rate: u64,
    duration: Duration,
) -> HarnessResult<FloodReport> {
    let socket =
        UdpSocket::bind("127.0.0.2:0").map_err(|e| HarnessError::io("binding 127.0.0.2", e))?;
    socket
        .set_nonblocking(true)
        .map_err(|e| HarnessError::io("non-blocking flood socket", e))?;
    let port = socket
        .local_addr()
        .map_err(|e| HarnessError::io("flood address", e))?
        .port();
    let mut report = FloodReport::default();
    let mut answers: HashMap<Vec<u8>, u32> = HashMap::new();
    let mut buffer = vec![0u8; 65_535];
    let mut receive = |socket: &UdpSocket, report: &mut FloodReport| {
        while let Ok(len) = socket.recv(&mut buffer) {
            let data = buffer.get(..len).unwrap_or_default();
            report.received += 1;
            report.received_bytes += len as u64;
            let call_id = data
                .split(|b| *b == b'\n')
                .find(|line| line.starts_with(b"Call-ID:"))
                .unwrap_or_default()
                .to_vec();
            *answers.entry(call_id).or_default() += 1;
        }
    };
    let started = Instant::now();
    let mut n: u64 = 0;
    while started.elapsed() < duration {
        let due = (started.elapsed().as_secs_f64() * rate as f64) as u64;
        while n < due {
            let invite = format!(
                "INVITE sip:100@{target} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.2:{port};branch=z9hG4bKflood{n};rport\r\n\
                 Max-Forwards: 70\r\nFrom: <sip:flood@127.0.0.2>;tag=f{n}\r\nTo: <sip:100@{target}>\r\n\
                 Call-ID: flood-{n}\r\nCSeq: 1 INVITE\r\nContact: <sip:flood@127.0.0.2:{port}>\r\n\
                 Content-Length: 0\r\n\r\n"
            );
            if socket.send_to(invite.as_bytes(), target).is_ok() {
                report.sent += 1;
                report.sent_bytes += invite.len() as u64;
            }
            n += 1;
        }
        receive(&socket, &mut report);
        thread::sleep(Duration::from_millis(1));
    }
    // A stateful 403 would be retransmitted for 32 s (Timer H); 8 s covers its first four.
    let quiet_until = Instant::now() + Duration::from_secs(8);
    while Instant::now() < quiet_until {
        receive(&socket, &mut report);
        thread::sleep(Duration::from_millis(5));
    }
    report.answered_twice = answers.values().filter(|count| **count > 1).count() as u64;
    Ok(report)
}

fn resident_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// Runs the legitimate load (and the flood, when `rate` > 0); returns SIPp's
/// (successful, failed), the flood report and the RSS afterwards.
fn run(rate: u64, seconds: u64) -> HarnessResult<((u64, u64), FloodReport, u64)> {
    let agents: Vec<AgentAccount> = (0..AGENTS)
        .map(|i| AgentAccount::new(&format!("{}", 2000 + i), &format!("Agent {i}")))
        .collect();
    // Room for the calls a stall of the loaded machine piles up at 100 calls/s (four RTP ports
    // each; the default test block holds 16 calls).
    let placement = Placement {
        rtp_ports: 400,
        ..Placement::default()
    };
    let switchboard = Switchboard::start_placed(
        SwitchboardConfig {
            trunks: vec![TrunkConfig {
                name: "carrier".into(),
                allow: vec!["127.0.0.1/32".into()],
                credentials: None,
            }],
            agents,
            ..SwitchboardConfig::default()
        },
        &placement,
    )?;
    let load = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../benches/load");
    let phone_port = free_port()?;
    for i in 0..AGENTS {
        register_agent(&switchboard, &format!("{}", 2000 + i), phone_port)?;
    }
    let calls = CALLS_PER_SECOND as u64 * seconds;
    let timeout = Duration::from_secs(seconds * 4 + 60);
    let phones = Sipp::server(
        &load.join("agent_uas.xml").display().to_string(),
        phone_port,
        switchboard.dir(),
    )?
    .calls(calls as u32)
    .timeout(timeout)
    .arg("-buff_size")
    .arg("4194304")
    .spawn()?;
    let target = switchboard.sip_addr();
    let flooder = thread::spawn(move || {
        if rate == 0 {
            return Ok(FloodReport::default());
        }
        flood(target, rate, Duration::from_secs(seconds))
    });
    let trunk = switchboard
        .sipp_client(&load.join("trunk_uac.xml").display().to_string())?
        .service("100")
        .calls(calls as u32)
        .timeout(timeout)
        .arg("-r")
        .arg(&CALLS_PER_SECOND.to_string())
        .arg("-d")
        .arg("0")
        .arg("-buff_size")
        .arg("4194304")
        .run()?;
    let report = flooder
        .join()
        .map_err(|_| HarnessError::Unexpected("the flooder panicked".into()))??;
    drop(phones);
    Ok((trunk.call_counts(), report, resident_kib(switchboard.pid())))
}

#[test]
fn an_unauthenticated_flood_does_not_stop_legitimate_calls() -> HarnessResult<()> {
    let rate = env_or("SB_FLOOD_RATE", 20_000);
    let seconds = env_or("SB_FLOOD_SECONDS", 15);
    let ((baseline_ok, _), _, baseline_rss) = run(0, seconds)?;
    let ((ok, failed), report, rss) = run(rate, seconds)?;
    let calls = CALLS_PER_SECOND as u64 * seconds;
    eprintln!(
        "flood {rate}/s: {ok}/{calls} legitimate calls ok ({failed} failed; {baseline_ok} without flood); \
         flood sent {} msgs / {} bytes, got back {} msgs / {} bytes; RSS {rss} KiB ({baseline_rss} KiB without flood)",
        report.sent, report.sent_bytes, report.received, report.received_bytes
    );
    assert!(
        ok * 100 >= calls * 99,
        "only {ok} of {calls} legitimate calls completed under the flood ({failed} failed)"
    );
    assert!(
        report.sent >= rate * seconds * 9 / 10,
        "the flood itself fell short: {report:?}"
    );
    assert_eq!(
        report.answered_twice, 0,
        "a response was retransmitted to the flooder: {report:?}"
    );
    assert!(report.received <= report.sent, "{report:?}");
    assert!(
        report.received_bytes * 10 <= report.sent_bytes,
        "the flooder got more than a tenth of its bytes back: {report:?}"
    );
    // The flood leaves no state behind: memory ends where the same calls alone leave it
    // (with room for allocator noise).
    assert!(
        rss <= baseline_rss + baseline_rss / 2 + 4096,
        "RSS {rss} KiB after the flood vs {baseline_rss} KiB without"
    );
    Ok(())
}
