//! Digest algorithms and the response computation of RFC 7616 §3.4.1 (RFC 8760 for SIP).

use super::DigestError;
use md5::Md5;
use sha2::Sha256;
use std::fmt;

/// A digest algorithm a challenge offers and a credential names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// `MD5` — what every SIP phone supports; kept for interop.
    Md5,
    /// `MD5-sess`: HA1 additionally bound to the nonce and client nonce.
    Md5Sess,
    /// `SHA-256` (RFC 8760), offered first.
    Sha256,
    /// `SHA-256-sess`.
    Sha256Sess,
}

impl Algorithm {
    /// The token used in the `algorithm=` parameter.
    pub fn token(self) -> &'static str {
        match self {
            Algorithm::Md5 => "MD5",
            Algorithm::Md5Sess => "MD5-sess",
            Algorithm::Sha256 => "SHA-256",
            Algorithm::Sha256Sess => "SHA-256-sess",
        }
    }

    /// Parses an `algorithm=` token, case-insensitively.
    pub fn from_token(token: &str) -> Option<Self> {
        [
            Algorithm::Md5,
            Algorithm::Md5Sess,
            Algorithm::Sha256,
            Algorithm::Sha256Sess,
        ]
        .into_iter()
        .find(|algorithm| algorithm.token().eq_ignore_ascii_case(token))
    }

    /// Whether HA1 is re-hashed with the nonces (`-sess` variants).
    pub fn is_session(self) -> bool {
        matches!(self, Algorithm::Md5Sess | Algorithm::Sha256Sess)
    }

    /// The algorithm without its `-sess` suffix: the one a stored HA1 was computed with.
    pub fn base(self) -> Self {
        match self {
            Algorithm::Md5 | Algorithm::Md5Sess => Algorithm::Md5,
            Algorithm::Sha256 | Algorithm::Sha256Sess => Algorithm::Sha256,
        }
    }

    /// Lowercase hex of the hash of `parts` joined with `:`, without building the joined string.
    pub(crate) fn hash_joined(self, parts: &[&str]) -> String {
        fn run<D: sha2::Digest>(parts: &[&str]) -> String {
            let mut hasher = D::new();
            for (i, part) in parts.iter().enumerate() {
                if i > 0 {
                    hasher.update(b":");
                }
                hasher.update(part.as_bytes());
            }
            hex::encode(hasher.finalize())
        }
        match self.base() {
            Algorithm::Sha256 => run::<Sha256>(parts),
            _ => run::<Md5>(parts),
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.token())
    }
}

/// HA1 = H(username:realm:password) in lowercase hex, as provisioning tools store it instead
/// of the password. `-sess` variants use the HA1 of their base algorithm.
pub fn ha1(algorithm: Algorithm, username: &str, realm: &str, password: &str) -> String {
    algorithm.base().hash_joined(&[username, realm, password])
}

/// The `qop=auth` inputs of a response: the nonce count exactly as sent on the wire (the hash
/// covers the text, not the number) and the client nonce.
#[derive(Debug, Clone, Copy)]
pub(crate) struct QopAuth<'a> {
    pub nc: &'a str,
    pub cnonce: &'a str,
}

/// What a response hash is computed over.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ResponseInput<'a> {
    pub algorithm: Algorithm,
    /// HA1 of the base algorithm, lowercase hex.
    pub base_ha1: &'a str,
    pub nonce: &'a str,
    pub method: &'a str,
    pub uri: &'a str,
    /// `None` is the RFC 2069 form without qop.
    pub qop: Option<QopAuth<'a>>,
}

impl ResponseInput<'_> {
    /// The expected `response=` value in lowercase hex.
    pub(crate) fn response(&self) -> Result<String, DigestError> {
        let algorithm = self.algorithm;
        let session_ha1;
        let ha1 = if algorithm.is_session() {
            // -sess binds HA1 to the client nonce, which only exists with qop.
            let qop = self.qop.ok_or(DigestError::MissingParam("cnonce"))?;
            session_ha1 = algorithm.hash_joined(&[self.base_ha1, self.nonce, qop.cnonce]);
            session_ha1.as_str()
        } else {
            self.base_ha1
        };
        let ha2 = algorithm.hash_joined(&[self.method, self.uri]);
        Ok(match self.qop {
            Some(qop) => {
                algorithm.hash_joined(&[ha1, self.nonce, qop.nc, qop.cnonce, "auth", &ha2])
            }
            None => algorithm.hash_joined(&[ha1, self.nonce, &ha2]),
        })
    }
}

/// Compares two byte strings in time independent of where they first differ, so a response
/// check leaks nothing about how many leading hex digits an attacker got right.
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 7616 §3.9.1: user Mufasa, password "Circle of Life", GET /dir/index.html.
    const REALM: &str = "http-auth@example.org";
    const NONCE: &str = "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v";
    const CNONCE: &str = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ";

    fn rfc_response(algorithm: Algorithm) -> String {
        let base_ha1 = ha1(algorithm, "Mufasa", REALM, "Circle of Life");
        ResponseInput {
            algorithm,
            base_ha1: &base_ha1,
            nonce: NONCE,
            method: "GET",
            uri: "/dir/index.html",
            qop: Some(QopAuth {
                nc: "00000001",
                cnonce: CNONCE,
            }),
        }
        .response()
        .unwrap()
    }

    #[test]
    fn rfc7616_example_md5() {
        assert_eq!(
            rfc_response(Algorithm::Md5),
            "8ca523f5e9506fed4657c9700eebdbec"
        );
    }

    #[test]
    fn rfc7616_example_sha256() {
        assert_eq!(
            rfc_response(Algorithm::Sha256),
            "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"
        );
    }

    #[test]
    fn rfc2617_example_without_cnonce_rehash() {
        // RFC 2617 §3.5 (MD5, qop=auth): a second independent vector.
        let base_ha1 = ha1(
            Algorithm::Md5,
            "Mufasa",
            "testrealm@host.com",
            "Circle Of Life",
        );
        let response = ResponseInput {
            algorithm: Algorithm::Md5,
            base_ha1: &base_ha1,
            nonce: "dcd98b7102dd2f0e8b11d0f600bfb0c093",
            method: "GET",
            uri: "/dir/index.html",
            qop: Some(QopAuth {
                nc: "00000001",
                cnonce: "0a4f113b",
            }),
        }
        .response()
        .unwrap();
        assert_eq!(response, "6629fae49393a05397450978507c4ef1");
    }

    #[test]
    fn session_variant_rehashes_ha1_with_both_nonces() {
        let base = ha1(Algorithm::Sha256Sess, "u", "r", "p");
        assert_eq!(base, ha1(Algorithm::Sha256, "u", "r", "p"));
        let input = ResponseInput {
            algorithm: Algorithm::Sha256Sess,
            base_ha1: &base,
            nonce: "n",
            method: "REGISTER",
            uri: "sip:example.com",
            qop: Some(QopAuth {
                nc: "00000001",
                cnonce: "c",
            }),
        };
        let sess_ha1 = Algorithm::Sha256.hash_joined(&[&base, "n", "c"]);
        let ha2 = Algorithm::Sha256.hash_joined(&["REGISTER", "sip:example.com"]);
        let expected =
            Algorithm::Sha256.hash_joined(&[&sess_ha1, "n", "00000001", "c", "auth", &ha2]);
        assert_eq!(input.response().unwrap(), expected);
        assert_eq!(
            ResponseInput { qop: None, ..input }.response(),
            Err(DigestError::MissingParam("cnonce"))
        );
    }

    #[test]
    fn tokens_round_trip_case_insensitively() {
        for algorithm in [
            Algorithm::Md5,
            Algorithm::Md5Sess,
            Algorithm::Sha256,
            Algorithm::Sha256Sess,
        ] {
            assert_eq!(Algorithm::from_token(algorithm.token()), Some(algorithm));
            assert_eq!(
                Algorithm::from_token(&algorithm.token().to_ascii_lowercase()),
                Some(algorithm)
            );
        }
        assert_eq!(Algorithm::from_token("SHA-512-256"), None);
    }

    #[test]
    fn constant_time_eq_compares_content_and_length() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
