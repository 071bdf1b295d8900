//! Registrar bindings (RFC 3261 §10.3), sans-IO: the current time is a parameter and expiry is
//! driven by the caller through [`Registrar::poll_timeout`] and [`Registrar::expire`].
//!
//! The transaction user authenticates the REGISTER first and passes the address-of-record
//! (the user, e.g. `"1001"`); the registrar only maintains bindings and tells the TU what to
//! answer. Each binding remembers the transport peer the REGISTER came from, because a phone
//! behind NAT is reachable there and not at the (private) host in its Contact.

mod contact;
mod request;

pub use contact::QValue;

use crate::Peer;
use contact::{ContactAddress, ContactValue};
use request::RegisterRequest;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

/// Registrar limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistrarConfig {
    /// Shortest registration accepted; shorter non-zero requests get 423 (RFC 3261 §10.3 7).
    pub min_expires: u32,
    /// Longest registration granted; longer requests are shortened to this.
    pub max_expires: u32,
    /// Used when neither the Contact nor the request says how long.
    pub default_expires: u32,
    /// Most bindings one AOR may hold; beyond it the least recently refreshed ones not in the
    /// current request are dropped (a phone that changed NAT port leaves a dead binding).
    pub max_bindings_per_aor: usize,
}

impl Default for RegistrarConfig {
    fn default() -> Self {
        Self {
            min_expires: 60,
            max_expires: 3600,
            default_expires: 3600,
            max_bindings_per_aor: 10,
        }
    }
}

/// A [`RegistrarConfig`] that cannot work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistrarConfigError {
    /// `min_expires` is above `max_expires`, so every registration would be refused.
    #[error("min_expires ({min_expires}) is above max_expires ({max_expires})")]
    MinAboveMax {
        /// The configured minimum.
        min_expires: u32,
        /// The configured maximum.
        max_expires: u32,
    },
    /// `default_expires` is outside `min_expires..=max_expires`.
    #[error("default_expires ({default_expires}) is outside {min_expires}..={max_expires}")]
    DefaultOutOfRange {
        /// The configured default.
        default_expires: u32,
        /// The configured minimum.
        min_expires: u32,
        /// The configured maximum.
        max_expires: u32,
    },
    /// `max_bindings_per_aor` is zero, so nobody could register.
    #[error("max_bindings_per_aor must be at least 1")]
    NoBindingsAllowed,
}

impl RegistrarConfig {
    /// Checks that the limits are consistent.
    pub fn validate(&self) -> Result<(), RegistrarConfigError> {
        if self.min_expires > self.max_expires {
            return Err(RegistrarConfigError::MinAboveMax {
                min_expires: self.min_expires,
                max_expires: self.max_expires,
            });
        }
        if !(self.min_expires..=self.max_expires).contains(&self.default_expires) {
            return Err(RegistrarConfigError::DefaultOutOfRange {
                default_expires: self.default_expires,
                min_expires: self.min_expires,
                max_expires: self.max_expires,
            });
        }
        if self.max_bindings_per_aor == 0 {
            return Err(RegistrarConfigError::NoBindingsAllowed);
        }
        Ok(())
    }
}

/// One contact registered for an AOR.
#[derive(Debug, Clone, PartialEq)]
pub struct Binding {
    /// The Contact URI as the UA wrote it (without angle brackets).
    pub contact: String,
    /// `contact` parsed, once when the binding is stored: every call offered to the phone
    /// needs it as a request URI, and a copy of the parsed URI is cheaper than parsing it again
    /// per call (issue 12). `None` when rsip cannot read it: the phone is then unreachable for
    /// calls, as before.
    pub contact_uri: Option<rsip::Uri>,
    /// Where the REGISTER came from; requests for this binding are sent here.
    pub source: Peer,
    /// When the binding lapses unless refreshed.
    pub expires_at: Instant,
    /// When the binding was last registered or refreshed.
    pub registered_at: Instant,
    /// The Contact's `q`, if it had one ([`QValue::ONE`] is assumed for ordering).
    pub q: Option<QValue>,
    /// Call-ID of the REGISTER that last touched the binding.
    pub call_id: String,
    /// CSeq of that REGISTER.
    pub cseq: u32,
    /// `+sip.instance` (RFC 5626), unquoted.
    pub instance: Option<String>,
    /// `reg-id` (RFC 5626).
    pub reg_id: Option<u32>,
    /// The Path (RFC 3327) of the REGISTER that last touched the binding: requests for the
    /// binding carry these values as Route headers, in order (empty: none).
    pub path: Vec<String>,
}

impl Binding {
    /// Whole seconds left, rounded up so a live binding never shows 0 (which means removal).
    pub fn expires_in(&self, now: Instant) -> u32 {
        let left = self.expires_at.saturating_duration_since(now);
        let secs = left.as_secs() + u64::from(left.subsec_nanos() > 0);
        u32::try_from(secs).unwrap_or(u32::MAX)
    }

    /// The preference used for ordering: the Contact's q, or 1 when it had none.
    pub fn effective_q(&self) -> QValue {
        self.q.unwrap_or(QValue::ONE)
    }

    /// The Contact value a 200 OK lists for this binding (RFC 3261 §10.3 step 8).
    pub fn contact_header_value(&self, now: Instant) -> String {
        self.contact_value_with_expiry(self.expires_in(now))
    }

    fn contact_value_with_expiry(&self, expires_in: u32) -> String {
        let mut value = format!("<{}>;expires={expires_in}", self.contact);
        if let Some(q) = self.q {
            value.push_str(&format!(";q={q}"));
        }
        if let Some(instance) = &self.instance {
            let escaped = instance.replace('\\', "\\\\").replace('"', "\\\"");
            value.push_str(&format!(";+sip.instance=\"{escaped}\""));
        }
        if let Some(reg_id) = self.reg_id {
            value.push_str(&format!(";reg-id={reg_id}"));
        }
        value
    }
}

/// A binding with the seconds it has left, as of the REGISTER that produced it.
#[derive(Debug, Clone, PartialEq)]
pub struct CurrentBinding {
    /// The binding.
    pub binding: Binding,
    /// Whole seconds left, rounded up.
    pub expires_in: u32,
}

/// Whether a REGISTER changed if the AOR is reachable at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AorTransition {
    /// Had bindings before and after, or none before and after.
    NoChange,
    /// Went from no bindings to some (e.g. log the agent in).
    Registered,
    /// Went from some bindings to none (e.g. log the agent out).
    Unregistered,
}

/// What a successful REGISTER did.
#[derive(Debug, Clone, PartialEq)]
pub struct RegisterOutcome {
    /// All current bindings of the AOR, best q first then most recent.
    pub bindings: Vec<CurrentBinding>,
    /// Whether the AOR became reachable or unreachable.
    pub transition: AorTransition,
    /// Bindings dropped to stay within `max_bindings_per_aor`.
    pub evicted: Vec<Binding>,
}

impl RegisterOutcome {
    /// The Contact values of the 200 OK, `<uri>;expires=N` plus q/instance/reg-id.
    pub fn contact_header_values(&self) -> Vec<String> {
        self.bindings
            .iter()
            .map(|current| {
                current
                    .binding
                    .contact_value_with_expiry(current.expires_in)
            })
            .collect()
    }
}

/// Why a REGISTER was refused; nothing was changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegisterError {
    /// The request is not a REGISTER.
    #[error("{0} request given to the registrar")]
    NotRegister(String),
    /// A header the registrar needs is missing.
    #[error("missing {0} header")]
    MissingHeader(&'static str),
    /// A header the registrar needs does not parse.
    #[error("bad {header} header: {reason}")]
    BadHeader {
        /// The header name.
        header: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// A Contact value does not parse.
    #[error("bad Contact {contact:?}: {reason}")]
    BadContact {
        /// The offending value (truncated).
        contact: String,
        /// What is wrong.
        reason: String,
    },
    /// `*` used other than alone with `Expires: 0` (RFC 3261 §10.2.2).
    #[error("bad wildcard Contact: {0}")]
    BadWildcard(&'static str),
    /// A non-zero expiry below the minimum: answer 423 with `Min-Expires`.
    #[error("registration interval too brief; Min-Expires: {min_expires}")]
    IntervalTooBrief {
        /// The value for the Min-Expires header.
        min_expires: u32,
    },
    /// Same Call-ID as a stored binding with a CSeq that is not higher: a stale or reordered
    /// REGISTER (RFC 3261 §10.3 7).
    #[error("out-of-order REGISTER: Call-ID {call_id:?} CSeq {received_cseq} is not above {stored_cseq}")]
    OutOfOrder {
        /// The shared Call-ID.
        call_id: String,
        /// The CSeq stored with the binding.
        stored_cseq: u32,
        /// The CSeq of this request.
        received_cseq: u32,
    },
    /// The request alone adds more bindings than an AOR may hold.
    #[error("more than {max} contacts for one address-of-record")]
    TooManyBindings {
        /// The configured maximum.
        max: usize,
    },
}

impl RegisterError {
    /// The SIP status code to answer with. RFC 3261 names only 423; the others follow common
    /// registrar practice (400 for anything malformed or out of order, 403 for a policy limit).
    pub fn status_code(&self) -> u16 {
        match self {
            RegisterError::IntervalTooBrief { .. } => 423,
            RegisterError::TooManyBindings { .. } => 403,
            RegisterError::NotRegister(_)
            | RegisterError::MissingHeader(_)
            | RegisterError::BadHeader { .. }
            | RegisterError::BadContact { .. }
            | RegisterError::BadWildcard(_)
            | RegisterError::OutOfOrder { .. } => 400,
        }
    }
}

/// A binding with what the registrar needs to find it again.
#[derive(Debug, Clone)]
struct StoredBinding {
    /// Unique for the registrar's lifetime; ties the expiry index to the binding.
    id: u64,
    /// Identity across REGISTERs (see `ContactAddress::binding_key`).
    key: String,
    binding: Binding,
}

/// The bindings of every AOR, with an expiry index.
#[derive(Debug)]
pub struct Registrar {
    config: RegistrarConfig,
    aors: HashMap<String, Vec<StoredBinding>>,
    /// Every stored binding by expiry time, so the next expiry and the expired set are found
    /// without scanning the AORs.
    expiry: BTreeMap<(Instant, u64), String>,
    next_id: u64,
}

impl Registrar {
    /// A registrar with the given limits.
    pub fn new(config: RegistrarConfig) -> Result<Self, RegistrarConfigError> {
        config.validate()?;
        Ok(Self {
            config,
            aors: HashMap::new(),
            expiry: BTreeMap::new(),
            next_id: 0,
        })
    }

    /// The limits in force.
    pub fn config(&self) -> &RegistrarConfig {
        &self.config
    }

    /// Applies an (already authenticated) REGISTER for `aor` that arrived from `source`.
    /// A REGISTER without Contact is a query and changes nothing but lapsed bindings. On error
    /// nothing changes.
    pub fn register(
        &mut self,
        now: Instant,
        aor: &str,
        request: &rsip::Request,
        source: Peer,
    ) -> Result<RegisterOutcome, RegisterError> {
        let register = RegisterRequest::from_request(request)?;
        let stored = self.aors.get(aor);
        // The TU has been told about every binding `expire` has not yet removed, so lapsed
        // ones still count as "before" for the transition it is told about now.
        let had_bindings = stored.is_some_and(|bindings| !bindings.is_empty());
        let live: Vec<StoredBinding> = stored
            .map(|bindings| {
                bindings
                    .iter()
                    .filter(|stored| stored.binding.expires_at > now)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        let (bindings, evicted) = self.apply(now, &register, source, live)?;
        self.replace_aor(aor, bindings);

        let current = self.bindings(now, aor);
        let transition = match (had_bindings, !current.is_empty()) {
            (false, true) => AorTransition::Registered,
            (true, false) => AorTransition::Unregistered,
            _ => AorTransition::NoChange,
        };
        Ok(RegisterOutcome {
            bindings: current
                .into_iter()
                .map(|binding| CurrentBinding {
                    expires_in: binding.expires_in(now),
                    binding,
                })
                .collect(),
            transition,
            evicted,
        })
    }

    /// Computes the AOR's new binding list without touching the registrar (beyond handing
    /// out ids), so a refused request changes nothing.
    fn apply(
        &mut self,
        now: Instant,
        register: &RegisterRequest,
        source: Peer,
        mut bindings: Vec<StoredBinding>,
    ) -> Result<(Vec<StoredBinding>, Vec<Binding>), RegisterError> {
        if register.contacts.is_empty() {
            return Ok((bindings, Vec::new()));
        }
        if register.contacts.contains(&ContactValue::Wildcard) {
            if register.contacts.len() != 1 {
                return Err(RegisterError::BadWildcard(
                    "'*' must be the only Contact value",
                ));
            }
            if register.expires != Some(0) {
                return Err(RegisterError::BadWildcard("'*' requires Expires: 0"));
            }
            for stored in &bindings {
                check_order(&stored.binding, register)?;
            }
            return Ok((Vec::new(), Vec::new()));
        }

        // Every expiry is checked before anything changes: one brief contact refuses all.
        let mut granted = Vec::with_capacity(register.contacts.len());
        for contact in &register.contacts {
            let ContactValue::Address(address) = contact else {
                continue;
            };
            granted.push((address, self.granted_expiry(address, register)?));
        }

        let mut touched: HashSet<String> = HashSet::new();
        for (address, seconds) in granted {
            let key = address.binding_key();
            let existing = bindings.iter().position(|stored| stored.key == key);
            // A key already touched by this request was changed by it; only stored state is
            // subject to the ordering check.
            if let Some(index) = existing.filter(|_| !touched.contains(&key)) {
                if let Some(stored) = bindings.get(index) {
                    check_order(&stored.binding, register)?;
                }
            }
            match (existing, seconds) {
                (Some(index), 0) => {
                    bindings.remove(index);
                }
                (Some(index), seconds) => {
                    let expires_at = expiry_instant(now, seconds)?;
                    if let Some(stored) = bindings.get_mut(index) {
                        stored.binding = new_binding(address, register, source, now, expires_at);
                    }
                }
                (None, 0) => {}
                (None, seconds) => {
                    let expires_at = expiry_instant(now, seconds)?;
                    bindings.push(StoredBinding {
                        id: self.allocate_id(),
                        key: key.clone(),
                        binding: new_binding(address, register, source, now, expires_at),
                    });
                }
            }
            touched.insert(key);
        }

        let evicted = self.evict_overflow(&mut bindings, &touched)?;
        Ok((bindings, evicted))
    }

    /// The expiry a contact gets: its own `expires`, else the request's `Expires`, else the
    /// default; 0 removes, below the minimum is refused, above the maximum is shortened.
    fn granted_expiry(
        &self,
        address: &ContactAddress,
        register: &RegisterRequest,
    ) -> Result<u32, RegisterError> {
        let requested = address
            .expires
            .or(register.expires)
            .unwrap_or(self.config.default_expires);
        if requested == 0 {
            Ok(0)
        } else if requested < self.config.min_expires {
            Err(RegisterError::IntervalTooBrief {
                min_expires: self.config.min_expires,
            })
        } else {
            Ok(requested.min(self.config.max_expires))
        }
    }

    /// Drops the least recently refreshed bindings this request did not mention until the AOR
    /// fits its limit.
    fn evict_overflow(
        &self,
        bindings: &mut Vec<StoredBinding>,
        touched: &HashSet<String>,
    ) -> Result<Vec<Binding>, RegisterError> {
        let max = self.config.max_bindings_per_aor;
        let mut evicted = Vec::new();
        while bindings.len() > max {
            let oldest_untouched = bindings
                .iter()
                .enumerate()
                .filter(|(_, stored)| !touched.contains(&stored.key))
                .min_by_key(|(_, stored)| (stored.binding.registered_at, stored.id))
                .map(|(index, _)| index);
            match oldest_untouched {
                Some(index) => evicted.push(bindings.remove(index).binding),
                None => return Err(RegisterError::TooManyBindings { max }),
            }
        }
        Ok(evicted)
    }

    fn allocate_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    /// Swaps in an AOR's new binding list and keeps the expiry index in step.
    fn replace_aor(&mut self, aor: &str, bindings: Vec<StoredBinding>) {
        if let Some(old) = self.aors.remove(aor) {
            for stored in old {
                self.expiry.remove(&(stored.binding.expires_at, stored.id));
            }
        }
        if bindings.is_empty() {
            return;
        }
        for stored in &bindings {
            self.expiry
                .insert((stored.binding.expires_at, stored.id), aor.to_owned());
        }
        self.aors.insert(aor.to_owned(), bindings);
    }

    /// The live bindings of `aor`, best q first, then most recently refreshed.
    pub fn bindings(&self, now: Instant, aor: &str) -> Vec<Binding> {
        let mut live: Vec<Binding> = self
            .aors
            .get(aor)
            .map(|bindings| {
                bindings
                    .iter()
                    .filter(|stored| stored.binding.expires_at > now)
                    .map(|stored| stored.binding.clone())
                    .collect()
            })
            .unwrap_or_default();
        live.sort_by(|a, b| {
            b.effective_q()
                .cmp(&a.effective_q())
                .then(b.registered_at.cmp(&a.registered_at))
                .then_with(|| a.contact.cmp(&b.contact))
        });
        live
    }

    /// Removes every binding that has lapsed by `now`; returns the AORs left with none (in
    /// the order they emptied), so the TU can log those agents out.
    pub fn expire(&mut self, now: Instant) -> Vec<String> {
        let mut emptied = Vec::new();
        while let Some((&(expires_at, id), _)) = self.expiry.first_key_value() {
            if expires_at > now {
                break;
            }
            let Some((_, aor)) = self.expiry.pop_first() else {
                break;
            };
            let now_empty = match self.aors.get_mut(&aor) {
                Some(bindings) => {
                    bindings.retain(|stored| stored.id != id);
                    bindings.is_empty()
                }
                None => false,
            };
            if now_empty {
                self.aors.remove(&aor);
                emptied.push(aor);
            }
        }
        emptied
    }

    /// When the next binding lapses: the TU calls [`Registrar::expire`] then.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.expiry
            .first_key_value()
            .map(|(&(expires_at, _), _)| expires_at)
    }

    /// Number of stored bindings, including lapsed ones `expire` has not removed yet.
    pub fn len(&self) -> usize {
        self.expiry.len()
    }

    /// Whether no binding is stored.
    pub fn is_empty(&self) -> bool {
        self.expiry.is_empty()
    }

    /// Drops every binding that lives on the connection `flow` (a WebSocket or other stream
    /// connection that closed: RFC 7118 §5, RFC 5626 §5 — the UA cannot be reached any other
    /// way). Returns the AORs left with no binding, so the TU can log those agents out.
    pub fn remove_flow(&mut self, flow: Peer) -> Vec<String> {
        let affected: Vec<String> = self
            .aors
            .iter()
            .filter(|(_, bindings)| bindings.iter().any(|s| s.binding.source == flow))
            .map(|(aor, _)| aor.clone())
            .collect();
        let mut emptied = Vec::new();
        for aor in affected {
            let kept: Vec<StoredBinding> = self
                .aors
                .get(&aor)
                .map(|bindings| {
                    bindings
                        .iter()
                        .filter(|s| s.binding.source != flow)
                        .cloned()
                        .collect()
                })
                .unwrap_or_default();
            if kept.is_empty() {
                emptied.push(aor.clone());
            }
            self.replace_aor(&aor, kept);
        }
        emptied.sort();
        emptied
    }

    /// Drops every binding of `aor` (e.g. the user was deleted); returns what was removed.
    pub fn remove_aor(&mut self, aor: &str) -> Vec<Binding> {
        let removed = self
            .aors
            .get(aor)
            .map(|bindings| bindings.iter().map(|s| s.binding.clone()).collect())
            .unwrap_or_default();
        self.replace_aor(aor, Vec::new());
        removed
    }
}

/// RFC 3261 §10.3 step 7: a REGISTER in the same Call-ID must have a higher CSeq.
fn check_order(stored: &Binding, register: &RegisterRequest) -> Result<(), RegisterError> {
    if stored.call_id == register.call_id && register.cseq <= stored.cseq {
        return Err(RegisterError::OutOfOrder {
            call_id: register.call_id.clone(),
            stored_cseq: stored.cseq,
            received_cseq: register.cseq,
        });
    }
    Ok(())
}

fn expiry_instant(now: Instant, seconds: u32) -> Result<Instant, RegisterError> {
    now.checked_add(Duration::from_secs(seconds.into()))
        .ok_or_else(|| RegisterError::BadHeader {
            header: "Expires",
            reason: "expiry beyond the representable time range".into(),
        })
}

fn new_binding(
    address: &ContactAddress,
    register: &RegisterRequest,
    source: Peer,
    now: Instant,
    expires_at: Instant,
) -> Binding {
    Binding {
        contact: address.uri.clone(),
        contact_uri: rsip::Uri::try_from(address.uri.as_str()).ok(),
        source,
        expires_at,
        registered_at: now,
        q: address.q,
        call_id: register.call_id.clone(),
        cseq: register.cseq,
        instance: address.instance.clone(),
        reg_id: address.reg_id,
        path: register.path.clone(),
    }
}

#[cfg(test)]
mod tests;
