//! The CRM's answer: a JSON object whose known fields are checked one by one. Unknown fields
//! are ignored (a CRM sends what it has); a known field with a wrong type or value makes the
//! whole answer invalid, so a half-understood answer never routes a call.

use serde_json::{Map, Value};

/// Largest answer read: 16 KiB. Anything longer is not a caller record.
pub const MAX_ANSWER_BYTES: usize = 16 * 1024;
/// Priority bounds, those of the CDR and `[[number]] priority`.
const PRIORITY_RANGE: std::ops::RangeInclusive<i64> = -1_000_000..=1_000_000;
/// Longest label (it is sent to the agent's phone in a header).
const MAX_LABEL_CHARS: usize = 64;
/// Longest customer name.
const MAX_NAME_CHARS: usize = 200;
/// Longest agent id or language tag.
const MAX_ID_CHARS: usize = 64;

/// What the CRM said about a caller; every field is optional.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallerInfo {
    /// The call's priority in its queue (replaces the number's priority rules).
    pub priority: Option<i32>,
    /// A label such as `vip` (replaces the priority list's label).
    pub label: Option<String>,
    /// An agent id the call waits for first (replaces sticky routing's choice).
    pub preferred_agent: Option<String>,
    /// Prompt language for the call.
    pub language: Option<String>,
    /// The customer's name (CDR, API, agent's phone).
    pub customer_name: Option<String>,
}

/// Reads an answer body; `Err` says why it is invalid.
pub fn parse_answer(body: &[u8]) -> Result<CallerInfo, String> {
    if body.len() > MAX_ANSWER_BYTES {
        return Err(format!("answer larger than {MAX_ANSWER_BYTES} bytes"));
    }
    let value: Value =
        serde_json::from_slice(body).map_err(|error| format!("not JSON: {error}"))?;
    let Value::Object(object) = value else {
        return Err("not a JSON object".to_owned());
    };
    Ok(CallerInfo {
        priority: priority(&object)?,
        label: text(&object, "label", MAX_LABEL_CHARS)?,
        preferred_agent: text(&object, "preferred_agent", MAX_ID_CHARS)?,
        language: language(&object)?,
        customer_name: text(&object, "customer_name", MAX_NAME_CHARS)?,
    })
}

fn priority(object: &Map<String, Value>) -> Result<Option<i32>, String> {
    match object.get("priority") {
        None | Some(Value::Null) => Ok(None),
        Some(value) => value
            .as_i64()
            .filter(|p| PRIORITY_RANGE.contains(p))
            .and_then(|p| i32::try_from(p).ok())
            .map(Some)
            .ok_or_else(|| format!("priority {value} is not an integer in -1000000..=1000000")),
    }
}

/// A string field: trimmed, empty taken as absent, no control characters (the text ends up in
/// SIP headers and log lines), at most `max_chars`.
fn text(
    object: &Map<String, Value>,
    key: &str,
    max_chars: usize,
) -> Result<Option<String>, String> {
    let text = match object.get(key) {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(text)) => text.trim(),
        Some(other) => return Err(format!("{key} is not a string: {other}")),
    };
    if text.is_empty() {
        return Ok(None);
    }
    if text.chars().any(char::is_control) {
        return Err(format!("{key} contains control characters"));
    }
    if text.chars().count() > max_chars {
        return Err(format!("{key} is longer than {max_chars} characters"));
    }
    Ok(Some(text.to_owned()))
}

/// A language tag such as `en` or `zh-CN`: letters, digits and `-`.
fn language(object: &Map<String, Value>) -> Result<Option<String>, String> {
    let language = text(object, "language", MAX_ID_CHARS)?;
    match language {
        Some(tag) if !tag.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') => {
            Err(format!("language {tag:?} is not a language tag"))
        }
        other => Ok(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_field_is_read_and_unknown_fields_are_ignored() {
        let info = parse_answer(
            br#"{"priority": 50, "label": "vip", "preferred_agent": "1003", "language": "zh-CN",
                 "customer_name": " Li Wei ", "account": {"tier": 1}}"#,
        )
        .expect("valid");
        assert_eq!(
            info,
            CallerInfo {
                priority: Some(50),
                label: Some("vip".into()),
                preferred_agent: Some("1003".into()),
                language: Some("zh-CN".into()),
                customer_name: Some("Li Wei".into()),
            }
        );
        assert_eq!(parse_answer(b"{}").expect("valid"), CallerInfo::default());
        assert_eq!(
            parse_answer(br#"{"label": null, "customer_name": ""}"#).expect("valid"),
            CallerInfo::default()
        );
    }

    #[test]
    fn answers_that_are_not_a_json_object_are_invalid() {
        for body in [
            &b"<html>oops</html>"[..],
            b"",
            b"[1,2]",
            b"\"vip\"",
            b"{\"label\": ",
        ] {
            assert!(
                parse_answer(body).is_err(),
                "{:?}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn wrong_types_and_values_make_the_answer_invalid() {
        let cases: [(&[u8], &str); 6] = [
            (
                br#"{"priority": "high"}"#,
                "priority \"high\" is not an integer",
            ),
            (
                br#"{"priority": 2000000}"#,
                "priority 2000000 is not an integer",
            ),
            (br#"{"priority": 1.5}"#, "priority 1.5 is not an integer"),
            (br#"{"label": 7}"#, "label is not a string"),
            (
                br#"{"label": "vip\r\nX-Evil: 1"}"#,
                "label contains control characters",
            ),
            (
                br#"{"language": "en;rm"}"#,
                "language \"en;rm\" is not a language tag",
            ),
        ];
        for (body, reason) in cases {
            let error = parse_answer(body).expect_err("invalid");
            assert!(error.starts_with(reason), "{error}");
        }
        let long = format!(r#"{{"label": "{}"}}"#, "v".repeat(65));
        assert_eq!(
            parse_answer(long.as_bytes()),
            Err("label is longer than 64 characters".to_owned())
        );
    }

    #[test]
    fn an_answer_over_16_kib_is_invalid_even_if_it_is_json() {
        let padding = " ".repeat(MAX_ANSWER_BYTES);
        let body = format!("{{\"label\": \"vip\"}}{padding}");
        assert_eq!(
            parse_answer(body.as_bytes()),
            Err("answer larger than 16384 bytes".to_owned())
        );
        let body = format!(
            "{{\"label\": \"vip\"}}{}",
            &padding[..MAX_ANSWER_BYTES - 20]
        );
        assert!(parse_answer(body.as_bytes()).is_ok());
    }
}
