//! A port of the RTP range taken by another process after Switchboard started: call control
//! binds a pair when it takes it for a call, before any SDP names it, so the taken pair is
//! passed over and the call goes on with another; the pair is then kept out of the pool, so
//! the calls after it do not try it again as the pool cycles. No call fails.

use std::net::UdpSocket;
use std::time::Duration;

use sip_tests::switchboard::Placement;
use sip_tests::{HarnessError, HarnessResult, Switchboard, SwitchboardConfig};

const CALLS: u32 = 8;
const WAIT: Duration = Duration::from_secs(120);

#[test]
fn a_port_held_by_another_process_is_passed_over_and_fails_no_call() -> HarnessResult<()> {
    // Three port pairs: the first call gets the first two.
    let placement = Placement {
        rtp_ports: 6,
        ..Placement::default()
    };
    let switchboard = Switchboard::start_placed(SwitchboardConfig::default(), &placement)?;
    let (first, _) = switchboard.rtp_ports();
    // "Another process" takes the first RTP port after Switchboard started.
    let squatter = UdpSocket::bind(("127.0.0.1", first))
        .map_err(|e| HarnessError::io(format!("binding port {first}"), e))?;

    // One call at a time, each hung up right after the answer.
    let trunk = switchboard.calls_one_at_a_time("1001", CALLS, WAIT)?;
    assert_eq!(
        trunk.call_counts(),
        (u64::from(CALLS), 0),
        "every call is carried on the two pairs left"
    );
    let metrics = switchboard.api().metrics()?;
    assert_eq!(
        metrics.counter("switchboard_rtp_port_pairs_busy_total", &[]),
        1.0
    );
    let log = switchboard.log();
    assert!(
        log.lines().any(|line| line
            .contains("RTP port pair held by another process: kept out of use")
            && line.contains(&format!("rtp_port={first} "))),
        "the log names the port"
    );
    drop(squatter);
    Ok(())
}
