//! Transaction identity: how a message is matched to the transaction it belongs to
//! (RFC 3261 §17.1.3 for clients, §17.2.3 for servers).

use super::fields;
use super::via::{parse_top_via, top_via_value};
use crate::message::method_name as wire_method;
use rsip::{Request, Response};
use std::borrow::Cow;
use std::collections::hash_map::RandomState;
use std::fmt;
use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::{Arc, OnceLock};

/// The RFC 3261 branch prefix; a branch without it comes from an RFC 2543 element whose
/// branches are not unique, so matching falls back to the dialog fields.
const MAGIC_COOKIE: &str = "z9hG4bK";

/// Identifies one transaction. Opaque; cheap to clone (shared), so events and timers can carry it.
#[derive(Clone)]
pub struct TransactionKey(Arc<HashedKey>);

/// A key and its hash, computed once when the key is made. A key is inserted, looked up and
/// removed in several maps over its life (the layer's transactions, their timers, what call
/// control sent each request for), and SipHash over its strings at every one of those was
/// 2–3 % of call control's time (issue 12). The hash is still SipHash keyed with this
/// process's secret, so peers choosing branches cannot aim at one bucket; the maps then hash
/// only these eight bytes.
struct HashedKey {
    hash: u64,
    inner: KeyInner,
}

/// The secret-keyed hasher of every key of this process.
fn key_hasher() -> &'static RandomState {
    static HASHER: OnceLock<RandomState> = OnceLock::new();
    HASHER.get_or_init(RandomState::new)
}

impl PartialEq for TransactionKey {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
            || (self.0.hash == other.0.hash && self.0.inner == other.0.inner)
    }
}

impl Eq for TransactionKey {}

impl Hash for TransactionKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.0.hash);
    }
}

/// Every live and lingering transaction holds one of these (and a finished call leaves four
/// lingering for up to 32 s), so it is kept small: exact-size strings, methods without an
/// allocation, and the rare RFC 2543 form boxed.
#[derive(Debug, PartialEq, Eq, Hash)]
enum KeyInner {
    /// §17.1.3: our own branch plus the CSeq method (a CANCEL shares the INVITE's branch).
    Client {
        branch: Box<str>,
        method: MethodName,
    },
    /// §17.2.3: branch, sent-by and method; ACK is looked up with method INVITE.
    Server {
        branch: Box<str>,
        sent_by: Box<str>,
        method: MethodName,
    },
    /// §17.2.3 for RFC 2543 requests.
    LegacyServer(Box<LegacyFields>),
}

/// The RFC 2543 matching fields. The To tag is left out on purpose: the INVITE has none and
/// its ACK carries ours, yet they must match.
#[derive(Debug, PartialEq, Eq, Hash, Clone)]
struct LegacyFields {
    method: MethodName,
    call_id: String,
    cseq: u32,
    from_tag: Option<String>,
    top_via: String,
    request_uri: String,
}

/// A method name in upper case; the RFC 3261 methods and their common extensions are static.
type MethodName = Cow<'static, str>;

const KNOWN_METHODS: [&str; 14] = [
    "INVITE",
    "ACK",
    "BYE",
    "CANCEL",
    "OPTIONS",
    "REGISTER",
    "INFO",
    "UPDATE",
    "PRACK",
    "SUBSCRIBE",
    "NOTIFY",
    "REFER",
    "MESSAGE",
    "PUBLISH",
];

fn method_name(method: &str) -> MethodName {
    match KNOWN_METHODS
        .iter()
        .find(|known| known.eq_ignore_ascii_case(method))
    {
        Some(known) => Cow::Borrowed(known),
        None => Cow::Owned(method.to_ascii_uppercase()),
    }
}

impl TransactionKey {
    fn new(inner: KeyInner) -> Self {
        let hash = key_hasher().hash_one(&inner);
        Self(Arc::new(HashedKey { hash, inner }))
    }

    /// A client key from a branch and method.
    pub(crate) fn client(branch: &str, method: &str) -> Self {
        Self::new(KeyInner::Client {
            branch: branch.into(),
            method: method_name(method),
        })
    }

    /// The key of a request we send: its top-Via branch and its method.
    pub(crate) fn for_outgoing_request(request: &Request) -> Option<Self> {
        let via = parse_top_via(top_via_value(&request.headers)?)?;
        Some(Self::client(via.branch()?, wire_method(&request.method)))
    }

    /// The key the client transaction for `request` gets when it is sent (its top-Via branch
    /// and method), for a caller that must name the transaction before sending — or, in a
    /// test, without sending at all.
    pub fn of_sent_request(request: &Request) -> Option<Self> {
        Self::for_outgoing_request(request)
    }

    /// The key of the server transaction a received request (not an ACK or CANCEL) opens.
    pub fn of_received_request(request: &Request) -> Option<Self> {
        Self::for_incoming_request(request, wire_method(&request.method))
    }

    /// The client transaction a response belongs to: top-Via branch plus CSeq method.
    pub(crate) fn for_response(response: &Response) -> Option<Self> {
        let via = parse_top_via(top_via_value(&response.headers)?)?;
        let (_, method) = fields::cseq(&response.headers)?;
        Some(Self::client(via.branch()?, method))
    }

    /// The server transaction key of a received request, looked up as `method` (the request's
    /// own method, or INVITE for an ACK or for the INVITE a CANCEL targets). `None` when the
    /// request lacks what matching needs.
    pub(crate) fn for_incoming_request(request: &Request, method: &str) -> Option<Self> {
        let via_value = top_via_value(&request.headers)?;
        let via = parse_top_via(via_value);
        if let Some(via) = &via {
            if let Some(branch) = via.branch().filter(|b| b.starts_with(MAGIC_COOKIE)) {
                return Some(Self::new(KeyInner::Server {
                    branch: branch.into(),
                    sent_by: via.sent_by(),
                    method: method_name(method),
                }));
            }
        }
        let top_via = match &via {
            Some(via) => {
                let branch = via.branch().unwrap_or_default();
                format!(
                    "{} {};{branch}",
                    via.transport.to_ascii_uppercase(),
                    via.sent_by()
                )
            }
            None => via_value.trim().to_owned(),
        };
        let (cseq, _) = fields::cseq(&request.headers)?;
        Some(Self::new(KeyInner::LegacyServer(Box::new(LegacyFields {
            method: method_name(method),
            call_id: fields::call_id(&request.headers)?.to_owned(),
            cseq,
            from_tag: fields::from_tag(&request.headers).map(str::to_owned),
            top_via,
            request_uri: request.uri.to_string(),
        }))))
    }

    /// The same transaction identity with another method: a CANCEL's key to its INVITE's.
    pub(crate) fn with_method(&self, method: &str) -> Self {
        let method = method_name(method);
        Self::new(match &self.0.inner {
            KeyInner::Client { branch, .. } => KeyInner::Client {
                branch: branch.clone(),
                method,
            },
            KeyInner::Server {
                branch, sent_by, ..
            } => KeyInner::Server {
                branch: branch.clone(),
                sent_by: sent_by.clone(),
                method,
            },
            KeyInner::LegacyServer(fields) => KeyInner::LegacyServer(Box::new(LegacyFields {
                method,
                ..(**fields).clone()
            })),
        })
    }
}

impl fmt::Debug for TransactionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TransactionKey({self})")
    }
}

impl fmt::Display for TransactionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0.inner {
            KeyInner::Client { branch, method } => write!(f, "client/{method}/{branch}"),
            KeyInner::Server {
                branch,
                sent_by,
                method,
            } => write!(f, "server/{method}/{branch}/{sent_by}"),
            KeyInner::LegacyServer(legacy) => {
                let LegacyFields {
                    method,
                    call_id,
                    cseq,
                    top_via,
                    ..
                } = &**legacy;
                write!(f, "server-rfc2543/{method}/{call_id}/{cseq}/{top_via}")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(text: &str) -> Request {
        Request::try_from(text).expect("test request parses")
    }

    const INVITE: &str = "INVITE sip:bob@biloxi.com SIP/2.0\r\n\
        Via: SIP/2.0/UDP pc33.atlanta.com;branch=z9hG4bKnashds8\r\n\
        To: Bob <sip:bob@biloxi.com>\r\n\
        From: Alice <sip:alice@atlanta.com>;tag=1928301774\r\n\
        Call-ID: a84b4c76e66710\r\n\
        CSeq: 314159 INVITE\r\n\
        Content-Length: 0\r\n\r\n";

    #[test]
    fn keys_made_apart_from_the_same_fields_find_each_other_in_a_map() {
        let first = TransactionKey::of_received_request(&request(INVITE)).expect("key");
        let second = TransactionKey::of_received_request(&request(INVITE)).expect("key");
        assert!(!Arc::ptr_eq(&first.0, &second.0));
        let mut map = std::collections::HashMap::new();
        map.insert(first.clone(), "invite");
        assert_eq!(map.get(&second), Some(&"invite"));
        let options = request(&INVITE.replace("CSeq: 314159 INVITE", "CSeq: 314159 OPTIONS"));
        let other = TransactionKey::for_incoming_request(&options, "OPTIONS").expect("key");
        assert_ne!(other, first);
        assert_eq!(map.get(&other), None);
        assert_eq!(map.get(&first.with_method("INVITE")), Some(&"invite"));
    }

    #[test]
    fn ack_and_cancel_map_to_the_invite_server_key() {
        let invite = request(INVITE);
        let ack = request(
            &INVITE
                .replace("INVITE sip", "ACK sip")
                .replace("314159 INVITE", "314159 ACK")
                .replace(
                    "To: Bob <sip:bob@biloxi.com>",
                    "To: Bob <sip:bob@biloxi.com>;tag=a6c85cf",
                ),
        );
        let cancel = request(
            &INVITE
                .replace("INVITE sip", "CANCEL sip")
                .replace("314159 INVITE", "314159 CANCEL"),
        );
        let invite_key = TransactionKey::for_incoming_request(&invite, "INVITE").expect("keyable");
        assert_eq!(
            TransactionKey::for_incoming_request(&ack, "INVITE"),
            Some(invite_key.clone())
        );
        let cancel_key = TransactionKey::for_incoming_request(&cancel, "CANCEL").expect("keyable");
        assert_ne!(cancel_key, invite_key);
        assert_eq!(cancel_key.with_method("INVITE"), invite_key);
    }

    #[test]
    fn sent_by_is_part_of_the_server_key() {
        let a = request(INVITE);
        let b = request(&INVITE.replace("pc33.atlanta.com;", "PC33.Atlanta.com:5060;"));
        let c = request(&INVITE.replace("pc33.atlanta.com;", "PC33.Atlanta.com;"));
        let key = |r: &Request| TransactionKey::for_incoming_request(r, "INVITE");
        assert_ne!(key(&a), key(&b));
        assert_eq!(key(&a), key(&c));
    }

    #[test]
    fn rfc2543_requests_key_on_dialog_fields() {
        let old = INVITE.replace(";branch=z9hG4bKnashds8", "");
        let invite = request(&old);
        let key = TransactionKey::for_incoming_request(&invite, "INVITE").expect("keyable");
        assert!(key
            .to_string()
            .starts_with("server-rfc2543/INVITE/a84b4c76e66710/314159"));
        let ack = request(
            &old.replace("INVITE sip", "ACK sip")
                .replace("314159 INVITE", "314159 ACK")
                .replace(
                    "To: Bob <sip:bob@biloxi.com>",
                    "To: Bob <sip:bob@biloxi.com>;tag=x",
                ),
        );
        assert_eq!(
            TransactionKey::for_incoming_request(&ack, "INVITE"),
            Some(key.clone())
        );
        let next = request(&old.replace("314159 INVITE", "314160 INVITE"));
        assert_ne!(
            TransactionKey::for_incoming_request(&next, "INVITE"),
            Some(key)
        );
    }

    #[test]
    fn client_keys_match_responses_by_branch_and_cseq_method() {
        let invite = request(INVITE);
        let key = TransactionKey::for_outgoing_request(&invite).expect("keyable");
        let ringing = Response::try_from(
            "SIP/2.0 180 Ringing\r\n\
             Via: SIP/2.0/UDP pc33.atlanta.com;branch=z9hG4bKnashds8;received=192.0.2.1\r\n\
             To: Bob <sip:bob@biloxi.com>;tag=a6c85cf\r\n\
             From: Alice <sip:alice@atlanta.com>;tag=1928301774\r\n\
             Call-ID: a84b4c76e66710\r\n\
             CSeq: 314159 INVITE\r\n\
             Content-Length: 0\r\n\r\n",
        )
        .expect("test response parses");
        assert_eq!(TransactionKey::for_response(&ringing), Some(key.clone()));
        assert_eq!(key.to_string(), "client/INVITE/z9hG4bKnashds8");
        assert_ne!(key.with_method("CANCEL"), key);
    }

    #[test]
    fn unkeyable_requests_give_none() {
        let no_via =
            request("OPTIONS sip:bob@biloxi.com SIP/2.0\r\nCall-ID: x\r\nCSeq: 1 OPTIONS\r\n\r\n");
        assert_eq!(
            TransactionKey::for_incoming_request(&no_via, "OPTIONS"),
            None
        );
        let old_no_cseq = request(
            "OPTIONS sip:bob@biloxi.com SIP/2.0\r\nVia: SIP/2.0/UDP h\r\nCall-ID: x\r\n\r\n",
        );
        assert_eq!(
            TransactionKey::for_incoming_request(&old_no_cseq, "OPTIONS"),
            None
        );
        assert_eq!(TransactionKey::for_outgoing_request(&old_no_cseq), None);
    }
}
