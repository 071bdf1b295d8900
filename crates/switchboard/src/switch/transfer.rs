//! Blind transfer from an agent's phone: an in-dialog REFER (RFC 3515) whose Refer-To names
//! an agent, a queue or a number Switchboard serves. The caller stays on Switchboard — the
//! agent's leg is released (the agent goes to wrap-up) and the call goes where the REFER said,
//! keeping its priority and its place. The phone learns the outcome from one NOTIFY with a
//! `message/sipfrag` body (RFC 3515 §2.4.5): `200 OK` once Switchboard has taken the call
//! over, or the refusal (404, 480 …) while the caller stays with the agent.

use super::b2bua::EndCause;
use super::call::Side;
use super::call::{CallNumber, CallState};
use super::{ClientPurpose, Switch};
use crate::config::{Config, NumberTarget};
use sip::headers::{header_value, split_name_addr, uri_host_port, uri_user};
use sip::message::{push_header, response_to};
use sip::rsip::{Method, Request};
use sip::transaction::TransactionKey;
use std::time::Instant;

/// Where a REFER sends the call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransferTarget {
    /// Ring this agent (who must be Ready).
    Agent(acd::AgentId),
    /// Wait in this queue.
    Queue(String),
    /// What this number leads to (its IVR or its queue).
    Number(NumberTarget),
}

/// A transfer Switchboard will not make, with the status the NOTIFY reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// SIP status for the sipfrag.
    pub code: u16,
    /// Why, for logs.
    pub reason: String,
}

impl Refusal {
    fn new(code: u16, reason: impl Into<String>) -> Refusal {
        Refusal {
            code,
            reason: reason.into(),
        }
    }
}

/// Reads a Refer-To value: the target and the user part as dialled (for the CDR).
/// `our_hosts` are the hosts that name Switchboard; another host is a foreign target (404).
pub fn resolve(
    config: &Config,
    trunk: &str,
    our_hosts: &[String],
    refer_to: &str,
) -> Result<(TransferTarget, String), Refusal> {
    let (uri, _) = split_name_addr(refer_to);
    if uri.contains("Replaces=") || uri.contains("replaces=") {
        // A well-formed Replaces is handled before (consult.rs); this one lacks a part.
        return Err(Refusal::new(
            400,
            "Replaces must name a Call-ID, a to-tag and a from-tag",
        ));
    }
    let host = uri_host_port(uri)
        .map(|h| h.rsplit_once(':').map_or(h, |(host, _)| host))
        .map(|h| h.trim_start_matches('[').trim_end_matches(']'))
        .unwrap_or_default();
    if !our_hosts.iter().any(|ours| ours.eq_ignore_ascii_case(host)) {
        return Err(Refusal::new(404, format!("{host:?} is not Switchboard")));
    }
    let user = uri_user(uri)
        .ok_or_else(|| Refusal::new(404, "the Refer-To URI names nobody"))?
        .to_string();
    let target = if let Some(agent) = config
        .agents
        .iter()
        .find(|a| a.id == user || a.sip_user == user)
    {
        TransferTarget::Agent(acd::AgentId::from(agent.id.as_str()))
    } else if config.queue(&user).is_some() {
        TransferTarget::Queue(user.clone())
    } else if let Some(number) = super::routing::match_number(&config.numbers, &user, trunk) {
        TransferTarget::Number(number.target.clone())
    } else {
        return Err(Refusal::new(
            404,
            format!("no agent, queue or number {user:?}"),
        ));
    };
    Ok((target, user))
}

impl Switch {
    /// A REFER inside a call. From the agent of a connected call it is a blind transfer;
    /// from the caller's side it is refused (a carrier has no business moving our calls).
    pub(super) fn on_refer(
        &mut self,
        now: Instant,
        id: CallNumber,
        side: Side,
        key: TransactionKey,
        request: Request,
    ) {
        if side == Side::Trunk {
            self.reply_error(now, &key, &request, 403, "REFER from the caller's side");
            return;
        }
        let Some(refer_to) = header_value(&request.headers, "Refer-To").map(str::to_owned) else {
            self.reply_error(now, &key, &request, 400, "REFER without Refer-To");
            return;
        };
        let Some(call) = self.calls.get(&id) else {
            return;
        };
        if !call.state.is_connected() {
            self.reply_error(now, &key, &request, 403, "the call is not connected");
            return;
        }
        if self.refer_with_replaces(now, id, &key, &request, &refer_to) {
            return;
        }
        if self.has_consult(id) {
            let reason = "a consult is in progress: complete or cancel it first";
            self.reply_error(now, &key, &request, 403, reason);
            return;
        }
        let Some(call) = self.calls.get(&id) else {
            return;
        };
        if call.media.is_none() {
            // The caller negotiated with the phone directly: a new agent would need a new
            // offer/answer with the caller, which this version does not make.
            self.reply_error(
                now,
                &key,
                &request,
                501,
                "transfer of a call without anchored media is not supported",
            );
            return;
        }
        let from_agent = call.agent().cloned();
        let trunk = call.trunk.clone();
        let hosts = self.our_hosts();
        let resolved =
            resolve(&self.config, &trunk, &hosts, &refer_to).and_then(|(target, dialled)| {
                self.check_target(&target, from_agent.as_ref())
                    .map(|()| (target, dialled))
            });
        let transport = self
            .calls
            .get_mut(&id)
            .and_then(|c| c.leg_dialog(side))
            .map_or(sip::Transport::Udp, |d| d.peer.transport);
        let mut accepted = response_to(&request, 202, None);
        push_header(&mut accepted.headers, "Contact", self.contact(transport));
        self.send_response(now, &key, accepted);
        match resolved {
            Err(refusal) => {
                tracing::info!(call = id, code = refusal.code, reason = %refusal.reason, %refer_to, "transfer refused");
                self.metrics
                    .transfers
                    .with_label_values(&["blind", "refused"])
                    .inc();
                self.notify_transfer(now, id, refusal.code);
            }
            Ok((target, dialled)) => {
                tracing::info!(call = id, ?target, "blind transfer");
                self.metrics
                    .transfers
                    .with_label_values(&["blind", "accepted"])
                    .inc();
                self.notify_transfer(now, id, 200);
                self.transfer(now, id, target, dialled);
            }
        }
    }

    /// Whether the target can take the call now.
    pub(super) fn check_target(
        &self,
        target: &TransferTarget,
        from_agent: Option<&acd::AgentId>,
    ) -> Result<(), Refusal> {
        match target {
            TransferTarget::Agent(agent) => {
                if from_agent == Some(agent) {
                    return Err(Refusal::new(403, "an agent cannot transfer to themselves"));
                }
                let ready = self
                    .acd
                    .agent(agent)
                    .is_some_and(|a| a.state == acd::AgentState::Ready);
                if ready {
                    Ok(())
                } else {
                    Err(Refusal::new(480, format!("agent {agent} is not Ready")))
                }
            }
            TransferTarget::Queue(queue) | TransferTarget::Number(NumberTarget::Queue(queue)) => {
                if self.queue_has_logged_in_agent(queue) {
                    Ok(())
                } else {
                    Err(Refusal::new(480, format!("nobody is logged in to {queue}")))
                }
            }
            TransferTarget::Number(NumberTarget::Ivr(_)) => Ok(()),
        }
    }

    /// Tells the transferring phone how its REFER ended (one final NOTIFY, RFC 3515).
    pub(super) fn notify_transfer(&mut self, now: Instant, id: CallNumber, code: u16) {
        let Some(peer) = self
            .calls
            .get_mut(&id)
            .and_then(|c| c.leg_dialog(Side::Agent))
            .map(|d| d.peer)
        else {
            return;
        };
        let via = self.via(peer);
        let contact = self.contact(peer.transport);
        let Some(dialog) = self
            .calls
            .get_mut(&id)
            .and_then(|c| c.leg_dialog(Side::Agent))
        else {
            return;
        };
        let mut notify = dialog.request(Method::Notify, &via, Some(&contact), None);
        push_header(&mut notify.headers, "Event", "refer");
        push_header(
            &mut notify.headers,
            "Subscription-State",
            "terminated;reason=noresource",
        );
        push_header(
            &mut notify.headers,
            "Content-Type",
            "message/sipfrag;version=2.0",
        );
        notify.body =
            format!("SIP/2.0 {code} {}\r\n", sip::message::reason_phrase(code)).into_bytes();
        self.send_request(now, notify, peer, ClientPurpose::Fire);
    }

    /// Takes the call from its agent and sends it to `target`: the agent's phone is hung up
    /// and the agent goes to wrap-up; the caller hears music until the next agent answers.
    pub(super) fn transfer(
        &mut self,
        now: Instant,
        id: CallNumber,
        target: TransferTarget,
        dialled: String,
    ) {
        let at = self.wall(now);
        // Supervisors watched the agent who is leaving: their sessions end with it.
        self.release_monitors(now, id);
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let Some(leg) = call.agent_leg.take() else {
            return;
        };
        let from_agent = leg.agent.to_string();
        call.transfers.push(::cdr::Transfer {
            at,
            from_agent: from_agent.clone(),
            to: dialled,
            kind: ::cdr::TransferKind::Blind,
        });
        call.state = CallState::Queued;
        call.hold.set(now, false);
        call.api_hold = false;
        if let Some(media) = call.media.as_mut() {
            self.media.prepare_next_agent(id, media);
        }
        self.close_attempt(now, id, &leg, None);
        self.end_agent_leg(now, leg, None);
        // The agent's part of the call is over: wrap-up, as after a hang-up.
        match self.acd.hangup(now, acd::CallId(id)) {
            Ok(actions) => self.apply_acd(now, actions),
            Err(error) => tracing::debug!(call = id, %error, "ACD hangup for a transfer"),
        }
        match target {
            TransferTarget::Agent(agent) => {
                let queue = self
                    .calls
                    .get(&id)
                    .map(|c| c.queue.clone())
                    .unwrap_or_default();
                self.requeue(now, id, queue, Some(agent));
            }
            TransferTarget::Queue(queue) | TransferTarget::Number(NumberTarget::Queue(queue)) => {
                self.requeue(now, id, queue, None)
            }
            TransferTarget::Number(NumberTarget::Ivr(ivr)) => {
                self.start_ivr(now, id, &ivr);
            }
        }
    }

    /// Puts a transferred call in `queue`, keeping its priority and its place (it is ordered
    /// as if it had been waiting since it first queued), and for `agent` only while that
    /// agent's phone rings.
    fn requeue(
        &mut self,
        now: Instant,
        id: CallNumber,
        queue: String,
        agent: Option<acd::AgentId>,
    ) {
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        call.queue = queue.clone();
        let request = acd::CallRequest {
            id: acd::CallId(id),
            queue: acd::QueueId::from(queue.as_str()),
            priority: call.priority,
            preferred_agent: agent.clone(),
            waiting_since: Some(call.enqueued_at()),
            preferred_wait: agent.map(|_| self.config.sip.ring_timeout),
        };
        self.metrics
            .calls_offered
            .with_label_values(&[queue.as_str(), call.trunk.as_str()])
            .inc();
        match self.acd.enqueue(now, request) {
            Ok(actions) => self.apply_acd(now, actions),
            Err(error) => {
                tracing::warn!(call = id, %error, "transferred call could not be queued");
                self.end_call(now, id, EndCause::QueueFull(error.to_string()));
                return;
            }
        }
        if self
            .calls
            .get(&id)
            .is_some_and(|c| !c.state.is_connected() && c.agent_leg.is_none())
        {
            self.start_waiting_audio(now, id);
        }
    }

    /// Hosts a Refer-To may name to mean Switchboard.
    fn our_hosts(&self) -> Vec<String> {
        let mut hosts: Vec<String> = [self.local.udp, self.local.tcp]
            .into_iter()
            .flatten()
            .map(|addr| addr.ip().to_string())
            .collect();
        hosts.extend(self.local.public_host.clone());
        hosts.push(self.config.sip.realm.clone());
        hosts.push("localhost".to_owned());
        if hosts.iter().any(|h| h == "0.0.0.0" || h == "::") {
            hosts.push("127.0.0.1".to_owned());
            hosts.push("::1".to_owned());
        }
        hosts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = "[[trunk]]\nname = \"t\"\nallow = [\"127.0.0.0/8\"]\n\
        [[number]]\ndid = \"200\"\nivr = \"main\"\n\
        [[ivr]]\nname = \"main\"\n[[ivr.menu]]\nname = \"top\"\nprompt = [\"menu\"]\nkeys = { \"1\" = \"hangup\" }\n\
        [[queue]]\nname = \"billing\"\nskills = { billing = 1 }\n\
        [[agent]]\nid = \"1002\"\nname = \"Bob\"\nsip_user = \"bob\"\npassword = \"p\"\n";

    fn resolved(refer_to: &str) -> Result<(TransferTarget, String), Refusal> {
        let config = crate::config::load_str("t.toml", CONFIG).expect("valid");
        resolve(
            &config,
            "t",
            &["127.0.0.1".to_owned(), "switchboard".to_owned()],
            refer_to,
        )
    }

    #[test]
    fn agents_queues_and_numbers_are_targets() {
        assert_eq!(
            resolved("<sip:1002@127.0.0.1:5060>"),
            Ok((TransferTarget::Agent("1002".into()), "1002".into()))
        );
        assert_eq!(
            resolved("<sip:bob@127.0.0.1>"),
            Ok((TransferTarget::Agent("1002".into()), "bob".into()))
        );
        assert_eq!(
            resolved("sip:billing@switchboard"),
            Ok((TransferTarget::Queue("billing".into()), "billing".into()))
        );
        assert_eq!(
            resolved("<sip:200@127.0.0.1;transport=tcp>"),
            Ok((
                TransferTarget::Number(NumberTarget::Ivr("main".into())),
                "200".into()
            ))
        );
    }

    #[test]
    fn foreign_hosts_unknown_users_and_replaces_are_refused() {
        assert_eq!(
            resolved("<sip:1002@carrier.example.com>").map_err(|r| r.code),
            Err(404)
        );
        assert_eq!(
            resolved("<sip:9999@127.0.0.1>").map_err(|r| r.code),
            Err(404)
        );
        assert_eq!(resolved("<sip:127.0.0.1>").map_err(|r| r.code), Err(404));
        assert_eq!(
            resolved("<sip:1002@127.0.0.1?Replaces=abc%3Bto-tag%3Dx>").map_err(|r| r.code),
            Err(400)
        );
    }
}
