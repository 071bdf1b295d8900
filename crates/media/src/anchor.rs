//! Media anchoring for the B2BUA: the two calls the SIP layer makes to put Switchboard in the
//! media path. An offer from one leg is checked (488 when no codec fits), trimmed to the codecs
//! Switchboard handles and re-addressed to Switchboard's port on the other leg; the answer
//! coming back is checked against that offer and re-addressed to the first leg's port.

use std::net::SocketAddr;

use crate::codec::Codec;
use crate::sdp::{self, Direction, NoCommonCodec, SdpError, SessionDescription};

/// Why anchoring refused an SDP body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MediaError {
    /// The body is not SDP we can read.
    #[error("malformed SDP: {0}")]
    Malformed(#[from] SdpError),
    /// Readable, but nothing in it that Switchboard can relay (488 Not Acceptable Here).
    #[error("media not acceptable: {0}")]
    NotAcceptable(#[from] NoCommonCodec),
}

impl MediaError {
    /// The SIP status code the SIP layer should answer an INVITE with.
    pub fn sip_status(&self) -> u16 {
        match self {
            MediaError::Malformed(_) => 400,
            MediaError::NotAcceptable(_) => 488,
        }
    }
}

/// What one offer/answer exchange agreed, as the relay needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaPlan {
    /// Index of the anchored `m=audio` section.
    pub media_index: usize,
    /// Codecs the offer carried that Switchboard accepted, with payload types, in preference order.
    pub offered_codecs: Vec<(Codec, u8)>,
    /// telephone-event payload type in the offer.
    pub offered_telephone_event: Option<u8>,
    /// Direction the offerer asked for.
    pub offer_direction: Direction,
    /// Where the offerer wants RTP (the SDP's word; latching may correct it for NAT).
    pub offerer_rtp: Option<SocketAddr>,
    /// Where the offerer wants RTCP.
    pub offerer_rtcp: Option<SocketAddr>,
    /// The offer carries `a=rtcp-mux` (RFC 5761): the offerer's leg multiplexes RTCP on its
    /// RTP port, and the answer it gets says so.
    pub offerer_rtcp_mux: bool,
    /// The codec the answerer chose, once the answer is in.
    pub codec: Option<(Codec, u8)>,
    /// telephone-event payload type in the answer, once in.
    pub answered_telephone_event: Option<u8>,
    /// Where the answerer wants RTP, once the answer is in.
    pub answerer_rtp: Option<SocketAddr>,
    /// Where the answerer wants RTCP, once the answer is in.
    pub answerer_rtcp: Option<SocketAddr>,
    /// The answer accepted the offered `a=rtcp-mux`: the answerer's leg multiplexes too.
    pub answerer_rtcp_mux: bool,
    /// Direction the answerer chose, once the answer is in.
    pub answer_direction: Option<Direction>,
}

/// Checks an offer from one leg and rewrites it for the other leg: only PCMU/PCMA (from
/// `supported`) and telephone-event stay, and `local` (Switchboard's port on the other leg)
/// replaces the offerer's address. `Err(NotAcceptable)` means answer the INVITE with 488.
pub fn anchor_offer(
    offer: &[u8],
    local: SocketAddr,
    supported: &[Codec],
) -> Result<(MediaPlan, Vec<u8>), MediaError> {
    let (plan, rewritten) =
        anchor_parsed_offer(SessionDescription::parse(offer)?, local, supported)?;
    Ok((plan, rewritten.to_bytes()))
}

/// [`anchor_offer`] for an offer already parsed (a B2BUA leg that also stamps its own origin
/// on the result): the rewritten description is returned as it is, neither encoded nor
/// copied, so a call's offer is parsed once and encoded once.
pub fn anchor_parsed_offer(
    offer: SessionDescription,
    local: SocketAddr,
    supported: &[Codec],
) -> Result<(MediaPlan, SessionDescription), MediaError> {
    let accepted = sdp::negotiate(&offer, supported)?;
    let mut keep: Vec<u8> = accepted.codecs.iter().map(|(_, pt)| *pt).collect();
    keep.extend(accepted.telephone_event);
    let plan = MediaPlan {
        media_index: accepted.media_index,
        offered_codecs: accepted.codecs,
        offered_telephone_event: accepted.telephone_event,
        offer_direction: offer.media[accepted.media_index].direction(),
        offerer_rtp: accepted.remote_rtp,
        offerer_rtcp: accepted.remote_rtcp,
        offerer_rtcp_mux: accepted.rtcp_mux,
        codec: None,
        answered_telephone_event: None,
        answerer_rtp: None,
        answerer_rtcp: None,
        answerer_rtcp_mux: false,
        answer_direction: None,
    };
    let mut rewritten = offer;
    sdp::restrict_formats(&mut rewritten, plan.media_index, &keep);
    sdp::readdress(&mut rewritten, local.ip(), plan.media_index, local.port());
    Ok((plan, rewritten))
}

/// Checks the answer to an offer anchored with [`anchor_offer`] and rewrites it for the
/// offering leg with `local` (Switchboard's port on that leg). Fails when the answerer
/// rejected the audio stream or picked a codec that was not offered.
pub fn anchor_answer(
    plan: &MediaPlan,
    answer: &[u8],
    local: SocketAddr,
) -> Result<(MediaPlan, Vec<u8>), MediaError> {
    let (plan, rewritten) = anchor_parsed_answer(plan, SessionDescription::parse(answer)?, local)?;
    Ok((plan, rewritten.to_bytes()))
}

/// [`anchor_answer`] for an answer already parsed; the rewritten description is returned
/// unencoded (see [`anchor_parsed_offer`]).
pub fn anchor_parsed_answer(
    plan: &MediaPlan,
    answer: SessionDescription,
    local: SocketAddr,
) -> Result<(MediaPlan, SessionDescription), MediaError> {
    let media = answer.media.get(plan.media_index).ok_or(NoCommonCodec {
        reason: "the answer has fewer media sections than the offer",
    })?;
    if media.port == 0 {
        return Err(NoCommonCodec {
            reason: "the answerer rejected the audio stream",
        }
        .into());
    }
    let rtpmaps: Vec<_> = media.rtpmaps().collect();
    let mut codec = None;
    let mut telephone_event = None;
    for pt in media.payload_types() {
        let map = rtpmaps.iter().find(|m| m.payload_type == pt);
        if map.is_some_and(|m| m.encoding.eq_ignore_ascii_case("telephone-event")) {
            telephone_event = telephone_event.or(Some(pt));
            continue;
        }
        let named = match map {
            Some(map) => Codec::from_rtpmap(map),
            None => Codec::from_static_payload_type(pt),
        };
        if let Some(found) = named.filter(|c| plan.offered_codecs.iter().any(|(o, _)| o == c)) {
            codec = codec.or(Some((found, pt)));
        }
    }
    let codec = codec.ok_or(NoCommonCodec {
        reason: "the answer picked no codec from the offer",
    })?;
    let plan = MediaPlan {
        codec: Some(codec),
        answered_telephone_event: telephone_event
            .filter(|_| plan.offered_telephone_event.is_some()),
        answerer_rtp: answer.rtp_address(plan.media_index),
        answerer_rtcp: answer.rtcp_address(plan.media_index),
        answerer_rtcp_mux: plan.offerer_rtcp_mux && media.rtcp_mux(),
        answer_direction: Some(media.direction()),
        ..plan.clone()
    };
    let mut rewritten = answer;
    sdp::readdress(&mut rewritten, local.ip(), plan.media_index, local.port());
    // Each leg's RTCP ends at Switchboard: the offerer's leg multiplexes exactly when it
    // offered to, whatever the answerer chose for its own leg.
    if let Some(section) = rewritten.media.get_mut(plan.media_index) {
        section.set_rtcp_mux(plan.offerer_rtcp_mux);
    }
    Ok((plan, rewritten))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TRUNK_OFFER: &[u8] = b"v=0\r\no=gw 1 1 IN IP4 198.51.100.7\r\ns=-\r\nc=IN IP4 198.51.100.7\r\nt=0 0\r\n\
m=audio 40000 RTP/AVP 18 0 8 101\r\na=rtpmap:18 G729/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\n";

    fn agent_side() -> SocketAddr {
        "203.0.113.1:20002".parse().expect("addr")
    }

    fn trunk_side() -> SocketAddr {
        "203.0.113.1:20000".parse().expect("addr")
    }

    #[test]
    fn offer_is_trimmed_and_readdressed() {
        let (plan, bytes) =
            anchor_offer(TRUNK_OFFER, agent_side(), &Codec::ALL).expect("acceptable");
        let text = String::from_utf8(bytes).expect("utf8");
        assert!(text.contains("m=audio 20002 RTP/AVP 0 8 101\r\n"), "{text}");
        assert!(
            !text.contains("G729") && !text.contains("198.51.100.7"),
            "{text}"
        );
        assert_eq!(
            plan.offered_codecs,
            vec![(Codec::Pcmu, 0), (Codec::Pcma, 8)]
        );
        assert_eq!(plan.offered_telephone_event, Some(101));
        assert_eq!(
            plan.offerer_rtp,
            Some("198.51.100.7:40000".parse().expect("addr"))
        );
    }

    #[test]
    fn offer_without_common_codec_is_488() {
        let offer = b"v=0\r\no=gw 1 1 IN IP4 198.51.100.7\r\ns=-\r\nc=IN IP4 198.51.100.7\r\nt=0 0\r\nm=audio 40000 RTP/AVP 18\r\n";
        let err = anchor_offer(offer, agent_side(), &Codec::ALL).expect_err("G.729 only");
        assert!(matches!(err, MediaError::NotAcceptable(_)));
        assert_eq!(err.sip_status(), 488);
        let err = anchor_offer(b"not sdp", agent_side(), &Codec::ALL).expect_err("garbage");
        assert_eq!(err.sip_status(), 400);
    }

    #[test]
    fn answer_completes_the_plan() {
        let (plan, _) = anchor_offer(TRUNK_OFFER, agent_side(), &Codec::ALL).expect("acceptable");
        let answer =
            b"v=0\r\no=phone 9 9 IN IP4 192.168.1.20\r\ns=-\r\nc=IN IP4 192.168.1.20\r\nt=0 0\r\n\
m=audio 16384 RTP/AVP 8 101\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\n";
        let (plan, bytes) = anchor_answer(&plan, answer, trunk_side()).expect("valid answer");
        assert_eq!(plan.codec, Some((Codec::Pcma, 8)));
        assert_eq!(plan.answered_telephone_event, Some(101));
        assert_eq!(
            plan.answerer_rtp,
            Some("192.168.1.20:16384".parse().expect("addr"))
        );
        let text = String::from_utf8(bytes).expect("utf8");
        assert!(
            text.contains("c=IN IP4 203.0.113.1\r\n") && text.contains("m=audio 20000 "),
            "{text}"
        );
    }

    const MUX_ANSWER: &[u8] =
        b"v=0\r\no=phone 9 9 IN IP4 192.168.1.20\r\ns=-\r\nc=IN IP4 192.168.1.20\r\nt=0 0\r\n\
m=audio 16384 RTP/AVP 0\r\na=rtcp-mux\r\n";
    const PLAIN_ANSWER: &[u8] =
        b"v=0\r\no=phone 9 9 IN IP4 192.168.1.20\r\ns=-\r\nc=IN IP4 192.168.1.20\r\nt=0 0\r\n\
m=audio 16384 RTP/AVP 0\r\n";

    fn mux_offer() -> Vec<u8> {
        let mut offer = TRUNK_OFFER.to_vec();
        offer.extend_from_slice(b"a=rtcp-mux\r\n");
        offer
    }

    #[test]
    fn an_offered_rtcp_mux_is_answered_to_the_offerer_whatever_the_answerer_chose() {
        let (plan, offer) = anchor_offer(&mux_offer(), agent_side(), &Codec::ALL).expect("ok");
        assert!(plan.offerer_rtcp_mux);
        let offer = String::from_utf8(offer).expect("utf8");
        assert!(offer.contains("a=rtcp-mux\r\n"), "offered on: {offer}");

        // The answerer declines: its leg keeps RTCP apart, the offerer's answer still muxes.
        let (declined, bytes) = anchor_answer(&plan, PLAIN_ANSWER, trunk_side()).expect("ok");
        assert!(!declined.answerer_rtcp_mux);
        let text = String::from_utf8(bytes).expect("utf8");
        assert_eq!(text.matches("a=rtcp-mux\r\n").count(), 1, "{text}");

        // The answerer accepts: both legs multiplex.
        let (accepted, bytes) = anchor_answer(&plan, MUX_ANSWER, trunk_side()).expect("ok");
        assert!(accepted.answerer_rtcp_mux);
        let text = String::from_utf8(bytes).expect("utf8");
        assert_eq!(text.matches("a=rtcp-mux\r\n").count(), 1, "{text}");
    }

    #[test]
    fn rtcp_mux_in_an_answer_to_an_offer_without_it_is_ignored() {
        let (plan, _) = anchor_offer(TRUNK_OFFER, agent_side(), &Codec::ALL).expect("ok");
        assert!(!plan.offerer_rtcp_mux);
        let (checked, bytes) = anchor_answer(&plan, MUX_ANSWER, trunk_side()).expect("ok");
        assert!(
            !checked.answerer_rtcp_mux,
            "RFC 5761 §5.1.1: not offered, not agreed"
        );
        let text = String::from_utf8(bytes).expect("utf8");
        assert!(!text.contains("rtcp-mux"), "{text}");
    }

    #[test]
    fn answer_with_unoffered_codec_or_rejected_stream_fails() {
        let (plan, _) = anchor_offer(TRUNK_OFFER, agent_side(), &Codec::ALL).expect("acceptable");
        let g729 = b"v=0\r\no=p 9 9 IN IP4 10.0.0.9\r\ns=-\r\nc=IN IP4 10.0.0.9\r\nm=audio 16384 RTP/AVP 18\r\n";
        assert_eq!(
            anchor_answer(&plan, g729, trunk_side()).map_err(|e| e.sip_status()),
            Err(488)
        );
        let rejected = b"v=0\r\no=p 9 9 IN IP4 10.0.0.9\r\ns=-\r\nc=IN IP4 10.0.0.9\r\nm=audio 0 RTP/AVP 0\r\n";
        assert!(anchor_answer(&plan, rejected, trunk_side()).is_err());
    }
}
