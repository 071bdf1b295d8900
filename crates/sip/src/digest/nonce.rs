//! Server-side challenges and credential verification with stateless-verifiable nonces.
//!
//! A nonce is `hex(epoch ‖ issued_at ‖ random ‖ mac)`, where `mac` is a truncated
//! HMAC-SHA-256 over the rest and the realm under a server secret. Checking that we issued a
//! nonce therefore needs no state, and a flood of challenges costs no memory. State is kept
//! only for nonces that were *used*, to refuse replays: per nonce, the highest nonce count
//! seen. That map is bounded by the nonce lifetime and by a hard cap.
//!
//! `epoch` is random per [`NonceManager`]: if the secret is persisted across restarts, a nonce
//! from before a restart still authenticates but its replay history is gone, so it is answered
//! `Stale` (the user agent retries with a fresh nonce) instead of being trusted.

use super::algorithm::{constant_time_eq, ha1, Algorithm, ResponseInput};
use super::credentials::Credentials;
use super::params::{push_quoted, DigestParams};
use super::DigestError;
use hmac::{Hmac, Mac};
use rand::rngs::StdRng;
use rand::{RngCore, SeedableRng};
use sha2::Sha256;
use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::time::Duration;

/// Default cap on the number of used nonces whose nonce counts are remembered.
pub const DEFAULT_MAX_TRACKED_NONCES: usize = 100_000;

/// Wrong responses one nonce takes before it is dead: a guesser must fetch a new challenge
/// every few guesses (each one a request the ban counter sees), while a user who mistyped
/// once still gets in on the same nonce.
pub const MAX_WRONG_RESPONSES_PER_NONCE: u8 = 3;

const EPOCH_LEN: usize = 4;
const ISSUED_AT_LEN: usize = 8;
const RANDOM_LEN: usize = 8;
/// 96-bit tag: forging one takes 2^96 online guesses.
const MAC_LEN: usize = 12;
const NONCE_LEN: usize = EPOCH_LEN + ISSUED_AT_LEN + RANDOM_LEN + MAC_LEN;
const OPAQUE_LEN: usize = 8;

/// Domain separation for the two things the secret authenticates.
const NONCE_LABEL: &[u8] = b"switchboard digest nonce v1\0";
const OPAQUE_LABEL: &[u8] = b"switchboard digest opaque v1\0";

/// Challenges are offered in this order (RFC 8760 §2.4: strongest first).
const OFFERED: [Algorithm; 2] = [Algorithm::Sha256, Algorithm::Md5];

/// What the server knows about a user's password.
#[derive(Clone, PartialEq, Eq)]
pub enum Secret {
    /// The clear-text password.
    Password(String),
    /// Precomputed HA1 values, lowercase or uppercase hex of H(username:realm:password), one
    /// per base algorithm; a user without one cannot authenticate with that algorithm.
    Ha1 {
        /// HA1 for MD5 and MD5-sess.
        md5: Option<String>,
        /// HA1 for SHA-256 and SHA-256-sess.
        sha256: Option<String>,
    },
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never let a password or HA1 reach a log line through `{:?}`.
        match self {
            Secret::Password(_) => f.write_str("Password(<redacted>)"),
            Secret::Ha1 { md5, sha256 } => f
                .debug_struct("Ha1")
                .field("md5", &md5.as_ref().map(|_| "<redacted>"))
                .field("sha256", &sha256.as_ref().map(|_| "<redacted>"))
                .finish(),
        }
    }
}

/// The outcome of checking a credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The credential is valid and fresh.
    Authorized {
        /// The authenticated user name.
        username: String,
        /// The digest-uri the response covers; whether it matches the Request-URI is the
        /// caller's decision (RFC 7616 §3.4.6).
        uri: String,
        /// The algorithm the user agent answered with.
        algorithm: Algorithm,
    },
    /// The password is right but the nonce is too old (or predates a restart or was forgotten
    /// under memory pressure): challenge again with `stale=true` and the UA retries silently.
    Stale,
    /// The credential is refused.
    Rejected(RejectReason),
}

/// Why a credential was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RejectReason {
    /// The header does not parse or lacks a field; the detail says which.
    #[error("malformed credentials: {0}")]
    Malformed(DigestError),
    /// The algorithm is not supported.
    #[error("unsupported algorithm {0:?}")]
    UnsupportedAlgorithm(String),
    /// The qop is not `auth`.
    #[error("unsupported qop {0:?}")]
    UnsupportedQop(String),
    /// The credential is for another realm.
    #[error("realm {received:?} does not match {expected:?}")]
    RealmMismatch {
        /// Our realm.
        expected: String,
        /// The realm in the credential.
        received: String,
    },
    /// The nonce was not issued by us (or for this realm), or is not a nonce at all.
    #[error("nonce was not issued by this server for this realm")]
    BadNonce,
    /// The opaque value is not the one sent with the nonce.
    #[error("opaque does not match the nonce")]
    OpaqueMismatch,
    /// No secret is known for the user name.
    #[error("unknown user {0:?}")]
    UnknownUser(String),
    /// The user's secret has no HA1 for the requested algorithm.
    #[error("no credential provisioned for {0}")]
    AlgorithmNotProvisioned(Algorithm),
    /// The response hash is wrong (wrong password, or a tampered field).
    #[error("response does not match (wrong password or altered request)")]
    WrongResponse,
    /// The nonce count is not higher than one already accepted, or a nonce without qop was
    /// used twice.
    #[error("replayed nonce count")]
    Replay,
    /// The nonce already took [`MAX_WRONG_RESPONSES_PER_NONCE`] wrong responses.
    #[error("nonce is dead after too many wrong responses")]
    DeadNonce,
}

impl From<DigestError> for RejectReason {
    fn from(error: DigestError) -> Self {
        match error {
            DigestError::UnsupportedAlgorithm(token) => RejectReason::UnsupportedAlgorithm(token),
            DigestError::UnsupportedQop(token) => RejectReason::UnsupportedQop(token),
            other => RejectReason::Malformed(other),
        }
    }
}

/// What is remembered about a nonce that was answered at least once.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct NonceState {
    /// Accepted uses, if any.
    used: Option<NonceUse>,
    /// Wrong responses so far.
    wrong: u8,
}

/// A nonce we issued, decoded and authenticated.
#[derive(Debug, Clone, Copy)]
struct IssuedNonce {
    epoch: u32,
    issued_at: u64,
    random: u64,
}

/// How a tracked nonce has been used so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NonceUse {
    /// Used with qop; the highest nonce count accepted.
    Counted(u32),
    /// Used without qop (RFC 2069): nothing can tell a replay apart, so once is all.
    Consumed,
}

/// Issues Digest challenges and verifies credentials. Time comes in as Unix seconds.
pub struct NonceManager {
    secret: [u8; 32],
    lifetime_secs: u64,
    max_tracked: usize,
    epoch: u32,
    rng: StdRng,
    uses: HashMap<u64, NonceState>,
    /// The same entries ordered by issue time, so expiry and cap eviction take the oldest
    /// without a scan.
    by_issue: BTreeSet<(u64, u64)>,
    /// Nonces issued at or before this second may have been evicted while still live; an
    /// untracked one is answered `Stale` so eviction can never re-enable a replay.
    eviction_floor: Option<u64>,
}

impl fmt::Debug for NonceManager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NonceManager")
            .field("lifetime_secs", &self.lifetime_secs)
            .field("max_tracked", &self.max_tracked)
            .field("tracked", &self.uses.len())
            .field("eviction_floor", &self.eviction_floor)
            .finish_non_exhaustive()
    }
}

impl NonceManager {
    /// A manager keyed by `secret` (32 random bytes) whose nonces live for `lifetime` (whole
    /// seconds; 300 s is a good default). Nonces verify only on the manager that issued them:
    /// replay state is local, so one from another instance (another node, or this one before
    /// a restart) is answered `Stale` even when the secret is shared.
    pub fn new(secret: [u8; 32], lifetime: Duration) -> Self {
        let mut rng = StdRng::from_entropy();
        let epoch = rng.next_u32();
        Self {
            secret,
            lifetime_secs: lifetime.as_secs(),
            max_tracked: DEFAULT_MAX_TRACKED_NONCES,
            epoch,
            rng,
            uses: HashMap::new(),
            by_issue: BTreeSet::new(),
            eviction_floor: None,
        }
    }

    /// Changes the cap on remembered used nonces (at least 1).
    pub fn with_max_tracked(mut self, max_tracked: usize) -> Self {
        self.max_tracked = max_tracked.max(1);
        self
    }

    /// How many used nonces are remembered for replay protection (a metric).
    pub fn tracked_nonces(&self) -> usize {
        self.uses.len()
    }

    /// The `WWW-Authenticate` / `Proxy-Authenticate` values to send, one per algorithm,
    /// SHA-256 first, sharing one fresh nonce.
    pub fn challenge(&mut self, now_unix: u64, realm: &str, stale: bool) -> Vec<String> {
        let nonce = self.issue(now_unix, realm);
        let opaque = self.opaque_for(&nonce);
        OFFERED
            .iter()
            .map(|algorithm| {
                let mut value = String::from("Digest realm=");
                push_quoted(&mut value, realm);
                value.push_str(", nonce=\"");
                value.push_str(&nonce);
                value.push_str("\", opaque=\"");
                value.push_str(&opaque);
                value.push_str("\", algorithm=");
                value.push_str(algorithm.token());
                value.push_str(", qop=\"auth\"");
                if stale {
                    value.push_str(", stale=true");
                }
                value
            })
            .collect()
    }

    /// Verifies a raw `Authorization` / `Proxy-Authorization` value for a request with
    /// `method`, against our `realm`, looking the user's secret up with `secret_for`.
    pub fn verify(
        &mut self,
        now_unix: u64,
        method: &str,
        authorization: &str,
        realm: &str,
        secret_for: impl Fn(&str) -> Option<Secret>,
    ) -> Verdict {
        match self.check(now_unix, method, authorization, realm, secret_for) {
            Ok(verdict) => verdict,
            Err(reason) => Verdict::Rejected(reason),
        }
    }

    fn check(
        &mut self,
        now_unix: u64,
        method: &str,
        authorization: &str,
        realm: &str,
        secret_for: impl Fn(&str) -> Option<Secret>,
    ) -> Result<Verdict, RejectReason> {
        let params = DigestParams::parse(authorization)?;
        let credentials = Credentials::from_params(&params)?;
        if credentials.realm != realm {
            return Err(RejectReason::RealmMismatch {
                expected: realm.to_owned(),
                received: credentials.realm.to_owned(),
            });
        }
        let nonce = self
            .authenticate_nonce(credentials.nonce, realm)
            .ok_or(RejectReason::BadNonce)?;
        if let Some(opaque) = credentials.opaque {
            let expected = self.opaque_for(credentials.nonce);
            if !constant_time_eq(opaque.as_bytes(), expected.as_bytes()) {
                return Err(RejectReason::OpaqueMismatch);
            }
        }
        self.forget_expired(now_unix);
        let state = self.uses.get(&nonce.random).copied();
        if state.is_some_and(|s| s.wrong >= MAX_WRONG_RESPONSES_PER_NONCE) {
            return Err(RejectReason::DeadNonce);
        }
        // An unknown user is checked against a throw-away secret, so answering them costs
        // the same hashing as a wrong password and timing does not tell them apart.
        let known = secret_for(credentials.username);
        let is_known = known.is_some();
        let secret = known.unwrap_or_else(|| Secret::Password(String::new()));
        let verified = Ok(secret).and_then(|secret| {
            let base_ha1 = base_ha1_for(&secret, &credentials)?;
            let expected = ResponseInput {
                algorithm: credentials.algorithm,
                base_ha1: &base_ha1,
                nonce: credentials.nonce,
                method,
                uri: credentials.uri,
                qop: credentials.qop.map(|(qop, _)| qop),
            }
            .response()?;
            let received = credentials.response.to_ascii_lowercase();
            if !is_known {
                Err(RejectReason::UnknownUser(credentials.username.to_owned()))
            } else if constant_time_eq(expected.as_bytes(), received.as_bytes()) {
                Ok(())
            } else {
                Err(RejectReason::WrongResponse)
            }
        });
        if let Err(reason) = verified {
            // Unknown users burn the nonce like wrong passwords, so the two cannot be told
            // apart by how many guesses a nonce takes.
            if matches!(
                reason,
                RejectReason::WrongResponse | RejectReason::UnknownUser(_)
            ) && self.is_live(nonce, now_unix)
            {
                let mut state = state.unwrap_or_default();
                state.wrong = state.wrong.saturating_add(1);
                self.track(nonce, state);
            }
            return Err(reason);
        }
        // Freshness is judged only once the password is known to be right, so a stale
        // answer never tells an attacker anything.
        if !self.is_live(nonce, now_unix) {
            return Ok(Verdict::Stale);
        }
        let tracked = state.and_then(|s| s.used);
        if state.is_none()
            && self
                .eviction_floor
                .is_some_and(|floor| nonce.issued_at <= floor)
        {
            return Ok(Verdict::Stale);
        }
        let next_use = match (tracked, credentials.qop) {
            (None, Some((_, nc))) => NonceUse::Counted(nc),
            (Some(NonceUse::Counted(highest)), Some((_, nc))) if nc > highest => {
                NonceUse::Counted(nc)
            }
            (None, None) => NonceUse::Consumed,
            _ => return Err(RejectReason::Replay),
        };
        let mut state = state.unwrap_or_default();
        state.used = Some(next_use);
        self.track(nonce, state);
        Ok(Verdict::Authorized {
            username: credentials.username.to_owned(),
            uri: credentials.uri.to_owned(),
            algorithm: credentials.algorithm,
        })
    }

    /// Issued by this manager and not expired.
    fn is_live(&self, nonce: IssuedNonce, now_unix: u64) -> bool {
        nonce.epoch == self.epoch && !self.is_expired(nonce.issued_at, now_unix)
    }

    /// Stores a nonce's state, making room under the cap when it is new.
    fn track(&mut self, nonce: IssuedNonce, state: NonceState) {
        if !self.uses.contains_key(&nonce.random) {
            self.make_room();
            self.by_issue.insert((nonce.issued_at, nonce.random));
        }
        self.uses.insert(nonce.random, state);
    }

    fn is_expired(&self, issued_at: u64, now_unix: u64) -> bool {
        now_unix >= issued_at.saturating_add(self.lifetime_secs)
    }

    fn issue(&mut self, now_unix: u64, realm: &str) -> String {
        let random = self.rng.next_u64();
        let mut bytes = Vec::with_capacity(NONCE_LEN);
        bytes.extend_from_slice(&self.epoch.to_be_bytes());
        bytes.extend_from_slice(&now_unix.to_be_bytes());
        bytes.extend_from_slice(&random.to_be_bytes());
        let tag = self.nonce_mac(&bytes, realm).finalize().into_bytes();
        bytes.extend_from_slice(&tag[..MAC_LEN]);
        hex::encode(bytes)
    }

    /// Decodes a nonce and checks its tag; `None` if we did not issue it for `realm`.
    fn authenticate_nonce(&self, nonce: &str, realm: &str) -> Option<IssuedNonce> {
        if nonce.len() != NONCE_LEN * 2 {
            return None;
        }
        let bytes = hex::decode(nonce).ok()?;
        let (body, tag) = bytes.split_at_checked(NONCE_LEN - MAC_LEN)?;
        self.nonce_mac(body, realm)
            .verify_truncated_left(tag)
            .ok()?;
        let (epoch, rest) = body.split_at_checked(EPOCH_LEN)?;
        let (issued_at, random) = rest.split_at_checked(ISSUED_AT_LEN)?;
        Some(IssuedNonce {
            epoch: u32::from_be_bytes(epoch.try_into().ok()?),
            issued_at: u64::from_be_bytes(issued_at.try_into().ok()?),
            random: u64::from_be_bytes(random.try_into().ok()?),
        })
    }

    fn nonce_mac(&self, body: &[u8], realm: &str) -> Hmac<Sha256> {
        let mut mac = self.keyed_mac(NONCE_LABEL);
        mac.update(body);
        mac.update(realm.as_bytes());
        mac
    }

    /// Opaque is derived from the nonce so it needs no state either.
    fn opaque_for(&self, nonce: &str) -> String {
        let mut mac = self.keyed_mac(OPAQUE_LABEL);
        mac.update(nonce.as_bytes());
        hex::encode(&mac.finalize().into_bytes()[..OPAQUE_LEN])
    }

    fn keyed_mac(&self, label: &[u8]) -> Hmac<Sha256> {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.secret)
            .expect("HMAC accepts keys of any length");
        mac.update(label);
        mac
    }

    /// Drops tracked nonces that have expired: a replay of one is answered `Stale` anyway.
    fn forget_expired(&mut self, now_unix: u64) {
        while let Some(&(issued_at, random)) = self.by_issue.first() {
            if !self.is_expired(issued_at, now_unix) {
                break;
            }
            self.by_issue.pop_first();
            self.uses.remove(&random);
        }
    }

    /// Evicts the oldest tracked nonces until one more fits under the cap, raising the floor
    /// below which untracked nonces are no longer trusted.
    fn make_room(&mut self) {
        while self.uses.len() >= self.max_tracked {
            let Some((issued_at, random)) = self.by_issue.pop_first() else {
                break;
            };
            self.uses.remove(&random);
            self.eviction_floor = Some(self.eviction_floor.map_or(issued_at, |f| f.max(issued_at)));
        }
    }
}

/// HA1 of the credential's base algorithm, lowercase hex.
fn base_ha1_for(secret: &Secret, credentials: &Credentials<'_>) -> Result<String, RejectReason> {
    let base = credentials.algorithm.base();
    match secret {
        Secret::Password(password) => {
            Ok(ha1(base, credentials.username, credentials.realm, password))
        }
        Secret::Ha1 { md5, sha256 } => {
            let stored = if base == Algorithm::Sha256 {
                sha256
            } else {
                md5
            };
            stored
                .as_deref()
                .map(str::to_ascii_lowercase)
                .ok_or(RejectReason::AlgorithmNotProvisioned(credentials.algorithm))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::respond;
    use proptest::prelude::*;

    const REALM: &str = "switchboard.example";
    const URI: &str = "sip:switchboard.example";
    const T0: u64 = 1_700_000_000;

    fn manager() -> NonceManager {
        NonceManager::new([7; 32], Duration::from_secs(300))
    }

    fn secrets(user: &str) -> Option<Secret> {
        match user {
            "1001" => Some(Secret::Password("s3cret".into())),
            "1002" => Some(Secret::Ha1 {
                md5: Some(ha1(Algorithm::Md5, "1002", REALM, "hunter2").to_ascii_uppercase()),
                sha256: Some(ha1(Algorithm::Sha256, "1002", REALM, "hunter2")),
            }),
            "md5only" => Some(Secret::Ha1 {
                md5: Some(ha1(Algorithm::Md5, "md5only", REALM, "pw")),
                sha256: None,
            }),
            _ => None,
        }
    }

    fn challenge_for(manager: &mut NonceManager, now: u64, algorithm: Algorithm) -> String {
        manager
            .challenge(now, REALM, false)
            .into_iter()
            .find(|c| c.contains(&format!("algorithm={algorithm},")))
            .unwrap()
    }

    fn answer(challenge: &str, user: &str, password: &str, nc: u32) -> String {
        respond(challenge, "REGISTER", URI, user, password, "cn0nce", nc).unwrap()
    }

    fn verify(manager: &mut NonceManager, now: u64, authorization: &str) -> Verdict {
        manager.verify(now, "REGISTER", authorization, REALM, secrets)
    }

    fn authorized(user: &str, algorithm: Algorithm) -> Verdict {
        Verdict::Authorized {
            username: user.into(),
            uri: URI.into(),
            algorithm,
        }
    }

    #[test]
    fn challenge_offers_sha256_then_md5_with_one_nonce() {
        let mut manager = manager();
        let challenges = manager.challenge(T0, REALM, false);
        assert_eq!(challenges.len(), 2);
        assert!(challenges[0].contains("algorithm=SHA-256"));
        assert!(challenges[1].contains("algorithm=MD5"));
        let sha = DigestParams::parse(&challenges[0]).unwrap();
        let md5 = DigestParams::parse(&challenges[1]).unwrap();
        assert_eq!(sha.get("realm"), Some(REALM));
        assert_eq!(sha.get("qop"), Some("auth"));
        assert_eq!(sha.get("nonce"), md5.get("nonce"));
        assert!(sha.get("opaque").is_some());
        assert_eq!(sha.get("stale"), None);
        let stale = manager.challenge(T0, REALM, true);
        assert!(stale
            .iter()
            .all(|c| DigestParams::parse(c).unwrap().get("stale") == Some("true")));
        assert_ne!(
            DigestParams::parse(&stale[0]).unwrap().get("nonce"),
            sha.get("nonce"),
            "every challenge gets a fresh nonce"
        );
    }

    #[test]
    fn round_trip_with_passwords_for_both_algorithms() {
        for algorithm in [Algorithm::Sha256, Algorithm::Md5] {
            let mut manager = manager();
            let challenge = challenge_for(&mut manager, T0, algorithm);
            let authorization = answer(&challenge, "1001", "s3cret", 1);
            assert_eq!(
                verify(&mut manager, T0 + 1, &authorization),
                authorized("1001", algorithm)
            );
        }
    }

    #[test]
    fn round_trip_with_ha1_secrets_for_both_algorithms() {
        for algorithm in [Algorithm::Sha256, Algorithm::Md5] {
            let mut manager = manager();
            let challenge = challenge_for(&mut manager, T0, algorithm);
            let authorization = answer(&challenge, "1002", "hunter2", 1);
            assert_eq!(
                verify(&mut manager, T0, &authorization),
                authorized("1002", algorithm)
            );
        }
    }

    #[test]
    fn session_variants_verify() {
        for (algorithm, token) in [
            (Algorithm::Md5Sess, "MD5-sess"),
            (Algorithm::Sha256Sess, "SHA-256-sess"),
        ] {
            let mut manager = manager();
            let challenge = challenge_for(&mut manager, T0, algorithm.base())
                .replace(algorithm.base().token(), token);
            let authorization = answer(&challenge, "1002", "hunter2", 1);
            assert_eq!(
                verify(&mut manager, T0, &authorization),
                authorized("1002", algorithm)
            );
        }
    }

    #[test]
    fn missing_ha1_for_the_algorithm_is_reported() {
        let mut manager = manager();
        let challenge = challenge_for(&mut manager, T0, Algorithm::Sha256);
        let authorization = answer(&challenge, "md5only", "pw", 1);
        assert_eq!(
            verify(&mut manager, T0, &authorization),
            Verdict::Rejected(RejectReason::AlgorithmNotProvisioned(Algorithm::Sha256))
        );
    }

    #[test]
    fn wrong_password_is_rejected() {
        let mut manager = manager();
        let challenge = challenge_for(&mut manager, T0, Algorithm::Sha256);
        let authorization = answer(&challenge, "1001", "guess", 1);
        assert_eq!(
            verify(&mut manager, T0, &authorization),
            Verdict::Rejected(RejectReason::WrongResponse)
        );
    }

    #[test]
    fn wrong_method_or_uri_is_rejected() {
        let mut manager = manager();
        let challenge = challenge_for(&mut manager, T0, Algorithm::Md5);
        let authorization = answer(&challenge, "1001", "s3cret", 1);
        assert_eq!(
            manager.verify(T0, "INVITE", &authorization, REALM, secrets),
            Verdict::Rejected(RejectReason::WrongResponse)
        );
        let moved = authorization.replace(URI, "sip:other.example");
        assert_eq!(
            verify(&mut manager, T0, &moved),
            Verdict::Rejected(RejectReason::WrongResponse)
        );
    }

    #[test]
    fn tampered_nonce_is_rejected() {
        let mut manager = manager();
        let challenge = challenge_for(&mut manager, T0, Algorithm::Sha256);
        let nonce = DigestParams::parse(&challenge)
            .unwrap()
            .get("nonce")
            .unwrap()
            .to_owned();
        // Push the issue time forward by flipping a bit of the timestamp.
        let mut bytes = hex::decode(&nonce).unwrap();
        bytes[EPOCH_LEN + ISSUED_AT_LEN - 2] ^= 0x01;
        let forged = hex::encode(bytes);
        let authorization = answer(&challenge.replace(&nonce, &forged), "1001", "s3cret", 1);
        assert_eq!(
            verify(&mut manager, T0, &authorization),
            Verdict::Rejected(RejectReason::BadNonce)
        );
        let authorization = answer(&challenge.replace(&nonce, "abc"), "1001", "s3cret", 1);
        assert_eq!(
            verify(&mut manager, T0, &authorization),
            Verdict::Rejected(RejectReason::BadNonce)
        );
    }

    #[test]
    fn nonce_from_another_secret_or_realm_is_rejected() {
        let mut other = NonceManager::new([8; 32], Duration::from_secs(300));
        let challenge = challenge_for(&mut other, T0, Algorithm::Sha256);
        let authorization = answer(&challenge, "1001", "s3cret", 1);
        let mut manager = manager();
        assert_eq!(
            verify(&mut manager, T0, &authorization),
            Verdict::Rejected(RejectReason::BadNonce)
        );
        let other_realm = manager.challenge(T0, "other.example", false).remove(0);
        let authorization = answer(
            &other_realm.replace("other.example", REALM),
            "1001",
            "s3cret",
            1,
        );
        assert_eq!(
            verify(&mut manager, T0, &authorization),
            Verdict::Rejected(RejectReason::BadNonce)
        );
    }

    #[test]
    fn tampered_opaque_is_rejected_and_absent_opaque_tolerated() {
        let mut manager = manager();
        let challenge = challenge_for(&mut manager, T0, Algorithm::Sha256);
        let authorization = answer(&challenge, "1001", "s3cret", 1);
        let opaque = DigestParams::parse(&authorization)
            .unwrap()
            .get("opaque")
            .unwrap()
            .to_owned();
        let tampered = authorization.replace(&opaque, "0000000000000000");
        assert_eq!(
            verify(&mut manager, T0, &tampered),
            Verdict::Rejected(RejectReason::OpaqueMismatch)
        );
        let without = authorization.replace(&format!(", opaque=\"{opaque}\""), "");
        assert!(!without.contains("opaque"));
        assert_eq!(
            verify(&mut manager, T0, &without),
            authorized("1001", Algorithm::Sha256)
        );
    }

    #[test]
    fn replayed_nonce_count_is_rejected_and_increasing_accepted() {
        let mut manager = manager();
        let challenge = challenge_for(&mut manager, T0, Algorithm::Sha256);
        let first = answer(&challenge, "1001", "s3cret", 1);
        assert_eq!(
            verify(&mut manager, T0, &first),
            authorized("1001", Algorithm::Sha256)
        );
        assert_eq!(
            verify(&mut manager, T0 + 1, &first),
            Verdict::Rejected(RejectReason::Replay)
        );
        let third = answer(&challenge, "1001", "s3cret", 3);
        assert_eq!(
            verify(&mut manager, T0 + 2, &third),
            authorized("1001", Algorithm::Sha256)
        );
        let second = answer(&challenge, "1001", "s3cret", 2);
        assert_eq!(
            verify(&mut manager, T0 + 3, &second),
            Verdict::Rejected(RejectReason::Replay),
            "a count below the highest seen is a replay too"
        );
        let fourth = answer(&challenge, "1001", "s3cret", 4);
        assert_eq!(
            verify(&mut manager, T0 + 4, &fourth),
            authorized("1001", Algorithm::Sha256)
        );
        assert_eq!(manager.tracked_nonces(), 1);
    }

    #[test]
    fn wrong_password_does_not_burn_nonce_counts() {
        let mut manager = manager();
        let challenge = challenge_for(&mut manager, T0, Algorithm::Md5);
        let forged = answer(&challenge, "1001", "guess", 9);
        assert_eq!(
            verify(&mut manager, T0, &forged),
            Verdict::Rejected(RejectReason::WrongResponse)
        );
        let genuine = answer(&challenge, "1001", "s3cret", 1);
        assert_eq!(
            verify(&mut manager, T0, &genuine),
            authorized("1001", Algorithm::Md5)
        );
    }

    #[test]
    fn a_nonce_dies_after_three_wrong_responses_even_for_the_right_password() {
        let mut manager = manager();
        let challenge = challenge_for(&mut manager, T0, Algorithm::Md5);
        assert_eq!(
            verify(&mut manager, T0, &answer(&challenge, "1001", "guess", 1)),
            Verdict::Rejected(RejectReason::WrongResponse)
        );
        assert_eq!(
            verify(&mut manager, T0, &answer(&challenge, "nobody", "guess", 2)),
            Verdict::Rejected(RejectReason::UnknownUser("nobody".into())),
            "an unknown user burns the nonce too"
        );
        assert_eq!(
            verify(&mut manager, T0, &answer(&challenge, "1001", "guess", 3)),
            Verdict::Rejected(RejectReason::WrongResponse)
        );
        assert_eq!(
            verify(&mut manager, T0, &answer(&challenge, "1001", "s3cret", 4)),
            Verdict::Rejected(RejectReason::DeadNonce)
        );
        let fresh = challenge_for(&mut manager, T0, Algorithm::Md5);
        assert_eq!(
            verify(&mut manager, T0, &answer(&fresh, "1001", "s3cret", 1)),
            authorized("1001", Algorithm::Md5),
            "a new nonce works"
        );
    }

    #[test]
    fn two_wrong_responses_leave_the_nonce_usable() {
        let mut manager = manager();
        let challenge = challenge_for(&mut manager, T0, Algorithm::Md5);
        for nc in 1..=2 {
            verify(&mut manager, T0, &answer(&challenge, "1001", "typo", nc));
        }
        assert_eq!(
            verify(&mut manager, T0, &answer(&challenge, "1001", "s3cret", 3)),
            authorized("1001", Algorithm::Md5)
        );
    }

    #[test]
    fn nonce_without_qop_is_single_use() {
        let mut manager = manager();
        let challenge =
            challenge_for(&mut manager, T0, Algorithm::Md5).replace(", qop=\"auth\"", "");
        let authorization = answer(&challenge, "1001", "s3cret", 1);
        assert!(!authorization.contains("qop"));
        assert_eq!(
            verify(&mut manager, T0, &authorization),
            authorized("1001", Algorithm::Md5)
        );
        assert_eq!(
            verify(&mut manager, T0, &authorization),
            Verdict::Rejected(RejectReason::Replay)
        );
    }

    #[test]
    fn expired_nonce_with_right_password_is_stale() {
        let mut manager = manager();
        let challenge = challenge_for(&mut manager, T0, Algorithm::Sha256);
        let authorization = answer(&challenge, "1001", "s3cret", 1);
        assert_eq!(
            verify(&mut manager, T0 + 300, &authorization),
            Verdict::Stale
        );
        let wrong = answer(&challenge, "1001", "guess", 1);
        assert_eq!(
            verify(&mut manager, T0 + 300, &wrong),
            Verdict::Rejected(RejectReason::WrongResponse),
            "staleness is only revealed to someone who knows the password"
        );
        assert_eq!(
            verify(&mut manager, T0 + 299, &authorization),
            authorized("1001", Algorithm::Sha256)
        );
    }

    #[test]
    fn expired_nonces_are_forgotten() {
        let mut manager = manager();
        let old = challenge_for(&mut manager, T0, Algorithm::Sha256);
        verify(&mut manager, T0, &answer(&old, "1001", "s3cret", 1));
        assert_eq!(manager.tracked_nonces(), 1);
        let fresh = challenge_for(&mut manager, T0 + 400, Algorithm::Sha256);
        verify(&mut manager, T0 + 400, &answer(&fresh, "1001", "s3cret", 1));
        assert_eq!(manager.tracked_nonces(), 1, "the expired entry was evicted");
    }

    #[test]
    fn nonce_from_before_a_restart_is_stale() {
        let mut before = manager();
        let challenge = challenge_for(&mut before, T0, Algorithm::Sha256);
        let authorization = answer(&challenge, "1001", "s3cret", 1);
        let mut after = manager();
        assert_eq!(verify(&mut after, T0 + 1, &authorization), Verdict::Stale);
    }

    #[test]
    fn cap_eviction_never_reenables_a_replay() {
        let mut manager = manager().with_max_tracked(2);
        let first = challenge_for(&mut manager, T0, Algorithm::Md5);
        let first_answer = answer(&first, "1001", "s3cret", 1);
        assert_eq!(
            verify(&mut manager, T0, &first_answer),
            authorized("1001", Algorithm::Md5)
        );
        for t in 1..=2 {
            let challenge = challenge_for(&mut manager, T0 + t, Algorithm::Md5);
            let authorization = answer(&challenge, "1001", "s3cret", 1);
            assert_eq!(
                verify(&mut manager, T0 + t, &authorization),
                authorized("1001", Algorithm::Md5)
            );
        }
        assert_eq!(manager.tracked_nonces(), 2);
        // The first nonce was evicted; replaying it must not succeed.
        assert_eq!(verify(&mut manager, T0 + 3, &first_answer), Verdict::Stale);
    }

    #[test]
    fn unknown_user_realm_mismatch_and_malformed_headers() {
        let mut manager = manager();
        let challenge = challenge_for(&mut manager, T0, Algorithm::Sha256);
        assert_eq!(
            verify(&mut manager, T0, &answer(&challenge, "9999", "x", 1)),
            Verdict::Rejected(RejectReason::UnknownUser("9999".into()))
        );
        let foreign = answer(
            &challenge.replace(REALM, "evil.example"),
            "1001",
            "s3cret",
            1,
        );
        assert_eq!(
            verify(&mut manager, T0, &foreign),
            Verdict::Rejected(RejectReason::RealmMismatch {
                expected: REALM.into(),
                received: "evil.example".into(),
            })
        );
        assert!(matches!(
            verify(&mut manager, T0, "Basic dXNlcjpwYXNz"),
            Verdict::Rejected(RejectReason::Malformed(DigestError::NotDigest(_)))
        ));
        assert!(matches!(
            verify(&mut manager, T0, "Digest username=\"1001\", realm=\"x"),
            Verdict::Rejected(RejectReason::Malformed(DigestError::Malformed(_)))
        ));
        assert_eq!(
            verify(
                &mut manager,
                T0,
                &format!("Digest username=\"1001\", realm=\"{REALM}\"")
            ),
            Verdict::Rejected(RejectReason::Malformed(DigestError::MissingParam("nonce")))
        );
        let sha512 = answer(&challenge, "1001", "s3cret", 1).replace("SHA-256", "SHA-512");
        assert_eq!(
            verify(&mut manager, T0, &sha512),
            Verdict::Rejected(RejectReason::UnsupportedAlgorithm("SHA-512".into()))
        );
        let auth_int = answer(&challenge, "1001", "s3cret", 1).replace("qop=auth", "qop=auth-int");
        assert_eq!(
            verify(&mut manager, T0, &auth_int),
            Verdict::Rejected(RejectReason::UnsupportedQop("auth-int".into()))
        );
    }

    #[test]
    fn uppercase_response_hex_is_accepted() {
        let mut manager = manager();
        let challenge = challenge_for(&mut manager, T0, Algorithm::Md5);
        let authorization = answer(&challenge, "1001", "s3cret", 1);
        let response = DigestParams::parse(&authorization)
            .unwrap()
            .get("response")
            .unwrap()
            .to_owned();
        let upper = authorization.replace(&response, &response.to_ascii_uppercase());
        assert_eq!(
            verify(&mut manager, T0, &upper),
            authorized("1001", Algorithm::Md5)
        );
    }

    #[test]
    fn secrets_are_redacted_in_debug_output() {
        let debug = format!(
            "{:?} {:?}",
            Secret::Password("hunter2".into()),
            Secret::Ha1 {
                md5: Some("abcdef".into()),
                sha256: None
            }
        );
        assert!(
            !debug.contains("hunter2") && !debug.contains("abcdef"),
            "{debug}"
        );
        assert!(!format!("{:?}", manager()).contains("[7, 7"));
    }

    proptest! {
        #[test]
        fn verify_never_panics_on_arbitrary_headers(header in ".{0,300}") {
            let mut manager = manager();
            let _ = verify(&mut manager, T0, &header);
            let _ = verify(&mut manager, T0, &format!("Digest {header}"));
        }

        #[test]
        fn verify_never_panics_on_plausible_credentials(
            user in "[0-9a-z]{0,6}",
            nonce in "[0-9a-f]{0,70}",
            nc in "[0-9a-fA-F]{0,10}",
            qop in "(auth|auth-int|)",
            algorithm in "(MD5|SHA-256|MD5-sess|SHA-256-sess|x)",
            response in "[0-9a-f]{0,64}",
        ) {
            let mut manager = manager();
            let header = format!(
                "Digest username=\"{user}\", realm=\"{REALM}\", nonce=\"{nonce}\", uri=\"{URI}\", \
                 response=\"{response}\", algorithm={algorithm}, qop={qop}, nc={nc}, cnonce=\"c\""
            );
            let verdict = verify(&mut manager, T0, &header);
            let authorized = matches!(verdict, Verdict::Authorized { .. });
            prop_assert!(!authorized, "garbage authorized: {:?}", verdict);
        }
    }
}
