//! Agents' phones registering: digest authentication against the agent's credentials, the
//! registrar's bindings, and the ACD log-in/log-out that follows a phone appearing or going.
//! A PBX trunk may register too, with its trunk's digest credentials (many PBXs register to
//! their provider): its binding is kept like a phone's, and logs nobody in.

use super::Switch;
use crate::config::DigestSecret;
use sip::digest::{Secret, Verdict};
use sip::headers::{header_value, split_name_addr, uri_user};
use sip::registrar::{AorTransition, RegisterError};
use sip::rsip::Request;
use sip::transaction::TransactionKey;
use sip::Peer;
use std::time::Instant;

/// Turns configured credentials into what the digest verifier needs.
pub(super) fn digest_secret(secret: &DigestSecret) -> Secret {
    match secret {
        DigestSecret::Password(p) => Secret::Password(p.clone()),
        DigestSecret::Ha1(h) => Secret::Ha1 {
            md5: Some(h.clone()),
            sha256: None,
        },
    }
}

/// The outcome of checking a request's credentials.
pub(super) enum AuthOutcome {
    /// Authenticated as this user.
    User(String),
    /// No credentials, or stale ones: a challenge was sent.
    Challenged,
    /// Wrong credentials: refused with 403.
    Refused,
}

impl Switch {
    pub(super) fn on_register(
        &mut self,
        now: Instant,
        key: TransactionKey,
        request: Request,
        source: Peer,
    ) {
        let Some(aor) = header_value(&request.headers, "To")
            .map(split_name_addr)
            .and_then(|(uri, _)| uri_user(uri))
            .map(str::to_string)
        else {
            self.reply_error(now, &key, &request, 400, "To header has no user");
            return;
        };
        let user = match self.authenticate(now, &key, &request, false) {
            AuthOutcome::User(user) => user,
            AuthOutcome::Challenged | AuthOutcome::Refused => return,
        };
        if user != aor {
            self.reply_error(
                now,
                &key,
                &request,
                403,
                "credentials do not match the registered user",
            );
            return;
        }
        if !self.admit_agent_source(now, &key, &request, source, &aor) {
            return;
        }
        match self.registrar.register(now, &aor, &request, source) {
            Ok(outcome) => {
                self.after_registration(now, &request, source, &aor, &outcome);
                let mut response = sip::message::response_to(&request, 200, Some(&self.ids.tag()));
                for contact in outcome.contact_header_values() {
                    sip::message::push_header(&mut response.headers, "Contact", contact);
                }
                // RFC 3327 §5.3: the stored Path is returned to a UA that supports it.
                if header_value(&request.headers, "Supported")
                    .is_some_and(|tokens| tokens.split(',').any(|t| t.trim() == "path"))
                {
                    for hop in sip::headers::header_values(&request.headers, "Path") {
                        sip::message::push_header(&mut response.headers, "Path", hop);
                    }
                }
                self.send_response(now, &key, response);
                if !self.agents_by_user.contains_key(&aor) {
                    tracing::info!(trunk_user = %aor, contacts = outcome.contact_header_values().len(), %source, "trunk registration");
                }
                match outcome.transition {
                    AorTransition::Registered => self.agent_online(now, &aor),
                    AorTransition::Unregistered => self.agent_offline(now, &aor),
                    AorTransition::NoChange => {}
                }
                self.schedule_registrar_timer();
            }
            Err(RegisterError::IntervalTooBrief { min_expires }) => {
                let mut response = sip::message::response_to(&request, 423, Some(&self.ids.tag()));
                sip::message::push_header(
                    &mut response.headers,
                    "Min-Expires",
                    min_expires.to_string(),
                );
                self.send_response(now, &key, response);
            }
            Err(error) => {
                let code = error.status_code();
                self.reply_error(now, &key, &request, code, &error.to_string())
            }
        }
    }

    /// Verifies an agent's digest credentials (Authorization for REGISTER, Proxy-Authorization
    /// for calls), sending the challenge or the 403 itself.
    pub(super) fn authenticate(
        &mut self,
        now: Instant,
        key: &TransactionKey,
        request: &Request,
        proxy: bool,
    ) -> AuthOutcome {
        let header = if proxy {
            "Proxy-Authorization"
        } else {
            "Authorization"
        };
        let realm = self.config.sip.realm.clone();
        let unix = self.unix_now(now);
        let Some(credentials) = header_value(&request.headers, header).map(str::to_string) else {
            self.challenge(now, key, request, proxy, false);
            return AuthOutcome::Challenged;
        };
        let config = self.config.clone();
        let verdict = self.nonces.verify(
            unix,
            &request.method.to_string(),
            &credentials,
            &realm,
            |user| {
                let agent = config
                    .agents
                    .iter()
                    .find(|a| a.sip_user == user)
                    .map(|a| &a.secret);
                // Only REGISTER takes a trunk's credentials; calls from trunks are admitted
                // in b2bua, feature codes are for agents.
                let trunk = || {
                    (!proxy)
                        .then(|| super::admission::trunk_by_username(&config, user))
                        .flatten()
                        .and_then(|t| t.credentials.as_ref())
                        .map(|c| &c.secret)
                };
                agent.or_else(trunk).map(digest_secret)
            },
        );
        match verdict {
            Verdict::Authorized { username, .. } => {
                self.credentials_accepted();
                AuthOutcome::User(username)
            }
            Verdict::Stale => {
                self.challenge(now, key, request, proxy, true);
                AuthOutcome::Challenged
            }
            Verdict::Rejected(reason) => {
                self.refuse_credentials(now, key, request, &reason);
                AuthOutcome::Refused
            }
        }
    }

    /// Sends 401 (or 407) with one challenge per supported algorithm.
    pub(super) fn challenge(
        &mut self,
        now: Instant,
        key: &TransactionKey,
        request: &Request,
        proxy: bool,
        stale: bool,
    ) {
        let (code, header) = if proxy {
            (407, "Proxy-Authenticate")
        } else {
            (401, "WWW-Authenticate")
        };
        let realm = self.config.sip.realm.clone();
        let unix = self.unix_now(now);
        let mut response = sip::message::response_to(request, code, Some(&self.ids.tag()));
        // One challenge per configured algorithm, in the configured order (many deployed phones
        // answer only the first challenge, so the order is the operator's choice).
        let challenges = self.nonces.challenge(unix, &realm, stale);
        let offered = self.offered_challenges(challenges);
        for value in offered {
            sip::message::push_header(&mut response.headers, header, value);
        }
        self.send_response(now, key, response);
    }

    /// A phone of this SIP user registered where none was: the agent logs in, Ready.
    pub(super) fn agent_online(&mut self, now: Instant, sip_user: &str) {
        let Some(agent) = self.agents_by_user.get(sip_user).map(|a| a.id.clone()) else {
            return;
        };
        tracing::info!(agent = %agent, "agent registered: logged in and ready");
        match self.acd.login(now, &agent, true) {
            Ok(actions) => self.apply_acd(now, actions),
            Err(error) => tracing::debug!(%error, "login"),
        }
    }

    /// A WebSocket connection closed: the phones registered over it cannot be reached any
    /// more (their Contact hosts are `.invalid`, RFC 7118 §5), so their bindings go and an
    /// agent left with none logs out: the ACD offers no call to a dead phone.
    pub(super) fn flow_closed(&mut self, now: Instant, flow: Peer) {
        self.ringing_flow_lost(now, flow);
        for aor in self.registrar.remove_flow(flow) {
            tracing::info!(sip_user = %aor, %flow, "registration's connection closed");
            self.agent_offline(now, &aor);
        }
        self.schedule_registrar_timer();
    }

    /// The last binding of this SIP user is gone: the agent logs out.
    pub(super) fn agent_offline(&mut self, now: Instant, sip_user: &str) {
        let Some(agent) = self.agents_by_user.get(sip_user).map(|a| a.id.clone()) else {
            return;
        };
        tracing::info!(agent = %agent, "agent unregistered: logged out");
        match self.acd.logout(now, &agent) {
            Ok(actions) => self.apply_acd(now, actions),
            Err(error) => tracing::debug!(%error, "logout"),
        }
    }
}
