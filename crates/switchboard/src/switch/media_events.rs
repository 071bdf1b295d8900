//! What call control does when a call's media session reports something: a key press, the
//! end of a prompt, silence past the media timeout, or the session's end.

use super::b2bua::EndCause;
use super::call::{CallInput, CallNumber};
use super::media_plane::MediaOp;
use super::{Switch, SwitchTimer};
use media::{Leg, MediaEvent};
use std::time::{Duration, Instant};

/// How long a port pair found held by another process stays out of the pool: long enough that
/// a burst of calls does not meet it again, short enough that a brief holder (a client's
/// ephemeral port) costs little capacity.
pub const BUSY_PORT_QUARANTINE: Duration = Duration::from_secs(300);

impl Switch {
    /// The next media-session operation for the I/O edge.
    pub fn poll_media(&mut self) -> Option<MediaOp> {
        self.media.poll()
    }

    /// An event from the media session of `call`.
    pub fn handle_media_event(&mut self, now: Instant, call: CallNumber, event: MediaEvent) {
        match event {
            MediaEvent::Latched { leg, source } => {
                tracing::debug!(call, ?leg, %source, "media source latched");
            }
            MediaEvent::Dtmf {
                leg, digit, source, ..
            } => {
                tracing::info!(call, ?leg, digit = %digit.as_char(), ?source, "key press");
                match leg {
                    Leg::Trunk => self.caller_pressed(now, call, digit.as_char()),
                    // The first agent's own consult call (their phone dialled the colleague):
                    // its keys are the first agent's, `*3` included.
                    Leg::Extra(_) if self.is_phone_consult_leg(call, leg) => {
                        self.consult_key(now, call, digit.as_char())
                    }
                    Leg::Extra(_) => self.monitor_key(call, leg, digit.as_char()),
                    Leg::Agent => self.consult_key(now, call, digit.as_char()),
                }
            }
            MediaEvent::PlaybackFinished { leg, token } => {
                if leg == Leg::Trunk {
                    let input = CallInput::CallerPlaybackFinished { token };
                    self.call_input(now, call, input);
                }
            }
            MediaEvent::MediaTimeout { silent_leg } => {
                if self.calls.contains_key(&call) {
                    tracing::info!(
                        call,
                        ?silent_leg,
                        "no RTP within the media timeout: hanging up"
                    );
                    self.metrics.media_timeouts.inc();
                    self.end_call(now, call, EndCause::MediaTimeout);
                } else if !self.callback_media_timeout(now, call) {
                    self.call_out_media_timeout(now, call);
                }
            }
            // Extra legs are supervisors' phones and a consulted colleague's.
            MediaEvent::LegAdded { leg, .. } => self.extra_leg_added(now, call, leg),
            MediaEvent::AddLegFailed { leg, reason, .. } => {
                let party = if self.is_consult_leg(call, leg) {
                    "consulted colleague"
                } else {
                    "supervisor"
                };
                tracing::warn!(call, ?leg, %reason, party, "extra leg not added");
                self.extra_leg_failed(now, call, leg);
            }
            MediaEvent::LegRemoved { leg, .. } => self.media.extra_leg_released(call, leg),
            MediaEvent::LegSilent { leg } => self.monitor_silent(now, call, leg),
            MediaEvent::StartFailed { error, busy } => {
                self.media_start_failed(now, call, &error, &busy)
            }
            MediaEvent::Ended(report) => {
                tracing::debug!(call, ?report, "media session ended");
                for (stream, dropped) in [
                    ("rtp", report.srtp_auth_failures),
                    ("rtcp", report.srtcp_auth_failures),
                ] {
                    if dropped > 0 {
                        tracing::warn!(
                            call,
                            stream,
                            dropped,
                            "SRTP packets failed authentication (wrong key, tampering or replay)"
                        );
                        self.metrics
                            .srtp_auth_failures
                            .with_label_values(&[stream])
                            .inc_by(dropped);
                    }
                }
                self.media.session_ended(call);
                self.media_ended(call, report.recording.as_ref());
            }
        }
        self.process_transaction_events(now);
    }

    /// From now on a port pair is made Switchboard's through `hold` (the I/O edge binds its
    /// sockets) before call control names it in an SDP; a pair another process holds is
    /// passed over and quarantined instead of failing the call it would have gone to.
    pub fn hold_ports_with(&mut self, hold: Box<dyn media::PortHold>) {
        self.media.hold_ports_with(hold);
    }

    /// The call's session could not start (its sockets could not be taken; `busy`: pairs
    /// another process holds): the call cannot carry audio, so it ends, and the busy pairs
    /// stay out of the pool for [`BUSY_PORT_QUARANTINE`] so the next calls do not meet them
    /// again.
    fn media_start_failed(
        &mut self,
        now: Instant,
        call: CallNumber,
        error: &str,
        busy: &[media::PortPair],
    ) {
        tracing::error!(call, error, "media session could not start");
        let busy = self.media.session_failed(call, busy);
        self.quarantine(now, busy);
        self.flush_parked_cdr(call);
        if self.calls.contains_key(&call) {
            self.end_call(now, call, EndCause::MediaFailed);
        }
        self.process_transaction_events(now);
    }

    /// Keeps pairs another process holds out of the pool for [`BUSY_PORT_QUARANTINE`]:
    /// back at once, a busy pair would be met again as the pool cycles.
    fn quarantine(&mut self, now: Instant, pairs: Vec<media::PortPair>) {
        for pair in pairs {
            tracing::warn!(
                rtp_port = pair.rtp(),
                quarantine_s = BUSY_PORT_QUARANTINE.as_secs(),
                "RTP port pair held by another process: kept out of use (keep the RTP range \
                 to Switchboard alone, outside net.ipv4.ip_local_port_range)"
            );
            self.metrics.rtp_ports_busy.inc();
            self.timers.schedule(
                now + BUSY_PORT_QUARANTINE,
                SwitchTimer::PortQuarantineOver { pair },
            );
        }
    }

    /// Quarantines the pairs the media plane passed over while it took pairs for calls.
    pub(super) fn quarantine_busy_pairs(&mut self, now: Instant) {
        let busy = self.media.take_busy();
        if !busy.is_empty() {
            self.quarantine(now, busy);
        }
    }
}
