//! A party that keeps talking: a tone sent as PCMU RTP every 20 ms from a socket until the
//! talker is dropped (also when a check fails, so a failed test ends instead of waiting for
//! its thread). Tests that mix parties give each its own frequency and tell them apart with
//! [`crate::rtp::tone_share`].

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::rtp::{tone_payloads, RtpPeer, RtpStream};

/// A tone sent every 20 ms from an RTP socket until dropped.
pub struct Talker {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Talker {
    /// Starts sending `hz` from `rtp` to `to` with SSRC `ssrc`.
    pub fn start(rtp: Arc<RtpPeer>, to: SocketAddr, hz: f64, ssrc: u32) -> Talker {
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = std::thread::spawn(move || {
            let payloads = tone_payloads(&[hz], 4000.0, 50);
            let mut stream = RtpStream::new(ssrc);
            let start = Instant::now();
            let mut sent = 0u64;
            while !stopped.load(Ordering::Relaxed) {
                let packet = stream.audio(0, &payloads[sent as usize % payloads.len()]);
                if rtp.send_to(&packet, to).is_err() {
                    return;
                }
                sent += 1;
                let due = start + Duration::from_millis(20 * sent);
                if let Some(wait) = due.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
            }
        });
        Talker {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Talker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
