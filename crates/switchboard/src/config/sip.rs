//! The `[sip]` section: listeners, realm, RFC 3261 timers and limits.

use std::net::SocketAddr;
use std::time::Duration;

use super::diagnostics::Diagnostics;
use super::model::{DigestAlgorithm, SipConfig};
use super::reader::{Field, TableReader, ONE_DAY_S};

const KEYS: &[&str] = &[
    "listen_udp",
    "listen_tcp",
    "listen_tls",
    "listen_ws",
    "listen_wss",
    "tls_cert",
    "tls_key",
    "realm",
    "public_address",
    "t1_ms",
    "t2_ms",
    "t4_ms",
    "max_message_bytes",
    "ring_timeout_s",
    "drain_timeout_s",
    "min_expires_s",
    "max_expires_s",
    "max_calls",
    "digest_algorithms",
    "min_session_expires_s",
    "tls_client_ca",
    "tls_ca",
    "tls_verify_phones",
    "tls_client_cert",
    "tls_client_key",
];

/// Reads `[sip]` from the document root; absent keys take their defaults.
/// `None` means an error was recorded.
pub(super) fn read(d: &mut Diagnostics<'_>, root: &TableReader<'_>) -> Option<SipConfig> {
    let sip = TableReader::section(d, root, "sip", KEYS);
    let default_listen = SocketAddr::from(([127, 0, 0, 1], 5060));

    let listen_udp = sip.or(d, "listen_udp", vec![default_listen], socket_addrs);
    let listen_tcp = sip.or(d, "listen_tcp", vec![default_listen], socket_addrs);
    let listen_tls = sip.or(d, "listen_tls", Vec::new(), socket_addrs);
    let listen_ws = sip.or(d, "listen_ws", Vec::new(), socket_addrs);
    let listen_wss = sip.or(d, "listen_wss", Vec::new(), socket_addrs);
    let tls = super::tls::read_pair(d, &sip);
    let tls_client_ca = sip.optional(d, "tls_client_ca", super::tls::file_path);
    let tls_ca = sip.optional(d, "tls_ca", super::tls::file_path);
    let tls_verify_phones = sip.or(d, "tls_verify_phones", false, |d, f| f.boolean(d));
    let tls_client_certificate =
        super::tls::read_named_pair(d, &sip, ("tls_client_cert", "tls_client_key"));
    let realm = sip.or(d, "realm", "switchboard".to_owned(), realm);
    let public_address = sip.or(d, "public_address", None, public_address);
    let t1 = sip.or(d, "t1_ms", Duration::from_millis(500), |d, f| {
        f.millis(d, 1..=60_000)
    });
    let t2 = sip.or(d, "t2_ms", Duration::from_millis(4000), |d, f| {
        f.millis(d, 1..=600_000)
    });
    let t4 = sip.or(d, "t4_ms", Duration::from_millis(5000), |d, f| {
        f.millis(d, 1..=600_000)
    });
    // Below ~1 KiB ordinary INVITEs with SDP would be refused; above 16 MiB is a memory risk.
    let max_message_bytes = sip.or(d, "max_message_bytes", 65_535, |d, f| {
        f.integer(d, 1024..=16 * 1024 * 1024)
    });
    let ring_timeout = sip.or(d, "ring_timeout_s", Duration::from_secs(20), |d, f| {
        f.seconds(d, 1..=3600)
    });
    let drain_timeout = sip.or(d, "drain_timeout_s", Duration::from_secs(30), |d, f| {
        f.seconds(d, 0..=ONE_DAY_S)
    });
    let min_expires = sip.or(d, "min_expires_s", Duration::from_secs(60), |d, f| {
        f.seconds(d, 1..=ONE_DAY_S)
    });
    let max_expires = sip.or(d, "max_expires_s", Duration::from_secs(3600), |d, f| {
        f.seconds(d, 1..=ONE_DAY_S)
    });
    let max_calls = sip.or(d, "max_calls", 10_000, |d, f| f.integer(d, 1..=1_000_000));
    // RFC 4028 §4: a Min-SE below 90 s is not allowed.
    let min_session_expires = sip.or(
        d,
        "min_session_expires_s",
        Duration::from_secs(90),
        |d, f| f.seconds(d, 90..=ONE_DAY_S),
    );
    // MD5 only by default: deployed phones and test tools (baresip/libre, SIPp) answer only
    // the first challenge or give up on the whole 401 when any challenge names an algorithm
    // they do not know, even with an MD5 one beside it. Operators whose phones speak SHA-256
    // list ["SHA-256", "MD5"].
    let digest_algorithms = sip.or(
        d,
        "digest_algorithms",
        vec![DigestAlgorithm::Md5],
        digest_algorithms,
    );

    if let (Some(udp), Some(tcp), Some(tls_listen), Some(ws), Some(wss)) = (
        &listen_udp,
        &listen_tcp,
        &listen_tls,
        &listen_ws,
        &listen_wss,
    ) {
        if udp.is_empty()
            && tcp.is_empty()
            && tls_listen.is_empty()
            && ws.is_empty()
            && wss.is_empty()
        {
            d.error(
                &sip.path().key("listen_udp"),
                "no SIP listener: listen_udp, listen_tcp, listen_tls, listen_ws and listen_wss are all empty",
            );
        }
    }
    if let (Some(listen), Some(None)) = (&listen_tls, &tls) {
        if !listen.is_empty() {
            d.error(
                &sip.path().key("listen_tls"),
                "TLS listeners need a certificate: set tls_cert and tls_key (PEM files)",
            );
        }
    }
    if let (Some(listen), Some(None)) = (&listen_wss, &tls) {
        if !listen.is_empty() {
            d.error(
                &sip.path().key("listen_wss"),
                "WSS listeners need a certificate: set tls_cert and tls_key (PEM files)",
            );
        }
    }
    if let (Some(tls_listen), Some(wss), Some(Some(_))) = (&listen_tls, &listen_wss, &tls) {
        if tls_listen.is_empty() && wss.is_empty() {
            d.error(
                &sip.path().key("tls_cert"),
                "no TLS listener uses this certificate: set listen_tls or listen_wss",
            );
        }
    }
    if let (Some(Some(_)), Some(listen)) = (&tls_client_ca, &listen_tls) {
        if listen.is_empty() {
            d.error(
                &sip.path().key("tls_client_ca"),
                "client certificates are asked for in TLS handshakes: set listen_tls",
            );
        }
    }
    if let (Some(t1), Some(t2)) = (t1, t2) {
        if t1 > t2 {
            d.error(
                &sip.path().key("t1_ms"),
                format!(
                    "t1_ms ({}) must not be greater than t2_ms ({})",
                    t1.as_millis(),
                    t2.as_millis()
                ),
            );
        }
    }
    if let (Some(min), Some(max)) = (min_expires, max_expires) {
        if min > max {
            d.error(
                &sip.path().key("min_expires_s"),
                format!(
                    "min_expires_s ({}) must not be greater than max_expires_s ({})",
                    min.as_secs(),
                    max.as_secs()
                ),
            );
        }
    }
    Some(SipConfig {
        listen_udp: listen_udp?,
        listen_tcp: listen_tcp?,
        listen_tls: listen_tls?,
        listen_ws: listen_ws?,
        listen_wss: listen_wss?,
        tls: tls?,
        tls_client_ca: tls_client_ca?,
        tls_ca: tls_ca?,
        tls_verify_phones: tls_verify_phones?,
        tls_client_certificate: tls_client_certificate?,
        realm: realm?,
        public_address: public_address?,
        t1: t1?,
        t2: t2?,
        t4: t4?,
        max_message_bytes: max_message_bytes?,
        ring_timeout: ring_timeout?,
        drain_timeout: drain_timeout?,
        min_expires: min_expires?,
        max_expires: max_expires?,
        max_calls: max_calls?,
        digest_algorithms: digest_algorithms?,
        min_session_expires: min_session_expires?,
    })
}

fn digest_algorithms(d: &mut Diagnostics<'_>, field: &Field<'_>) -> Option<Vec<DigestAlgorithm>> {
    let list = field.list(d, |d, element| {
        element.parsed(d, |text| match text {
            "MD5" => Ok(DigestAlgorithm::Md5),
            "SHA-256" => Ok(DigestAlgorithm::Sha256),
            other => Err(format!(
                "unknown digest algorithm {other:?}: expected \"MD5\" or \"SHA-256\""
            )),
        })
    })?;
    let mut seen = list.clone();
    seen.dedup();
    if list.is_empty() || seen.len() != list.len() || (list.len() == 2 && list[0] == list[1]) {
        d.error(
            field.path(),
            "digest_algorithms must list \"MD5\" and/or \"SHA-256\", each at most once",
        );
        return None;
    }
    Some(list)
}

fn socket_addrs(d: &mut Diagnostics<'_>, field: &Field<'_>) -> Option<Vec<SocketAddr>> {
    field.list(d, |d, element| element.parsed(d, parse_socket_addr))
}

/// Parses `ip:port` (IPv6 as `[addr]:port`); a host name is refused because a listener
/// binds an address.
pub(super) fn parse_socket_addr(text: &str) -> Result<SocketAddr, String> {
    text.parse().map_err(|_| {
        format!("invalid socket address {text:?}: expected IP:PORT such as \"127.0.0.1:5060\" or \"[::1]:5060\"")
    })
}

fn realm(d: &mut Diagnostics<'_>, field: &Field<'_>) -> Option<String> {
    let realm = field.string(d)?;
    // The realm is sent inside a quoted string in WWW-Authenticate; keep it printable.
    if realm.is_empty()
        || realm
            .chars()
            .any(|c| c == '"' || c == '\\' || c.is_control())
    {
        d.error(
            field.path(),
            format!("invalid realm {realm:?}: must be non-empty, without quotes, backslashes or control characters"),
        );
        return None;
    }
    Some(realm)
}

fn public_address(d: &mut Diagnostics<'_>, field: &Field<'_>) -> Option<Option<String>> {
    let address = field.string(d)?;
    if address.is_empty() {
        return Some(None);
    }
    if address
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || c == '/')
    {
        d.error(
            field.path(),
            format!("invalid public_address {address:?}: expected a host name or IP address"),
        );
        return None;
    }
    Some(Some(address))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::config::testing::{error_lines, valid};

    #[test]
    fn t1_above_t2_is_refused() {
        assert_eq!(
            error_lines("[sip]\nt2_ms = 4000\nt1_ms = 5000\n"),
            vec!["t.toml:3:9: sip.t1_ms: t1_ms (5000) must not be greater than t2_ms (4000)"]
        );
        // Against the default T2 as well.
        assert_eq!(
            error_lines("[sip]\nt1_ms = 4001\n"),
            vec!["t.toml:2:9: sip.t1_ms: t1_ms (4001) must not be greater than t2_ms (4000)"]
        );
    }

    #[test]
    fn socket_addresses_must_be_ip_and_port() {
        assert_eq!(
            error_lines("[sip]\nlisten_tcp = [\"localhost:5060\", \"[::1]:5060\", \"10.0.0.1\"]\n"),
            vec![
                "t.toml:2:15: sip.listen_tcp[0]: invalid socket address \"localhost:5060\": expected IP:PORT such as \"127.0.0.1:5060\" or \"[::1]:5060\"",
                "t.toml:2:47: sip.listen_tcp[2]: invalid socket address \"10.0.0.1\": expected IP:PORT such as \"127.0.0.1:5060\" or \"[::1]:5060\"",
            ]
        );
        let config = valid("[sip]\nlisten_udp = []\nlisten_tcp = [\"[::1]:5070\"]\n");
        assert!(config.sip.listen_udp.is_empty());
        assert_eq!(config.sip.listen_tcp[0].port(), 5070);
    }

    #[test]
    fn at_least_one_listener_is_required() {
        assert_eq!(
            error_lines("[sip]\nlisten_udp = []\nlisten_tcp = []\n"),
            vec!["t.toml:2:14: sip.listen_udp: no SIP listener: listen_udp, listen_tcp, listen_tls, listen_ws and listen_wss are all empty"]
        );
    }

    #[test]
    fn websocket_listeners_are_read_and_wss_needs_the_certificate() {
        let config =
            valid("[sip]\nlisten_udp = []\nlisten_tcp = []\nlisten_ws = [\"127.0.0.1:5066\"]\n");
        assert!(config.sip.listen_wss.is_empty());
        assert_eq!(
            config.sip.listen_ws,
            vec![std::net::SocketAddr::from(([127, 0, 0, 1], 5066))],
            "a ws listener alone is enough"
        );
        assert!(valid("").sip.listen_ws.is_empty(), "off by default");
        assert_eq!(
            error_lines("[sip]\nlisten_wss = [\"127.0.0.1:7443\"]\n"),
            vec!["t.toml:2:14: sip.listen_wss: WSS listeners need a certificate: set tls_cert and tls_key (PEM files)"]
        );
        assert_eq!(
            error_lines("[sip]\nlisten_ws = [\"localhost:5066\"]\n"),
            vec!["t.toml:2:14: sip.listen_ws[0]: invalid socket address \"localhost:5066\": expected IP:PORT such as \"127.0.0.1:5060\" or \"[::1]:5060\""]
        );
        let wss = valid(
            "[sip]\nlisten_wss = [\"127.0.0.1:7443\"]\ntls_cert = \"c.pem\"\ntls_key = \"k.pem\"\n",
        );
        assert_eq!(
            wss.sip.listen_wss[0].port(),
            7443,
            "wss alone uses the certificate"
        );
    }

    #[test]
    fn min_session_expires_follows_rfc_4028() {
        assert_eq!(valid("").sip.min_session_expires, Duration::from_secs(90));
        assert_eq!(
            valid("[sip]\nmin_session_expires_s = 300\n")
                .sip
                .min_session_expires,
            Duration::from_secs(300)
        );
        assert_eq!(
            error_lines("[sip]\nmin_session_expires_s = 89\n"),
            vec!["t.toml:2:25: sip.min_session_expires_s: 89 out of range 90..=86400"]
        );
    }

    #[test]
    fn expires_bounds_must_be_ordered() {
        assert_eq!(
            error_lines("[sip]\nmin_expires_s = 7200\n"),
            vec!["t.toml:2:17: sip.min_expires_s: min_expires_s (7200) must not be greater than max_expires_s (3600)"]
        );
    }

    #[test]
    fn realm_and_public_address_are_checked() {
        assert_eq!(
            error_lines("[sip]\nrealm = 'a\"b'\npublic_address = \"a b\"\n"),
            vec![
                "t.toml:2:9: sip.realm: invalid realm \"a\\\"b\": must be non-empty, without quotes, backslashes or control characters",
                "t.toml:3:18: sip.public_address: invalid public_address \"a b\": expected a host name or IP address",
            ]
        );
        let config = valid("[sip]\npublic_address = \"\"\nt1_ms = 250\nring_timeout_s = 5\n");
        assert_eq!(config.sip.public_address, None);
        assert_eq!(config.sip.t1, Duration::from_millis(250));
        assert_eq!(config.sip.ring_timeout, Duration::from_secs(5));
    }

    #[test]
    fn values_outside_their_range_are_refused() {
        assert_eq!(
            error_lines("[sip]\nmax_message_bytes = 100\nring_timeout_s = 9223372036854775807\nmax_calls = 1.5\n"),
            vec![
                "t.toml:2:21: sip.max_message_bytes: 100 out of range 1024..=16777216",
                "t.toml:3:18: sip.ring_timeout_s: 9223372036854775807 out of range 1..=3600",
                "t.toml:4:13: sip.max_calls: expected an integer, found a float",
            ]
        );
    }
}
