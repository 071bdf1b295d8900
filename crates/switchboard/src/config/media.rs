//! The `[media]` section: where Switchboard anchors RTP and when it gives up on silence.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::diagnostics::Diagnostics;
use super::model::MediaConfig;
use super::reader::TableReader;

const KEYS: &[&str] = &[
    "address",
    "public_address",
    "rtp_port_min",
    "rtp_port_max",
    "timeout_s",
    "prompts_dir",
    "recordings_dir",
    "allow_sdes_without_tls",
    "workers",
];

/// Reads an `srtp = "off" | "optional" | "required"` value (`[[agent]]` and `[[trunk]]`).
pub(super) fn srtp_mode(
    d: &mut Diagnostics<'_>,
    field: &super::reader::Field<'_>,
) -> Option<super::model::SrtpMode> {
    use super::model::SrtpMode;
    field.parsed(d, |text| match text {
        "off" => Ok(SrtpMode::Off),
        "optional" => Ok(SrtpMode::Optional),
        "required" => Ok(SrtpMode::Required),
        _ => Err(format!(
            "unknown SRTP mode {text:?}; expected \"off\", \"optional\" or \"required\""
        )),
    })
}

/// Reads `[media]`; absent keys take their defaults. `None` means an error was recorded.
pub(super) fn read(d: &mut Diagnostics<'_>, root: &TableReader<'_>) -> Option<MediaConfig> {
    let media = TableReader::section(d, root, "media", KEYS);
    let address = media.or(d, "address", IpAddr::from([127, 0, 0, 1]), |d, field| {
        field.parsed(d, |text| {
            text.parse::<IpAddr>()
                .map_err(|_| format!("{text:?} is not an IP address"))
        })
    });
    let public_address = media.or(d, "public_address", None, |d, field| {
        field
            .parsed(d, |text| {
                text.parse::<IpAddr>()
                    .map_err(|_| format!("{text:?} is not an IP address (SDP c= needs an IP)"))
            })
            .map(Some)
    });
    // Ports below 1024 need privileges and collide with well-known services.
    let port_min = media.or(d, "rtp_port_min", 20_000u16, |d, f| {
        f.integer(d, 1024..=65_534)
    });
    let port_max = media.or(d, "rtp_port_max", 29_999u16, |d, f| {
        f.integer(d, 1025..=65_535)
    });
    if let (Some(min), Some(max)) = (port_min, port_max) {
        // Every call needs two RTP/RTCP pairs (trunk side and agent side): four ports.
        if u32::from(max) < u32::from(min) + 3 {
            d.error(
                &media.path().key("rtp_port_max"),
                format!(
                    "must be at least rtp_port_min + 3 ({}), one call needs four ports",
                    u32::from(min) + 3
                ),
            );
            return None;
        }
    }
    let timeout = media.or(d, "timeout_s", Some(Duration::from_secs(30)), |d, f| {
        let timeout = f.seconds(d, 0..=3600)?;
        Some((!timeout.is_zero()).then_some(timeout))
    });
    let prompts_dir = media.or(d, "prompts_dir", None, |d, f| {
        f.string(d).map(|s| Some(PathBuf::from(s)))
    });
    let recordings_dir = media.or(
        d,
        "recordings_dir",
        PathBuf::from("./switchboard-data/recordings"),
        |d, f| f.string(d).map(PathBuf::from),
    );
    let allow_sdes_without_tls = media.or(d, "allow_sdes_without_tls", false, |d, field| {
        field.boolean(d)
    });
    let workers = media.or(d, "workers", None, |d, f| {
        f.integer(d, 1..=media::media_workers::MAX_WORKERS as i64)
            .map(Some)
    });
    Some(MediaConfig {
        address: address?,
        public_address: public_address?,
        rtp_port_min: port_min?,
        rtp_port_max: port_max?,
        timeout: timeout?,
        prompts_dir: prompts_dir?,
        recordings_dir: recordings_dir?,
        allow_sdes_without_tls: allow_sdes_without_tls?,
        workers: workers?,
    })
}

#[cfg(test)]
mod tests {
    use super::super::testing::{error_lines, valid};
    use std::time::Duration;

    #[test]
    fn srtp_modes_and_the_sdes_without_tls_switch_are_read() {
        use crate::config::SrtpMode;
        let config = valid(
            "[media]\nallow_sdes_without_tls = true\n\
             [[trunk]]\nname = \"t\"\nallow = [\"10.0.0.1\"]\nsrtp = \"required\"\n\
             [[trunk]]\nname = \"u\"\nallow = [\"10.0.0.2\"]\n\
             [[agent]]\nid = \"a\"\nname = \"A\"\npassword = \"p\"\nsrtp = \"optional\"\n\
             [[agent]]\nid = \"b\"\nname = \"B\"\npassword = \"p\"\n",
        );
        assert!(config.media.allow_sdes_without_tls);
        assert_eq!(config.trunks[0].srtp, SrtpMode::Required);
        assert_eq!(config.trunks[1].srtp, SrtpMode::Off, "default");
        assert_eq!(config.agents[0].srtp, SrtpMode::Optional);
        assert_eq!(config.agents[1].srtp, SrtpMode::Off, "default");
        assert!(!valid("").media.allow_sdes_without_tls, "default");
        assert_eq!(
            error_lines("[[agent]]\nid = \"a\"\nname = \"A\"\npassword = \"p\"\nsrtp = \"on\"\n"),
            vec!["t.toml:5:8: agent[0].srtp: unknown SRTP mode \"on\"; expected \"off\", \"optional\" or \"required\""]
        );
        assert_eq!(
            error_lines("[media]\nallow_sdes_without_tls = \"yes\"\n"),
            vec![
                "t.toml:2:26: media.allow_sdes_without_tls: expected true or false, found a string"
            ]
        );
    }

    const BASE: &str = "[sip]\nlisten_udp = [\"127.0.0.1:5060\"]\n";

    #[test]
    fn defaults_apply_without_a_section() {
        let config = valid(BASE);
        assert_eq!(config.media.rtp_port_min, 20_000);
        assert_eq!(config.media.rtp_port_max, 29_999);
        assert_eq!(config.media.timeout, Some(Duration::from_secs(30)));
        assert_eq!(config.media.address.to_string(), "127.0.0.1");
    }

    #[test]
    fn workers_are_read_and_bounded() {
        assert_eq!(valid(BASE).media.workers, None, "default: one per core");
        let config = valid(&format!("{BASE}[media]\nworkers = 3\n"));
        assert_eq!(config.media.workers, Some(3));
        assert_eq!(
            error_lines(&format!("{BASE}[media]\nworkers = 0\n")),
            vec!["t.toml:4:11: media.workers: 0 out of range 1..=64"]
        );
    }

    #[test]
    fn zero_timeout_disables_the_rule() {
        let config = valid(&format!("{BASE}[media]\ntimeout_s = 0\n"));
        assert_eq!(config.media.timeout, None);
    }

    #[test]
    fn bad_values_name_their_field() {
        let errors = error_lines(&format!(
            "{BASE}[media]\naddress = \"media.example\"\nrtp_port_min = 30000\nrtp_port_max = 30001\n"
        ));
        assert!(
            errors
                .iter()
                .any(|e| e.contains("media.address") && e.contains("not an IP")),
            "{errors:?}"
        );
        assert!(
            errors
                .iter()
                .any(|e| e.contains("media.rtp_port_max") && e.contains("four ports")),
            "{errors:?}"
        );
        let errors = error_lines(&format!("{BASE}[media]\nrtp_port_min = 80\n"));
        assert!(
            errors.iter().any(|e| e.contains("media.rtp_port_min")),
            "{errors:?}"
        );
    }
}
