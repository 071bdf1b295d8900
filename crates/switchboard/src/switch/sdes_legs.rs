//! SRTP per leg as call control decides it (RFC 4568 SDES keys, RFC 3711 SRTP): which offers
//! a leg may make, whether Switchboard offers SRTP to it, and the keys each leg agreed.
//!
//! The rest of call control negotiates plain RTP: an SRTP offer or answer is stripped to
//! RTP/AVP here (its `a=crypto` kept as [`Sdes`]), negotiated and anchored as usual, and
//! Switchboard's own key line is put back on the SDP it sends. The media session then
//! encrypts and decrypts at its sockets with [`Sdes::policy`].
//!
//! SDES keys travel inside the SIP message, so they are only secret when the signalling is
//! TLS: an SRTP offer over UDP/TCP is refused (488) unless `allow_sdes_without_tls`.

use crate::config::SrtpMode;
use media::sdes::{self, CryptoAttribute, MasterKey, SrtpSuite};
use media::sdp::SessionDescription;
use media::SrtpPolicy;
use sip::Transport;

/// What decides SRTP on one leg.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LegSecurity {
    /// The trunk's or agent's `srtp` setting.
    pub mode: SrtpMode,
    /// The leg's signalling is TLS (SIP over TLS or secure WebSocket).
    pub over_tls: bool,
    /// `[media] allow_sdes_without_tls`.
    pub allow_without_tls: bool,
}

impl LegSecurity {
    /// The security of a leg signalled over `transport`.
    pub fn new(mode: SrtpMode, transport: Transport, allow_without_tls: bool) -> LegSecurity {
        LegSecurity {
            mode,
            over_tls: matches!(transport, Transport::Tls | Transport::Wss),
            allow_without_tls,
        }
    }

    fn keys_stay_secret(&self) -> bool {
        self.over_tls || self.allow_without_tls
    }

    /// Whether Switchboard's offer to this leg is SRTP; `Err` with the reason when it must
    /// be and cannot (required, but only reachable without TLS).
    pub fn offers_srtp(&self) -> Result<bool, &'static str> {
        match self.mode {
            SrtpMode::Off => Ok(false),
            SrtpMode::Optional => Ok(self.keys_stay_secret()),
            SrtpMode::Required if self.keys_stay_secret() => Ok(true),
            SrtpMode::Required => Err(
                "srtp = \"required\" but the phone is registered without TLS: its SDES keys would travel in clear text",
            ),
        }
    }
}

/// The SDES keys one leg agreed: Switchboard's line (it encrypts with that key) and the
/// peer's (Switchboard decrypts with that one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sdes {
    /// The `a=crypto` line Switchboard sent.
    pub local: CryptoAttribute,
    /// The `a=crypto` line the peer sent.
    pub remote: CryptoAttribute,
}

impl Sdes {
    /// The keys as the media session needs them.
    pub fn policy(&self) -> SrtpPolicy {
        SrtpPolicy {
            suite: self.remote.suite,
            send_key: self.local.key,
            receive_key: self.remote.key,
        }
    }
}

/// The line Switchboard offers: tag 1, AES_CM_128_HMAC_SHA1_80 (the suite every SDES
/// implementation has), a fresh key.
pub fn offer_line() -> CryptoAttribute {
    CryptoAttribute {
        tag: 1,
        suite: SrtpSuite::AesCm128HmacSha1_80,
        key: MasterKey::random(),
    }
}

/// Checks an offer from a leg against its security. Returns the offer as plain RTP for
/// negotiation and, when it was SRTP, the agreed keys (Switchboard's answer line repeats
/// the chosen tag and suite with a fresh key). `Err` is the Warning text of a 488.
/// An unreadable body is passed on unchanged: the anchoring answers it with 400.
pub fn accept_offer(
    offer: &[u8],
    security: LegSecurity,
) -> Result<(Vec<u8>, Option<Sdes>), String> {
    if security.mode != SrtpMode::Required && !may_carry_sdes(offer) {
        return Ok((offer.to_vec(), None));
    }
    let Ok(mut parsed) = SessionDescription::parse(offer) else {
        return Ok((offer.to_vec(), None));
    };
    let stripped = sdes::strip(&mut parsed);
    if !stripped.secure {
        if security.mode == SrtpMode::Required {
            return Err("SRTP is required: offer RTP/SAVP with an a=crypto (SDES) line".into());
        }
        return Ok((parsed.to_bytes(), None));
    }
    if security.mode == SrtpMode::Off {
        return Err("SRTP (RTP/SAVP) is not enabled for this peer: offer RTP/AVP".into());
    }
    if !security.keys_stay_secret() {
        return Err("SDES keys (a=crypto) are refused over a transport without TLS".into());
    }
    let remote = sdes::first_usable(stripped.crypto.iter().map(String::as_str)).map_err(
        |error| match error {
            Some(error) => format!("no usable a=crypto line: {error}"),
            None => "RTP/SAVP offer without an a=crypto (SDES) line".to_string(),
        },
    )?;
    let local = CryptoAttribute {
        tag: remote.tag,
        suite: remote.suite,
        key: MasterKey::random(),
    };
    Ok((parsed.to_bytes(), Some(Sdes { local, remote })))
}

/// An INVITE without SDP (a delayed offer): Switchboard's own offer in the 200, or the
/// phones' end-to-end exchange, is plain RTP, so a leg that requires SRTP is refused.
pub fn accept_missing_offer(security: LegSecurity) -> Result<(), String> {
    if security.mode == SrtpMode::Required {
        return Err(
            "SRTP is required: send an RTP/SAVP offer in the INVITE (a delayed offer is answered with plain RTP)"
                .into(),
        );
    }
    Ok(())
}

/// Our own SDP as sent (with Switchboard's `a=crypto` line) made plain RTP again, to
/// anchor the answer to it.
pub fn plain(sdp: &[u8]) -> Vec<u8> {
    match SessionDescription::parse(sdp) {
        Ok(mut parsed) => {
            sdes::strip(&mut parsed);
            parsed.to_bytes()
        }
        Err(_) => sdp.to_vec(),
    }
}

/// Whether `sdp` may carry SDES at all. Without the words `RTP/SAVP` and `crypto` anywhere
/// in it, [`sdes::strip`] has nothing to take out, so a plain RTP body (most calls) is passed
/// on as it came instead of being parsed and encoded once more here before anchoring parses
/// it (issue 12: SDP work was a tenth of call control's time per call).
fn may_carry_sdes(sdp: &[u8]) -> bool {
    let contains = |word: &[u8]| sdp.windows(word.len()).any(|window| window == word);
    contains(b"RTP/SAVP") || contains(b"crypto")
}

/// Checks a leg's answer to Switchboard's offer, which carried `offered` when it was SRTP.
/// Returns the answer as plain RTP and the agreed keys.
pub fn accept_answer(
    answer: &[u8],
    offered: Option<CryptoAttribute>,
) -> Result<(Vec<u8>, Option<Sdes>), &'static str> {
    if offered.is_none() && !may_carry_sdes(answer) {
        return Ok((answer.to_vec(), None));
    }
    let Ok(mut parsed) = SessionDescription::parse(answer) else {
        return Ok((answer.to_vec(), None));
    };
    let stripped = sdes::strip(&mut parsed);
    let Some(local) = offered else {
        if stripped.secure {
            return Err("an RTP/SAVP answer to an RTP/AVP offer");
        }
        return Ok((parsed.to_bytes(), None));
    };
    if !stripped.secure {
        return Err("the answer to an RTP/SAVP offer is not RTP/SAVP");
    }
    let remote = stripped
        .crypto
        .iter()
        .filter_map(|value| CryptoAttribute::parse(value).ok())
        .find(|remote| remote.tag == local.tag && remote.suite == local.suite)
        .ok_or("the SRTP answer has no usable a=crypto line for the offered tag")?;
    Ok((parsed.to_bytes(), Some(Sdes { local, remote })))
}

/// A re-offer (re-INVITE, UPDATE) from a leg that agreed `current`: it must stay what it
/// was (SRTP cannot be switched on or off mid-call). Returns the plain offer and the keys
/// from now on: the peer may change its key; Switchboard keeps its own.
pub fn accept_reoffer(
    offer: &[u8],
    current: Option<Sdes>,
) -> Result<(Vec<u8>, Option<Sdes>), &'static str> {
    let Ok(mut parsed) = SessionDescription::parse(offer) else {
        return Ok((offer.to_vec(), None));
    };
    let stripped = sdes::strip(&mut parsed);
    match (current, stripped.secure) {
        (None, false) => Ok((parsed.to_bytes(), None)),
        (None, true) => Err("SRTP cannot be switched on mid-call"),
        (Some(_), false) => Err("SRTP cannot be switched off mid-call"),
        (Some(current), true) => {
            let remote = sdes::first_usable(stripped.crypto.iter().map(String::as_str))
                .map_err(|_| "no usable a=crypto line in the re-offer")?;
            let local = CryptoAttribute {
                tag: remote.tag,
                suite: remote.suite,
                key: current.local.key,
            };
            Ok((parsed.to_bytes(), Some(Sdes { local, remote })))
        }
    }
}

/// Puts `sdes`'s local line (and RTP/SAVP) on section `index` of an SDP Switchboard sends.
pub fn secure(sdp: &mut SessionDescription, index: usize, sdes: Option<&CryptoAttribute>) {
    if let Some(line) = sdes {
        sdes::secure(sdp, index, line);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz";

    fn sdp(proto: &str, crypto: &[&str]) -> Vec<u8> {
        let mut text = format!(
            "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\nm=audio 4000 {proto} 0\r\n"
        );
        for line in crypto {
            text.push_str(&format!("a=crypto:{line}\r\n"));
        }
        text.into_bytes()
    }

    fn security(mode: SrtpMode, transport: Transport) -> LegSecurity {
        LegSecurity::new(mode, transport, false)
    }

    fn text(bytes: &[u8]) -> String {
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    #[test]
    fn an_srtp_offer_over_tls_is_accepted_with_a_fresh_answer_key() {
        let line = format!("3 AES_CM_128_HMAC_SHA1_32 inline:{KEY}");
        let offer = sdp("RTP/SAVP", &[&line]);
        for mode in [SrtpMode::Optional, SrtpMode::Required] {
            let (plain, sdes) = accept_offer(&offer, security(mode, Transport::Tls)).unwrap();
            assert!(text(&plain).contains("RTP/AVP 0") && !text(&plain).contains("crypto"));
            let sdes = sdes.expect("SRTP agreed");
            assert_eq!(sdes.remote, CryptoAttribute::parse(&line).unwrap());
            assert_eq!(
                (sdes.local.tag, sdes.local.suite),
                (3, SrtpSuite::AesCm128HmacSha1_32)
            );
            assert_ne!(sdes.local.key, sdes.remote.key);
            let policy = sdes.policy();
            assert_eq!(policy.receive_key, sdes.remote.key);
            assert_eq!(policy.send_key, sdes.local.key);
        }
    }

    #[test]
    fn refused_offers_name_the_reason() {
        let savp = sdp(
            "RTP/SAVP",
            &[&format!("1 AES_CM_128_HMAC_SHA1_80 inline:{KEY}")],
        );
        let cases = [
            (
                savp.clone(),
                security(SrtpMode::Off, Transport::Tls),
                "not enabled",
            ),
            (
                savp.clone(),
                security(SrtpMode::Optional, Transport::Udp),
                "without TLS",
            ),
            (
                savp.clone(),
                security(SrtpMode::Required, Transport::Tcp),
                "without TLS",
            ),
            (
                sdp("RTP/AVP", &[]),
                security(SrtpMode::Required, Transport::Tls),
                "SRTP is required",
            ),
            (
                sdp("RTP/SAVP", &[]),
                security(SrtpMode::Optional, Transport::Tls),
                "without an a=crypto",
            ),
            (
                sdp("RTP/SAVP", &["1 AEAD_AES_128_GCM inline:abc"]),
                security(SrtpMode::Optional, Transport::Tls),
                "no usable a=crypto line: a=crypto suite AEAD_AES_128_GCM is not supported",
            ),
        ];
        for (offer, security, reason) in cases {
            let error = accept_offer(&offer, security).unwrap_err();
            assert!(error.contains(reason), "{error} / {reason}");
        }
    }

    #[test]
    fn allow_sdes_without_tls_lets_keys_over_udp() {
        let savp = sdp(
            "RTP/SAVP",
            &[&format!("1 AES_CM_128_HMAC_SHA1_80 inline:{KEY}")],
        );
        let security = LegSecurity::new(SrtpMode::Optional, Transport::Udp, true);
        assert!(accept_offer(&savp, security).unwrap().1.is_some());
        assert_eq!(security.offers_srtp(), Ok(true));
    }

    #[test]
    fn a_delayed_offer_is_refused_only_when_srtp_is_required() {
        assert!(accept_missing_offer(security(SrtpMode::Off, Transport::Tls)).is_ok());
        assert!(accept_missing_offer(security(SrtpMode::Optional, Transport::Tls)).is_ok());
        let error = accept_missing_offer(security(SrtpMode::Required, Transport::Tls));
        assert!(error.unwrap_err().contains("delayed offer"));
    }

    #[test]
    fn plain_offers_pass_unless_srtp_is_required() {
        let avp = sdp("RTP/AVP", &[]);
        for mode in [SrtpMode::Off, SrtpMode::Optional] {
            let (plain, sdes) = accept_offer(&avp, security(mode, Transport::Udp)).unwrap();
            assert!(sdes.is_none());
            assert!(text(&plain).contains("m=audio 4000 RTP/AVP 0"));
        }
    }

    #[test]
    fn a_body_without_sdes_words_is_passed_on_as_it_came_and_one_with_them_is_stripped() {
        // Not even parsed: a plain body goes on byte for byte (anchoring parses it next).
        let avp = sdp("RTP/AVP", &[]);
        let security = security(SrtpMode::Optional, Transport::Udp);
        assert_eq!(accept_offer(&avp, security).unwrap(), (avp.clone(), None));
        assert_eq!(accept_answer(&avp, None).unwrap(), (avp.clone(), None));
        // An RTP/AVP section that still carries a=crypto lines gets them taken out.
        let stray = sdp(
            "RTP/AVP",
            &[&format!("1 AES_CM_128_HMAC_SHA1_80 inline:{KEY}")],
        );
        let (plain, sdes) = accept_offer(&stray, security).unwrap();
        assert!(sdes.is_none());
        assert!(!text(&plain).contains("crypto"), "{}", text(&plain));
        let (plain, _) = accept_answer(&stray, None).unwrap();
        assert!(!text(&plain).contains("crypto"), "{}", text(&plain));
    }

    #[test]
    fn switchboard_offers_srtp_by_mode_and_transport() {
        assert_eq!(
            security(SrtpMode::Off, Transport::Tls).offers_srtp(),
            Ok(false)
        );
        assert_eq!(
            security(SrtpMode::Optional, Transport::Tls).offers_srtp(),
            Ok(true)
        );
        assert_eq!(
            security(SrtpMode::Optional, Transport::Wss).offers_srtp(),
            Ok(true)
        );
        assert_eq!(
            security(SrtpMode::Optional, Transport::Udp).offers_srtp(),
            Ok(false)
        );
        assert_eq!(
            security(SrtpMode::Required, Transport::Tls).offers_srtp(),
            Ok(true)
        );
        assert!(security(SrtpMode::Required, Transport::Udp)
            .offers_srtp()
            .is_err());
    }

    #[test]
    fn answers_must_match_the_offer() {
        let offered = offer_line();
        let answer_line = format!("1 AES_CM_128_HMAC_SHA1_80 inline:{KEY}");
        let (plain, sdes) =
            accept_answer(&sdp("RTP/SAVP", &[&answer_line]), Some(offered)).unwrap();
        assert!(!text(&plain).contains("SAVP"));
        let sdes = sdes.unwrap();
        assert_eq!((sdes.local, sdes.remote.tag), (offered, 1));
        assert!(accept_answer(&sdp("RTP/AVP", &[]), Some(offered)).is_err());
        let other_tag = format!("2 AES_CM_128_HMAC_SHA1_80 inline:{KEY}");
        assert!(accept_answer(&sdp("RTP/SAVP", &[&other_tag]), Some(offered)).is_err());
        assert!(accept_answer(&sdp("RTP/SAVP", &[&answer_line]), None).is_err());
        assert_eq!(accept_answer(&sdp("RTP/AVP", &[]), None).unwrap().1, None);
    }

    #[test]
    fn a_reoffer_keeps_srtp_as_it_was_and_our_key() {
        let line = format!("1 AES_CM_128_HMAC_SHA1_80 inline:{KEY}");
        let (_, current) = accept_offer(
            &sdp("RTP/SAVP", &[&line]),
            security(SrtpMode::Optional, Transport::Tls),
        )
        .unwrap();
        let current = current.unwrap();
        let new_key = MasterKey::random();
        let new_line = CryptoAttribute {
            tag: 5,
            suite: SrtpSuite::AesCm128HmacSha1_80,
            key: new_key,
        };
        let (_, next) =
            accept_reoffer(&sdp("RTP/SAVP", &[&new_line.to_value()]), Some(current)).unwrap();
        let next = next.unwrap();
        assert_eq!(next.remote.key, new_key);
        assert_eq!((next.local.key, next.local.tag), (current.local.key, 5));
        assert!(accept_reoffer(&sdp("RTP/AVP", &[]), Some(current)).is_err());
        assert!(accept_reoffer(&sdp("RTP/SAVP", &[&line]), None).is_err());
        assert!(accept_reoffer(&sdp("RTP/AVP", &[]), None)
            .unwrap()
            .1
            .is_none());
    }
}
