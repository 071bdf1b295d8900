//! What call control does when a call's media session reports something: a key press, the
//! end of a prompt, silence past the media timeout, or the session's end.

use super::b2bua::EndCause;
use super::call::CallNumber;
use super::media_plane::MediaOp;
use super::Switch;
use media::{Leg, MediaEvent};
use std::time::Instant;

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
                    Leg::Extra(_) => self.monitor_key(call, leg, digit.as_char()),
                    Leg::Agent => {}
                }
            }
            MediaEvent::PlaybackFinished { leg, token } => {
                if leg == Leg::Trunk {
                    self.caller_playback_finished(now, call, token);
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
            // Extra legs are supervisors' phones.
            MediaEvent::LegAdded { leg, .. } => self.monitor_leg_added(now, call, leg),
            MediaEvent::AddLegFailed { leg, reason, .. } => {
                tracing::warn!(call, ?leg, %reason, "supervisor leg not added");
                self.monitor_leg_failed(now, call, leg);
            }
            MediaEvent::LegRemoved { leg, .. } => self.media.extra_leg_released(call, leg),
            MediaEvent::LegSilent { leg } => self.monitor_silent(now, call, leg),
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

    /// The runtime could not start a session (a port of the pool was taken by another
    /// process): the call cannot carry audio, so it ends.
    pub fn media_start_failed(&mut self, now: Instant, call: CallNumber, error: &str) {
        tracing::error!(call, error, "media session could not start");
        self.media.session_ended(call);
        self.flush_parked_cdr(call);
        if self.calls.contains_key(&call) {
            self.end_call(now, call, EndCause::MediaFailed);
        }
        self.process_transaction_events(now);
    }
}
