//! Agent feature codes dialled from the agent's own phone: `*21` ready, `*22` not ready
//! (first configured reason), `*22N` not ready with the N-th configured reason (1-based),
//! `*23` log out. The phone authenticates as the agent (407 challenge); the call is answered
//! with every media stream declined, then hung up by Switchboard once the phone ACKs, which
//! every SIP phone shows as a short successful call.

use super::command::RequestedState;
use super::registration::AuthOutcome;
use super::{ClientPurpose, Switch};
use sip::dialog::Dialog;
use sip::message::{push_header, response_to};
use sip::rsip::{Method, Request};
use sip::transaction::TransactionKey;
use sip::Peer;
use std::time::Instant;

/// A feature code's meaning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FeatureCode {
    /// `*21`
    Ready,
    /// `*22` or `*22N`: the reason's index in the configured list, when given.
    NotReady(Option<usize>),
    /// `*23`
    LogOut,
}

/// Parses a dialled feature code.
pub fn parse_feature_code(dialled: &str) -> Option<FeatureCode> {
    match dialled {
        "*21" => Some(FeatureCode::Ready),
        "*22" => Some(FeatureCode::NotReady(None)),
        "*23" => Some(FeatureCode::LogOut),
        other => {
            let n: usize = other.strip_prefix("*22")?.parse().ok()?;
            (n >= 1).then_some(FeatureCode::NotReady(Some(n)))
        }
    }
}

/// An SDP answer that declines every offered stream (RFC 3264 §6: port 0).
fn declining_answer(offer: &[u8], host: &str) -> Vec<u8> {
    let host = host.rsplit_once(':').map_or(host, |(h, _)| h);
    let mut sdp =
        format!("v=0\r\no=switchboard 1 1 IN IP4 {host}\r\ns=-\r\nc=IN IP4 {host}\r\nt=0 0\r\n");
    for line in String::from_utf8_lossy(offer).lines() {
        if let Some(rest) = line.strip_prefix("m=") {
            let mut parts = rest.split_whitespace();
            let (media, _port, proto) = (parts.next(), parts.next(), parts.next());
            let format = parts.next().unwrap_or("0");
            sdp.push_str(&format!(
                "m={} 0 {} {format}\r\n",
                media.unwrap_or("audio"),
                proto.unwrap_or("RTP/AVP")
            ));
        }
    }
    sdp.into_bytes()
}

impl Switch {
    /// An INVITE to a `*` number: an agent changing state from the phone.
    pub(super) fn on_feature_code(
        &mut self,
        now: Instant,
        key: TransactionKey,
        request: Request,
        source: Peer,
        dialled: &str,
    ) {
        let user = match self.authenticate(now, &key, &request, true) {
            AuthOutcome::User(user) => user,
            AuthOutcome::Challenged | AuthOutcome::Refused => return,
        };
        let Some(agent) = self.agents_by_user.get(&user).map(|a| a.id.to_string()) else {
            self.reply_error(now, &key, &request, 403, "not an agent");
            return;
        };
        let Some(code) = parse_feature_code(dialled) else {
            self.reply_error(
                now,
                &key,
                &request,
                404,
                &format!("unknown feature code {dialled}"),
            );
            return;
        };
        let reasons = &self.config.acd.not_ready_reasons;
        let state = match code {
            FeatureCode::Ready => RequestedState::Ready,
            FeatureCode::LogOut => RequestedState::LoggedOut,
            FeatureCode::NotReady(index) => {
                let reason = match index {
                    None => reasons.first(),
                    Some(n) => reasons.get(n - 1),
                };
                match reason {
                    Some(r) => RequestedState::NotReady(r.clone()),
                    None => {
                        self.reply_error(
                            now,
                            &key,
                            &request,
                            404,
                            &format!("no not-ready reason for {dialled}"),
                        );
                        return;
                    }
                }
            }
        };
        // `dialled` is one of the codes parse_feature_code accepted, never free text.
        let target = format!(
            "{agent} {} by {dialled}",
            crate::http::describe_state(&state)
        );
        let outcome = self.set_agent_state(now, &agent, state);
        self.audit.record(crate::audit::AuditRecord::now(
            crate::audit::Who {
                token: None,
                role: Some("agent".to_owned()),
                agent: Some(agent.clone()),
            },
            Some(source.addr.ip().to_string()),
            "agent-state",
            Some(target),
            if outcome.is_ok() { "ok" } else { "refused" },
        ));
        if let Err(error) = outcome {
            self.reply_error(now, &key, &request, 403, &error.to_string());
            return;
        }
        let tag = self.ids.tag();
        let Ok(dialog) = Dialog::new_uas(&request, &tag, source) else {
            self.reply_error(now, &key, &request, 400, "no Contact to hang up to");
            return;
        };
        let mut ok = response_to(&request, 200, Some(&tag));
        push_header(&mut ok.headers, "Contact", self.contact(source.transport));
        if !request.body.is_empty() {
            push_header(&mut ok.headers, "Content-Type", "application/sdp");
            ok.body = declining_answer(&request.body, self.local_names.host_port(source.transport));
        }
        self.send_response(now, &key, ok);
        self.feature_dialogs
            .insert(dialog.call_id.clone(), (key, dialog));
    }

    /// The ACK for a feature code's 200: hang up now.
    pub(super) fn on_feature_ack(&mut self, now: Instant, call_id: &str) -> bool {
        let Some((_, mut dialog)) = self.feature_dialogs.remove(call_id) else {
            return false;
        };
        dialog.remote_cseq = None;
        let via = self.via(dialog.peer);
        let bye = dialog.request(Method::Bye, &via, None, None);
        self.send_request(now, bye, dialog.peer, ClientPurpose::Fire);
        true
    }

    /// The phone never ACKed the feature code's 200: forget the dialog.
    pub(super) fn forget_feature_dialog(&mut self, key: &TransactionKey) {
        self.feature_dialogs.retain(|_, (k, _)| k != key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes() {
        assert_eq!(parse_feature_code("*21"), Some(FeatureCode::Ready));
        assert_eq!(parse_feature_code("*22"), Some(FeatureCode::NotReady(None)));
        assert_eq!(
            parse_feature_code("*222"),
            Some(FeatureCode::NotReady(Some(2)))
        );
        assert_eq!(parse_feature_code("*23"), Some(FeatureCode::LogOut));
        assert_eq!(parse_feature_code("*220"), None);
        assert_eq!(parse_feature_code("*99"), None);
        assert_eq!(parse_feature_code("*22x"), None);
    }

    #[test]
    fn answer_declines_every_stream() {
        let offer = b"v=0\r\nm=audio 4000 RTP/AVP 0 8\r\nm=video 5000 RTP/AVP 96\r\n";
        let answer = String::from_utf8(declining_answer(offer, "127.0.0.1:5060")).expect("utf8");
        assert!(answer.contains("c=IN IP4 127.0.0.1\r\n"));
        assert!(answer.contains("m=audio 0 RTP/AVP 0\r\n"));
        assert!(answer.contains("m=video 0 RTP/AVP 96\r\n"));
    }
}
