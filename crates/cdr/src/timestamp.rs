//! Serde adapters that write instants as RFC 3339 strings in UTC.
//!
//! `time`'s own `rfc3339` adapter keeps whatever offset the value carries; CDR files must be
//! comparable as text and bucketed by UTC day, so every instant is normalised to UTC on write
//! and on read.

use serde::{Deserialize, Deserializer, Serializer};
use time::format_description::well_known::Rfc3339;
use time::{OffsetDateTime, UtcOffset};

/// Formats an instant as RFC 3339 in UTC (`2025-03-01T08:00:00Z`, fractional seconds if any).
pub fn format_utc(at: OffsetDateTime) -> Result<String, time::error::Format> {
    at.to_offset(UtcOffset::UTC).format(&Rfc3339)
}

/// Parses an RFC 3339 string (any offset) into an instant normalised to UTC.
pub fn parse_utc(text: &str) -> Result<OffsetDateTime, time::error::Parse> {
    OffsetDateTime::parse(text, &Rfc3339).map(|at| at.to_offset(UtcOffset::UTC))
}

/// `#[serde(with = "crate::timestamp::required")]` for `OffsetDateTime` fields.
pub mod required {
    use super::*;

    /// Writes the instant as an RFC 3339 UTC string.
    pub fn serialize<S: Serializer>(at: &OffsetDateTime, serializer: S) -> Result<S::Ok, S::Error> {
        let text = format_utc(*at).map_err(serde::ser::Error::custom)?;
        serializer.serialize_str(&text)
    }

    /// Reads an RFC 3339 string with any offset and normalises it to UTC.
    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<OffsetDateTime, D::Error> {
        // Borrowing avoids an allocation per timestamp; an escaped string (never produced by
        // us) falls back to an owned copy.
        let text = std::borrow::Cow::<'de, str>::deserialize(deserializer)?;
        parse_utc(&text).map_err(serde::de::Error::custom)
    }
}

/// `#[serde(with = "crate::timestamp::optional")]` for `Option<OffsetDateTime>` fields.
pub mod optional {
    use super::*;

    /// Writes `null` or an RFC 3339 UTC string.
    pub fn serialize<S: Serializer>(
        at: &Option<OffsetDateTime>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match at {
            Some(at) => required::serialize(at, serializer),
            None => serializer.serialize_none(),
        }
    }

    /// Reads `null`/absent or an RFC 3339 string, normalised to UTC.
    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<OffsetDateTime>, D::Error> {
        let text = Option::<std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        text.map(|text| parse_utc(&text).map_err(serde::de::Error::custom))
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn non_utc_offsets_are_written_as_utc() {
        let at = datetime!(2025-03-01 09:30:00 +01:00);
        assert_eq!(format_utc(at).unwrap(), "2025-03-01T08:30:00Z");
    }

    #[test]
    fn parsing_normalises_to_utc() {
        let at = parse_utc("2025-03-01T00:30:00+02:00").unwrap();
        assert_eq!(at.offset(), UtcOffset::UTC);
        assert_eq!(at, datetime!(2025-02-28 22:30:00 UTC));
    }

    #[test]
    fn fractional_seconds_survive() {
        let at = datetime!(2025-03-01 08:30:00.25 UTC);
        let text = format_utc(at).unwrap();
        assert_eq!(text, "2025-03-01T08:30:00.25Z");
        assert_eq!(parse_utc(&text).unwrap(), at);
    }
}
