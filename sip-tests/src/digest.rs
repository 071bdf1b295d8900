//! Client side of SIP Digest authentication (RFC 3261 §22, RFC 7616/8760), written here rather
//! than borrowed from Switchboard so that a shared misunderstanding cannot make a test pass.
//! SIPp 3.6.1 answers only the first challenge of a 401 and only with MD5, and Switchboard can
//! be configured to offer SHA-256 (first): this is how the tests authenticate with either.

use md5::Md5;
use sha2::{Digest, Sha256};

use crate::error::{HarnessError, HarnessResult};

/// The Digest algorithms the harness can answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DigestAlgorithm {
    /// `algorithm=MD5` (also the default when the parameter is absent).
    Md5,
    /// `algorithm=SHA-256`.
    Sha256,
}

impl DigestAlgorithm {
    /// The token used in the `algorithm` parameter.
    pub fn token(self) -> &'static str {
        match self {
            DigestAlgorithm::Md5 => "MD5",
            DigestAlgorithm::Sha256 => "SHA-256",
        }
    }

    fn hash_hex(self, input: &str) -> String {
        match self {
            DigestAlgorithm::Md5 => hex::encode(Md5::digest(input.as_bytes())),
            DigestAlgorithm::Sha256 => hex::encode(Sha256::digest(input.as_bytes())),
        }
    }
}

/// One parsed `WWW-Authenticate` / `Proxy-Authenticate` Digest challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// The algorithm asked for.
    pub algorithm: DigestAlgorithm,
    /// The protection realm.
    pub realm: String,
    /// The server nonce.
    pub nonce: String,
    /// Opaque value to echo, if any.
    pub opaque: Option<String>,
    /// The qop options offered (e.g. `auth`), empty for the RFC 2069 form.
    pub qop: Vec<String>,
}

impl Challenge {
    /// Parses a header value such as `Digest realm="r", nonce="n", algorithm=SHA-256, qop="auth"`.
    pub fn parse(header_value: &str) -> HarnessResult<Self> {
        let bad = |why: &str| HarnessError::Digest(format!("{why} in challenge {header_value:?}"));
        let rest = header_value.trim();
        let params = match rest.split_once(char::is_whitespace) {
            Some((scheme, params)) if scheme.eq_ignore_ascii_case("Digest") => params,
            _ => return Err(bad("scheme is not Digest")),
        };
        let params = split_params(params).map_err(|why| bad(&why))?;
        let get = |name: &str| {
            params
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.clone())
        };
        let algorithm = match get("algorithm").as_deref() {
            None => DigestAlgorithm::Md5,
            Some(a) if a.eq_ignore_ascii_case("MD5") => DigestAlgorithm::Md5,
            Some(a) if a.eq_ignore_ascii_case("SHA-256") => DigestAlgorithm::Sha256,
            Some(_) => return Err(bad("unsupported algorithm")),
        };
        Ok(Challenge {
            algorithm,
            realm: get("realm").ok_or_else(|| bad("no realm"))?,
            nonce: get("nonce").ok_or_else(|| bad("no nonce"))?,
            opaque: get("opaque"),
            qop: get("qop")
                .map(|q| q.split(',').map(|s| s.trim().to_owned()).collect())
                .unwrap_or_default(),
        })
    }

    /// The credentials header value answering this challenge for `method` on `uri`.
    /// `cnonce` and `nonce_count` are used when the challenge offers `qop=auth`.
    pub fn answer(
        &self,
        credentials: &Credentials<'_>,
        method: &str,
        uri: &str,
        cnonce: &str,
        nonce_count: u32,
    ) -> HarnessResult<String> {
        let algorithm = self.algorithm;
        let ha1 = algorithm.hash_hex(&format!(
            "{}:{}:{}",
            credentials.username, self.realm, credentials.password
        ));
        let ha2 = algorithm.hash_hex(&format!("{method}:{uri}"));
        let nc = format!("{nonce_count:08x}");
        let uses_qop = self.qop.iter().any(|q| q.eq_ignore_ascii_case("auth"));
        if !uses_qop && !self.qop.is_empty() {
            return Err(HarnessError::Digest(format!(
                "only qop=auth is supported, offered {:?}",
                self.qop
            )));
        }
        let response = if uses_qop {
            algorithm.hash_hex(&format!("{ha1}:{}:{nc}:{cnonce}:auth:{ha2}", self.nonce))
        } else {
            algorithm.hash_hex(&format!("{ha1}:{}:{ha2}", self.nonce))
        };
        let mut value = format!(
            "Digest username=\"{}\", realm=\"{}\", nonce=\"{}\", uri=\"{uri}\", response=\"{response}\", algorithm={}",
            credentials.username,
            self.realm,
            self.nonce,
            algorithm.token()
        );
        if uses_qop {
            value.push_str(&format!(", qop=auth, nc={nc}, cnonce=\"{cnonce}\""));
        }
        if let Some(opaque) = &self.opaque {
            value.push_str(&format!(", opaque=\"{opaque}\""));
        }
        Ok(value)
    }
}

/// A username and password to answer challenges with.
#[derive(Debug, Clone, Copy)]
pub struct Credentials<'a> {
    /// The Digest username.
    pub username: &'a str,
    /// The plain password.
    pub password: &'a str,
}

/// Picks the challenge for `algorithm` among several header values (one per header line).
pub fn pick(header_values: &[&str], algorithm: DigestAlgorithm) -> HarnessResult<Challenge> {
    header_values
        .iter()
        .filter_map(|value| Challenge::parse(value).ok())
        .find(|challenge| challenge.algorithm == algorithm)
        .ok_or_else(|| {
            HarnessError::Digest(format!(
                "no {} challenge among {header_values:?}",
                algorithm.token()
            ))
        })
}

/// Splits `a="x, y", b=z` into name/value pairs, unquoting values; commas inside quotes stay.
fn split_params(text: &str) -> Result<Vec<(String, String)>, String> {
    let mut params = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace() || *c == ',') {
            chars.next();
        }
        if chars.peek().is_none() {
            return Ok(params);
        }
        let name: String = chars
            .by_ref()
            .take_while(|c| *c != '=')
            .collect::<String>()
            .trim()
            .to_owned();
        if name.is_empty() {
            return Err("empty parameter name".to_owned());
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            let mut closed = false;
            while let Some(c) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next()),
                    '"' => {
                        closed = true;
                        break;
                    }
                    other => value.push(other),
                }
            }
            if !closed {
                return Err(format!("unterminated quote in parameter {name}"));
            }
        } else {
            while let Some(c) = chars.peek().copied() {
                if c == ',' {
                    break;
                }
                value.push(c);
                chars.next();
            }
            value = value.trim().to_owned();
        }
        params.push((name, value));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 2617 §3.5 example, adapted to MD5 with qop=auth (the published response value).
    #[test]
    fn md5_matches_the_rfc_2617_example() {
        let challenge = Challenge::parse(
            "Digest realm=\"testrealm@host.com\", qop=\"auth,auth-int\", nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\", opaque=\"5ccc069c403ebaf9f0171e9517f40e41\"",
        )
        .expect("RFC example parses");
        assert_eq!(challenge.algorithm, DigestAlgorithm::Md5);
        let value = challenge
            .answer(
                &Credentials {
                    username: "Mufasa",
                    password: "Circle Of Life",
                },
                "GET",
                "/dir/index.html",
                "0a4f113b",
                1,
            )
            .expect("auth is offered");
        assert!(
            value.contains("response=\"6629fae49393a05397450978507c4ef1\""),
            "{value}"
        );
        assert!(value.contains("opaque=\"5ccc069c403ebaf9f0171e9517f40e41\""));
        assert!(value.contains("nc=00000001"));
    }

    /// RFC 7616 §3.9.1 SHA-256 example.
    #[test]
    fn sha256_matches_the_rfc_7616_example() {
        let challenge = Challenge::parse(
            "Digest realm=\"http-auth@example.org\", qop=\"auth, auth-int\", algorithm=SHA-256, nonce=\"7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v\", opaque=\"FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS\"",
        )
        .expect("RFC example parses");
        let value = challenge
            .answer(
                &Credentials {
                    username: "Mufasa",
                    password: "Circle of Life",
                },
                "GET",
                "/dir/index.html",
                "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
                1,
            )
            .expect("auth is offered");
        assert!(
            value.contains(
                "response=\"753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1\""
            ),
            "{value}"
        );
    }

    #[test]
    fn picks_the_requested_algorithm() {
        let values = [
            "Digest realm=\"s\", nonce=\"n1\", algorithm=SHA-256, qop=\"auth\"",
            "Digest realm=\"s\", nonce=\"n2\", algorithm=MD5, qop=\"auth\"",
        ];
        assert_eq!(
            pick(&values, DigestAlgorithm::Md5)
                .expect("MD5 offered")
                .nonce,
            "n2"
        );
        assert_eq!(
            pick(&values, DigestAlgorithm::Sha256)
                .expect("SHA-256 offered")
                .nonce,
            "n1"
        );
        assert!(pick(&values[..1], DigestAlgorithm::Md5).is_err());
    }

    #[test]
    fn bad_challenges_are_errors() {
        assert!(Challenge::parse("Basic realm=\"x\"").is_err());
        assert!(Challenge::parse("Digest nonce=\"n\"").is_err());
        assert!(Challenge::parse("Digest realm=\"r\", nonce=\"n").is_err());
        assert!(Challenge::parse("Digest realm=\"r\", nonce=\"n\", algorithm=SHA-512").is_err());
    }
}
