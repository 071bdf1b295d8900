//! The fields of an `Authorization` / `Proxy-Authorization` Digest value, checked for shape
//! (RFC 7616 §3.4) before any hashing.

use super::algorithm::{Algorithm, QopAuth};
use super::params::DigestParams;
use super::DigestError;

/// Digest credentials as sent by a user agent, borrowed from the parsed parameter list.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Credentials<'a> {
    pub username: &'a str,
    pub realm: &'a str,
    pub nonce: &'a str,
    pub uri: &'a str,
    pub response: &'a str,
    pub algorithm: Algorithm,
    /// `qop=auth` inputs and the nonce count as a number; `None` for the RFC 2069 form.
    pub qop: Option<(QopAuth<'a>, u32)>,
    pub opaque: Option<&'a str>,
}

impl<'a> Credentials<'a> {
    /// Extracts and validates the fields a server needs.
    pub(crate) fn from_params(params: &'a DigestParams) -> Result<Self, DigestError> {
        if params.get("username*").is_some() {
            return Err(DigestError::Malformed(
                "username* (RFC 7616 extended username) is not supported".into(),
            ));
        }
        if params
            .get("userhash")
            .is_some_and(|flag| flag.eq_ignore_ascii_case("true"))
        {
            return Err(DigestError::Malformed("userhash is not supported".into()));
        }
        let username = params.require("username")?;
        let realm = params.require("realm")?;
        let nonce = params.require("nonce")?;
        let uri = params.require("uri")?;
        if uri.is_empty() {
            return Err(DigestError::Malformed("uri is empty".into()));
        }
        let response = params.require("response")?;
        if response.is_empty() {
            return Err(DigestError::Malformed("response is empty".into()));
        }
        let algorithm = match params.get("algorithm") {
            // RFC 7616 §3.3: an absent algorithm means MD5.
            None => Algorithm::Md5,
            Some(token) => Algorithm::from_token(token)
                .ok_or_else(|| DigestError::UnsupportedAlgorithm(token.to_owned()))?,
        };
        let qop = match params.get("qop") {
            None => None,
            Some(qop) if qop.eq_ignore_ascii_case("auth") => {
                let nc_text = params.require("nc")?;
                let cnonce = params.require("cnonce")?;
                if cnonce.is_empty() {
                    return Err(DigestError::Malformed("cnonce is empty".into()));
                }
                let nc = parse_nonce_count(nc_text)?;
                Some((
                    QopAuth {
                        nc: nc_text,
                        cnonce,
                    },
                    nc,
                ))
            }
            Some(other) => return Err(DigestError::UnsupportedQop(other.to_owned())),
        };
        Ok(Self {
            username,
            realm,
            nonce,
            uri,
            response,
            algorithm,
            qop,
            opaque: params.get("opaque"),
        })
    }
}

/// `nc` is 8 hex digits counting from 1 (RFC 7616 §3.4); shorter forms are accepted because
/// the hash covers the text as sent anyway.
fn parse_nonce_count(text: &str) -> Result<u32, DigestError> {
    let valid = (1..=8).contains(&text.len()) && text.bytes().all(|b| b.is_ascii_hexdigit());
    let count = if valid {
        u32::from_str_radix(text, 16).ok()
    } else {
        None
    };
    match count {
        Some(0) => Err(DigestError::Malformed("nc must start at 00000001".into())),
        Some(count) => Ok(count),
        None => Err(DigestError::Malformed(format!(
            "nc {:?} is not 8 hex digits",
            text.chars().take(16).collect::<String>()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(header: &str) -> Result<(), DigestError> {
        let params = DigestParams::parse(header)?;
        Credentials::from_params(&params).map(|_| ())
    }

    const BASE: &str =
        "Digest username=\"u\", realm=\"r\", nonce=\"n\", uri=\"sip:r\", response=\"00\"";

    #[test]
    fn minimal_rfc2069_credentials_default_to_md5() {
        let params = DigestParams::parse(BASE).unwrap();
        let credentials = Credentials::from_params(&params).unwrap();
        assert_eq!(credentials.algorithm, Algorithm::Md5);
        assert!(credentials.qop.is_none());
        assert_eq!(credentials.uri, "sip:r");
    }

    #[test]
    fn qop_auth_needs_nc_and_cnonce() {
        assert_eq!(
            parse(&format!("{BASE}, qop=auth, cnonce=\"c\"")),
            Err(DigestError::MissingParam("nc"))
        );
        assert_eq!(
            parse(&format!("{BASE}, qop=auth, nc=00000001")),
            Err(DigestError::MissingParam("cnonce"))
        );
        let params =
            DigestParams::parse(&format!("{BASE}, qop=\"AUTH\", nc=0000000a, cnonce=\"c\""))
                .unwrap();
        let credentials = Credentials::from_params(&params).unwrap();
        let (qop, nc) = credentials.qop.unwrap();
        assert_eq!((qop.nc, qop.cnonce, nc), ("0000000a", "c", 10));
    }

    #[test]
    fn rejects_bad_nonce_counts() {
        for nc in ["00000000", "0000000g", "123456789", "-1"] {
            let result = parse(&format!("{BASE}, qop=auth, nc={nc}, cnonce=\"c\""));
            assert!(
                matches!(result, Err(DigestError::Malformed(_))),
                "{nc}: {result:?}"
            );
        }
    }

    #[test]
    fn reports_each_missing_field() {
        for field in ["username", "realm", "nonce", "uri", "response"] {
            let header: String = BASE
                .split(", ")
                .filter(|part| !part.contains(&format!("{field}=")))
                .collect::<Vec<_>>()
                .join(", ");
            let header = if header.starts_with("Digest") {
                header
            } else {
                format!("Digest {header}")
            };
            assert_eq!(parse(&header), Err(DigestError::MissingParam(field)));
        }
    }

    #[test]
    fn rejects_unsupported_algorithm_qop_and_userhash() {
        assert_eq!(
            parse(&format!("{BASE}, algorithm=SHA-512-256")),
            Err(DigestError::UnsupportedAlgorithm("SHA-512-256".into()))
        );
        assert_eq!(
            parse(&format!("{BASE}, qop=auth-int, nc=00000001, cnonce=\"c\"")),
            Err(DigestError::UnsupportedQop("auth-int".into()))
        );
        assert!(matches!(
            parse(&format!("{BASE}, userhash=true")),
            Err(DigestError::Malformed(_))
        ));
    }
}
