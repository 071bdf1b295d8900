//! The little SDP the generator needs: its own offer (trunk) and answer (agent phone), and
//! where Switchboard wants RTP sent, read from Switchboard's SDP.

use std::net::{IpAddr, SocketAddr};

/// Why Switchboard's SDP did not give a usable RTP address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SdpError {
    /// No `c=IN IP4|IP6 <address>` line applies to the audio stream.
    #[error("no connection address for the audio stream")]
    NoConnection,
    /// No `m=audio <port> ...` line with a non-zero port.
    #[error("no active m=audio line")]
    NoAudio,
}

/// The trunk's offer: PCMU and telephone-event, RTP to `rtp` (c= and m= port).
pub fn offer(rtp: SocketAddr, session_id: u64) -> String {
    format!(
        "v=0\r\no=carrier {session_id} 1 IN IP4 {ip}\r\ns=rtp-load\r\nc=IN IP4 {ip}\r\nt=0 0\r\n\
         m=audio {port} RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n\
         a=fmtp:101 0-16\r\na=ptime:20\r\na=sendrecv\r\n",
        ip = rtp.ip(),
        port = rtp.port()
    )
}

/// The agent phone's answer: PCMU only, RTP to `rtp`.
pub fn answer(rtp: SocketAddr, session_id: u64) -> String {
    format!(
        "v=0\r\no=agent {session_id} 1 IN IP4 {ip}\r\ns=rtp-load\r\nc=IN IP4 {ip}\r\nt=0 0\r\n\
         m=audio {port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=ptime:20\r\na=sendrecv\r\n",
        ip = rtp.ip(),
        port = rtp.port()
    )
}

/// Where RTP for the first active audio stream goes: its media-level `c=` if it has one,
/// else the session-level one.
pub fn audio_destination(body: &str) -> Result<SocketAddr, SdpError> {
    let mut session_address: Option<IpAddr> = None;
    let mut audio_port: Option<u16> = None;
    let mut audio_address: Option<IpAddr> = None;
    let mut in_audio = false;
    let mut seen_media = false;
    for line in body.lines().map(str::trim) {
        if let Some(media) = line.strip_prefix("m=") {
            if audio_port.is_some() {
                break; // the first active audio stream is complete
            }
            seen_media = true;
            let mut parts = media.split_whitespace();
            let is_audio = parts.next() == Some("audio");
            let port = parts.next().and_then(|p| p.parse::<u16>().ok());
            in_audio = is_audio && port.is_some_and(|p| p != 0);
            if in_audio {
                audio_port = port;
            }
        } else if let Some(connection) = line.strip_prefix("c=") {
            let address = parse_connection(connection);
            if !seen_media {
                session_address = address;
            } else if in_audio {
                audio_address = address;
            }
        }
    }
    let port = audio_port.ok_or(SdpError::NoAudio)?;
    let ip = audio_address
        .or(session_address)
        .ok_or(SdpError::NoConnection)?;
    Ok(SocketAddr::new(ip, port))
}

/// `IN IP4 127.0.0.1` (an optional `/ttl` suffix is ignored).
fn parse_connection(value: &str) -> Option<IpAddr> {
    let mut parts = value.split_whitespace();
    if parts.next() != Some("IN") {
        return None;
    }
    let _address_type = parts.next()?;
    let address = parts.next()?.split('/').next()?;
    address.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_our_own_offer_back() {
        let rtp: SocketAddr = "127.0.0.1:40002".parse().expect("literal address");
        assert_eq!(audio_destination(&offer(rtp, 7)), Ok(rtp));
        assert_eq!(audio_destination(&answer(rtp, 7)), Ok(rtp));
    }

    #[test]
    fn media_level_connection_wins_and_rejected_streams_are_skipped() {
        let sdp = "v=0\r\nc=IN IP4 10.0.0.1\r\nm=video 0 RTP/AVP 31\r\nm=audio 20000 RTP/AVP 0\r\nc=IN IP4 127.0.0.2\r\nm=audio 30000 RTP/AVP 0\r\n";
        assert_eq!(
            audio_destination(sdp),
            Ok("127.0.0.2:20000".parse().expect("literal address"))
        );
        let session_only = "v=0\nc=IN IP4 127.0.0.1/127\nm=audio 5004 RTP/AVP 0\n";
        assert_eq!(
            audio_destination(session_only),
            Ok("127.0.0.1:5004".parse().expect("literal address"))
        );
    }

    #[test]
    fn unusable_sdp_is_an_error() {
        assert_eq!(audio_destination(""), Err(SdpError::NoAudio));
        assert_eq!(
            audio_destination("m=audio 0 RTP/AVP 0\r\nc=IN IP4 127.0.0.1\r\n"),
            Err(SdpError::NoAudio)
        );
        assert_eq!(
            audio_destination("m=audio 4000 RTP/AVP 0\r\nc=IN IP4 nonsense\r\n"),
            Err(SdpError::NoConnection)
        );
    }
}
