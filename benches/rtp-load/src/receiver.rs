//! The one receiver thread: every RTP socket of the generator registered with epoll (mio,
//! edge-triggered), drained on readiness. Each packet is checked to be ours and to have
//! arrived on the right call and leg, then its one-way delay through Switchboard is counted.

use std::io::ErrorKind;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};

use crate::clock::MonotonicClock;
use crate::error::{LoadError, LoadResult};
use crate::histogram::MicrosHistogram;
use crate::media_call::MediaCall;
use crate::probe_packet::{self, Direction, PACKET_LEN};

/// How often the thread looks at the stop flag when no packet arrives.
const STOP_CHECK: Duration = Duration::from_millis(20);

/// What the receiver saw.
#[derive(Debug, Clone, Default)]
pub struct ReceiverReport {
    /// Probes received on the right call and leg, per direction.
    pub received: [u64; 2],
    /// One-way delay sender → Switchboard → receiver, µs, per direction.
    pub delay: [MicrosHistogram; 2],
    /// Datagrams that were not our probes (wrong size, header or payload), counted not trusted.
    pub malformed: u64,
    /// Probes that arrived on another call's or the other leg's socket: a relay mix-up.
    pub misdelivered: u64,
    /// Receive errors other than "nothing more to read".
    pub receive_errors: u64,
}

/// Token for the socket receiving `direction` of call position `position`.
fn token(position: usize, direction: Direction) -> Token {
    Token(position * 2 + direction.index())
}

/// Receives until `stop` is set.
pub fn receive(
    calls: &[MediaCall],
    clock: &MonotonicClock,
    stop: &AtomicBool,
) -> LoadResult<ReceiverReport> {
    let mut poll = Poll::new().map_err(|e| LoadError::io("creating the RTP poller", e))?;
    for (position, call) in calls.iter().enumerate() {
        for direction in Direction::BOTH {
            let fd = call.receiver(direction).as_raw_fd();
            poll.registry()
                .register(
                    &mut SourceFd(&fd),
                    token(position, direction),
                    Interest::READABLE,
                )
                .map_err(|e| LoadError::io("registering an RTP socket", e))?;
        }
    }
    let mut report = ReceiverReport::default();
    let mut events = Events::with_capacity(1024);
    // Larger than a probe so an oversized datagram shows as malformed instead of truncated.
    let mut buf = [0u8; PACKET_LEN * 2];
    while !stop.load(Ordering::Relaxed) {
        if let Err(e) = poll.poll(&mut events, Some(STOP_CHECK)) {
            if e.kind() == ErrorKind::Interrupted {
                continue;
            }
            return Err(LoadError::io("waiting for RTP", e));
        }
        for event in events.iter() {
            let Token(raw) = event.token();
            let position = raw / 2;
            let expected = if raw % 2 == 0 {
                Direction::TrunkToAgent
            } else {
                Direction::AgentToTrunk
            };
            let Some(call) = calls.get(position) else {
                continue;
            };
            drain(call, expected, clock, &mut buf, &mut report);
        }
    }
    Ok(report)
}

/// Reads everything queued on the socket receiving `expected` of `call`.
fn drain(
    call: &MediaCall,
    expected: Direction,
    clock: &MonotonicClock,
    buf: &mut [u8],
    report: &mut ReceiverReport,
) {
    let socket = call.receiver(expected);
    loop {
        let len = match socket.recv(buf) {
            Ok(len) => len,
            Err(e) if e.kind() == ErrorKind::WouldBlock => return,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(_) => {
                report.receive_errors += 1;
                return;
            }
        };
        let now = clock.now_ns();
        let Some(Ok(probe)) = buf.get(..len).map(probe_packet::read) else {
            report.malformed += 1;
            continue;
        };
        if probe.call != call.index || probe.direction != expected {
            report.misdelivered += 1;
            continue;
        }
        let Some(delay_ns) = now.checked_sub(probe.sent_ns) else {
            // Sent "after" it arrived: not a packet this generator stamped.
            report.malformed += 1;
            continue;
        };
        report.received[expected.index()] += 1;
        report.delay[expected.index()].record(delay_ns / 1_000);
    }
}
