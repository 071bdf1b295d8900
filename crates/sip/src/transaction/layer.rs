//! The transaction layer: owns every live transaction and the shared timer queue, routes each
//! incoming message to its transaction, and hands out what must be sent and reported.

use super::client_invite::ClientInvite;
use super::client_non_invite::ClientNonInvite;
use super::config::TimerConfig;
use super::context::{Context, Lifecycle};
use super::error::TransactionError;
use super::event::TransactionEvent;
use super::fields;
use super::finished::Lingering;
use super::generated::{encode_request, encode_response, new_branch, new_tag, response_for};
use super::key::TransactionKey;
use super::server_invite::{AckDisposition, ServerInvite, ServerInviteState};
use super::server_non_invite::ServerNonInvite;
use super::timers::{Timer, TimerId, TimerQueue, TimerSlots};
use super::via;
use crate::message::method_name;
use crate::{Peer, Transmit};
use rsip::{Method, Request, Response, SipMessage};
use std::collections::{HashMap, VecDeque};
use std::time::Instant;

/// One transaction of any kind, at work or lingering. Boxed, so the map's slots stay small
/// and a lingering transaction costs only its (much smaller) `Lingering`.
#[derive(Debug)]
enum Transaction {
    InviteClient(Box<ClientInvite>),
    NonInviteClient(Box<ClientNonInvite>),
    InviteServer(Box<ServerInvite>),
    NonInviteServer(Box<ServerNonInvite>),
    Finished(Box<Lingering>),
}

impl Transaction {
    /// The timer slots of a transaction at work; `None` for a lingering one.
    fn timers_mut(&mut self) -> Option<&mut TimerSlots> {
        match self {
            Transaction::InviteClient(t) => Some(&mut t.timers),
            Transaction::NonInviteClient(t) => Some(&mut t.timers),
            Transaction::InviteServer(t) => Some(&mut t.timers),
            Transaction::NonInviteServer(t) => Some(&mut t.timers),
            Transaction::Finished(_) => None,
        }
    }

    /// Clears whichever slot held a timer that has just fired.
    fn forget_timer(&mut self, id: TimerId) {
        match self {
            Transaction::Finished(done) => {
                if done.deadline == Some(id) {
                    done.deadline = None;
                }
            }
            _ => {
                if let Some(slots) = self.timers_mut() {
                    slots.forget(id);
                }
            }
        }
    }

    /// Cancels every running timer, for a transaction that is going away.
    fn cancel_timers(&mut self, queue: &mut TimerQueue) {
        match self {
            Transaction::Finished(done) => {
                if let Some(id) = done.deadline.take() {
                    queue.cancel(id);
                }
            }
            _ => {
                if let Some(slots) = self.timers_mut() {
                    slots.cancel_all(queue);
                }
            }
        }
    }

    fn on_timer(&mut self, timer: Timer, cx: &mut Context<'_>) -> Lifecycle {
        match self {
            Transaction::InviteClient(t) => t.on_timer(timer, cx),
            Transaction::NonInviteClient(t) => t.on_timer(timer, cx),
            Transaction::InviteServer(t) => t.on_timer(timer, cx),
            Transaction::NonInviteServer(t) => t.on_timer(timer, cx),
            // Its only timer is the end of the linger.
            Transaction::Finished(_) => Lifecycle::Terminated,
        }
    }
}

/// RFC 3261 §17 transactions with RFC 6026's Accepted state, as one sans-IO object.
///
/// Feed it messages (`handle_message`), TU commands (`send_request`, `send_response`,
/// `send_stateless`) and expired deadlines (`handle_timeout`), each with the current time;
/// then drain `poll_transmit` and `poll_event`, and wake it again at `poll_timeout`.
#[derive(Debug)]
pub struct TransactionLayer {
    config: TimerConfig,
    transactions: HashMap<TransactionKey, Transaction>,
    /// Server INVITEs in Accepted by Call-ID, then CSeq number: the ACK of a 2xx has a branch
    /// of its own, so it can only be found through the dialog (§17.1.1.3 vs §13.2.2.4).
    accepted_invites: HashMap<String, Vec<(u32, TransactionKey)>>,
    timers: TimerQueue,
    transmits: VecDeque<Transmit>,
    events: VecDeque<TransactionEvent>,
}

/// Splits the layer into the transaction map and a `Context` over the rest, so a state
/// machine borrowed from the map can write outputs.
macro_rules! split {
    ($layer:expr, $now:expr) => {{
        let TransactionLayer {
            config,
            transactions,
            timers,
            transmits,
            events,
            ..
        } = $layer;
        (
            transactions,
            Context {
                now: $now,
                config,
                timers,
                transmits,
                events,
            },
        )
    }};
}

impl TransactionLayer {
    /// An empty layer with the given timer values (T1 is raised to at least 1 ms and T2 to at
    /// least T1, so retransmission intervals always advance).
    pub fn new(config: TimerConfig) -> Self {
        Self {
            config: config.sanitized(),
            transactions: HashMap::new(),
            accepted_invites: HashMap::new(),
            timers: TimerQueue::default(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
        }
    }

    /// A parsed message arrived from `source`. Requests first get their top Via stamped
    /// (RFC 3261 §18.2.1, RFC 3581), then are matched to a transaction or start one.
    /// Retransmitted requests re-send their transaction's last response and are not delivered.
    pub fn handle_message(&mut self, now: Instant, message: SipMessage, source: Peer) {
        match message {
            SipMessage::Request(request) => self.handle_request(now, request, source),
            SipMessage::Response(response) => self.handle_response(now, response, source),
        }
    }

    fn handle_request(&mut self, now: Instant, mut request: Request, source: Peer) {
        via::stamp_received(&mut request, source);
        if request.method == Method::Ack {
            self.handle_ack(now, request, source);
            return;
        }
        let method = method_name(&request.method);
        let Some(key) = TransactionKey::for_incoming_request(&request, method) else {
            self.events.push_back(TransactionEvent::Request {
                key: None,
                request,
                source,
            });
            return;
        };

        let (transactions, mut cx) = split!(self, now);
        if let Some(existing) = transactions.get_mut(&key) {
            match existing {
                Transaction::InviteServer(t) => t.on_retransmission(&mut cx),
                Transaction::NonInviteServer(t) => t.on_retransmission(&mut cx),
                Transaction::Finished(done) => done.on_retransmission(&mut cx),
                // Server keys never equal client keys.
                Transaction::InviteClient(_) | Transaction::NonInviteClient(_) => {}
            }
            return;
        }

        let destination = Self::response_destination(&request, source);
        match request.method {
            Method::Cancel => self.handle_cancel(now, request, source, key, destination),
            Method::Invite => {
                let txn = ServerInvite::start(key.clone(), &request, source, destination, &mut cx);
                transactions.insert(key.clone(), Transaction::InviteServer(Box::new(txn)));
                self.deliver_request(key, request, source);
            }
            _ => {
                let txn = ServerNonInvite::start(key.clone(), source, destination, &mut cx);
                transactions.insert(key.clone(), Transaction::NonInviteServer(Box::new(txn)));
                self.deliver_request(key, request, source);
            }
        }
    }

    fn deliver_request(&mut self, key: TransactionKey, request: Request, source: Peer) {
        self.events.push_back(TransactionEvent::Request {
            key: Some(key),
            request,
            source,
        });
    }

    /// §9.2: answer the CANCEL on its own server transaction, 200 if it names a live INVITE
    /// transaction (reusing that INVITE's To tag) and 481 otherwise; tell the TU only if the
    /// INVITE has no final response yet.
    fn handle_cancel(
        &mut self,
        now: Instant,
        cancel: Request,
        source: Peer,
        key: TransactionKey,
        destination: Peer,
    ) {
        let invite_key = key.with_method("INVITE");
        let (transactions, mut cx) = split!(self, now);
        let (code, reason, to_tag, cancels_invite) = match transactions.get(&invite_key) {
            Some(Transaction::InviteServer(invite)) => (
                200,
                "OK",
                invite.to_tag().map_or_else(new_tag, str::to_owned),
                invite.is_proceeding(),
            ),
            Some(Transaction::Finished(done)) if done.server_invite_to_tag().is_some() => (
                200,
                "OK",
                done.server_invite_to_tag()
                    .flatten()
                    .map_or_else(new_tag, str::to_owned),
                false,
            ),
            _ => (481, "Call/Transaction Does Not Exist", new_tag(), false),
        };
        let response = response_for(&cancel.headers, code, reason, Some(&to_tag));
        let mut txn = ServerNonInvite::start(key.clone(), source, destination, &mut cx);
        let lifecycle = txn.send(code, encode_response(&response), destination, &mut cx);
        match lifecycle {
            Ok(Lifecycle::Alive) => {
                transactions.insert(key.clone(), Transaction::NonInviteServer(Box::new(txn)));
                self.settle(&key);
            }
            // Reliable transport: done already. (A fresh transaction cannot refuse a final.)
            Ok(Lifecycle::Terminated) | Err(_) => txn.timers.cancel_all(cx.timers),
        }
        if cancels_invite {
            self.events.push_back(TransactionEvent::Cancelled {
                invite: invite_key,
                cancel,
            });
        }
    }

    /// ACKs never start a transaction and never get a response. A non-2xx's ACK is absorbed by
    /// its INVITE transaction; any other ACK goes to the TU, and if it acknowledges a 2xx the
    /// layer is retransmitting, that retransmission stops.
    fn handle_ack(&mut self, now: Instant, ack: Request, source: Peer) {
        let (transactions, mut cx) = split!(self, now);
        let by_key = TransactionKey::for_incoming_request(&ack, "INVITE");
        if let Some(key) = by_key {
            let outcome = match transactions.get_mut(&key) {
                Some(Transaction::InviteServer(invite)) => Some(invite.on_ack(&mut cx)),
                Some(Transaction::Finished(done)) => done
                    .on_ack()
                    .map(|disposition| (disposition, Lifecycle::Alive)),
                _ => None,
            };
            if let Some((disposition, lifecycle)) = outcome {
                match lifecycle {
                    Lifecycle::Terminated => self.remove(&key),
                    Lifecycle::Alive => self.settle(&key),
                }
                if disposition == AckDisposition::Deliver {
                    self.deliver_ack(ack, source);
                }
                return;
            }
        }

        if let (Some(call_id), Some((cseq, _))) =
            (fields::call_id(&ack.headers), fields::cseq(&ack.headers))
        {
            let to_tag = fields::to_tag(&ack.headers);
            let candidates = self.accepted_invites.get(call_id).into_iter().flatten();
            let mut acked = None;
            for (_, key) in candidates.filter(|(n, _)| *n == cseq) {
                match transactions.get_mut(key) {
                    Some(Transaction::InviteServer(invite)) if invite.awaits_ack_with(to_tag) => {
                        invite.on_ack(&mut cx);
                        acked = Some(key.clone());
                        break;
                    }
                    Some(Transaction::Finished(done)) if done.awaits_ack_with(to_tag) => break,
                    _ => {}
                }
            }
            if let Some(key) = acked {
                self.settle(&key);
            }
        }
        self.deliver_ack(ack, source);
    }

    fn deliver_ack(&mut self, ack: Request, source: Peer) {
        self.events.push_back(TransactionEvent::Request {
            key: None,
            request: ack,
            source,
        });
    }

    fn handle_response(&mut self, now: Instant, response: Response, source: Peer) {
        let key = TransactionKey::for_response(&response);
        let (transactions, mut cx) = split!(self, now);
        let mut due_cancel = None;
        let lifecycle = match key.as_ref().and_then(|k| transactions.get_mut(k)) {
            Some(Transaction::InviteClient(t)) => {
                let lifecycle = t.on_response(response, source, &mut cx);
                due_cancel = t.due_cancel().map(|cancel| (cancel, t.destination()));
                lifecycle
            }
            Some(Transaction::NonInviteClient(t)) => t.on_response(response, source, &mut cx),
            Some(Transaction::Finished(done)) if done.is_client() => {
                if let Some(key) = &key {
                    done.on_response(key, response, source, &mut cx);
                }
                return;
            }
            _ => {
                self.events.push_back(TransactionEvent::Response {
                    key: None,
                    response,
                    source,
                });
                return;
            }
        };
        if let Some(key) = key {
            match lifecycle {
                Lifecycle::Terminated => self.remove(&key),
                Lifecycle::Alive => self.settle(&key),
            }
        }
        if let Some((cancel, destination)) = due_cancel {
            self.send_cancel(now, cancel, destination);
        }
    }

    fn send_cancel(&mut self, now: Instant, cancel: Request, destination: Peer) {
        let key = self.send_request(now, cancel, destination);
        self.events.push_back(TransactionEvent::CancelSent { key });
    }

    /// Cancels the client INVITE `key` (RFC 3261 §9.1): the CANCEL goes out now if the INVITE
    /// has had a provisional response, else as soon as one arrives — a CANCEL before that may
    /// overtake its INVITE and is not allowed. Its answer comes to the TU as a response with
    /// the CANCEL's own key. Returns false when there is nothing to cancel (no such client
    /// INVITE, or it already has a final response: a late 2xx is then the TU's to ACK and BYE).
    pub fn cancel(&mut self, now: Instant, key: &TransactionKey) -> bool {
        let Some(Transaction::InviteClient(invite)) = self.transactions.get_mut(key) else {
            return false;
        };
        let destination = invite.destination();
        if !invite.is_cancellable() {
            return false;
        }
        if let Some(cancel) = invite.request_cancel() {
            self.send_cancel(now, cancel, destination);
        }
        true
    }

    /// The client key of a request we send: its top-Via branch and method, or a branch
    /// nobody will answer to when it has none.
    fn client_key(request: &Request) -> TransactionKey {
        TransactionKey::for_outgoing_request(request)
            .unwrap_or_else(|| TransactionKey::client(&new_branch(), method_name(&request.method)))
    }

    /// Starts a client transaction for `request` (not an ACK), which already carries its top
    /// Via with a fresh branch (see [`new_branch`]), and sends it to `destination`.
    ///
    /// A request without a usable top-Via branch still gets a transaction, keyed on a branch
    /// nobody will answer to: it ends in `Timeout` rather than panicking. An ACK is sent
    /// statelessly and its (never live) key returned. A CANCEL for an INVITE in Proceeding
    /// bounds that INVITE's life to 64·T1 more (§9.1).
    pub fn send_request(
        &mut self,
        now: Instant,
        request: Request,
        destination: Peer,
    ) -> TransactionKey {
        if request.method == Method::Ack {
            let key = Self::client_key(&request);
            self.send_stateless(request.into(), destination);
            return key;
        }
        self.send_kept_request(now, &request, destination)
    }

    /// [`TransactionLayer::send_request`] for a request the caller keeps (a UAC leg builds its
    /// CANCEL and ACKs from its INVITE): the transaction holds only its encoded bytes, so the
    /// request is not copied to be sent.
    pub fn send_kept_request(
        &mut self,
        now: Instant,
        request: &Request,
        destination: Peer,
    ) -> TransactionKey {
        if request.method == Method::Ack {
            return self.send_request(now, request.clone(), destination);
        }
        let key = Self::client_key(request);
        // A reused key means a TU bug; the newer request wins and the old timers go with it.
        self.remove(&key);
        let (transactions, mut cx) = split!(self, now);
        let txn = if request.method == Method::Invite {
            Transaction::InviteClient(Box::new(ClientInvite::start(
                key.clone(),
                request,
                destination,
                &mut cx,
            )))
        } else {
            Transaction::NonInviteClient(Box::new(ClientNonInvite::start(
                key.clone(),
                request,
                destination,
                &mut cx,
            )))
        };
        transactions.insert(key.clone(), txn);
        if request.method == Method::Cancel {
            if let Some(Transaction::InviteClient(invite)) =
                transactions.get_mut(&key.with_method("INVITE"))
            {
                invite.on_cancel_sent(&mut cx);
            }
        }
        key
    }

    /// Sends a provisional or final response on a server transaction. Fails if the key is
    /// unknown or not a server transaction, the code is not 100–699, or a final was already
    /// sent (except further 2xx on an accepted INVITE, RFC 6026). The destination follows the
    /// response's top Via (RFC 3261 §18.2.2, RFC 3581), falling back to the request's.
    pub fn send_response(
        &mut self,
        now: Instant,
        key: &TransactionKey,
        response: Response,
    ) -> Result<(), TransactionError> {
        let code = response.status_code.code();
        if !(100..=699).contains(&code) {
            return Err(TransactionError::InvalidStatus(code));
        }
        let response_via = via::top_via(&response.headers);
        let (transactions, mut cx) = split!(self, now);
        let destination_for = |source: Peer, fallback: Peer| match &response_via {
            Some(v) => via::response_destination(Some(v), source),
            None => fallback,
        };
        let (lifecycle, newly_accepted) = match transactions.get_mut(key) {
            None => return Err(TransactionError::UnknownTransaction(key.clone())),
            Some(Transaction::InviteClient(_) | Transaction::NonInviteClient(_)) => {
                return Err(TransactionError::NotServerTransaction(key.clone()))
            }
            Some(Transaction::Finished(done)) => {
                let bytes = encode_response(&response);
                (
                    done.send(key, code, &bytes, destination_for, &mut cx)?,
                    None,
                )
            }
            Some(Transaction::InviteServer(t)) => {
                let destination = destination_for(t.source(), t.response_destination());
                let was_accepted = t.state() == ServerInviteState::Accepted;
                let lifecycle =
                    t.send(&response, encode_response(&response), destination, &mut cx)?;
                let newly_accepted = (!was_accepted && t.state() == ServerInviteState::Accepted)
                    .then(|| t.dialog_ack_id().map(|(c, n)| (c.to_owned(), n)))
                    .flatten();
                (lifecycle, newly_accepted)
            }
            Some(Transaction::NonInviteServer(t)) => {
                let destination = destination_for(t.source(), t.response_destination());
                let lifecycle = t.send(code, encode_response(&response), destination, &mut cx)?;
                (lifecycle, None)
            }
        };
        if let Some((call_id, cseq)) = newly_accepted {
            // Almost always one INVITE per Call-ID: no room for more until needed.
            self.accepted_invites
                .entry(call_id)
                .or_insert_with(|| Vec::with_capacity(1))
                .push((cseq, key.clone()));
        }
        match lifecycle {
            Lifecycle::Terminated => self.remove(key),
            Lifecycle::Alive => self.settle(key),
        }
        Ok(())
    }

    /// Whether `request` (as received, before any Via stamping) belongs to a server
    /// transaction this layer holds: a retransmission, which its transaction answers. Lets the
    /// TU refuse only new requests statelessly (overload) without cutting a call in progress.
    pub fn has_server_transaction(&self, request: &Request) -> bool {
        let method = method_name(&request.method);
        TransactionKey::for_incoming_request(request, method)
            .is_some_and(|key| self.transactions.contains_key(&key))
    }

    /// Sends a message outside any transaction: the ACK for a 2xx, or a response to a request
    /// that has no transaction.
    pub fn send_stateless(&mut self, message: SipMessage, destination: Peer) {
        let data = match &message {
            SipMessage::Request(request) => encode_request(request),
            SipMessage::Response(response) => encode_response(response),
        };
        self.transmits.push_back(Transmit {
            peer: destination,
            data,
        });
    }

    /// Where a response to `request` (as delivered, i.e. Via-stamped) received from `source`
    /// goes: the same rule `send_response` applies, public so the TU can answer statelessly.
    pub fn response_destination(request: &Request, source: Peer) -> Peer {
        via::response_destination(via::top_via(&request.headers).as_ref(), source)
    }

    /// Runs every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some((id, key, timer)) = self.timers.pop_due(now) {
            let (transactions, mut cx) = split!(self, now);
            let Some(txn) = transactions.get_mut(&key) else {
                continue;
            };
            txn.forget_timer(id);
            if txn.on_timer(timer, &mut cx) == Lifecycle::Terminated {
                self.remove(&key);
            }
        }
    }

    /// The transport reports that it could not open a connection to `destination` (refused,
    /// unreachable, a failed TLS handshake): every client transaction still waiting to reach it
    /// ends now with `TransportError` (RFC 3261 §17.1.4), instead of waiting 64·T1 for Timer
    /// B or F. Server transactions are untouched: their responses go where the request came
    /// from, and the peer retransmits.
    pub fn handle_transport_error(&mut self, now: Instant, destination: Peer) {
        let affected: Vec<TransactionKey> = self
            .transactions
            .iter()
            .filter(|(_, txn)| match txn {
                Transaction::InviteClient(t) => t.destination() == destination,
                Transaction::NonInviteClient(t) => t.destination() == destination,
                _ => false,
            })
            .map(|(key, _)| key.clone())
            .collect();
        for key in affected {
            let (transactions, mut cx) = split!(self, now);
            let lifecycle = match transactions.get_mut(&key) {
                Some(Transaction::InviteClient(t)) => t.on_transport_error(&mut cx),
                Some(Transaction::NonInviteClient(t)) => t.on_transport_error(&mut cx),
                _ => Lifecycle::Alive,
            };
            if lifecycle == Lifecycle::Terminated {
                self.remove(&key);
            }
        }
    }

    /// A transaction whose work is done becomes its `Lingering` remainder: from here on it
    /// holds only what absorbing retransmissions needs, and the one timer that ends it.
    fn settle(&mut self, key: &TransactionKey) {
        let Some(txn) = self.transactions.get_mut(key) else {
            return;
        };
        let (what, slots) = match txn {
            Transaction::InviteClient(t) => (t.finished(), &mut t.timers),
            Transaction::NonInviteClient(t) => (t.finished(), &mut t.timers),
            Transaction::InviteServer(t) => (t.finished(), &mut t.timers),
            Transaction::NonInviteServer(t) => (t.finished(), &mut t.timers),
            Transaction::Finished(_) => return,
        };
        let Some(what) = what else {
            return;
        };
        // The deadline is the linger timer; nothing else runs in these states, and if
        // anything did, it would have nothing left to act on.
        let deadline = slots.deadline.take();
        slots.cancel_all(&mut self.timers);
        *txn = Transaction::Finished(Box::new(Lingering { what, deadline }));
    }

    /// Removes a transaction with its timers and its dialog-ACK index entry.
    fn remove(&mut self, key: &TransactionKey) {
        let Some(mut txn) = self.transactions.remove(key) else {
            return;
        };
        txn.cancel_timers(&mut self.timers);
        let dialog = match &txn {
            Transaction::InviteServer(invite) => invite.dialog_ack_id(),
            Transaction::Finished(done) => done.dialog_ack_id(),
            _ => None,
        };
        if let Some((call_id, _)) = dialog {
            if let Some(entries) = self.accepted_invites.get_mut(call_id) {
                entries.retain(|(_, k)| k != key);
                if entries.is_empty() {
                    self.accepted_invites.remove(call_id);
                }
            }
        }
    }

    /// The next message to send, oldest first.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// The next event for the TU, oldest first.
    pub fn poll_event(&mut self) -> Option<TransactionEvent> {
        self.events.pop_front()
    }

    /// The earliest pending timer deadline: call `handle_timeout` then.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.next_deadline()
    }

    /// Number of live transactions (a metric).
    pub fn len(&self) -> usize {
        self.transactions.len()
    }

    /// True when no transaction is live.
    pub fn is_empty(&self) -> bool {
        self.transactions.is_empty()
    }
}

#[cfg(test)]
use super::{
    client_invite::ClientInviteState, client_non_invite::ClientNonInviteState, finished::Finished,
    server_non_invite::ServerNonInviteState,
};

#[cfg(test)]
impl TransactionLayer {
    /// What a lingering transaction holds; `None` if it is at work or gone.
    pub(crate) fn lingering(&self, key: &TransactionKey) -> Option<&Lingering> {
        match self.transactions.get(key)? {
            Transaction::Finished(done) => Some(done),
            _ => None,
        }
    }

    pub(crate) fn client_invite_state(&self, key: &TransactionKey) -> Option<ClientInviteState> {
        match self.transactions.get(key)? {
            Transaction::InviteClient(t) => Some(t.state()),
            Transaction::Finished(done) => match done.what {
                Finished::AcceptedInviteClient => Some(ClientInviteState::Accepted),
                Finished::CompletedInviteClient { .. } => Some(ClientInviteState::Completed),
                _ => None,
            },
            _ => None,
        }
    }

    pub(crate) fn client_non_invite_state(
        &self,
        key: &TransactionKey,
    ) -> Option<ClientNonInviteState> {
        match self.transactions.get(key)? {
            Transaction::NonInviteClient(t) => Some(t.state()),
            Transaction::Finished(done) => match done.what {
                Finished::CompletedNonInviteClient => Some(ClientNonInviteState::Completed),
                _ => None,
            },
            _ => None,
        }
    }

    pub(crate) fn server_invite_state(&self, key: &TransactionKey) -> Option<ServerInviteState> {
        match self.transactions.get(key)? {
            Transaction::InviteServer(t) => Some(t.state()),
            Transaction::Finished(done) => match done.what {
                Finished::AcceptedInviteServer { .. } => Some(ServerInviteState::Accepted),
                Finished::ConfirmedInviteServer { .. } => Some(ServerInviteState::Confirmed),
                _ => None,
            },
            _ => None,
        }
    }

    pub(crate) fn server_non_invite_state(
        &self,
        key: &TransactionKey,
    ) -> Option<ServerNonInviteState> {
        match self.transactions.get(key)? {
            Transaction::NonInviteServer(t) => Some(t.state()),
            Transaction::Finished(done) => match done.what {
                Finished::CompletedNonInviteServer { .. } => Some(ServerNonInviteState::Completed),
                _ => None,
            },
            _ => None,
        }
    }

    pub(crate) fn pending_timers(&self) -> usize {
        self.timers.len()
    }

    pub(crate) fn accepted_index_len(&self) -> usize {
        self.accepted_invites.values().map(Vec::len).sum()
    }
}
