//! What happens to a request before the transaction layer sees it, and to failed
//! authentications: banned sources are dropped unanswered, sources over their rate are
//! dropped, and requests from outside every trunk ACL that carry no credentials get one
//! stateless answer (no transaction, no retransmission, no state), so a spoofed source cannot
//! turn Switchboard into an amplifier and a flood costs no memory.
//!
//! Trunk addresses (in some trunk's `allow`) are trusted: never rate-limited, never banned.

use super::Switch;
use crate::security::gate::{Gate, SharedBans};
use crate::security::{FailureOutcome, SecurityEvent, SecurityEventKind};
use sip::headers::{header_value, split_name_addr, to_tag, uri_user};
use sip::rsip::{Method, Request};
use sip::{Peer, Transmit};
use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

/// Held-back (tarpitted) answers beyond this many are not sent at all.
const MAX_TARPITTED: usize = 10_000;

/// Call control's screening state.
pub(super) struct Screening {
    gate: Arc<Gate>,
    /// Stateless answers held back for a tarpitted user, in the order they are due.
    tarpitted: VecDeque<(Instant, Transmit)>,
    /// Addresses each agent's phones registered from since start (newest last, capped).
    agent_sources: HashMap<String, VecDeque<IpAddr>>,
    /// Stream connections to keep open until a binding expires (`None`: release).
    connection_pins: VecDeque<(SocketAddr, Option<Instant>)>,
    /// Where to reopen a TLS binding's connection when it drops (see `tls_routes`).
    tls_routes: VecDeque<(SocketAddr, Option<transport::TlsTarget>)>,
}

/// Addresses remembered per agent for new-source detection.
const MAX_SOURCES_PER_AGENT: usize = 16;

/// What to do with a request before the transaction layer.
enum Verdict {
    Pass,
    Drop,
    Stateless,
}

impl Screening {
    pub(super) fn new(gate: Arc<Gate>) -> Self {
        Self {
            gate,
            tarpitted: VecDeque::new(),
            agent_sources: HashMap::new(),
            connection_pins: VecDeque::new(),
            tls_routes: VecDeque::new(),
        }
    }

    /// When the next held-back answer or log summary is due.
    pub(super) fn poll_timeout(&self) -> Option<Instant> {
        let tarpit = self.tarpitted.front().map(|(at, _)| *at);
        match (tarpit, self.gate.next_log_summary()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

/// The user a request claims to be: the To user of a REGISTER, else the From user.
fn claimed_user(request: &Request) -> Option<&str> {
    let header = if request.method == Method::Register {
        "To"
    } else {
        "From"
    };
    header_value(&request.headers, header)
        .map(split_name_addr)
        .and_then(|(uri, _)| uri_user(uri))
}

fn has_credentials(request: &Request) -> bool {
    header_value(&request.headers, "Authorization").is_some()
        || header_value(&request.headers, "Proxy-Authorization").is_some()
}

impl Switch {
    /// Whether `ip` is in some trunk's ACL.
    fn is_trusted(&self, ip: IpAddr) -> bool {
        self.screening.gate.is_trusted(ip)
    }

    /// Screens a request from `source`; `true` means it was dealt with here (dropped or
    /// answered statelessly) and must not reach the transaction layer.
    pub(super) fn screen(&mut self, now: Instant, request: &Request, source: Peer) -> bool {
        match self.screening_verdict(now, request, source) {
            Verdict::Pass => false,
            Verdict::Drop => true,
            Verdict::Stateless => {
                self.answer_statelessly(now, request, source);
                true
            }
        }
    }

    fn screening_verdict(&mut self, now: Instant, request: &Request, source: Peer) -> Verdict {
        let ip = source.addr.ip();
        if self.is_trusted(ip) {
            return Verdict::Pass;
        }
        // The transports' gate already dropped banned and over-rate sources before parsing;
        // this catches a message admitted just before its source was banned (and messages
        // handed in without a gate, as in unit tests).
        if self.screening.gate.bans().lock().is_banned(ip, now) {
            self.security_event(now, SecurityEventKind::Banned, request, source, "banned");
            return Verdict::Drop;
        }
        let out_of_dialog = to_tag(&request.headers).is_none();
        let creates_state = !matches!(request.method, Method::Ack | Method::Cancel);
        if out_of_dialog && creates_state && !has_credentials(request) {
            Verdict::Stateless
        } else {
            Verdict::Pass
        }
    }

    /// One answer, sent without a transaction, to a request from an untrusted source without
    /// credentials: a challenge where credentials could help, a bare refusal otherwise.
    fn answer_statelessly(&mut self, now: Instant, request: &Request, source: Peer) {
        let (code, challenge) = match request.method {
            Method::Register => (401, Some(("WWW-Authenticate", &self.config.sip.realm))),
            Method::Invite if self.takes_credentials(request) => {
                (407, Some(("Proxy-Authenticate", &self.config.sip.realm)))
            }
            Method::Invite => {
                self.security_event(
                    now,
                    SecurityEventKind::UnknownSource,
                    request,
                    source,
                    "not-in-any-trunk",
                );
                (403, None)
            }
            Method::Options if self.draining => (503, None),
            Method::Options => (200, None),
            Method::Bye | Method::Update | Method::Info | Method::PRack => (481, None),
            _ => (405, None),
        };
        let mut response = sip::message::response_to(request, code, Some(&self.ids.tag()));
        if let Some((header, realm)) = challenge {
            let realm = realm.clone();
            let unix = self.unix_now(now);
            let challenges = self.nonces.challenge(unix, &realm, false);
            for value in self.offered_challenges(challenges) {
                sip::message::push_header(&mut response.headers, header, value);
            }
        }
        if code == 503 {
            sip::message::push_header(
                &mut response.headers,
                "Retry-After",
                super::RETRY_AFTER_SECS.to_string(),
            );
            sip::message::add_warning(&mut response, super::AGENT_NAME, super::DRAINING_REASON);
        }
        if matches!(code, 200 | 405) {
            // The same capabilities as the stateful answers (Allow, Accept, Supported).
            self.add_capabilities(&mut response.headers);
        }
        self.messages
            .response(super::message_counters::Direction::Out, code);
        let data = sip::message::encode_response(&response);
        let transmit = Transmit { peer: source, data };
        let delay = claimed_user(request)
            .filter(|_| code == 401 || code == 407)
            .and_then(|user| self.screening.gate.bans().lock().tarpit_delay(user, now));
        match delay {
            Some(delay) if self.screening.tarpitted.len() < MAX_TARPITTED => {
                self.screening.tarpitted.push_back((now + delay, transmit))
            }
            Some(_) => {}
            None => self.pending_raw.push_back(transmit),
        }
    }

    /// Whether this INVITE from outside the trunk ACLs could authenticate: some trunk takes
    /// credentials, or it dials a feature code or a call out (which agents authenticate for).
    fn takes_credentials(&self, request: &Request) -> bool {
        let dialled = super::admission::dialled_number(request);
        let feature_code = dialled
            .as_deref()
            .is_some_and(|number| number.starts_with('*'));
        let call_out = dialled
            .as_deref()
            .is_some_and(|number| self.is_call_out(request, number));
        ((feature_code || call_out) && !self.config.agents.is_empty())
            || self.config.trunks.iter().any(|t| t.credentials.is_some())
    }

    /// Refuses credentials: the same bare 403 whatever was wrong (unknown user, wrong
    /// password, bad, dead or replayed nonce), the reason only in the security log, and the
    /// failure counted toward a ban of the source.
    pub(super) fn refuse_credentials(
        &mut self,
        now: Instant,
        key: &sip::transaction::TransactionKey,
        request: &Request,
        reason: &sip::digest::RejectReason,
    ) {
        let response = sip::message::response_to(request, 403, Some(&self.ids.tag()));
        self.send_response(now, key, response);
        let Some(source) = self.request_source else {
            return;
        };
        let reason_token = reject_token(reason);
        self.security_event(
            now,
            SecurityEventKind::AuthFailure,
            request,
            source,
            reason_token,
        );
        if self.is_trusted(source.addr.ip()) {
            return;
        }
        let user = claimed_user(request).map(str::to_owned);
        let outcome = self.screening.gate.bans().lock().record_failure(
            now,
            source.addr.ip(),
            user.as_deref(),
        );
        if let FailureOutcome::Banned { duration } = outcome {
            let reason = format!("banned-{}s", duration.as_secs());
            self.security_event(now, SecurityEventKind::Ban, request, source, &reason);
        }
    }

    /// A successful authentication from the request's source resets its failure count.
    pub(super) fn credentials_accepted(&mut self) {
        if let Some(source) = self.request_source {
            self.screening
                .gate
                .bans()
                .lock()
                .record_success(source.addr.ip());
        }
    }

    /// Counts and logs one security event (the log is throttled; the counter is not).
    pub(super) fn security_event(
        &mut self,
        now: Instant,
        kind: SecurityEventKind,
        request: &Request,
        source: Peer,
        reason: &str,
    ) {
        let method = request.method.to_string();
        let event = SecurityEvent {
            kind,
            source: source.addr,
            transport: source.transport.via_token(),
            method: Some(&method),
            user: claimed_user(request),
            reason,
        };
        self.screening.gate.record(now, &event);
    }

    /// Sends held-back answers that are due and writes due log summaries.
    pub(super) fn screening_timeout(&mut self, now: Instant) {
        while let Some((at, _)) = self.screening.tarpitted.front() {
            if *at > now {
                break;
            }
            if let Some((_, transmit)) = self.screening.tarpitted.pop_front() {
                self.pending_raw.push_back(transmit);
            }
        }
        self.screening.gate.roll_log(now);
    }

    /// Of the challenges the nonce manager made, those the configuration offers, in its
    /// order (many deployed phones answer only the first challenge).
    pub(super) fn offered_challenges(&self, challenges: Vec<String>) -> Vec<String> {
        self.config
            .sip
            .digest_algorithms
            .iter()
            .filter_map(|algorithm| {
                let token = match algorithm {
                    crate::config::DigestAlgorithm::Md5 => "algorithm=MD5,",
                    crate::config::DigestAlgorithm::Sha256 => "algorithm=SHA-256,",
                };
                challenges.iter().find(|c| c.contains(token)).cloned()
            })
            .collect()
    }

    /// Whether the agent registering as `sip_user` may do so from `source` (its `allow`
    /// list); otherwise it is refused with the same bare 403 as a wrong password.
    pub(super) fn admit_agent_source(
        &mut self,
        now: Instant,
        key: &sip::transaction::TransactionKey,
        request: &Request,
        source: Peer,
        sip_user: &str,
    ) -> bool {
        let ip = source.addr.ip();
        let allowed = self
            .config
            .agents
            .iter()
            .find(|agent| agent.sip_user == sip_user)
            .is_none_or(|agent| {
                agent.allow.is_empty() || agent.allow.iter().any(|n| n.contains(&ip))
            });
        if !allowed {
            let response = sip::message::response_to(request, 403, Some(&self.ids.tag()));
            self.send_response(now, key, response);
            self.security_event(
                now,
                SecurityEventKind::SourceNotAllowed,
                request,
                source,
                "outside-agent-allow",
            );
        }
        allowed
    }

    /// After a successful REGISTER: an agent seen from a new address is logged and counted,
    /// and a stream connection carrying a binding is kept open until the binding expires.
    pub(super) fn after_registration(
        &mut self,
        now: Instant,
        request: &Request,
        source: Peer,
        sip_user: &str,
        outcome: &sip::registrar::RegisterOutcome,
    ) {
        let ip = source.addr.ip();
        let sources = self
            .screening
            .agent_sources
            .entry(sip_user.to_owned())
            .or_default();
        if !sources.contains(&ip) {
            let first = sources.is_empty();
            if sources.len() >= MAX_SOURCES_PER_AGENT {
                sources.pop_front();
            }
            sources.push_back(ip);
            // The first address since start is not news; another one is.
            if !first {
                self.metrics
                    .agent_new_source
                    .with_label_values(&[sip_user])
                    .inc();
                self.security_event(
                    now,
                    SecurityEventKind::NewSource,
                    request,
                    source,
                    "agent-registered-from-new-address",
                );
            }
        }
        if source.transport != sip::Transport::Udp {
            let newest = outcome
                .bindings
                .iter()
                .filter(|current| current.binding.source == source)
                .max_by_key(|current| current.binding.expires_at);
            let until = newest.map(|current| current.binding.expires_at);
            self.screening
                .connection_pins
                .push_back((source.addr, until));
            if source.transport == sip::Transport::Tls {
                let route = newest.and_then(|current| {
                    crate::tls_routes::phone_route(
                        &current.binding.contact,
                        source.addr,
                        self.config.sip.tls_verify_phones,
                        current.binding.expires_at,
                    )
                });
                self.screening.tls_routes.push_back((source.addr, route));
            }
        }
    }

    /// The next TLS route to hand the transports: where a phone registered over TLS is
    /// reached when its connection is gone (`None`: forget the route).
    pub fn poll_tls_route(&mut self) -> Option<(SocketAddr, Option<transport::TlsTarget>)> {
        self.screening.tls_routes.pop_front()
    }

    /// The next stream connection to pin open (until a binding's expiry) or release.
    pub fn poll_connection_pin(&mut self) -> Option<(SocketAddr, Option<Instant>)> {
        self.screening.connection_pins.pop_front()
    }

    /// The ban table, for the HTTP API.
    pub fn bans(&self) -> SharedBans {
        self.screening.gate.bans().clone()
    }
}

/// The log token for a refused credential.
fn reject_token(reason: &sip::digest::RejectReason) -> &'static str {
    use sip::digest::RejectReason as R;
    match reason {
        R::Malformed(_) => "malformed-credentials",
        R::UnsupportedAlgorithm(_) => "unsupported-algorithm",
        R::UnsupportedQop(_) => "unsupported-qop",
        R::RealmMismatch { .. } => "wrong-realm",
        R::BadNonce => "bad-nonce",
        R::OpaqueMismatch => "bad-opaque",
        R::UnknownUser(_) => "unknown-user",
        R::AlgorithmNotProvisioned(_) => "algorithm-not-provisioned",
        R::WrongResponse => "wrong-password",
        R::Replay => "replayed-nonce",
        R::DeadNonce => "dead-nonce",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use transport::{Inbound, Payload};

    /// Trunk 127.0.0.1 only; agent 1001; bans after 3 failures.
    const CONFIG: &str = "[sip]\nlisten_udp = [\"127.0.0.1:5060\"]\n\
        [security]\nmax_auth_failures = 3\nban_time_s = 60\nrate = 5\nburst = 20\n\
        user_max_failures = 100\n\
        [[trunk]]\nname = \"t\"\nallow = [\"127.0.0.1/32\"]\n\
        [[agent]]\nid = \"1001\"\nname = \"A\"\npassword = \"right\"\n";

    fn switch(now: Instant) -> Switch {
        let config = crate::config::load_str("t.toml", CONFIG).expect("valid test config");
        super::super::testing::switch(now, Arc::new(config), Default::default())
    }

    fn inbound(now: Instant, from: &str, text: &str) -> Inbound {
        Inbound {
            source: Peer::udp(from.parse().expect("addr")),
            local: "127.0.0.1:5060".parse().expect("addr"),
            payload: Payload::Message(sip::parse::parse(text.as_bytes()).expect("valid")),
            received: now,
        }
    }

    fn register(branch: u32, user: &str, authorization: Option<&str>) -> String {
        let auth = authorization
            .map(|a| format!("Authorization: {a}\r\n"))
            .unwrap_or_default();
        format!(
            "REGISTER sip:127.0.0.1 SIP/2.0\r\n\
Via: SIP/2.0/UDP 127.0.0.2:5999;branch=z9hG4bKreg{branch};rport\r\n\
Max-Forwards: 70\r\nTo: <sip:{user}@127.0.0.1>\r\nFrom: <sip:{user}@127.0.0.1>;tag=a\r\n\
Call-ID: reg-{branch}\r\nCSeq: {branch} REGISTER\r\nContact: <sip:{user}@127.0.0.2:5999>\r\n\
{auth}Content-Length: 0\r\n\r\n"
        )
    }

    fn invite(branch: u32) -> String {
        format!(
            "INVITE sip:100@127.0.0.1 SIP/2.0\r\n\
Via: SIP/2.0/UDP 127.0.0.2:5999;branch=z9hG4bKinv{branch};rport\r\n\
Max-Forwards: 70\r\nTo: <sip:100@127.0.0.1>\r\nFrom: <sip:2000@127.0.0.2>;tag=a\r\n\
Call-ID: inv-{branch}\r\nCSeq: 1 INVITE\r\nContact: <sip:2000@127.0.0.2:5999>\r\n\
Content-Length: 0\r\n\r\n"
        )
    }

    fn sent(switch: &mut Switch) -> Vec<String> {
        std::iter::from_fn(|| switch.poll_transmit())
            .map(|t| String::from_utf8_lossy(&t.data).into_owned())
            .collect()
    }

    /// The 401 challenge, answered for `user` with `password`.
    fn answered(
        switch: &mut Switch,
        now: Instant,
        branch: u32,
        user: &str,
        password: &str,
    ) -> String {
        switch.handle_inbound(
            now,
            inbound(now, "127.0.0.2:5999", &register(branch, user, None)),
        );
        let out = sent(switch);
        let challenge = out
            .iter()
            .find(|m| m.starts_with("SIP/2.0 401"))
            .and_then(|m| m.lines().find_map(|l| l.strip_prefix("WWW-Authenticate: ")))
            .unwrap_or_else(|| panic!("no challenge in {out:?}"))
            .to_owned();
        sip::digest::respond(
            &challenge,
            "REGISTER",
            "sip:127.0.0.1",
            user,
            password,
            "c",
            1,
        )
        .expect("answerable challenge")
    }

    fn without_tags(message: &str) -> String {
        message
            .lines()
            .map(|line| match line.split_once(";tag=") {
                Some((head, _)) if line.starts_with("To:") => head.to_owned(),
                _ => line.to_owned(),
            })
            .filter(|line| {
                !line.starts_with("Via:")
                    && !line.starts_with("Call-ID:")
                    && !line.starts_with("CSeq:")
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn an_untrusted_invite_without_credentials_gets_one_stateless_answer() {
        let now = Instant::now();
        let mut switch = switch(now);
        switch.handle_inbound(now, inbound(now, "127.0.0.2:5999", &invite(1)));
        let out = sent(&mut switch);
        assert_eq!(out.len(), 1, "{out:?}");
        assert!(
            out[0].starts_with("SIP/2.0 403"),
            "no trunk takes credentials: {out:?}"
        );
        assert!(!out[0].contains("Warning"), "{out:?}");
        assert_eq!(switch.txn.len(), 0, "no transaction state");
        // Nothing is retransmitted later.
        switch.handle_timeout(now + Duration::from_secs(40));
        assert!(sent(&mut switch).is_empty());
    }

    #[test]
    fn unknown_user_and_wrong_password_get_identical_bare_403s() {
        let now = Instant::now();
        let mut switch = switch(now);
        let mut refusals = Vec::new();
        for (branch, user) in [(1, "1001"), (2, "9999")] {
            let auth = answered(&mut switch, now, branch, user, "wrong");
            let request = register(branch + 10, user, Some(&auth));
            switch.handle_inbound(now, inbound(now, "127.0.0.2:5999", &request));
            let out = sent(&mut switch);
            let refusal = out
                .iter()
                .find(|m| m.starts_with("SIP/2.0 403"))
                .unwrap_or_else(|| panic!("no 403 in {out:?}"))
                .replace(user, "USER");
            assert!(!refusal.contains("Warning"), "{refusal}");
            refusals.push(without_tags(&refusal));
        }
        assert_eq!(refusals[0], refusals[1]);
    }

    #[test]
    fn failures_ban_the_source_which_is_then_dropped_while_others_still_register() {
        let now = Instant::now();
        let mut switch = switch(now);
        for branch in 1..=3 {
            let auth = answered(&mut switch, now, branch, "1001", "guess");
            let request = register(branch + 10, "1001", Some(&auth));
            switch.handle_inbound(now, inbound(now, "127.0.0.2:5999", &request));
            sent(&mut switch);
        }
        let bans = switch.bans().lock().bans(now);
        assert_eq!(bans.len(), 1, "{bans:?}");
        assert_eq!(bans[0].addr, IpAddr::from([127, 0, 0, 2]));
        // Banned: even a challenge request gets no answer at all.
        switch.handle_inbound(
            now,
            inbound(now, "127.0.0.2:5999", &register(20, "1001", None)),
        );
        assert!(sent(&mut switch).is_empty());
        // Another address still gets challenged.
        switch.handle_inbound(
            now,
            inbound(now, "127.0.0.3:5999", &register(21, "1001", None)),
        );
        assert!(sent(&mut switch)
            .iter()
            .any(|m| m.starts_with("SIP/2.0 401")));
        // The ban ends.
        let later = now + Duration::from_secs(61);
        switch.handle_inbound(
            later,
            inbound(later, "127.0.0.2:5999", &register(22, "1001", None)),
        );
        assert!(sent(&mut switch)
            .iter()
            .any(|m| m.starts_with("SIP/2.0 401")));
    }

    #[test]
    fn a_trusted_trunk_address_is_never_banned_nor_rate_limited() {
        let now = Instant::now();
        let mut switch = switch(now);
        for branch in 1..=50 {
            switch.handle_inbound(now, inbound(now, "127.0.0.1:5999", &register(branch, "1001", Some("Digest username=\"1001\", realm=\"switchboard\", nonce=\"00\", uri=\"sip:127.0.0.1\", response=\"00\""))));
            let out = sent(&mut switch);
            assert!(
                out.iter().any(|m| m.starts_with("SIP/2.0 403")),
                "request {branch}: {out:?}"
            );
        }
        assert!(switch.bans().lock().bans(now).is_empty());
    }

    #[test]
    fn untrusted_options_and_stray_requests_get_one_stateless_answer_each() {
        let now = Instant::now();
        let mut switch = switch(now);
        let options = invite(1).replace("INVITE", "OPTIONS");
        switch.handle_inbound(now, inbound(now, "127.0.0.2:5999", &options));
        let out = sent(&mut switch);
        assert_eq!(out.len(), 1, "{out:?}");
        assert!(out[0].starts_with("SIP/2.0 200"), "{out:?}");
        assert!(out[0].contains("Allow: INVITE"), "{out:?}");
        assert!(out[0].contains("Accept: application/sdp"), "{out:?}");
        let bye = invite(2).replace("INVITE", "BYE");
        switch.handle_inbound(now, inbound(now, "127.0.0.2:5999", &bye));
        let out = sent(&mut switch);
        assert!(
            out.len() == 1 && out[0].starts_with("SIP/2.0 481"),
            "{out:?}"
        );
        let message = invite(3).replace("INVITE", "MESSAGE");
        switch.handle_inbound(now, inbound(now, "127.0.0.2:5999", &message));
        let out = sent(&mut switch);
        assert!(
            out.len() == 1 && out[0].starts_with("SIP/2.0 405"),
            "{out:?}"
        );
        assert_eq!(switch.txn.len(), 0, "no transaction state");
    }

    #[test]
    fn an_untrusted_feature_code_call_is_challenged_statelessly() {
        let now = Instant::now();
        let mut switch = switch(now);
        let text = invite(1).replace("sip:100@", "sip:*55@");
        switch.handle_inbound(now, inbound(now, "127.0.0.2:5999", &text));
        let out = sent(&mut switch);
        assert_eq!(out.len(), 1, "{out:?}");
        assert!(out[0].starts_with("SIP/2.0 407"), "{out:?}");
        assert!(out[0].contains("Proxy-Authenticate: Digest"), "{out:?}");
        assert_eq!(switch.txn.len(), 0, "no transaction state");
    }

    #[test]
    fn a_tarpitted_user_is_challenged_only_after_the_delay() {
        let now = Instant::now();
        let config = CONFIG.replace(
            "user_max_failures = 100",
            "user_max_failures = 2\ntarpit_ms = 1500",
        );
        let config = crate::config::load_str("t.toml", &config).expect("valid test config");
        let mut switch = super::super::testing::switch(now, Arc::new(config), Default::default());
        for (branch, from) in [(1, "127.0.0.2:5999"), (2, "127.0.0.3:5999")] {
            let auth = answered(&mut switch, now, branch, "1001", "guess");
            let request = register(branch + 10, "1001", Some(&auth));
            switch.handle_inbound(now, inbound(now, from, &request));
            sent(&mut switch);
        }
        switch.handle_inbound(
            now,
            inbound(now, "127.0.0.4:5999", &register(30, "1001", None)),
        );
        assert!(sent(&mut switch).is_empty(), "held back");
        let due = switch
            .poll_timeout()
            .expect("a deadline for the held answer");
        assert!(due <= now + Duration::from_millis(1500));
        switch.handle_timeout(now + Duration::from_millis(1500));
        assert!(sent(&mut switch)
            .iter()
            .any(|m| m.starts_with("SIP/2.0 401")));
    }

    fn register_from(switch: &mut Switch, now: Instant, branch: u32, from: &str) -> Vec<String> {
        let auth = {
            let text = register(branch, "1001", None).replace("127.0.0.2:5999", from);
            switch.handle_inbound(now, inbound(now, from, &text));
            let out = sent(switch);
            let challenge = out
                .iter()
                .find_map(|m| m.lines().find_map(|l| l.strip_prefix("WWW-Authenticate: ")))
                .unwrap_or_else(|| panic!("no challenge in {out:?}"))
                .to_owned();
            sip::digest::respond(
                &challenge,
                "REGISTER",
                "sip:127.0.0.1",
                "1001",
                "right",
                "c",
                1,
            )
            .expect("answerable")
        };
        let text = register(branch + 100, "1001", Some(&auth)).replace("127.0.0.2:5999", from);
        switch.handle_inbound(now, inbound(now, from, &text));
        sent(switch)
    }

    #[test]
    fn an_agent_registers_only_from_its_allow_list_with_the_same_bare_403() {
        let now = Instant::now();
        let config = CONFIG.replace(
            "password = \"right\"\n",
            "password = \"right\"\nallow = [\"127.0.0.3/32\"]\n",
        );
        let config = crate::config::load_str("t.toml", &config).expect("valid test config");
        let mut switch = super::super::testing::switch(now, Arc::new(config), Default::default());
        let out = register_from(&mut switch, now, 1, "127.0.0.2:5999");
        let refusal = out
            .iter()
            .find(|m| m.starts_with("SIP/2.0 403"))
            .unwrap_or_else(|| panic!("{out:?}"));
        assert!(!refusal.contains("Warning"), "{refusal}");
        let out = register_from(&mut switch, now, 2, "127.0.0.3:5999");
        assert!(out.iter().any(|m| m.starts_with("SIP/2.0 200")), "{out:?}");
    }

    #[test]
    fn a_registration_from_a_second_address_is_counted_as_a_new_source() {
        let now = Instant::now();
        let mut switch = switch(now);
        let counted = |switch: &Switch| {
            switch
                .metrics
                .agent_new_source
                .with_label_values(&["1001"])
                .get()
        };
        for (branch, from) in [(1, "127.0.0.3:5999"), (2, "127.0.0.3:6000")] {
            let out = register_from(&mut switch, now, branch, from);
            assert!(out.iter().any(|m| m.starts_with("SIP/2.0 200")), "{out:?}");
        }
        assert_eq!(
            counted(&switch),
            0,
            "the first address, then the same address again"
        );
        let out = register_from(&mut switch, now, 3, "127.0.0.4:5999");
        assert!(out.iter().any(|m| m.starts_with("SIP/2.0 200")), "{out:?}");
        assert_eq!(counted(&switch), 1);
    }
}
