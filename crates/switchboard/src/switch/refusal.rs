//! Why Switchboard refuses a new request, as a type: each reason maps to its SIP status here
//! and nowhere else (the handlers used to pass `(u16, String)` pairs around, so nothing kept
//! a reason and its status together). The response itself — Warning with the reason, and the
//! header the status calls for (Unsupported, Min-SE, Accept, Retry-After) — is built by
//! `Switch::refuse`.

use super::media_plane::AnchorError;

/// A request turned away before it becomes part of a call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// Max-Forwards reached 0 (RFC 3261 §16.3).
    #[error("Max-Forwards reached 0")]
    TooManyHops,
    /// The Request-URI is neither sip:, sips: nor tel:.
    #[error("unsupported URI scheme")]
    UnsupportedScheme,
    /// A sips: Request-URI over a transport without TLS (RFC 5630); names the transport.
    #[error("a sips: Request-URI must arrive over TLS (RFC 5630), not {0}")]
    SipsWithoutTls(&'static str),
    /// Require names option tags Switchboard does not implement.
    #[error("unsupported extension {}", .0.join(", "))]
    UnsupportedExtension(Vec<String>),
    /// Session-Expires below Switchboard's minimum (RFC 4028), in seconds.
    #[error("Session-Expires is below the minimum of {0} s")]
    SessionTooBrief(u32),
    /// A header Switchboard needs is malformed; says which and how.
    #[error("{0}")]
    Malformed(String),
    /// Neither the Request-URI nor To has a number.
    #[error("no number in the Request-URI")]
    NoNumber,
    /// No `[[number]]` serves the dialled number.
    #[error("unknown number {0}")]
    UnknownNumber(String),
    /// A body that is not SDP; names its type.
    #[error("body of type {0:?} is not supported: only application/sdp")]
    UnsupportedBody(String),
    /// The offer's security does not fit the leg's SRTP policy.
    #[error("{0}")]
    UnacceptableSecurity(String),
    /// The media could not be anchored.
    #[error(transparent)]
    Media(#[from] AnchorError),
}

impl Refusal {
    /// The status the request gets.
    pub fn sip_status(&self) -> u16 {
        match self {
            Refusal::TooManyHops => 483,
            Refusal::UnsupportedScheme | Refusal::SipsWithoutTls(_) => 416,
            Refusal::UnsupportedExtension(_) => 420,
            Refusal::SessionTooBrief(_) => 422,
            Refusal::Malformed(_) => 400,
            Refusal::NoNumber | Refusal::UnknownNumber(_) => 404,
            Refusal::UnsupportedBody(_) => 415,
            Refusal::UnacceptableSecurity(_) => 488,
            Refusal::Media(error) => error.sip_status(),
        }
    }

    /// The `reason` label of `switchboard_calls_rejected_total` when a trunk call is refused
    /// for this (None: not counted as a rejected call).
    pub fn rejected_call_label(&self) -> Option<&'static str> {
        match self {
            Refusal::UnknownNumber(_) => Some("unknown-number"),
            Refusal::Media(AnchorError::NoPorts) => Some("no-rtp-ports"),
            Refusal::Media(_) | Refusal::UnsupportedBody(_) | Refusal::UnacceptableSecurity(_) => {
                Some("media")
            }
            _ => None,
        }
    }
}

impl super::Switch {
    /// Answers `request` with the status of `refusal` (see `reply_error` for the headers).
    pub(super) fn refuse(
        &mut self,
        now: std::time::Instant,
        key: &sip::transaction::TransactionKey,
        request: &sip::rsip::Request,
        refusal: &Refusal,
    ) {
        if let Some(label) = refusal.rejected_call_label() {
            self.reject_metric(label);
        }
        self.reply_error(
            now,
            key,
            request,
            refusal.sip_status(),
            &refusal.to_string(),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_refusal_has_its_status_and_says_why() {
        let cases = [
            (Refusal::TooManyHops, 483, "Max-Forwards reached 0"),
            (
                Refusal::SipsWithoutTls("UDP"),
                416,
                "a sips: Request-URI must arrive over TLS (RFC 5630), not UDP",
            ),
            (
                Refusal::UnsupportedExtension(vec!["100rel".into(), "foo".into()]),
                420,
                "unsupported extension 100rel, foo",
            ),
            (
                Refusal::SessionTooBrief(90),
                422,
                "Session-Expires is below the minimum of 90 s",
            ),
            (
                Refusal::UnknownNumber("555".into()),
                404,
                "unknown number 555",
            ),
            (
                Refusal::UnsupportedBody("text/plain".into()),
                415,
                "body of type \"text/plain\" is not supported: only application/sdp",
            ),
            (
                Refusal::Media(AnchorError::NoPorts),
                503,
                "no free RTP ports in the configured range",
            ),
        ];
        for (refusal, status, reason) in cases {
            assert_eq!(refusal.sip_status(), status, "{refusal:?}");
            assert_eq!(refusal.to_string(), reason);
        }
    }

    #[test]
    fn only_trunk_call_refusals_count_as_rejected_calls() {
        assert_eq!(
            Refusal::Media(AnchorError::NoPorts).rejected_call_label(),
            Some("no-rtp-ports")
        );
        assert_eq!(
            Refusal::UnknownNumber("9".into()).rejected_call_label(),
            Some("unknown-number")
        );
        assert_eq!(
            Refusal::UnsupportedBody("x".into()).rejected_call_label(),
            Some("media")
        );
        assert_eq!(Refusal::TooManyHops.rejected_call_label(), None);
        assert_eq!(Refusal::SessionTooBrief(90).rejected_call_label(), None);
    }
}
