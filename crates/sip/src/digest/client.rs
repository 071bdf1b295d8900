//! Answering a Digest challenge as a client (tests, and trunks that make us authenticate).

use super::algorithm::{ha1, Algorithm, QopAuth, ResponseInput};
use super::params::{has_control_char, push_quoted, DigestParams};
use super::DigestError;

/// Builds the `Authorization` / `Proxy-Authorization` value answering `challenge_header_value`
/// (one `WWW-Authenticate` / `Proxy-Authenticate` value) for a request with `method` and
/// Request-URI `uri`. Uses `qop=auth` with `cnonce` and nonce count `nc` when the challenge
/// offers it, and the RFC 2069 form otherwise.
pub fn respond(
    challenge_header_value: &str,
    method: &str,
    uri: &str,
    username: &str,
    password: &str,
    cnonce: &str,
    nc: u32,
) -> Result<String, DigestError> {
    let challenge = DigestParams::parse(challenge_header_value)?;
    let realm = challenge.require("realm")?;
    let nonce = challenge.require("nonce")?;
    let opaque = challenge.get("opaque");
    let algorithm = match challenge.get("algorithm") {
        None => Algorithm::Md5,
        Some(token) => Algorithm::from_token(token)
            .ok_or_else(|| DigestError::UnsupportedAlgorithm(token.to_owned()))?,
    };
    let use_qop = match challenge.get("qop") {
        None => false,
        Some(offered) => {
            if !offered
                .split(',')
                .any(|qop| qop.trim().eq_ignore_ascii_case("auth"))
            {
                return Err(DigestError::UnsupportedQop(offered.to_owned()));
            }
            true
        }
    };
    for (field, value) in [
        ("username", username),
        ("uri", uri),
        ("cnonce", cnonce),
        ("realm", realm),
        ("nonce", nonce),
        ("opaque", opaque.unwrap_or_default()),
    ] {
        if has_control_char(value) {
            return Err(DigestError::ControlCharacter(field));
        }
    }
    let nc_text = format!("{nc:08x}");
    let qop = if use_qop {
        if cnonce.is_empty() {
            return Err(DigestError::Malformed("cnonce is empty".into()));
        }
        if nc == 0 {
            return Err(DigestError::Malformed("nc must start at 1".into()));
        }
        Some(QopAuth {
            nc: &nc_text,
            cnonce,
        })
    } else {
        None
    };
    let base_ha1 = ha1(algorithm, username, realm, password);
    let response = ResponseInput {
        algorithm,
        base_ha1: &base_ha1,
        nonce,
        method,
        uri,
        qop,
    }
    .response()?;

    let mut value = String::from("Digest username=");
    push_quoted(&mut value, username);
    value.push_str(", realm=");
    push_quoted(&mut value, realm);
    value.push_str(", nonce=");
    push_quoted(&mut value, nonce);
    value.push_str(", uri=");
    push_quoted(&mut value, uri);
    value.push_str(", response=\"");
    value.push_str(&response);
    value.push_str("\", algorithm=");
    value.push_str(algorithm.token());
    if let Some(qop) = qop {
        value.push_str(", cnonce=");
        push_quoted(&mut value, qop.cnonce);
        // RFC 7616 §3.4: qop and nc are sent unquoted.
        value.push_str(", qop=auth, nc=");
        value.push_str(qop.nc);
    }
    if let Some(opaque) = opaque {
        value.push_str(", opaque=");
        push_quoted(&mut value, opaque);
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 7616 §3.9.1, the challenge exactly as printed there.
    const RFC_CHALLENGE: &str = "Digest\r\n    realm=\"http-auth@example.org\",\r\n    \
        qop=\"auth, auth-int\",\r\n    algorithm=ALG,\r\n    \
        nonce=\"7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v\",\r\n    \
        opaque=\"FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS\"";
    const RFC_CNONCE: &str = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ";

    fn rfc_answer(algorithm: &str) -> DigestParams {
        let value = respond(
            &RFC_CHALLENGE.replace("ALG", algorithm),
            "GET",
            "/dir/index.html",
            "Mufasa",
            "Circle of Life",
            RFC_CNONCE,
            1,
        )
        .unwrap();
        DigestParams::parse(&value).unwrap()
    }

    #[test]
    fn rfc7616_example_sha256() {
        let answer = rfc_answer("SHA-256");
        assert_eq!(
            answer.get("response"),
            Some("753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1")
        );
        assert_eq!(answer.get("username"), Some("Mufasa"));
        assert_eq!(answer.get("uri"), Some("/dir/index.html"));
        assert_eq!(answer.get("qop"), Some("auth"));
        assert_eq!(answer.get("nc"), Some("00000001"));
        assert_eq!(answer.get("cnonce"), Some(RFC_CNONCE));
        assert_eq!(
            answer.get("opaque"),
            Some("FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS")
        );
        assert_eq!(answer.get("algorithm"), Some("SHA-256"));
    }

    #[test]
    fn rfc7616_example_md5() {
        assert_eq!(
            rfc_answer("MD5").get("response"),
            Some("8ca523f5e9506fed4657c9700eebdbec")
        );
    }

    #[test]
    fn without_qop_uses_the_rfc2069_form() {
        let value = respond(
            "Digest realm=\"r\", nonce=\"n\"",
            "REGISTER",
            "sip:r",
            "u",
            "p",
            "c",
            1,
        )
        .unwrap();
        let answer = DigestParams::parse(&value).unwrap();
        assert_eq!(answer.get("qop"), None);
        assert_eq!(answer.get("cnonce"), None);
        assert_eq!(answer.get("algorithm"), Some("MD5"));
        let ha1 = ha1(Algorithm::Md5, "u", "r", "p");
        let ha2 = Algorithm::Md5.hash_joined(&["REGISTER", "sip:r"]);
        assert_eq!(
            answer.get("response"),
            Some(Algorithm::Md5.hash_joined(&[&ha1, "n", &ha2]).as_str())
        );
    }

    #[test]
    fn escapes_quotes_in_values() {
        let value = respond(
            "Digest realm=\"a \\\"b\\\"\", nonce=\"n\", qop=\"auth\"",
            "REGISTER",
            "sip:r",
            "we\"ird",
            "p",
            "c",
            7,
        )
        .unwrap();
        let answer = DigestParams::parse(&value).unwrap();
        assert_eq!(answer.get("realm"), Some("a \"b\""));
        assert_eq!(answer.get("username"), Some("we\"ird"));
        assert_eq!(answer.get("nc"), Some("00000007"));
    }

    #[test]
    fn refuses_what_it_cannot_answer() {
        let respond_to = |challenge: &str, username: &str, nc: u32| {
            respond(challenge, "REGISTER", "sip:r", username, "p", "c", nc)
        };
        assert_eq!(
            respond_to("Digest nonce=\"n\"", "u", 1),
            Err(DigestError::MissingParam("realm"))
        );
        assert_eq!(
            respond_to("Digest realm=\"r\"", "u", 1),
            Err(DigestError::MissingParam("nonce"))
        );
        assert_eq!(
            respond_to(
                "Digest realm=\"r\", nonce=\"n\", algorithm=SHA-512-256",
                "u",
                1
            ),
            Err(DigestError::UnsupportedAlgorithm("SHA-512-256".into()))
        );
        assert_eq!(
            respond_to("Digest realm=\"r\", nonce=\"n\", qop=\"auth-int\"", "u", 1),
            Err(DigestError::UnsupportedQop("auth-int".into()))
        );
        assert_eq!(
            respond_to("Digest realm=\"r\", nonce=\"n\"", "u\r\nX: y", 1),
            Err(DigestError::ControlCharacter("username"))
        );
        assert!(matches!(
            respond_to("Digest realm=\"r\", nonce=\"n\", qop=auth", "u", 0),
            Err(DigestError::Malformed(_))
        ));
        assert!(matches!(
            respond_to("Basic realm=\"r\"", "u", 1),
            Err(DigestError::NotDigest(_))
        ));
    }
}
