//! SDES key exchange (RFC 4568): the `a=crypto` lines of an SDP media section.
//!
//! Only what Switchboard can use is accepted: the suites AES_CM_128_HMAC_SHA1_80 and
//! AES_CM_128_HMAC_SHA1_32 (RFC 4568 §6.2), one inline key of 16 bytes key plus 14 bytes
//! salt, no MKI and no session parameters. A line asking for anything else is refused with
//! a reason (RFC 4568 §6.1: an answerer ignores lines it cannot use and picks another).

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use std::fmt;

use crate::sdp::{Attribute, SessionDescription};

/// Length of an AES_CM_128 master key plus its master salt (RFC 3711 §8.2).
pub const MASTER_KEY_LEN: usize = 30;

/// The SRTP crypto suites Switchboard speaks (RFC 4568 §6.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SrtpSuite {
    /// AES in counter mode, 128-bit key, HMAC-SHA1 tag of 80 bits.
    AesCm128HmacSha1_80,
    /// The same with a 32-bit RTP tag (RTCP keeps 80 bits).
    AesCm128HmacSha1_32,
}

impl SrtpSuite {
    /// The suite's name in SDP.
    pub fn as_str(self) -> &'static str {
        match self {
            SrtpSuite::AesCm128HmacSha1_80 => "AES_CM_128_HMAC_SHA1_80",
            SrtpSuite::AesCm128HmacSha1_32 => "AES_CM_128_HMAC_SHA1_32",
        }
    }

    fn from_name(name: &str) -> Option<SrtpSuite> {
        [
            SrtpSuite::AesCm128HmacSha1_80,
            SrtpSuite::AesCm128HmacSha1_32,
        ]
        .into_iter()
        .find(|suite| suite.as_str() == name)
    }
}

/// An SRTP master key followed by its master salt. Debug output never shows the bytes:
/// session keys must not end up in logs.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct MasterKey(pub [u8; MASTER_KEY_LEN]);

impl MasterKey {
    /// A fresh random key and salt (one per leg and direction, RFC 4568 §6.1).
    pub fn random() -> MasterKey {
        MasterKey(rand::random())
    }

    /// The 16-byte AES key.
    pub fn key(&self) -> &[u8] {
        &self.0[..16]
    }

    /// The 14-byte salt.
    pub fn salt(&self) -> &[u8] {
        &self.0[16..]
    }
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey(..)")
    }
}

/// One `a=crypto` line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CryptoAttribute {
    /// The tag the answer must repeat (RFC 4568 §4.1).
    pub tag: u32,
    /// The suite.
    pub suite: SrtpSuite,
    /// The sender's master key and salt.
    pub key: MasterKey,
}

/// Why an `a=crypto` line cannot be used; the text goes into the 488 Warning.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    /// Fewer than three space-separated fields, or a tag that is not a number.
    #[error("a=crypto line is not `<tag> <suite> inline:<key>`")]
    Malformed,
    /// A suite other than the two AES_CM_128_HMAC_SHA1 ones.
    #[error("a=crypto suite {0} is not supported (AES_CM_128_HMAC_SHA1_80 or _32)")]
    UnsupportedSuite(String),
    /// The key method is not `inline:`.
    #[error("a=crypto key method is not inline")]
    NotInline,
    /// More than one key (a key list, RFC 4568 §6.1) or an MKI.
    #[error("a=crypto with several keys or an MKI is not supported")]
    KeyList,
    /// The key is not base64 of exactly 30 bytes.
    #[error("a=crypto inline key is not base64 of a 16-byte key and 14-byte salt")]
    BadKey,
    /// A session parameter (e.g. UNENCRYPTED_SRTP, KDR) follows the key.
    #[error("a=crypto session parameter {0} is not supported")]
    SessionParameter(String),
}

impl CryptoAttribute {
    /// Parses the value of an `a=crypto` attribute (the text after `a=crypto:`).
    pub fn parse(value: &str) -> Result<CryptoAttribute, CryptoError> {
        let mut fields = value.split_ascii_whitespace();
        let (Some(tag), Some(suite), Some(key_params)) =
            (fields.next(), fields.next(), fields.next())
        else {
            return Err(CryptoError::Malformed);
        };
        let tag: u32 = tag.parse().map_err(|_| CryptoError::Malformed)?;
        if tag > 999_999_999 {
            return Err(CryptoError::Malformed); // RFC 4568 §9.1: 1*9DIGIT
        }
        let suite = SrtpSuite::from_name(suite)
            .ok_or_else(|| CryptoError::UnsupportedSuite(suite.to_string()))?;
        if let Some(parameter) = fields.next() {
            return Err(CryptoError::SessionParameter(parameter.to_string()));
        }
        if key_params.contains(';') {
            return Err(CryptoError::KeyList);
        }
        let inline = key_params
            .strip_prefix("inline:")
            .ok_or(CryptoError::NotInline)?;
        // inline:<key||salt>[|lifetime][|MKI:length]; a lifetime is allowed (Switchboard's
        // calls never come near 2^31 packets), an MKI is not (packets would carry it).
        let mut parts = inline.split('|');
        let encoded = parts.next().unwrap_or_default();
        for part in parts {
            if part.contains(':') {
                return Err(CryptoError::KeyList);
            }
        }
        let decoded = STANDARD.decode(encoded).map_err(|_| CryptoError::BadKey)?;
        let key: [u8; MASTER_KEY_LEN] = decoded.try_into().map_err(|_| CryptoError::BadKey)?;
        Ok(CryptoAttribute {
            tag,
            suite,
            key: MasterKey(key),
        })
    }

    /// The attribute value as written after `a=crypto:`.
    pub fn to_value(&self) -> String {
        format!(
            "{} {} inline:{}",
            self.tag,
            self.suite.as_str(),
            STANDARD.encode(self.key.0)
        )
    }
}

/// The first usable `a=crypto` line of `values` (in the offerer's preference order), or
/// the reason the last unusable one was refused when none is usable (`None` when there
/// were no lines at all).
pub fn first_usable<'a>(
    values: impl Iterator<Item = &'a str>,
) -> Result<CryptoAttribute, Option<CryptoError>> {
    let mut last_error = None;
    for value in values {
        match CryptoAttribute::parse(value) {
            Ok(attribute) => return Ok(attribute),
            Err(error) => last_error = Some(error),
        }
    }
    Err(last_error)
}

/// What [`strip`] found in an SDP: whether its first audio section asked for SRTP, and
/// that section's `a=crypto` values in offer order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stripped {
    /// The first active audio section was RTP/SAVP or RTP/SAVPF.
    pub secure: bool,
    /// Its `a=crypto` values.
    pub crypto: Vec<String>,
}

/// Turns every RTP/SAVP(F) audio section of `sdp` into RTP/AVP(F) and removes all
/// `a=crypto` lines, so the codec negotiation and anchoring see a plain RTP description
/// (the session does the SRTP). Reports what the first active audio section asked for.
pub fn strip(sdp: &mut SessionDescription) -> Stripped {
    let mut found: Option<Stripped> = None;
    for media in sdp.media.iter_mut().filter(|m| m.media == "audio") {
        let secure = match media.proto.as_str() {
            "RTP/SAVP" => {
                media.proto = "RTP/AVP".to_string();
                true
            }
            "RTP/SAVPF" => {
                media.proto = "RTP/AVPF".to_string();
                true
            }
            _ => false,
        };
        let crypto: Vec<String> = media
            .attributes
            .iter()
            .filter(|a| a.name == "crypto")
            .filter_map(|a| a.value.clone())
            .collect();
        media.attributes.retain(|a| a.name != "crypto");
        if found.is_none() && media.port != 0 {
            found = Some(Stripped { secure, crypto });
        }
    }
    found.unwrap_or_default()
}

/// Makes media section `index` of `sdp` RTP/SAVP with the single `a=crypto` line `crypto`.
pub fn secure(sdp: &mut SessionDescription, index: usize, crypto: &CryptoAttribute) {
    let Some(media) = sdp.media.get_mut(index) else {
        return;
    };
    media.proto = match media.proto.as_str() {
        "RTP/AVPF" | "RTP/SAVPF" => "RTP/SAVPF",
        _ => "RTP/SAVP",
    }
    .to_string();
    media.attributes.retain(|a| a.name != "crypto");
    media
        .attributes
        .push(Attribute::valued("crypto", crypto.to_value()));
}

#[cfg(test)]
mod tests {
    use super::*;

    const BARESIP_LINE: &str =
        "1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz";

    #[test]
    fn parses_a_typical_offer_line() {
        let attribute = CryptoAttribute::parse(BARESIP_LINE).unwrap();
        assert_eq!(attribute.tag, 1);
        assert_eq!(attribute.suite, SrtpSuite::AesCm128HmacSha1_80);
        assert_eq!(&attribute.key.key()[..4], b"YS__");
        assert_eq!(attribute.key.salt().len(), 14);
    }

    #[test]
    fn write_then_parse_round_trips_for_both_suites() {
        for suite in [
            SrtpSuite::AesCm128HmacSha1_80,
            SrtpSuite::AesCm128HmacSha1_32,
        ] {
            let attribute = CryptoAttribute {
                tag: 7,
                suite,
                key: MasterKey::random(),
            };
            let value = attribute.to_value();
            assert!(value.starts_with(&format!("7 {} inline:", suite.as_str())));
            assert_eq!(CryptoAttribute::parse(&value), Ok(attribute));
        }
    }

    #[test]
    fn parse_then_write_round_trips() {
        let attribute = CryptoAttribute::parse(BARESIP_LINE).unwrap();
        assert_eq!(attribute.to_value(), BARESIP_LINE);
    }

    #[test]
    fn a_lifetime_is_accepted() {
        let line = format!("{BARESIP_LINE}|2^31");
        assert!(CryptoAttribute::parse(&line).is_ok());
    }

    #[test]
    fn bad_lines_get_a_reason() {
        let key = "WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz";
        let cases: Vec<(String, CryptoError)> = vec![
            ("1 AES_CM_128_HMAC_SHA1_80".into(), CryptoError::Malformed),
            (
                format!("x AES_CM_128_HMAC_SHA1_80 inline:{key}"),
                CryptoError::Malformed,
            ),
            (
                format!("1 AES_256_CM_HMAC_SHA1_80 inline:{key}"),
                CryptoError::UnsupportedSuite("AES_256_CM_HMAC_SHA1_80".into()),
            ),
            (
                format!("1 AES_CM_128_HMAC_SHA1_80 uri:{key}"),
                CryptoError::NotInline,
            ),
            (
                format!("1 AES_CM_128_HMAC_SHA1_80 inline:{key}|2^20|1:4"),
                CryptoError::KeyList,
            ),
            (
                format!("1 AES_CM_128_HMAC_SHA1_80 inline:{key};inline:{key}"),
                CryptoError::KeyList,
            ),
            (
                "1 AES_CM_128_HMAC_SHA1_80 inline:c2hvcnQ=".into(),
                CryptoError::BadKey,
            ),
            (
                "1 AES_CM_128_HMAC_SHA1_80 inline:!!!notbase64".into(),
                CryptoError::BadKey,
            ),
            (
                format!("1 AES_CM_128_HMAC_SHA1_80 inline:{key} UNENCRYPTED_SRTP"),
                CryptoError::SessionParameter("UNENCRYPTED_SRTP".into()),
            ),
        ];
        for (line, expected) in cases {
            assert_eq!(CryptoAttribute::parse(&line), Err(expected), "{line}");
        }
    }

    #[test]
    fn first_usable_skips_lines_it_cannot_use() {
        let unusable = "1 AEAD_AES_256_GCM inline:abcd";
        let usable = BARESIP_LINE.replacen('1', "2", 1);
        let chosen = first_usable([unusable, usable.as_str()].into_iter()).unwrap();
        assert_eq!(chosen.tag, 2);
        assert_eq!(
            first_usable([unusable].into_iter()),
            Err(Some(CryptoError::UnsupportedSuite(
                "AEAD_AES_256_GCM".into()
            )))
        );
        assert_eq!(first_usable(std::iter::empty()), Err(None));
    }

    const SAVP_OFFER: &[u8] = b"v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\n\
m=audio 4000 RTP/SAVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\n\
a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz\r\n\
a=crypto:2 AES_CM_128_HMAC_SHA1_32 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz\r\na=sendrecv\r\n";

    #[test]
    fn strip_then_secure_round_trips_an_sdp() {
        let mut sdp = SessionDescription::parse(SAVP_OFFER).unwrap();
        let stripped = strip(&mut sdp);
        assert!(stripped.secure);
        assert_eq!(stripped.crypto.len(), 2);
        let plain = String::from_utf8(sdp.to_bytes()).unwrap();
        assert!(plain.contains("m=audio 4000 RTP/AVP 0 101\r\n"), "{plain}");
        assert!(!plain.contains("crypto"), "{plain}");
        let chosen = first_usable(stripped.crypto.iter().map(String::as_str)).unwrap();
        secure(&mut sdp, 0, &chosen);
        let text = String::from_utf8(sdp.to_bytes()).unwrap();
        assert!(text.contains("m=audio 4000 RTP/SAVP 0 101\r\n"), "{text}");
        assert!(
            text.contains(&format!("a=crypto:{}\r\n", chosen.to_value())),
            "{text}"
        );
        assert_eq!(text.matches("a=crypto").count(), 1);
    }

    #[test]
    fn strip_reports_plain_rtp_as_not_secure() {
        let plain = String::from_utf8(SAVP_OFFER.to_vec())
            .unwrap()
            .replace("RTP/SAVP", "RTP/AVP");
        let mut sdp = SessionDescription::parse(plain.as_bytes()).unwrap();
        let stripped = strip(&mut sdp);
        assert!(!stripped.secure);
        assert_eq!(
            stripped.crypto.len(),
            2,
            "crypto lines on RTP/AVP are reported, and removed"
        );
        assert!(!String::from_utf8(sdp.to_bytes())
            .unwrap()
            .contains("crypto"));
    }

    proptest::proptest! {
        #[test]
        fn parse_never_panics_and_what_parses_writes_back(value in "\\PC{0,120}") {
            if let Ok(attribute) = CryptoAttribute::parse(&value) {
                proptest::prop_assert_eq!(CryptoAttribute::parse(&attribute.to_value()), Ok(attribute));
            }
        }
    }

    #[test]
    fn debug_output_hides_the_key() {
        let attribute = CryptoAttribute::parse(BARESIP_LINE).unwrap();
        assert!(!format!("{attribute:?}").contains("WVNf"));
        assert!(format!("{attribute:?}").contains("MasterKey(..)"));
    }
}
