//! WebRTC agent legs as call control sees them: an agent whose phone registered over a
//! WebSocket flow (a browser) is offered `UDP/TLS/RTP/SAVPF` with ICE-lite credentials, our
//! DTLS fingerprint and `rtcp-mux`, made by a [`media::WebRtcLeg`] that is then handed to the
//! call's media session.
//!
//! The rest of call control keeps negotiating plain RTP, as with SDES legs: the browser's
//! answer configures the leg (ICE credentials, fingerprint, DTLS role) and is turned into the
//! plain `RTP/AVP` answer it amounts to (codec, telephone-event, direction), which the usual
//! checks accept or refuse against the call's plain agent offer.

use super::call::CallNumber;
use media::sdp::{Attribute, Connection, Direction, SessionDescription};
use media::{DtlsIdentity, MediaPlan, PortPair, WebRtcAudio, WebRtcLeg};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

/// The attributes of the browser's answer that mean something to the plain negotiation.
const PLAIN_ATTRIBUTES: &[&str] = &[
    "rtpmap", "fmtp", "ptime", "sendrecv", "sendonly", "recvonly", "inactive",
];

/// The WebRTC legs of all calls, and the process's DTLS certificate.
#[derive(Debug)]
pub struct WebRtcLegs {
    /// Made on the first WebRTC offer: a process with no browser agents never makes one.
    identity: Option<DtlsIdentity>,
    /// Where the agent sockets are bound (the legs' local address).
    bind_ip: IpAddr,
    /// Host candidates: `[media] address`, and `public_address` when set.
    candidate_ips: Vec<IpAddr>,
    /// Offers made and not yet answered, by call (one agent is rung at a time).
    offered: HashMap<CallNumber, Box<WebRtcLeg>>,
    /// What each answered browser leg agreed, to answer its re-offers (hold and resume).
    agreed: HashMap<CallNumber, Agreed>,
}

/// The parameters a browser leg agreed in its answer. A browser's later offer (JsSIP's hold
/// and resume) that keeps them changes only the direction; the leg in the media session
/// keeps its ICE and DTLS state, so the answer is our first offer again with the role taken.
#[derive(Debug)]
struct Agreed {
    /// Our offer, as the browser accepted it.
    our_offer: String,
    /// The browser's ICE credentials and DTLS fingerprint.
    ice_ufrag: String,
    ice_pwd: String,
    fingerprint: String,
    /// The DTLS role Switchboard took (`passive` when the browser chose `active`).
    our_setup: &'static str,
    /// The `o=` version of our last SDP to this browser.
    version: u64,
}

/// An ICE or DTLS attribute of an SDP: the audio section's, else the session's.
fn transport_attribute(sdp: &SessionDescription, name: &str) -> Option<String> {
    sdp.media
        .iter()
        .filter(|m| m.media == "audio" && m.port != 0)
        .find_map(|m| m.attribute_values(name).next())
        .or_else(|| {
            sdp.attributes
                .iter()
                .find(|a| a.name == name)
                .and_then(|a| a.value.as_deref())
        })
        .map(|value| value.trim().to_string())
}

impl WebRtcLegs {
    /// Legs whose host candidates are `address` and `public_address` (if any and different).
    pub fn new(address: IpAddr, public_address: Option<IpAddr>) -> WebRtcLegs {
        let mut candidate_ips = vec![address];
        candidate_ips.extend(public_address.filter(|public| *public != address));
        WebRtcLegs {
            identity: None,
            bind_ip: address,
            candidate_ips,
            offered: HashMap::new(),
            agreed: HashMap::new(),
        }
    }

    /// Switchboard's offer to a browser agent for `call`: the codecs and telephone-event of
    /// the call's plain agent offer (`plan`), at the agent ports. Replaces an earlier offer of
    /// the same call (a new agent is rung).
    pub fn offer(
        &mut self,
        now: Instant,
        call: CallNumber,
        agent_ports: PortPair,
        plan: &MediaPlan,
    ) -> Result<Vec<u8>, String> {
        let identity = match &self.identity {
            Some(identity) => identity.clone(),
            None => {
                let identity = DtlsIdentity::generate().map_err(|error| error.to_string())?;
                self.identity = Some(identity.clone());
                identity
            }
        };
        let port = agent_ports.rtp();
        let candidates: Vec<SocketAddr> = self
            .candidate_ips
            .iter()
            .map(|ip| SocketAddr::new(*ip, port))
            .collect();
        let audio = WebRtcAudio {
            codecs: plan.offered_codecs.clone(),
            telephone_event: plan.offered_telephone_event,
        };
        let leg = WebRtcLeg::offer(
            now,
            &identity,
            SocketAddr::new(self.bind_ip, port),
            &candidates,
            &audio,
        )
        .map_err(|error| error.to_string())?;
        let sdp = leg.offer_sdp().as_bytes().to_vec();
        self.agreed.remove(&call);
        self.offered.insert(call, Box::new(leg));
        Ok(sdp)
    }

    /// Whether the agent being rung for `call` is a browser.
    pub fn is_offered(&self, call: CallNumber) -> bool {
        self.offered.contains_key(&call)
    }

    /// The browser's answer for `call`: configures the leg and returns it (for the media
    /// session) with the plain answer it amounts to; the plain answer's address is
    /// `placeholder` (ICE decides where media really goes; the session latches on it).
    /// `Err` with the reason (for the log and the 488) when the answer is unusable; the leg
    /// is dropped then.
    pub fn answered(
        &mut self,
        now: Instant,
        call: CallNumber,
        answer: &[u8],
        placeholder: IpAddr,
    ) -> Result<(Box<WebRtcLeg>, Vec<u8>), String> {
        let mut leg = self
            .offered
            .remove(&call)
            .ok_or_else(|| "no WebRTC offer for this call".to_string())?;
        let text = std::str::from_utf8(answer)
            .map_err(|_| "the WebRTC answer is not UTF-8 text".to_string())?;
        leg.handle_answer(now, text)
            .map_err(|error| format!("the WebRTC answer was refused: {error}"))?;
        let plain = plain_answer(answer, placeholder)?;
        if let Some(agreed) = agreement(leg.offer_sdp(), answer) {
            self.agreed.insert(call, agreed);
        }
        Ok((leg, plain))
    }

    /// Whether `call`'s agent is a browser whose answer was accepted.
    pub fn is_answered(&self, call: CallNumber) -> bool {
        self.agreed.contains_key(&call)
    }

    /// A browser's offer inside the call's dialog (hold, resume): when it keeps the ICE
    /// credentials and DTLS fingerprint agreed, the plain `RTP/AVP` offer it amounts to, at
    /// `placeholder` port 9 (as the first answer was). `Err` with the Warning text of a 488
    /// for an ICE restart, a new certificate, or an offer that is not a WebRTC one.
    pub fn reoffer(
        &self,
        call: CallNumber,
        offer: &[u8],
        placeholder: IpAddr,
    ) -> Result<Vec<u8>, &'static str> {
        let agreed = self
            .agreed
            .get(&call)
            .ok_or("no WebRTC leg was agreed on this call")?;
        let parsed =
            SessionDescription::parse(offer).map_err(|_| "the WebRTC re-offer is not SDP")?;
        let ufrag = transport_attribute(&parsed, "ice-ufrag");
        let pwd = transport_attribute(&parsed, "ice-pwd");
        if ufrag.as_deref() != Some(agreed.ice_ufrag.as_str())
            || pwd.as_deref() != Some(agreed.ice_pwd.as_str())
        {
            return Err("ICE restart (new ice-ufrag/ice-pwd) is not supported mid-call");
        }
        let fingerprint = transport_attribute(&parsed, "fingerprint");
        if !fingerprint.is_some_and(|f| f.eq_ignore_ascii_case(&agreed.fingerprint)) {
            return Err("a new DTLS fingerprint is not supported mid-call");
        }
        plain_sdp(offer, placeholder, "offer").map_err(|_| "the WebRTC re-offer accepts no audio")
    }

    /// Our answer to a browser's re-offer accepted by [`WebRtcLegs::reoffer`]: our first
    /// offer with the role Switchboard took, the call's codec (`codec` payload type) and
    /// `telephone_event`, `direction`, and the next `o=` version.
    pub fn answer_again(
        &mut self,
        call: CallNumber,
        codec: (media::Codec, u8),
        telephone_event: Option<u8>,
        direction: Direction,
    ) -> Result<Vec<u8>, &'static str> {
        let agreed = self
            .agreed
            .get_mut(&call)
            .ok_or("no WebRTC leg was agreed on this call")?;
        let mut sdp = SessionDescription::parse(agreed.our_offer.as_bytes())
            .map_err(|_| "our WebRTC offer does not parse")?;
        agreed.version = agreed.version.max(sdp.origin.session_version) + 1;
        sdp.origin.session_version = agreed.version;
        let setup = agreed.our_setup;
        let audio = sdp
            .media
            .iter_mut()
            .find(|m| m.media == "audio")
            .ok_or("our WebRTC offer has no audio")?;
        let (kind, payload_type) = codec;
        audio.formats = std::iter::once(payload_type)
            .chain(telephone_event)
            .map(|pt| pt.to_string())
            .collect();
        audio.attributes.retain(|a| {
            !matches!(
                a.name.as_str(),
                "rtpmap"
                    | "fmtp"
                    | "rtcp-fb"
                    | "setup"
                    | "sendrecv"
                    | "sendonly"
                    | "recvonly"
                    | "inactive"
            )
        });
        let name = match kind {
            media::Codec::Pcmu => "PCMU",
            media::Codec::Pcma => "PCMA",
        };
        audio.attributes.push(Attribute::valued("setup", setup));
        audio.attributes.push(Attribute::flag(direction.as_str()));
        audio.attributes.push(Attribute::valued(
            "rtpmap",
            format!("{payload_type} {name}/8000"),
        ));
        if let Some(pt) = telephone_event {
            audio.attributes.push(Attribute::valued(
                "rtpmap",
                format!("{pt} telephone-event/8000"),
            ));
            audio
                .attributes
                .push(Attribute::valued("fmtp", format!("{pt} 0-16")));
        }
        Ok(sdp.to_bytes())
    }

    /// The call ended or its agent attempt failed: an unanswered offer is dropped.
    pub fn forget(&mut self, call: CallNumber) {
        self.offered.remove(&call);
        self.agreed.remove(&call);
    }
}

/// What a browser agreed by answering `our_offer` with `answer`; `None` when the answer
/// lacks ICE credentials or a fingerprint (the leg was refused before this anyway).
fn agreement(our_offer: &str, answer: &[u8]) -> Option<Agreed> {
    let parsed = SessionDescription::parse(answer).ok()?;
    let our_setup = match transport_attribute(&parsed, "setup").as_deref() {
        Some("passive") => "active",
        _ => "passive",
    };
    let version = SessionDescription::parse(our_offer.as_bytes())
        .map(|sdp| sdp.origin.session_version)
        .unwrap_or(1);
    Some(Agreed {
        our_offer: our_offer.to_string(),
        ice_ufrag: transport_attribute(&parsed, "ice-ufrag")?,
        ice_pwd: transport_attribute(&parsed, "ice-pwd")?,
        fingerprint: transport_attribute(&parsed, "fingerprint")?,
        our_setup,
        version,
    })
}

/// Whether `offer` is a WebRTC one (DTLS-SRTP: `UDP/TLS/RTP/SAVPF` or `TCP/TLS/RTP/SAVPF`).
pub fn is_webrtc_offer(offer: &[u8]) -> bool {
    SessionDescription::parse(offer)
        .is_ok_and(|sdp| sdp.media.iter().any(|m| m.proto.contains("TLS/RTP/SAVP")))
}

/// The plain `RTP/AVP` answer a browser's `UDP/TLS/RTP/SAVPF` answer amounts to: its first
/// audio section's codecs, telephone-event and direction, at `placeholder` port 9.
fn plain_answer(answer: &[u8], placeholder: IpAddr) -> Result<Vec<u8>, String> {
    plain_sdp(answer, placeholder, "answer")
}

/// The plain `RTP/AVP` description a WebRTC `kind` (offer or answer) amounts to.
fn plain_sdp(sdp: &[u8], placeholder: IpAddr, kind: &str) -> Result<Vec<u8>, String> {
    let mut parsed = SessionDescription::parse(sdp)
        .map_err(|error| format!("the WebRTC {kind} is not SDP: {error}"))?;
    let index = parsed
        .media
        .iter()
        .position(|m| m.media == "audio" && m.port != 0)
        .ok_or_else(|| format!("the WebRTC {kind} accepts no audio"))?;
    let connection = Connection {
        address_type: match placeholder {
            IpAddr::V4(_) => "IP4".to_string(),
            IpAddr::V6(_) => "IP6".to_string(),
        },
        address: placeholder.to_string(),
    };
    parsed.connection = Some(connection);
    parsed.attributes.clear();
    let mut audio = parsed.media.swap_remove(index);
    audio.proto = "RTP/AVP".to_string();
    audio.port = 9;
    audio.connection = None;
    audio.bandwidths.clear();
    audio
        .attributes
        .retain(|attribute| PLAIN_ATTRIBUTES.contains(&attribute.name.as_str()));
    if audio.explicit_direction().is_none() {
        audio.attributes.push(Attribute::flag("sendrecv"));
    }
    parsed.media = vec![audio];
    Ok(parsed.to_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use media::{Codec, PortPool};

    fn agent_ports() -> PortPair {
        PortPool::new(20002, 20003)
            .expect("range")
            .allocate()
            .expect("a pair")
    }

    fn plan(codecs: Vec<(Codec, u8)>, telephone_event: Option<u8>) -> MediaPlan {
        let offer = format!(
            "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 30000 RTP/AVP {}{}\r\n{}",
            codecs
                .iter()
                .map(|(_, pt)| pt.to_string())
                .collect::<Vec<_>>()
                .join(" "),
            telephone_event.map(|pt| format!(" {pt}")).unwrap_or_default(),
            telephone_event
                .map(|pt| format!("a=rtpmap:{pt} telephone-event/8000\r\n"))
                .unwrap_or_default(),
        );
        let (plan, _) = media::anchor_offer(
            offer.as_bytes(),
            "127.0.0.1:40000".parse().expect("addr"),
            &Codec::ALL,
        )
        .expect("plan");
        plan
    }

    const BROWSER_ANSWER: &str = "v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n\
a=group:BUNDLE 0\r\na=msid-semantic: WMS\r\nm=audio 9 UDP/TLS/RTP/SAVPF 8 101\r\nc=IN IP4 0.0.0.0\r\n\
a=rtcp:9 IN IP4 0.0.0.0\r\na=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\na=ice-options:trickle\r\n\
a=fingerprint:sha-256 00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF\r\n\
a=setup:active\r\na=mid:0\r\na=sendrecv\r\na=rtcp-mux\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\n\
a=ssrc:1 cname:x\r\n";

    #[test]
    fn a_browser_is_offered_the_calls_codecs_over_dtls_srtp_at_the_agent_port() {
        let mut legs = WebRtcLegs::new(
            "127.0.0.1".parse().expect("ip"),
            Some("203.0.113.5".parse().expect("ip")),
        );
        let ports = agent_ports();
        let offer = legs
            .offer(
                Instant::now(),
                7,
                ports,
                &plan(vec![(Codec::Pcma, 8)], Some(101)),
            )
            .expect("offer");
        let offer = String::from_utf8(offer).expect("text");
        assert!(
            offer.contains("m=audio 9 UDP/TLS/RTP/SAVPF 8 101\r\n"),
            "{offer}"
        );
        assert!(offer.contains("127.0.0.1 20002 typ host"), "{offer}");
        assert!(offer.contains("203.0.113.5 20002 typ host"), "{offer}");
        assert!(offer.contains("a=setup:actpass"), "{offer}");
        assert!(legs.is_offered(7));
        legs.forget(7);
        assert!(!legs.is_offered(7));
    }

    #[test]
    fn one_certificate_serves_every_offer() {
        let mut legs = WebRtcLegs::new("127.0.0.1".parse().expect("ip"), None);
        let ports = agent_ports();
        let fingerprint = |sdp: Vec<u8>| {
            String::from_utf8(sdp)
                .expect("text")
                .lines()
                .find(|line| line.starts_with("a=fingerprint:"))
                .map(str::to_string)
                .expect("fingerprint line")
        };
        let plan = plan(vec![(Codec::Pcmu, 0)], None);
        let first = fingerprint(legs.offer(Instant::now(), 1, ports, &plan).expect("offer"));
        let second = fingerprint(legs.offer(Instant::now(), 2, ports, &plan).expect("offer"));
        assert_eq!(first, second);
    }

    #[test]
    fn the_browsers_answer_becomes_the_plain_answer_it_amounts_to() {
        let plain = plain_answer(BROWSER_ANSWER.as_bytes(), "192.0.2.9".parse().expect("ip"))
            .expect("plain");
        let plain = String::from_utf8(plain).expect("text");
        assert!(plain.contains("c=IN IP4 192.0.2.9\r\n"), "{plain}");
        assert!(plain.contains("m=audio 9 RTP/AVP 8 101\r\n"), "{plain}");
        assert!(plain.contains("a=rtpmap:8 PCMA/8000"), "{plain}");
        assert!(plain.contains("a=sendrecv"), "{plain}");
        for gone in [
            "ice-ufrag",
            "fingerprint",
            "setup",
            "BUNDLE",
            "rtcp-mux",
            "ssrc",
            "0.0.0.0",
        ] {
            assert!(!plain.contains(gone), "{gone} left in:\n{plain}");
        }
        // The plain answer fits the plain offer it stands for.
        let offer_plan = plan(vec![(Codec::Pcma, 8)], Some(101));
        let (checked, _) = media::anchor_answer(
            &offer_plan,
            plain.as_bytes(),
            "127.0.0.1:30000".parse().expect("addr"),
        )
        .expect("answer fits the offer");
        assert_eq!(checked.codec, Some((Codec::Pcma, 8)));
        assert_eq!(checked.answered_telephone_event, Some(101));
    }

    #[test]
    fn webrtc_offers_are_told_from_plain_and_sdes_ones() {
        assert!(is_webrtc_offer(BROWSER_ANSWER.as_bytes()));
        let plain = BROWSER_ANSWER.replace("UDP/TLS/RTP/SAVPF", "RTP/AVP");
        assert!(!is_webrtc_offer(plain.as_bytes()));
        let sdes = BROWSER_ANSWER.replace("UDP/TLS/RTP/SAVPF", "RTP/SAVP");
        assert!(!is_webrtc_offer(sdes.as_bytes()));
        assert!(!is_webrtc_offer(b"not sdp"));
    }

    #[test]
    fn unusable_answers_are_refused_with_a_reason() {
        let mut legs = WebRtcLegs::new("127.0.0.1".parse().expect("ip"), None);
        let placeholder: IpAddr = "192.0.2.9".parse().expect("ip");
        assert!(legs
            .answered(Instant::now(), 3, BROWSER_ANSWER.as_bytes(), placeholder)
            .expect_err("nothing offered")
            .contains("no WebRTC offer"));
        let ports = agent_ports();
        let plan = plan(vec![(Codec::Pcma, 8)], Some(101));
        legs.offer(Instant::now(), 3, ports, &plan).expect("offer");
        let error = legs
            .answered(Instant::now(), 3, b"not sdp at all", placeholder)
            .expect_err("refused");
        assert!(error.contains("WebRTC answer"), "{error}");
        assert!(!legs.is_offered(3), "a refused answer drops the leg");
        let rejected = BROWSER_ANSWER.replace("m=audio 9 ", "m=audio 0 ");
        assert!(plain_answer(rejected.as_bytes(), placeholder)
            .expect_err("no audio")
            .contains("no audio"));
    }

    /// JsSIP's hold: the same ICE credentials and fingerprint, `a=setup:actpass`, sendonly.
    fn browser_reoffer(direction: &str) -> String {
        BROWSER_ANSWER
            .replace("a=setup:active", "a=setup:actpass")
            .replace("a=sendrecv", &format!("a={direction}"))
            .replace(" 2 IN IP4", " 3 IN IP4")
            .replace("SAVPF 8 101", "SAVPF 111 8 0 101")
            + "a=rtpmap:111 opus/48000/2\r\na=rtpmap:0 PCMU/8000\r\n"
    }

    #[test]
    fn a_browsers_hold_with_the_same_ice_and_dtls_is_answered_with_our_webrtc_sdp() {
        let mut legs = WebRtcLegs::new("127.0.0.1".parse().expect("ip"), None);
        let placeholder: IpAddr = "192.0.2.9".parse().expect("ip");
        let plan = plan(vec![(Codec::Pcma, 8)], Some(101));
        let offer = legs
            .offer(Instant::now(), 5, agent_ports(), &plan)
            .expect("offer");
        let offer = String::from_utf8(offer).expect("text");
        legs.answered(Instant::now(), 5, BROWSER_ANSWER.as_bytes(), placeholder)
            .expect("answer accepted");
        assert!(legs.is_answered(5));

        let plain = legs
            .reoffer(5, browser_reoffer("sendonly").as_bytes(), placeholder)
            .expect("same ICE and DTLS");
        let plain = String::from_utf8(plain).expect("text");
        assert!(
            plain.contains("m=audio 9 RTP/AVP 111 8 0 101\r\n"),
            "{plain}"
        );
        assert!(plain.contains("a=sendonly"), "{plain}");
        assert!(!plain.contains("ice-ufrag"), "{plain}");

        let answer = legs
            .answer_again(5, (Codec::Pcma, 8), Some(101), Direction::RecvOnly)
            .expect("answer");
        let answer = String::from_utf8(answer).expect("text");
        let line = |sdp: &str, prefix: &str| {
            sdp.lines()
                .find(|l| l.starts_with(prefix))
                .map(str::to_string)
                .expect(prefix)
        };
        // Our ICE credentials and certificate, unchanged; the role we took (the browser was
        // active); the direction mirrored; only the call's codec and events.
        for kept in ["a=ice-ufrag:", "a=ice-pwd:", "a=fingerprint:", "a=mid:"] {
            assert_eq!(line(&answer, kept), line(&offer, kept), "{answer}");
        }
        assert!(answer.contains("a=setup:passive"), "{answer}");
        assert!(!answer.contains("actpass"), "{answer}");
        assert!(answer.contains("a=recvonly"), "{answer}");
        assert!(!answer.contains("a=sendrecv"), "{answer}");
        assert!(
            answer.contains("m=audio 9 UDP/TLS/RTP/SAVPF 8 101\r\n"),
            "{answer}"
        );
        assert!(answer.contains("a=rtpmap:8 PCMA/8000"), "{answer}");
        let version = |sdp: &str| {
            line(sdp, "o=")
                .split(' ')
                .nth(2)
                .and_then(|v| v.parse::<u64>().ok())
                .expect("version")
        };
        assert_eq!(version(&answer), version(&offer) + 1);
        let resumed = legs
            .answer_again(5, (Codec::Pcma, 8), Some(101), Direction::SendRecv)
            .expect("answer");
        let resumed = String::from_utf8(resumed).expect("text");
        assert!(resumed.contains("a=sendrecv"), "{resumed}");
        assert_eq!(version(&resumed), version(&offer) + 2);
    }

    #[test]
    fn an_ice_restart_or_a_new_certificate_is_refused() {
        let mut legs = WebRtcLegs::new("127.0.0.1".parse().expect("ip"), None);
        let placeholder: IpAddr = "192.0.2.9".parse().expect("ip");
        let plan = plan(vec![(Codec::Pcma, 8)], Some(101));
        assert!(legs
            .reoffer(6, browser_reoffer("sendonly").as_bytes(), placeholder)
            .expect_err("nothing agreed")
            .contains("no WebRTC leg"));
        legs.offer(Instant::now(), 6, agent_ports(), &plan)
            .expect("offer");
        legs.answered(Instant::now(), 6, BROWSER_ANSWER.as_bytes(), placeholder)
            .expect("answer accepted");
        let restart = browser_reoffer("sendrecv").replace("ice-ufrag:abcd", "ice-ufrag:wxyz");
        assert!(legs
            .reoffer(6, restart.as_bytes(), placeholder)
            .expect_err("ICE restart")
            .contains("ICE restart"));
        let new_password = browser_reoffer("sendrecv").replace("ice-pwd:abcdef", "ice-pwd:zzzzzz");
        assert!(legs
            .reoffer(6, new_password.as_bytes(), placeholder)
            .expect_err("ICE restart")
            .contains("ICE restart"));
        let new_certificate = browser_reoffer("sendrecv").replace("00:11:22", "FF:11:22");
        assert!(legs
            .reoffer(6, new_certificate.as_bytes(), placeholder)
            .expect_err("new certificate")
            .contains("fingerprint"));
        legs.forget(6);
        assert!(
            !legs.is_answered(6),
            "the call's end forgets what was agreed"
        );
    }
}
