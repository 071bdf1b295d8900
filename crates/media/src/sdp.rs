//! A small, strict-enough SDP (RFC 4566 / RFC 8866) parser and writer, plus RFC 3264
//! offer/answer negotiation for G.711 audio and the rewrite that anchors media on Switchboard.
//!
//! The parser keeps every line it does not interpret, so a rewritten SDP loses nothing the
//! peer sent except what anchoring must remove (ICE candidates, which would let the phones
//! bypass the relay). It never panics: bad input is an [`SdpError`] naming the line.

use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};

use crate::codec::Codec;

/// Why an SDP body could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SdpError {
    /// The body is not UTF-8 text.
    #[error("SDP is not valid UTF-8")]
    NotUtf8,
    /// A line is not of the form `x=value`.
    #[error("SDP line {line}: expected `<type>=<value>`")]
    MalformedLine {
        /// 1-based line number.
        line: usize,
    },
    /// A required line is missing.
    #[error("SDP is missing the `{0}=` line")]
    Missing(char),
    /// A line's value could not be understood.
    #[error("SDP line {line}: bad `{kind}=` value: {reason}")]
    BadValue {
        /// 1-based line number.
        line: usize,
        /// The line type letter.
        kind: char,
        /// What was wrong.
        reason: &'static str,
    },
}

/// An `o=` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// User name (`-` when none).
    pub username: String,
    /// Session id, kept as text: RFC 4566 only asks for a numeric string, peers send 64-bit+.
    pub session_id: String,
    /// Session version, incremented by the owner on every change.
    pub session_version: u64,
    /// The origin's unicast address (text: may be a host name).
    pub address: String,
    /// `IP4` or `IP6`.
    pub address_type: String,
}

/// A `c=` line (`IN IP4 192.0.2.1`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    /// `IP4` or `IP6`.
    pub address_type: String,
    /// Connection address as written (may carry a `/ttl` suffix for multicast, kept as-is).
    pub address: String,
}

impl Connection {
    /// The address as an IP, if it is a literal unicast address.
    pub fn ip(&self) -> Option<IpAddr> {
        self.address.split('/').next()?.parse().ok()
    }

    /// True for the RFC 2543 hold address `0.0.0.0`.
    pub fn is_null(&self) -> bool {
        self.ip().is_some_and(|ip| ip.is_unspecified())
    }

    fn for_ip(ip: IpAddr) -> Connection {
        Connection {
            address_type: address_type_of(ip).to_string(),
            address: ip.to_string(),
        }
    }
}

fn address_type_of(ip: IpAddr) -> &'static str {
    match ip {
        IpAddr::V4(_) => "IP4",
        IpAddr::V6(_) => "IP6",
    }
}

/// Media direction attribute (RFC 3264 §5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Send and receive (the default when none is given).
    SendRecv,
    /// Only send.
    SendOnly,
    /// Only receive.
    RecvOnly,
    /// Neither (held both ways).
    Inactive,
}

impl Direction {
    /// The direction an answerer uses to answer an offer with this direction.
    pub fn answer(self) -> Direction {
        match self {
            Direction::SendRecv => Direction::SendRecv,
            Direction::SendOnly => Direction::RecvOnly,
            Direction::RecvOnly => Direction::SendOnly,
            Direction::Inactive => Direction::Inactive,
        }
    }

    /// The attribute name.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::SendRecv => "sendrecv",
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::Inactive => "inactive",
        }
    }

    fn from_attribute(name: &str) -> Option<Direction> {
        match name {
            "sendrecv" => Some(Direction::SendRecv),
            "sendonly" => Some(Direction::SendOnly),
            "recvonly" => Some(Direction::RecvOnly),
            "inactive" => Some(Direction::Inactive),
            _ => None,
        }
    }
}

/// One `a=` attribute, `name` or `name:value`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attribute {
    /// Attribute name.
    pub name: String,
    /// Value after the first `:`, if any.
    pub value: Option<String>,
}

impl Attribute {
    /// A flag attribute (`a=name`).
    pub fn flag(name: &str) -> Attribute {
        Attribute {
            name: name.to_string(),
            value: None,
        }
    }

    /// A valued attribute (`a=name:value`).
    pub fn valued(name: &str, value: impl Into<String>) -> Attribute {
        Attribute {
            name: name.to_string(),
            value: Some(value.into()),
        }
    }
}

/// An `a=rtpmap:` mapping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtpMap {
    /// Payload type.
    pub payload_type: u8,
    /// Encoding name as written (`PCMU`, `telephone-event`).
    pub encoding: String,
    /// Clock rate in Hz.
    pub clock_rate: u32,
    /// Channel count, if written.
    pub channels: Option<u8>,
}

/// An `a=rtcp:` attribute (RFC 3605).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtcpAttribute {
    /// RTCP port.
    pub port: u16,
    /// Optional explicit address.
    pub connection: Option<Connection>,
}

/// One media section, from its `m=` line to the next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaDescription {
    /// Media type (`audio`, `video`, ...).
    pub media: String,
    /// Transport port; 0 means the stream is rejected/disabled.
    pub port: u16,
    /// The `/<number of ports>` suffix, if present.
    pub port_count: Option<u16>,
    /// Transport protocol (`RTP/AVP`, `RTP/SAVP`, ...).
    pub proto: String,
    /// Format list (payload types for RTP), as written.
    pub formats: Vec<String>,
    /// Media-level `i=` line, kept verbatim.
    pub title: Option<String>,
    /// Media-level `c=` line.
    pub connection: Option<Connection>,
    /// Media-level `b=` lines, verbatim values.
    pub bandwidths: Vec<String>,
    /// Every `a=` line, in order.
    pub attributes: Vec<Attribute>,
}

impl MediaDescription {
    /// All well-formed `a=rtpmap:` mappings (malformed ones are ignored, not fatal).
    pub fn rtpmaps(&self) -> impl Iterator<Item = RtpMap> + '_ {
        self.attribute_values("rtpmap").filter_map(parse_rtpmap)
    }

    /// The `a=fmtp:` parameters for a payload type.
    pub fn fmtp(&self, payload_type: u8) -> Option<&str> {
        self.attribute_values("fmtp").find_map(|value| {
            let (pt, params) = value.split_once(' ')?;
            (pt.trim().parse::<u8>().ok()? == payload_type).then_some(params.trim())
        })
    }

    /// The direction attribute, `sendrecv` when none is present (RFC 3264 §5.1).
    pub fn direction(&self) -> Direction {
        self.explicit_direction().unwrap_or(Direction::SendRecv)
    }

    /// The direction attribute if one is written.
    pub fn explicit_direction(&self) -> Option<Direction> {
        self.attributes
            .iter()
            .filter(|a| a.value.is_none())
            .find_map(|a| Direction::from_attribute(&a.name))
    }

    /// The `a=rtcp:` attribute, if present and well-formed.
    pub fn rtcp(&self) -> Option<RtcpAttribute> {
        let value = self.attribute_values("rtcp").next()?;
        let mut parts = value.split_whitespace();
        let port = parts.next()?.parse().ok()?;
        let connection = match (parts.next(), parts.next(), parts.next()) {
            (Some("IN"), Some(kind), Some(address)) => Some(Connection {
                address_type: kind.to_string(),
                address: address.to_string(),
            }),
            _ => None,
        };
        Some(RtcpAttribute { port, connection })
    }

    /// Whether the section carries `a=rtcp-mux` (RFC 5761 §5.1.1): RTCP on the RTP port.
    pub fn rtcp_mux(&self) -> bool {
        self.attributes
            .iter()
            .any(|a| a.name == RTCP_MUX && a.value.is_none())
    }

    /// Adds or removes `a=rtcp-mux`, so the section says `mux` and nothing else.
    pub fn set_rtcp_mux(&mut self, mux: bool) {
        self.attributes.retain(|a| a.name != RTCP_MUX);
        if mux {
            self.attributes.push(Attribute::flag(RTCP_MUX));
        }
    }

    /// The `a=ptime:` value in milliseconds, if present.
    pub fn ptime(&self) -> Option<u32> {
        self.attribute_values("ptime")
            .next()
            .and_then(|v| v.trim().parse().ok())
    }

    /// Values of every attribute called `name`.
    pub fn attribute_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.attributes
            .iter()
            .filter(move |a| a.name == name)
            .filter_map(|a| a.value.as_deref())
    }

    /// The payload types in the `m=` line that are numbers (others are ignored).
    pub fn payload_types(&self) -> impl Iterator<Item = u8> + '_ {
        self.formats.iter().filter_map(|f| f.parse().ok())
    }

    /// Sets the direction attribute, replacing any existing one.
    pub fn set_direction(&mut self, direction: Direction) {
        self.attributes
            .retain(|a| !(a.value.is_none() && Direction::from_attribute(&a.name).is_some()));
        self.attributes.push(Attribute::flag(direction.as_str()));
    }
}

/// A whole session description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionDescription {
    /// `o=` line.
    pub origin: Origin,
    /// `s=` value.
    pub session_name: String,
    /// Session-level lines we carry but do not interpret (`i= u= e= p= b= t= r= z= k=`), in order.
    pub session_lines: Vec<(char, String)>,
    /// Session-level `c=`.
    pub connection: Option<Connection>,
    /// Session-level attributes.
    pub attributes: Vec<Attribute>,
    /// Media sections.
    pub media: Vec<MediaDescription>,
}

impl SessionDescription {
    /// Parses an SDP body. Accepts CRLF or bare LF line ends and ignores blank lines.
    pub fn parse(bytes: &[u8]) -> Result<SessionDescription, SdpError> {
        let text = std::str::from_utf8(bytes).map_err(|_| SdpError::NotUtf8)?;
        let mut version_seen = false;
        let mut origin = None;
        let mut session_name = None;
        let mut session_lines = Vec::new();
        let mut connection = None;
        let mut attributes = Vec::new();
        let mut media: Vec<MediaDescription> = Vec::new();

        for (index, raw) in text.split('\n').enumerate() {
            let line_no = index + 1;
            let line = raw.strip_suffix('\r').unwrap_or(raw);
            if line.trim().is_empty() {
                continue;
            }
            let (kind, value) =
                split_line(line).ok_or(SdpError::MalformedLine { line: line_no })?;
            let bad = |reason| SdpError::BadValue {
                line: line_no,
                kind,
                reason,
            };
            if !version_seen {
                if kind != 'v' {
                    return Err(SdpError::Missing('v'));
                }
                if value.trim() != "0" {
                    return Err(bad("only version 0 exists"));
                }
                version_seen = true;
                continue;
            }
            if let Some(current) = media.last_mut() {
                match kind {
                    'm' => media.push(
                        parse_media_line(value)
                            .ok_or_else(|| bad("expected `<media> <port> <proto> <fmt>...`"))?,
                    ),
                    'c' => {
                        current.connection = Some(
                            parse_connection(value)
                                .ok_or_else(|| bad("expected `IN <IP4|IP6> <address>`"))?,
                        )
                    }
                    'a' => current.attributes.push(parse_attribute(value)),
                    'i' => current.title = Some(value.to_string()),
                    'b' => current.bandwidths.push(value.to_string()),
                    // k= and anything unknown at media level: dropped (k= is obsolete).
                    _ => {}
                }
                continue;
            }
            match kind {
                'v' => return Err(bad("duplicate v= line")),
                'o' => {
                    origin = Some(parse_origin(value).ok_or_else(|| {
                        bad("expected `<user> <id> <version> IN <type> <address>`")
                    })?)
                }
                's' => session_name = Some(value.to_string()),
                'c' => {
                    connection = Some(
                        parse_connection(value)
                            .ok_or_else(|| bad("expected `IN <IP4|IP6> <address>`"))?,
                    )
                }
                'a' => attributes.push(parse_attribute(value)),
                'm' => media.push(
                    parse_media_line(value)
                        .ok_or_else(|| bad("expected `<media> <port> <proto> <fmt>...`"))?,
                ),
                other => session_lines.push((other, value.to_string())),
            }
        }
        if !version_seen {
            return Err(SdpError::Missing('v'));
        }
        Ok(SessionDescription {
            origin: origin.ok_or(SdpError::Missing('o'))?,
            // Some phones omit s=; RFC 4566 says use "-" then, so be lenient.
            session_name: session_name.unwrap_or_else(|| "-".to_string()),
            session_lines,
            connection,
            attributes,
            media,
        })
    }

    /// Serialises with CRLF line ends, in RFC 4566 order.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut text = String::with_capacity(ENCODED_CAPACITY);
        self.encode_into(&mut text);
        text.into_bytes()
    }

    /// Appends the description's text to `out`, line by line in RFC 4566 order (`i u e p`
    /// before `c`, the rest after it). Built with `push_str`, `write!` only for the numbers:
    /// this runs for every SDP Switchboard sends, two or three a call, and the formatting
    /// machinery and the string's regrowth were most of its cost.
    fn encode_into(&self, out: &mut String) {
        let line = |out: &mut String, parts: &[&str]| {
            for part in parts {
                out.push_str(part);
            }
            out.push_str("\r\n");
        };
        let o = &self.origin;
        out.push_str("v=0\r\n");
        out.push_str("o=");
        out.push_str(&o.username);
        out.push(' ');
        out.push_str(&o.session_id);
        // Writing into a `String` cannot fail.
        let _ = write!(out, " {} IN ", o.session_version);
        line(out, &[&o.address_type, " ", &o.address]);
        line(out, &["s=", &self.session_name]);
        let before_c = |kind: char| matches!(kind, 'i' | 'u' | 'e' | 'p');
        let session_line = |out: &mut String, kind: char, value: &str| {
            out.push(kind);
            line(out, &["=", value]);
        };
        for (kind, value) in self.session_lines.iter().filter(|(k, _)| before_c(*k)) {
            session_line(out, *kind, value);
        }
        if let Some(c) = &self.connection {
            line(out, &["c=IN ", &c.address_type, " ", &c.address]);
        }
        let mut has_timing = false;
        for (kind, value) in self.session_lines.iter().filter(|(k, _)| !before_c(*k)) {
            has_timing |= *kind == 't';
            session_line(out, *kind, value);
        }
        if !has_timing {
            out.push_str("t=0 0\r\n");
        }
        for attribute in &self.attributes {
            encode_attribute(out, attribute);
        }
        for m in &self.media {
            out.push_str("m=");
            out.push_str(&m.media);
            let _ = write!(out, " {}", m.port);
            if let Some(count) = m.port_count {
                let _ = write!(out, "/{count}");
            }
            out.push(' ');
            out.push_str(&m.proto);
            for format in &m.formats {
                out.push(' ');
                out.push_str(format);
            }
            out.push_str("\r\n");
            if let Some(title) = &m.title {
                line(out, &["i=", title]);
            }
            if let Some(c) = &m.connection {
                line(out, &["c=IN ", &c.address_type, " ", &c.address]);
            }
            for b in &m.bandwidths {
                line(out, &["b=", b]);
            }
            for attribute in &m.attributes {
                encode_attribute(out, attribute);
            }
        }
    }

    /// The connection that applies to media section `index` (media-level wins).
    pub fn connection_for(&self, index: usize) -> Option<&Connection> {
        self.media
            .get(index)
            .and_then(|m| m.connection.as_ref())
            .or(self.connection.as_ref())
    }

    /// The RTP address a media section asks to receive at, unless disabled or on hold by `0.0.0.0`.
    pub fn rtp_address(&self, index: usize) -> Option<SocketAddr> {
        let media = self.media.get(index)?;
        let connection = self.connection_for(index)?;
        if media.port == 0 || connection.is_null() {
            return None;
        }
        Some(SocketAddr::new(connection.ip()?, media.port))
    }

    /// The RTCP address for a media section: `a=rtcp` if given, else RTP port + 1 (RFC 3550 §11).
    pub fn rtcp_address(&self, index: usize) -> Option<SocketAddr> {
        let rtp = self.rtp_address(index)?;
        match self.media.get(index)?.rtcp() {
            Some(rtcp) => {
                let ip = rtcp.connection.and_then(|c| c.ip()).unwrap_or(rtp.ip());
                Some(SocketAddr::new(ip, rtcp.port))
            }
            None => Some(SocketAddr::new(rtp.ip(), rtp.port().checked_add(1)?)),
        }
    }
}

impl std::fmt::Display for SessionDescription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut text = String::with_capacity(ENCODED_CAPACITY);
        self.encode_into(&mut text);
        f.write_str(&text)
    }
}

/// What an encoded description is given up front: a two-codec audio offer with telephone
/// events and RTCP is some 250 bytes, so the text is written without growing the string.
const ENCODED_CAPACITY: usize = 512;

fn encode_attribute(out: &mut String, attribute: &Attribute) {
    out.push_str("a=");
    out.push_str(&attribute.name);
    if let Some(value) = &attribute.value {
        out.push(':');
        out.push_str(value);
    }
    out.push_str("\r\n");
}

fn split_line(line: &str) -> Option<(char, &str)> {
    let mut chars = line.chars();
    let kind = chars.next()?;
    if !kind.is_ascii_lowercase() || chars.next()? != '=' {
        return None;
    }
    // `kind` is ASCII, so byte offset 2 is a char boundary.
    Some((kind, line.get(2..)?))
}

fn parse_origin(value: &str) -> Option<Origin> {
    let parts: Vec<&str> = value.split_whitespace().collect();
    match parts.as_slice() {
        [username, session_id, version, "IN", address_type, address] => Some(Origin {
            username: username.to_string(),
            session_id: session_id.to_string(),
            session_version: version.parse().ok()?,
            address_type: address_type.to_string(),
            address: address.to_string(),
        }),
        _ => None,
    }
}

fn parse_connection(value: &str) -> Option<Connection> {
    let parts: Vec<&str> = value.split_whitespace().collect();
    match parts.as_slice() {
        ["IN", address_type @ ("IP4" | "IP6"), address] => Some(Connection {
            address_type: address_type.to_string(),
            address: address.to_string(),
        }),
        _ => None,
    }
}

fn parse_media_line(value: &str) -> Option<MediaDescription> {
    let mut parts = value.split_whitespace();
    let media = parts.next()?.to_string();
    let port_field = parts.next()?;
    let (port, port_count) = match port_field.split_once('/') {
        Some((port, count)) => (port.parse().ok()?, Some(count.parse().ok()?)),
        None => (port_field.parse().ok()?, None),
    };
    let proto = parts.next()?.to_string();
    let formats: Vec<String> = parts.map(str::to_string).collect();
    if formats.is_empty() {
        return None;
    }
    Some(MediaDescription {
        media,
        port,
        port_count,
        proto,
        formats,
        title: None,
        connection: None,
        bandwidths: Vec::new(),
        attributes: Vec::new(),
    })
}

fn parse_attribute(value: &str) -> Attribute {
    match value.split_once(':') {
        Some((name, value)) => Attribute::valued(name, value),
        None => Attribute::flag(value),
    }
}

fn parse_rtpmap(value: &str) -> Option<RtpMap> {
    let (pt, rest) = value.trim().split_once(char::is_whitespace)?;
    let mut parts = rest.trim().split('/');
    let encoding = parts.next()?.to_string();
    let clock_rate = parts.next()?.trim().parse().ok()?;
    let channels = match parts.next() {
        Some(c) => Some(c.trim().parse().ok()?),
        None => None,
    };
    Some(RtpMap {
        payload_type: pt.parse().ok()?,
        encoding,
        clock_rate,
        channels,
    })
}

/// The offered audio stream Switchboard can accept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// Index of the chosen `m=audio` section in the offer (others are rejected with port 0).
    pub media_index: usize,
    /// Codecs accepted, in the offerer's preference order, with the offerer's payload types.
    pub codecs: Vec<(Codec, u8)>,
    /// The telephone-event/8000 payload type, when offered.
    pub telephone_event: Option<u8>,
    /// Direction Switchboard answers with.
    pub direction: Direction,
    /// Where the offerer wants RTP, `None` when on hold with `0.0.0.0` or unresolvable.
    pub remote_rtp: Option<SocketAddr>,
    /// Where the offerer wants RTCP.
    pub remote_rtcp: Option<SocketAddr>,
    /// Offered packetisation time, if any.
    pub ptime: Option<u32>,
    /// The offer carries `a=rtcp-mux`: the answer accepts it (RFC 5761 §5.1.1) and the leg's
    /// RTCP shares its RTP port.
    pub rtcp_mux: bool,
}

impl Answer {
    /// The first (preferred) codec and its payload type.
    pub fn preferred(&self) -> (Codec, u8) {
        // `negotiate` never builds an Answer with an empty codec list.
        self.codecs
            .first()
            .copied()
            .expect("negotiate only returns answers with at least one codec")
    }
}

/// No usable audio stream in an offer: the SIP layer answers 488 Not Acceptable Here.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no common codec: {reason}")]
pub struct NoCommonCodec {
    /// Why, for the Warning header and the logs.
    pub reason: &'static str,
}

const TELEPHONE_EVENT: &str = "telephone-event";
const RTCP_MUX: &str = "rtcp-mux";

/// Chooses what to accept from `offer` (RFC 3264 §6): the first active RTP/AVP audio stream
/// carrying at least one of `supported`, in the offerer's order, plus telephone-event/8000.
pub fn negotiate(offer: &SessionDescription, supported: &[Codec]) -> Result<Answer, NoCommonCodec> {
    let mut saw_audio = false;
    for (index, media) in offer.media.iter().enumerate() {
        if media.media != "audio" || media.port == 0 {
            continue;
        }
        saw_audio = true;
        // Only plain RTP: SAVP needs SRTP keys we do not do here, AVPF is fine to treat as AVP.
        if media.proto != "RTP/AVP" && media.proto != "RTP/AVPF" {
            continue;
        }
        let rtpmaps: Vec<RtpMap> = media.rtpmaps().collect();
        let mut codecs = Vec::new();
        let mut telephone_event = None;
        for pt in media.payload_types() {
            match rtpmaps.iter().find(|map| map.payload_type == pt) {
                Some(map) if map.encoding.eq_ignore_ascii_case(TELEPHONE_EVENT) => {
                    if map.clock_rate == 8000 && telephone_event.is_none() {
                        telephone_event = Some(pt);
                    }
                }
                Some(map) => {
                    if let Some(codec) = Codec::from_rtpmap(map) {
                        if supported.contains(&codec) {
                            codecs.push((codec, pt));
                        }
                    }
                }
                // Static payload types may come without rtpmap (RFC 3551).
                None => {
                    if let Some(codec) = Codec::from_static_payload_type(pt) {
                        if supported.contains(&codec) {
                            codecs.push((codec, pt));
                        }
                    }
                }
            }
        }
        if codecs.is_empty() {
            continue;
        }
        return Ok(Answer {
            media_index: index,
            codecs,
            telephone_event,
            direction: media.direction().answer(),
            remote_rtp: offer.rtp_address(index),
            remote_rtcp: offer.rtcp_address(index),
            ptime: media.ptime(),
            rtcp_mux: media.rtcp_mux(),
        });
    }
    Err(NoCommonCodec {
        reason: if saw_audio {
            "no offered audio stream carries PCMU or PCMA over RTP/AVP"
        } else {
            "the offer has no active audio stream"
        },
    })
}

/// Builds the SDP answer for `offer` from a negotiated [`Answer`], with Switchboard's own
/// address and port. Non-chosen media sections are rejected with port 0 (RFC 3264 §6).
pub fn build_answer(
    offer: &SessionDescription,
    answer: &Answer,
    origin: &Origin,
    local: SocketAddr,
) -> SessionDescription {
    let media = offer
        .media
        .iter()
        .enumerate()
        .map(|(index, offered)| {
            if index != answer.media_index {
                return MediaDescription {
                    port: 0,
                    port_count: None,
                    title: None,
                    connection: None,
                    bandwidths: Vec::new(),
                    attributes: Vec::new(),
                    ..offered.clone()
                };
            }
            let mut formats = Vec::new();
            let mut attributes = Vec::new();
            for (codec, pt) in &answer.codecs {
                formats.push(pt.to_string());
                attributes.push(Attribute::valued(
                    "rtpmap",
                    format!("{pt} {}/8000", codec.encoding_name()),
                ));
            }
            if let Some(pt) = answer.telephone_event {
                formats.push(pt.to_string());
                attributes.push(Attribute::valued(
                    "rtpmap",
                    format!("{pt} {TELEPHONE_EVENT}/8000"),
                ));
                attributes.push(Attribute::valued("fmtp", format!("{pt} 0-16")));
            }
            attributes.push(Attribute::valued(
                "ptime",
                answer.ptime.unwrap_or(20).to_string(),
            ));
            attributes.push(Attribute::flag(answer.direction.as_str()));
            if answer.rtcp_mux {
                attributes.push(Attribute::flag(RTCP_MUX));
            }
            MediaDescription {
                media: offered.media.clone(),
                port: local.port(),
                port_count: None,
                proto: offered.proto.clone(),
                formats,
                title: None,
                connection: None,
                bandwidths: Vec::new(),
                attributes,
            }
        })
        .collect();
    SessionDescription {
        origin: origin.clone(),
        session_name: "Switchboard".to_string(),
        session_lines: vec![('t', "0 0".to_string())],
        connection: Some(Connection::for_ip(local.ip())),
        attributes: Vec::new(),
        media,
    }
}

/// Puts Switchboard's address and port into an SDP so the peer sends media to the relay:
/// `o=` and every `c=` get `addr`, the audio section at `media_index` gets `port` (and
/// `a=rtcp` gets `port + 1`). ICE attributes are removed because the candidates would
/// point the far end around the relay. A `c=0.0.0.0` hold stays `0.0.0.0`.
pub fn rewrite(
    sdp: &SessionDescription,
    addr: IpAddr,
    media_index: usize,
    port: u16,
) -> SessionDescription {
    let mut out = sdp.clone();
    readdress(&mut out, addr, media_index, port);
    out
}

/// [`rewrite`] in place, for a description the caller owns (no copy of it is made).
pub fn readdress(out: &mut SessionDescription, addr: IpAddr, media_index: usize, port: u16) {
    out.origin.address = addr.to_string();
    out.origin.address_type = address_type_of(addr).to_string();
    let rewrite_connection = |c: &mut Connection| {
        if !c.is_null() {
            *c = Connection::for_ip(addr);
        }
    };
    if let Some(c) = out.connection.as_mut() {
        rewrite_connection(c);
    }
    out.attributes.retain(|a| !is_ice_attribute(&a.name));
    for (index, media) in out.media.iter_mut().enumerate() {
        if let Some(c) = media.connection.as_mut() {
            rewrite_connection(c);
        }
        media.attributes.retain(|a| !is_ice_attribute(&a.name));
        if index == media_index && media.port != 0 {
            media.port = port;
            let rtcp_port = port.saturating_add(1);
            for attribute in media.attributes.iter_mut().filter(|a| a.name == "rtcp") {
                attribute.value = Some(format!("{rtcp_port} IN {} {addr}", address_type_of(addr)));
            }
        }
    }
    if out.connection.is_none() && out.media.iter().any(|m| m.connection.is_none()) {
        out.connection = Some(Connection::for_ip(addr));
    }
}

fn is_ice_attribute(name: &str) -> bool {
    matches!(
        name,
        "candidate"
            | "remote-candidates"
            | "ice-ufrag"
            | "ice-pwd"
            | "ice-options"
            | "ice-lite"
            | "end-of-candidates"
    )
}

/// Keeps only the given payload types (plus their rtpmap/fmtp lines) in media section
/// `media_index`, so the far leg can only pick what the near leg accepted.
pub fn restrict_formats(sdp: &mut SessionDescription, media_index: usize, keep: &[u8]) {
    let Some(media) = sdp.media.get_mut(media_index) else {
        return;
    };
    media
        .formats
        .retain(|f| f.parse::<u8>().is_ok_and(|pt| keep.contains(&pt)));
    media.attributes.retain(|a| {
        if a.name != "rtpmap" && a.name != "fmtp" {
            return true;
        }
        let pt = a
            .value
            .as_deref()
            .and_then(|v| v.split_whitespace().next())
            .and_then(|pt| pt.parse::<u8>().ok());
        pt.is_some_and(|pt| keep.contains(&pt))
    });
}

/// Writes a short human summary of a media section, for logs.
pub fn describe(sdp: &SessionDescription, media_index: usize) -> String {
    let mut out = String::new();
    if let Some(m) = sdp.media.get(media_index) {
        let _ = write!(
            out,
            "{} {} {} [{}]",
            m.media,
            m.port,
            m.proto,
            m.formats.join(" ")
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const OFFER: &str = "v=0\r\n\
o=carrier 123456 654321 IN IP4 198.51.100.7\r\n\
s=call\r\n\
c=IN IP4 198.51.100.7\r\n\
t=0 0\r\n\
m=audio 40000 RTP/AVP 18 8 0 101\r\n\
a=rtpmap:18 G729/8000\r\n\
a=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-15\r\n\
a=ptime:20\r\n\
a=candidate:1 1 UDP 2130706431 10.0.0.5 40000 typ host\r\n\
a=sendrecv\r\n\
m=video 40002 RTP/AVP 96\r\n\
a=rtpmap:96 H264/90000\r\n";

    fn offer() -> SessionDescription {
        SessionDescription::parse(OFFER.as_bytes()).expect("fixture parses")
    }

    #[test]
    fn parses_the_parts_negotiation_needs() {
        let sdp = offer();
        assert_eq!(sdp.origin.session_id, "123456");
        assert_eq!(sdp.origin.session_version, 654321);
        assert_eq!(sdp.media.len(), 2);
        let audio = &sdp.media[0];
        assert_eq!(audio.port, 40000);
        assert_eq!(audio.formats, ["18", "8", "0", "101"]);
        assert_eq!(audio.rtpmaps().count(), 4);
        assert_eq!(audio.fmtp(101), Some("0-15"));
        assert_eq!(audio.direction(), Direction::SendRecv);
        assert_eq!(audio.ptime(), Some(20));
        assert_eq!(
            sdp.rtp_address(0),
            Some("198.51.100.7:40000".parse().expect("addr"))
        );
        assert_eq!(
            sdp.rtcp_address(0),
            Some("198.51.100.7:40001".parse().expect("addr"))
        );
    }

    #[test]
    fn round_trips_through_text() {
        let sdp = offer();
        let again = SessionDescription::parse(&sdp.to_bytes()).expect("own output parses");
        assert_eq!(sdp, again);
    }

    /// Session lines keep their order, `i u e p` go before `c=` and the rest after it, a
    /// missing `t=` is supplied, and every media-level part comes out as it was read.
    #[test]
    fn encodes_every_line_in_rfc_4566_order() {
        // Comes out as it went in.
        let media = "m=audio 4000/2 RTP/AVP 0 101\r\n\
i=voice\r\n\
c=IN IP4 192.0.2.9\r\n\
b=TIAS:64000\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=sendrecv\r\n";
        let text = format!(
            "v=0\r\n\
o=- 7 3 IN IP4 192.0.2.1\r\n\
s=call\r\n\
b=AS:64\r\n\
i=about\r\n\
c=IN IP4 192.0.2.1\r\n\
a=group:BUNDLE 0\r\n\
{media}"
        );
        let sdp = SessionDescription::parse(text.as_bytes()).expect("parses");
        let encoded = String::from_utf8(sdp.to_bytes()).expect("text");
        assert_eq!(
            encoded,
            format!(
                "v=0\r\n\
o=- 7 3 IN IP4 192.0.2.1\r\n\
s=call\r\n\
i=about\r\n\
c=IN IP4 192.0.2.1\r\n\
b=AS:64\r\n\
t=0 0\r\n\
a=group:BUNDLE 0\r\n\
{media}"
            )
        );
        assert_eq!(sdp.to_string(), encoded, "Display writes the same text");
    }

    #[test]
    fn accepts_bare_lf_and_missing_s_line() {
        let sdp = SessionDescription::parse(
            b"v=0\no=- 1 1 IN IP4 10.0.0.1\nc=IN IP4 10.0.0.1\nm=audio 5000 RTP/AVP 0\n",
        )
        .expect("lenient parse");
        assert_eq!(sdp.session_name, "-");
        assert_eq!(
            sdp.rtp_address(0),
            Some("10.0.0.1:5000".parse().expect("addr"))
        );
    }

    #[test]
    fn rejects_garbage_with_a_reason() {
        assert_eq!(
            SessionDescription::parse(b"hello"),
            Err(SdpError::MalformedLine { line: 1 })
        );
        assert_eq!(
            SessionDescription::parse(b"o=- 1 1 IN IP4 1.2.3.4\r\n"),
            Err(SdpError::Missing('v'))
        );
        assert_eq!(
            SessionDescription::parse(b"v=0\r\ns=x\r\n"),
            Err(SdpError::Missing('o'))
        );
        assert!(matches!(
            SessionDescription::parse(
                b"v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\nm=audio notaport RTP/AVP 0\r\n"
            ),
            Err(SdpError::BadValue {
                line: 3,
                kind: 'm',
                ..
            })
        ));
        assert_eq!(
            SessionDescription::parse(&[0xff, 0xfe]),
            Err(SdpError::NotUtf8)
        );
    }

    #[test]
    fn negotiates_in_offerer_order_with_telephone_event() {
        let answer =
            negotiate(&offer(), &[Codec::Pcmu, Codec::Pcma]).expect("PCMA and PCMU offered");
        assert_eq!(answer.media_index, 0);
        assert_eq!(answer.codecs, vec![(Codec::Pcma, 8), (Codec::Pcmu, 0)]);
        assert_eq!(answer.preferred(), (Codec::Pcma, 8));
        assert_eq!(answer.telephone_event, Some(101));
        assert_eq!(answer.direction, Direction::SendRecv);
    }

    #[test]
    fn negotiates_static_payload_without_rtpmap_and_answers_hold() {
        let sdp = SessionDescription::parse(
            b"v=0\r\no=- 1 2 IN IP4 10.1.1.1\r\ns=-\r\nc=IN IP4 10.1.1.1\r\nt=0 0\r\nm=audio 7000 RTP/AVP 0\r\na=sendonly\r\n",
        )
        .expect("parses");
        let answer = negotiate(&sdp, &[Codec::Pcmu]).expect("PCMU offered statically");
        assert_eq!(answer.codecs, vec![(Codec::Pcmu, 0)]);
        assert_eq!(answer.telephone_event, None);
        assert_eq!(answer.direction, Direction::RecvOnly);
    }

    #[test]
    fn no_common_codec_is_488_material() {
        let sdp = SessionDescription::parse(
            b"v=0\r\no=- 1 2 IN IP4 10.1.1.1\r\ns=-\r\nc=IN IP4 10.1.1.1\r\nt=0 0\r\nm=audio 7000 RTP/AVP 18 9\r\na=rtpmap:18 G729/8000\r\n",
        )
        .expect("parses");
        let err = negotiate(&sdp, &[Codec::Pcmu, Codec::Pcma]).expect_err("only G.729 and G.722");
        assert!(err.reason.contains("PCMU"));
        let no_audio = SessionDescription::parse(
            b"v=0\r\no=- 1 2 IN IP4 10.1.1.1\r\ns=-\r\nm=video 7000 RTP/AVP 96\r\n",
        )
        .expect("parses");
        assert!(negotiate(&no_audio, &[Codec::Pcmu]).is_err());
        // A PCMU-only offer is refused when we are configured for PCMA only.
        let pcmu = SessionDescription::parse(b"v=0\r\no=- 1 2 IN IP4 10.1.1.1\r\ns=-\r\nc=IN IP4 10.1.1.1\r\nm=audio 7000 RTP/AVP 0\r\n")
            .expect("parses");
        assert!(negotiate(&pcmu, &[Codec::Pcma]).is_err());
        // SRTP offers are not accepted by this relay.
        let savp = SessionDescription::parse(b"v=0\r\no=- 1 2 IN IP4 10.1.1.1\r\ns=-\r\nc=IN IP4 10.1.1.1\r\nm=audio 7000 RTP/SAVP 0\r\n")
            .expect("parses");
        assert!(negotiate(&savp, &[Codec::Pcmu]).is_err());
    }

    #[test]
    fn answer_rejects_other_streams_and_carries_our_address() {
        let offer = offer();
        let answer = negotiate(&offer, &[Codec::Pcmu, Codec::Pcma]).expect("negotiates");
        let origin = Origin {
            username: "switchboard".into(),
            session_id: "42".into(),
            session_version: 1,
            address: "203.0.113.1".into(),
            address_type: "IP4".into(),
        };
        let sdp = build_answer(
            &offer,
            &answer,
            &origin,
            "203.0.113.1:20000".parse().expect("addr"),
        );
        let text = sdp.to_string();
        assert!(text.contains("c=IN IP4 203.0.113.1\r\n"));
        assert!(text.contains("m=audio 20000 RTP/AVP 8 0 101\r\n"));
        assert!(text.contains("a=rtpmap:101 telephone-event/8000\r\n"));
        assert!(text.contains("m=video 0 RTP/AVP 96\r\n"));
        assert!(!text.contains("G729"));
        let reparsed = SessionDescription::parse(text.as_bytes()).expect("answer parses");
        assert_eq!(
            reparsed.media.len(),
            offer.media.len(),
            "answer keeps every m= line"
        );
    }

    #[test]
    fn rtcp_mux_is_answered_only_when_offered() {
        let origin = Origin {
            username: "switchboard".into(),
            session_id: "42".into(),
            session_version: 1,
            address: "203.0.113.1".into(),
            address_type: "IP4".into(),
        };
        let local = "203.0.113.1:20000".parse().expect("addr");
        let plain = offer();
        let answer = negotiate(&plain, &[Codec::Pcmu]).expect("negotiates");
        assert!(!answer.rtcp_mux);
        let text = build_answer(&plain, &answer, &origin, local).to_string();
        assert!(!text.contains("rtcp-mux"), "{text}");

        let mut muxed = offer();
        muxed.media[0].attributes.push(Attribute::flag("rtcp-mux"));
        assert!(muxed.media[0].rtcp_mux());
        let answer = negotiate(&muxed, &[Codec::Pcmu]).expect("negotiates");
        assert!(answer.rtcp_mux);
        let text = build_answer(&muxed, &answer, &origin, local).to_string();
        let audio = text.split("m=video").next().expect("audio section first");
        assert!(audio.contains("a=rtcp-mux\r\n"), "{text}");
        assert!(!text
            .split("m=video")
            .nth(1)
            .expect("video")
            .contains("rtcp-mux"));
    }

    #[test]
    fn rewrite_puts_our_address_everywhere_and_drops_ice() {
        let ours: IpAddr = "203.0.113.1".parse().expect("ip");
        let mut sdp = offer();
        sdp.media[0]
            .attributes
            .push(Attribute::valued("rtcp", "40001 IN IP4 198.51.100.7"));
        let out = rewrite(&sdp, ours, 0, 22000);
        let text = out.to_string();
        assert!(
            !text.contains("198.51.100.7"),
            "no trace of the peer's address: {text}"
        );
        assert!(text.contains("o=carrier 123456 654321 IN IP4 203.0.113.1\r\n"));
        assert!(text.contains("m=audio 22000 RTP/AVP"));
        assert!(text.contains("a=rtcp:22001 IN IP4 203.0.113.1\r\n"));
        assert!(!text.contains("candidate"));
        assert_eq!(out.media[1].port, 40002, "other streams untouched");
    }

    #[test]
    fn rewrite_keeps_null_hold_address() {
        let sdp = SessionDescription::parse(b"v=0\r\no=- 1 2 IN IP4 10.1.1.1\r\ns=-\r\nc=IN IP4 0.0.0.0\r\nm=audio 7000 RTP/AVP 0\r\n")
            .expect("parses");
        let out = rewrite(&sdp, "203.0.113.1".parse().expect("ip"), 0, 22000);
        assert_eq!(
            out.connection.as_ref().map(|c| c.address.as_str()),
            Some("0.0.0.0")
        );
        assert_eq!(out.rtp_address(0), None);
    }

    #[test]
    fn restrict_formats_drops_unsupported_codecs() {
        let mut sdp = offer();
        restrict_formats(&mut sdp, 0, &[8, 0, 101]);
        assert_eq!(sdp.media[0].formats, ["8", "0", "101"]);
        assert!(sdp.media[0].rtpmaps().all(|m| m.encoding != "G729"));
        assert_eq!(sdp.media[0].fmtp(101), Some("0-15"));
    }

    proptest! {
        #[test]
        fn parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = SessionDescription::parse(&bytes);
        }

        #[test]
        fn parse_never_panics_on_sdp_shaped_lines(lines in proptest::collection::vec(
            ("[vosctmabi]", "[ -~]{0,40}"), 0..20)) {
            let text: String = lines.iter().map(|(k, v)| format!("{k}={v}\r\n")).collect();
            if let Ok(sdp) = SessionDescription::parse(text.as_bytes()) {
                let _ = negotiate(&sdp, &[Codec::Pcmu, Codec::Pcma]);
                let _ = rewrite(&sdp, "10.0.0.1".parse().expect("ip"), 0, 1000);
                // Whatever we accepted, we must be able to read our own output back.
                prop_assert!(SessionDescription::parse(&sdp.to_bytes()).is_ok());
            }
        }

        #[test]
        fn negotiated_answer_is_well_formed(
            pts in proptest::collection::vec(prop_oneof![Just(0u8), Just(8u8), Just(18u8), Just(101u8), 96u8..127], 1..6),
            port in 1u16..65535,
        ) {
            let formats: Vec<String> = pts.iter().map(u8::to_string).collect();
            let text = format!(
                "v=0\r\no=- 1 1 IN IP4 10.0.0.2\r\ns=-\r\nc=IN IP4 10.0.0.2\r\nt=0 0\r\nm=audio {port} RTP/AVP {}\r\na=rtpmap:101 telephone-event/8000\r\n",
                formats.join(" ")
            );
            let sdp = SessionDescription::parse(text.as_bytes()).expect("generated SDP parses");
            match negotiate(&sdp, &[Codec::Pcmu, Codec::Pcma]) {
                Ok(answer) => {
                    prop_assert!(pts.contains(&0) || pts.contains(&8));
                    prop_assert!(answer.codecs.iter().all(|(_, pt)| *pt == 0 || *pt == 8));
                    prop_assert_eq!(answer.telephone_event, pts.contains(&101).then_some(101));
                }
                Err(_) => prop_assert!(!pts.contains(&0) && !pts.contains(&8)),
            }
        }
    }
}
