//! REGISTER with carriers (`[[trunk]] register = true`): sent at start, answered 401/407 with
//! the trunk's credentials, refreshed at 80 % of the granted expiry, retried a minute after a
//! failure. Carriers that want a registration before they take calls get one.

use super::super::{ClientPurpose, Switch, SwitchTimer};
use sip::headers::header_value;
use sip::message::push_header;
use sip::rsip::headers::UntypedHeader;
use sip::rsip::{self, Header, Method, Request, Response};
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Expiry asked for.
const REQUESTED_EXPIRES_S: u64 = 3600;
/// After a refusal or no answer, when to try again.
const RETRY_AFTER: Duration = Duration::from_secs(60);

/// One carrier registration's dialog-like identity: the same Call-ID and From tag for every
/// REGISTER, with CSeq increasing (RFC 3261 §10.2).
#[derive(Debug)]
struct Binding {
    call_id: String,
    tag: String,
    cseq: u32,
}

/// The registrations, by index of the trunk in the configuration.
#[derive(Debug, Default)]
pub struct CarrierRegistrations {
    bindings: HashMap<usize, Binding>,
}

impl Switch {
    /// Schedules the first REGISTER of every trunk with `register = true`.
    pub(in crate::switch) fn schedule_carrier_registrations(&mut self, now: Instant) {
        for (index, trunk) in self.config.trunks.iter().enumerate() {
            if trunk.gateway.as_ref().is_some_and(|g| g.register) {
                self.timers
                    .schedule(now, SwitchTimer::CarrierRegister { trunk: index });
            }
        }
    }

    /// Sends a REGISTER to trunk `index`'s gateway; `challenge` is the 401/407 being answered.
    pub(in crate::switch) fn register_with_carrier(
        &mut self,
        now: Instant,
        index: usize,
        challenge: Option<&Response>,
    ) {
        let Some(trunk) = self.config.trunks.get(index) else {
            return;
        };
        let Some(gateway) = trunk.gateway.as_ref() else {
            return;
        };
        let Some((username, password)) = gateway.credentials.clone() else {
            return;
        };
        let address = gateway.address;
        let peer = super::gateway_peer(address, gateway.transport);
        let binding = self
            .outbound
            .registrations
            .bindings
            .entry(index)
            .or_insert_with(|| Binding {
                call_id: format!("{}-reg@switchboard", self.ids.tag()),
                tag: self.ids.tag(),
                cseq: 0,
            });
        binding.cseq += 1;
        let (call_id, tag, cseq) = (binding.call_id.clone(), binding.tag.clone(), binding.cseq);
        let uri_text = format!("sip:{address}");
        let Ok(uri) = rsip::Uri::try_from(uri_text.as_str()) else {
            return;
        };
        let aor = format!("<sip:{username}@{address}>");
        let mut headers = rsip::Headers::default();
        headers.push(Header::Via(rsip::headers::Via::new(self.via(peer))));
        headers.push(Header::MaxForwards(rsip::headers::MaxForwards::new("70")));
        headers.push(Header::From(rsip::headers::From::new(format!(
            "{aor};tag={tag}"
        ))));
        headers.push(Header::To(rsip::headers::To::new(aor)));
        headers.push(Header::CallId(rsip::headers::CallId::new(call_id)));
        headers.push(Header::CSeq(rsip::headers::CSeq::new(format!(
            "{cseq} REGISTER"
        ))));
        headers.push(Header::Contact(rsip::headers::Contact::new(
            self.contact(peer.transport),
        )));
        push_header(&mut headers, "Expires", REQUESTED_EXPIRES_S.to_string());
        let authenticated = match challenge {
            Some(response) => {
                let proxy = response.status_code.code() == 407;
                let (asked, answer_name) = if proxy {
                    ("Proxy-Authenticate", "Proxy-Authorization")
                } else {
                    ("WWW-Authenticate", "Authorization")
                };
                let answer = header_value(&response.headers, asked).map(|value| {
                    sip::digest::respond(
                        value,
                        "REGISTER",
                        &uri_text,
                        &username,
                        &password,
                        &self.ids.tag(),
                        1,
                    )
                });
                match answer {
                    Some(Ok(answer)) => push_header(&mut headers, answer_name, answer),
                    _ => {
                        tracing::warn!(trunk = %trunk.name, "carrier's REGISTER challenge cannot be answered");
                        self.retry_carrier_registration(now, index);
                        return;
                    }
                }
                true
            }
            None => false,
        };
        let register = Request {
            method: Method::Register,
            uri,
            version: rsip::Version::V2,
            headers,
            body: Vec::new(),
        };
        self.send_request(
            now,
            register,
            peer,
            ClientPurpose::CarrierRegister {
                trunk: index,
                authenticated,
            },
        );
    }

    /// The carrier's answer to a REGISTER.
    pub(in crate::switch) fn on_carrier_register_response(
        &mut self,
        now: Instant,
        index: usize,
        authenticated: bool,
        response: &Response,
    ) {
        let code = response.status_code.code();
        let name = self
            .config
            .trunks
            .get(index)
            .map_or_else(String::new, |t| t.name.clone());
        match code {
            200..=299 => {
                let granted = granted_expiry(response).unwrap_or(REQUESTED_EXPIRES_S);
                tracing::info!(trunk = %name, expires_s = granted, "registered with the carrier");
                // Refresh at 80 % of what was granted, so the binding never lapses.
                let refresh = Duration::from_millis(granted.saturating_mul(800).max(1000));
                self.timers
                    .schedule(now + refresh, SwitchTimer::CarrierRegister { trunk: index });
            }
            401 | 407 if !authenticated => self.register_with_carrier(now, index, Some(response)),
            _ => {
                tracing::warn!(trunk = %name, code, "the carrier refused the REGISTER");
                self.retry_carrier_registration(now, index);
            }
        }
    }

    /// Tries again after [`RETRY_AFTER`].
    pub(in crate::switch) fn retry_carrier_registration(&mut self, now: Instant, index: usize) {
        self.timers.schedule(
            now + RETRY_AFTER,
            SwitchTimer::CarrierRegister { trunk: index },
        );
    }
}

/// The expiry the registrar granted: the Expires header, or the expires parameter of the
/// (first) Contact.
fn granted_expiry(response: &Response) -> Option<u64> {
    if let Some(expires) = header_value(&response.headers, "Expires") {
        return expires.trim().parse().ok();
    }
    let contact = header_value(&response.headers, "Contact")?;
    let (_, params) = sip::headers::split_name_addr(contact);
    sip::headers::param(params, "expires")?.trim().parse().ok()
}
