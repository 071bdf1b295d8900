//! The `Digest k=v, k="quoted", ...` auth-param list shared by challenges and credentials
//! (RFC 7235 §2.1, RFC 3261 §25.1 quoted-string).
//!
//! The parser is deliberately strict about structure (an unterminated quote or a missing `=`
//! is an error, a duplicated parameter is an error because two `response` values would make
//! the outcome depend on which one we happened to read) and lenient about what real user
//! agents do in practice: any case for names, optional whitespace and line folding around
//! `=` and `,`, empty list elements, and quoted or unquoted values for every parameter.

use super::DigestError;

/// More parameters than any real challenge or credential carries; bounds the work and the
/// memory a hostile header can make us spend.
const MAX_PARAMS: usize = 32;

/// How much of an offending input we echo back in an error message.
const MAX_ECHO_CHARS: usize = 40;

/// The auth-params of a `Digest` challenge or credential, names lowercased, values unquoted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestParams {
    params: Vec<(String, String)>,
}

impl DigestParams {
    /// Parses a WWW-Authenticate / Authorization (or Proxy-) header value whose scheme must be
    /// `Digest` (case-insensitive).
    pub fn parse(header_value: &str) -> Result<Self, DigestError> {
        let mut cursor = Cursor::new(header_value);
        cursor.skip_whitespace();
        let scheme = cursor.take_while(is_token_char);
        if !scheme.eq_ignore_ascii_case("Digest") {
            let shown = if scheme.is_empty() {
                cursor.rest()
            } else {
                scheme
            };
            return Err(DigestError::NotDigest(echo(shown)));
        }
        let mut params: Vec<(String, String)> = Vec::new();
        if !cursor.peek().is_some_and(is_whitespace) {
            if cursor.peek().is_none() {
                return Err(DigestError::Malformed("no parameters after Digest".into()));
            }
            return Err(DigestError::Malformed(
                "expected whitespace after the Digest scheme".into(),
            ));
        }
        loop {
            cursor.skip_whitespace_and_commas();
            if cursor.peek().is_none() {
                break;
            }
            let name = cursor.take_while(is_token_char);
            if name.is_empty() {
                return Err(DigestError::Malformed(format!(
                    "expected a parameter name at {:?}",
                    echo(cursor.rest())
                )));
            }
            cursor.skip_whitespace();
            if cursor.bump() != Some('=') {
                return Err(DigestError::Malformed(format!(
                    "parameter {:?} has no '=' value",
                    echo(name)
                )));
            }
            cursor.skip_whitespace();
            let value = if cursor.peek() == Some('"') {
                cursor.bump();
                cursor.quoted_string_body().ok_or_else(|| {
                    DigestError::Malformed(format!(
                        "unterminated quoted value for parameter {:?}",
                        echo(name)
                    ))
                })?
            } else {
                let token = cursor.take_while(is_unquoted_value_char);
                if token.is_empty() {
                    return Err(DigestError::Malformed(format!(
                        "parameter {:?} has an empty value",
                        echo(name)
                    )));
                }
                token.to_owned()
            };
            let name = name.to_ascii_lowercase();
            if params.iter().any(|(existing, _)| *existing == name) {
                return Err(DigestError::DuplicateParam(name));
            }
            if params.len() == MAX_PARAMS {
                return Err(DigestError::Malformed(format!(
                    "more than {MAX_PARAMS} parameters"
                )));
            }
            params.push((name, value));
            cursor.skip_whitespace();
            match cursor.peek() {
                None | Some(',') => {}
                Some(_) => {
                    return Err(DigestError::Malformed(format!(
                        "expected ',' after parameter {:?}, found {:?}",
                        params.last().map_or("", |(name, _)| name.as_str()),
                        echo(cursor.rest())
                    )))
                }
            }
        }
        if params.is_empty() {
            return Err(DigestError::Malformed("no parameters after Digest".into()));
        }
        Ok(Self { params })
    }

    /// The value of a parameter, looked up by its name in any case.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// The value of a parameter the caller cannot do without.
    pub(crate) fn require(&self, name: &'static str) -> Result<&str, DigestError> {
        self.get(name).ok_or(DigestError::MissingParam(name))
    }

    /// All parameters in header order, names lowercased.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.params.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

/// Appends `value` as a quoted-string. Control characters are dropped because no SIP header
/// can carry them (they would end or corrupt the header line); callers that accept external
/// input reject them beforehand with [`has_control_char`].
pub(crate) fn push_quoted(out: &mut String, value: &str) {
    out.push('"');
    for c in value.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Whether a value contains a character that cannot appear in a header.
pub(crate) fn has_control_char(value: &str) -> bool {
    value.chars().any(char::is_control)
}

/// A prefix of untrusted input short enough to put in an error message.
fn echo(text: &str) -> String {
    let mut shown: String = text.chars().take(MAX_ECHO_CHARS).collect();
    if text.chars().nth(MAX_ECHO_CHARS).is_some() {
        shown.push('…');
    }
    shown
}

fn is_whitespace(c: char) -> bool {
    // CR and LF appear when a header was folded over several lines (RFC 3261 §7.3.1).
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

/// RFC 3261 `token` characters.
fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-.!%*_+`'~".contains(c)
}

/// Unquoted values are meant to be tokens, but user agents send unquoted URIs and base64
/// nonces too; anything up to the next separator is accepted.
fn is_unquoted_value_char(c: char) -> bool {
    !is_whitespace(c) && !c.is_control() && c != ',' && c != '"'
}

/// A position in the header text. All separators are ASCII, so every position the cursor
/// stops at is a char boundary.
struct Cursor<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn new(text: &'a str) -> Self {
        Self { text, pos: 0 }
    }

    fn rest(&self) -> &'a str {
        self.text.get(self.pos..).unwrap_or("")
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        Some(c)
    }

    fn take_while(&mut self, accept: impl Fn(char) -> bool) -> &'a str {
        let rest = self.rest();
        let len = rest.find(|c| !accept(c)).unwrap_or(rest.len());
        self.pos += len;
        rest.get(..len).unwrap_or("")
    }

    fn skip_whitespace(&mut self) {
        self.take_while(is_whitespace);
    }

    fn skip_whitespace_and_commas(&mut self) {
        self.take_while(|c| c == ',' || is_whitespace(c));
    }

    /// Reads a quoted-string after its opening quote, resolving `\x` quoted-pairs. `None` if
    /// the closing quote is missing.
    fn quoted_string_body(&mut self) -> Option<String> {
        let mut value = String::new();
        loop {
            match self.bump()? {
                '"' => return Some(value),
                '\\' => value.push(self.bump()?),
                c => value.push(c),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_quoted_and_unquoted_values_in_any_case() {
        let params = DigestParams::parse(
            "digest USERNAME=\"Mufasa\",realm=\"a, b\" ,  nc=00000001,qop=auth, uri=\"sip:x@y;transport=tcp\"",
        )
        .unwrap();
        assert_eq!(params.get("username"), Some("Mufasa"));
        assert_eq!(params.get("Realm"), Some("a, b"));
        assert_eq!(params.get("nc"), Some("00000001"));
        assert_eq!(params.get("qop"), Some("auth"));
        assert_eq!(params.get("uri"), Some("sip:x@y;transport=tcp"));
        assert_eq!(params.get("response"), None);
    }

    #[test]
    fn resolves_quoted_pairs() {
        let params = DigestParams::parse(r#"Digest realm="say \"hi\" \\ there""#).unwrap();
        assert_eq!(params.get("realm"), Some(r#"say "hi" \ there"#));
    }

    #[test]
    fn tolerates_folding_whitespace_and_empty_elements() {
        let params =
            DigestParams::parse("Digest\r\n realm = \"r\" ,,\r\n\tnonce =\t\"n\" ,").unwrap();
        assert_eq!(params.get("realm"), Some("r"));
        assert_eq!(params.get("nonce"), Some("n"));
        assert_eq!(params.iter().count(), 2);
    }

    #[test]
    fn rejects_other_schemes() {
        assert!(matches!(
            DigestParams::parse("Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="),
            Err(DigestError::NotDigest(scheme)) if scheme == "Basic"
        ));
        assert!(matches!(
            DigestParams::parse(""),
            Err(DigestError::NotDigest(_))
        ));
    }

    #[test]
    fn rejects_structural_errors_with_a_reason() {
        for (input, fragment) in [
            ("Digest", "no parameters"),
            ("Digest ", "no parameters"),
            ("Digestrealm=\"r\"", "NotDigest"),
            ("Digest realm", "no '='"),
            ("Digest realm=\"unterminated", "unterminated"),
            ("Digest realm=\"r\\", "unterminated"),
            ("Digest realm=", "empty value"),
            ("Digest realm=\"r\" nonce=\"n\"", "expected ','"),
            ("Digest =\"r\"", "parameter name"),
        ] {
            let err = DigestParams::parse(input).unwrap_err();
            let text = format!("{err:?} {err}");
            assert!(text.contains(fragment), "{input:?} gave {text}");
        }
    }

    #[test]
    fn rejects_duplicate_parameters() {
        assert_eq!(
            DigestParams::parse("Digest response=\"a\", RESPONSE=\"b\""),
            Err(DigestError::DuplicateParam("response".into()))
        );
    }

    #[test]
    fn caps_the_parameter_count() {
        let many: Vec<String> = (0..=MAX_PARAMS).map(|i| format!("p{i}=v")).collect();
        let err = DigestParams::parse(&format!("Digest {}", many.join(", "))).unwrap_err();
        assert!(matches!(err, DigestError::Malformed(reason) if reason.contains("more than")));
    }

    #[test]
    fn error_echo_is_bounded_and_char_safe() {
        let long = "é".repeat(500);
        let err = DigestParams::parse(&format!("Digest {long}")).unwrap_err();
        let text = err.to_string();
        assert!(text.chars().count() < 120, "{text}");
    }

    proptest! {
        #[test]
        fn never_panics_on_arbitrary_text(input in ".{0,200}") {
            let _ = DigestParams::parse(&input);
            let _ = DigestParams::parse(&format!("Digest {input}"));
        }

        #[test]
        fn never_panics_on_header_like_text(input in "Digest [a-z=\", \\\\\t\r\n]{0,80}") {
            let _ = DigestParams::parse(&input);
        }

        #[test]
        fn quoting_round_trips(value in ".{0,60}", name in "[a-z][a-z0-9-]{0,10}") {
            let mut header = format!("Digest {name}=");
            push_quoted(&mut header, &value);
            let params = DigestParams::parse(&header).unwrap();
            let expected: String = value.chars().filter(|c| !c.is_control()).collect();
            prop_assert_eq!(params.get(&name), Some(expected.as_str()));
        }
    }
}
