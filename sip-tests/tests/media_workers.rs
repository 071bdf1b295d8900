//! The media plane's worker threads and its sockets kept between calls (issue 12): the
//! number of threads relaying RTP is `[media] workers`, and a finished call's RTP ports stay
//! bound by Switchboard so the next call on them costs no bind, close or poller change.

use std::net::UdpSocket;
use std::time::Duration;

use sip_tests::switchboard::Placement;
use sip_tests::{HarnessError, HarnessResult, Switchboard, SwitchboardConfig};

const WAIT: Duration = Duration::from_secs(120);
const CALLS: u32 = 3;

/// Threads of process `pid` named as media workers are (`media::media_workers`).
fn media_worker_threads(pid: u32) -> HarnessResult<usize> {
    let tasks = format!("/proc/{pid}/task");
    let entries =
        std::fs::read_dir(&tasks).map_err(|e| HarnessError::io(format!("listing {tasks}"), e))?;
    let mut count = 0;
    for entry in entries {
        let entry = entry.map_err(|e| HarnessError::io(format!("listing {tasks}"), e))?;
        // A thread may end between the listing and the read: not one of ours then.
        let name = std::fs::read_to_string(entry.path().join("comm")).unwrap_or_default();
        if name.trim_end() == "media-worker" {
            count += 1;
        }
    }
    Ok(count)
}

#[test]
fn the_configured_number_of_media_worker_threads_run() -> HarnessResult<()> {
    for workers in [1, 3] {
        let config = SwitchboardConfig {
            media_lines: vec![format!("workers = {workers}")],
            ..SwitchboardConfig::default()
        };
        let switchboard = Switchboard::start(config)?;
        assert_eq!(
            media_worker_threads(switchboard.pid())?,
            workers,
            "threads named media-worker with workers = {workers}"
        );
    }
    Ok(())
}

/// Four port pairs, three calls one after the other: the third call gets the first call's
/// ports back (the pool hands out the least recently released pairs; two calls apart, so it
/// never waits for the first session's end) and carries its media on that call's sockets.
/// Afterwards every port of the range is still Switchboard's: kept bound for the next call.
#[test]
fn calls_in_a_row_reuse_the_ports_sockets_which_stay_bound() -> HarnessResult<()> {
    let placement = Placement {
        rtp_ports: 8,
        ..Placement::default()
    };
    let switchboard = Switchboard::start_placed(SwitchboardConfig::default(), &placement)?;
    let (first, last) = switchboard.rtp_ports();
    let trunk = switchboard.calls_one_at_a_time("1001", CALLS, WAIT)?;
    assert_eq!(
        trunk.call_counts(),
        (u64::from(CALLS), 0),
        "every call carried"
    );
    let metrics = switchboard.api().metrics()?;
    assert_eq!(
        metrics.counter("switchboard_rtp_port_pairs_busy_total", &[]),
        0.0,
        "a kept socket is never mistaken for another process's"
    );
    for port in first..=last {
        let bound = UdpSocket::bind(("127.0.0.1", port));
        assert!(
            bound.is_err_and(|e| e.kind() == std::io::ErrorKind::AddrInUse),
            "port {port} is still bound by Switchboard after the calls"
        );
    }
    Ok(())
}
