//! The `[[trunk]]` entries: who may send calls in, by source address and/or digest credentials.

use std::net::{IpAddr, SocketAddr};

use ipnet::IpNet;

use super::credentials;
use super::diagnostics::Diagnostics;
use super::model::{DigestCredentials, GatewayTransport, TrunkConfig, TrunkGateway};
use super::names::Declared;
use super::reader::{Field, TableReader};

const KEYS: &[&str] = &[
    "name",
    "allow",
    "username",
    "password",
    "ha1",
    "trust_identity",
    "srtp",
    "tls_client_name",
    "gateway",
    "gateway_transport",
    "gateway_tls_name",
    "outbound_username",
    "outbound_password",
    "register",
];

/// Reads every `[[trunk]]`. Also returns the declared trunk names, for `number.trunk`.
/// `None` means an error was recorded.
pub(super) fn read(
    d: &mut Diagnostics<'_>,
    root: &TableReader<'_>,
) -> (Option<Vec<TrunkConfig>>, Declared<String>) {
    let mut names = Declared::new("trunk");
    let trunks = root.or(d, "trunk", Vec::new(), |d, field| {
        field.list(d, |d, element| trunk(d, element, &mut names))
    });
    (trunks, names)
}

fn trunk(
    d: &mut Diagnostics<'_>,
    field: &Field<'_>,
    names: &mut Declared<String>,
) -> Option<TrunkConfig> {
    let table = field.table(d, KEYS)?;
    let name = table.required(d, "name", |d, field| {
        let name = field.identifier(d)?;
        names.declare(d, name.clone(), &name, field.path());
        Some(name)
    });
    let allow = table.or(d, "allow", Vec::new(), |d, field| {
        field.list(d, |d, element| element.parsed(d, parse_ip_net))
    });
    let username = table.optional(d, "username", |d, field| field.identifier(d));
    let trust_identity = table.or(d, "trust_identity", false, |d, field| field.boolean(d));
    let secret = credentials::secret(d, &table);
    let srtp = table.or(d, "srtp", Default::default(), super::media::srtp_mode);
    let tls_client_name = table.optional(d, "tls_client_name", |d, field| {
        field.parsed(d, |text| {
            if text.is_empty() || text.contains(char::is_whitespace) {
                Err(format!(
                    "{text:?} is not a certificate name: expected a DNS name such as \"carrier.example\" or an IP address"
                ))
            } else {
                Ok(text.to_ascii_lowercase())
            }
        })
    });
    let gateway = gateway(d, &table);

    let credentials = match (username?, secret?) {
        (Some(username), Some(secret)) => Some(DigestCredentials { username, secret }),
        (Some(_), None) => {
            d.error(
                &table.path().key("password"),
                "`username` is set but neither `password` nor `ha1` is",
            );
            return None;
        }
        (None, Some(_)) => {
            d.error(
                &table.path().key("username"),
                "`password`/`ha1` is set but `username` is not",
            );
            return None;
        }
        (None, None) => None,
    };
    let allow = allow?;
    let gateway = gateway?;
    if allow.is_empty() && credentials.is_none() && gateway.is_none() {
        d.error(
            &table.path().key("allow"),
            "the trunk would accept no calls: set `allow` (source IPs/CIDRs) and/or `username` with `password` or `ha1`, or `gateway` for calls out",
        );
        return None;
    }
    Some(TrunkConfig {
        name: name?,
        allow,
        credentials,
        trust_identity: trust_identity?,
        srtp: srtp?,
        tls_client_name: tls_client_name?,
        gateway,
    })
}

/// A TLS gateway needs a TLS listener: the Contact Switchboard sends on that leg names it.
pub(super) fn check_tls_gateways(
    d: &mut Diagnostics<'_>,
    sip: &super::model::SipConfig,
    trunks: &[TrunkConfig],
) {
    let trunk_paths = super::path::FieldPath::root().key("trunk");
    for (index, trunk) in trunks.iter().enumerate() {
        let tls = trunk
            .gateway
            .as_ref()
            .is_some_and(|g| g.transport == GatewayTransport::Tls);
        if tls && sip.listen_tls.is_empty() {
            d.error(
                &trunk_paths.index(index).key("gateway_transport"),
                "a TLS gateway needs a TLS listener (our Contact on that leg names its port): set [sip] listen_tls",
            );
        }
    }
}

/// A trunk's `tls_client_name` needs `[sip] tls_client_ca` (the CA its certificate must
/// chain to) and a TLS listener to arrive on.
pub(super) fn check_client_names(
    d: &mut Diagnostics<'_>,
    sip: &super::model::SipConfig,
    trunks: &[TrunkConfig],
) {
    let trunk_paths = super::path::FieldPath::root().key("trunk");
    for (index, trunk) in trunks.iter().enumerate() {
        if trunk.tls_client_name.is_none() {
            continue;
        }
        let path = trunk_paths.index(index).key("tls_client_name");
        if sip.tls_client_ca.is_none() {
            d.error(
                &path,
                "needs [sip] tls_client_ca (the CA certificates the trunk's client certificate must chain to)",
            );
        } else if sip.listen_tls.is_empty() {
            d.error(&path, "needs a TLS listener: set [sip] listen_tls");
        }
    }
}

/// The outbound side: `gateway`, `gateway_transport`, `outbound_username`/`outbound_password`.
/// `Some(None)` when the trunk has no gateway; `None` means an error was recorded.
fn gateway(d: &mut Diagnostics<'_>, table: &TableReader<'_>) -> Option<Option<TrunkGateway>> {
    let address = table.optional(d, "gateway", |d, field| {
        field.parsed(d, |text| {
            text.parse::<SocketAddr>().map_err(|_| {
                format!("invalid gateway {text:?}: expected an IP address and port, e.g. \"192.0.2.1:5060\" or \"[2001:db8::1]:5060\" (host names are not resolved)")
            })
        })
    });
    let transport = table.or(d, "gateway_transport", GatewayTransport::Udp, |d, field| {
        field.parsed(d, |text| match text {
            "udp" => Ok(GatewayTransport::Udp),
            "tcp" => Ok(GatewayTransport::Tcp),
            "tls" => Ok(GatewayTransport::Tls),
            other => Err(format!(
                "unknown transport {other:?}: expected \"udp\", \"tcp\" or \"tls\""
            )),
        })
    });
    let tls_name = table.optional(d, "gateway_tls_name", |d, field| {
        field.parsed(d, |text| {
            tokio_rustls::rustls::pki_types::ServerName::try_from(text)
                .map(|_| text.to_ascii_lowercase())
                .map_err(|_| {
                    format!("{text:?} is not a certificate name: expected a DNS name such as \"sip.carrier.example\" or an IP address")
                })
        })
    });
    let username = table.optional(d, "outbound_username", |d, field| field.identifier(d));
    let password = table.optional(d, "outbound_password", |d, field| field.string(d));
    let register = table.or(d, "register", false, |d, field| field.boolean(d));
    let (address, transport, username, password, register, tls_name) = (
        address?, transport?, username?, password?, register?, tls_name?,
    );
    if tls_name.is_some() && transport != GatewayTransport::Tls {
        d.error(
            &table.path().key("gateway_tls_name"),
            "`gateway_tls_name` is the name the gateway's TLS certificate must carry: set gateway_transport = \"tls\"",
        );
        return None;
    }
    let credentials = match (username, password) {
        (Some(username), Some(password)) => Some((username, password)),
        (None, None) => None,
        (Some(_), None) => {
            d.error(
                &table.path().key("outbound_password"),
                "`outbound_username` is set but `outbound_password` is not",
            );
            return None;
        }
        (None, Some(_)) => {
            d.error(
                &table.path().key("outbound_username"),
                "`outbound_password` is set but `outbound_username` is not",
            );
            return None;
        }
    };
    if register && credentials.is_none() {
        d.error(
            &table.path().key("register"),
            "`register = true` needs `outbound_username` and `outbound_password`",
        );
        return None;
    }
    match address {
        Some(address) => Some(Some(TrunkGateway {
            address,
            transport,
            tls_name,
            credentials,
            register,
        })),
        None => {
            let stray = [
                "gateway_transport",
                "gateway_tls_name",
                "outbound_username",
                "outbound_password",
                "register",
            ]
            .into_iter()
            .find(|key| table.get(key).is_some());
            if let Some(key) = stray {
                d.error(
                    &table.path().key(key),
                    format!("`{key}` needs `gateway` (where calls out are sent)"),
                );
                return None;
            }
            Some(None)
        }
    }
}

/// Parses a CIDR (`192.0.2.0/24`, `2001:db8::/32`) or a single address (a /32 or /128).
/// Host bits in a CIDR are cleared: `10.1.2.3/8` means `10.0.0.0/8`.
pub(super) fn parse_ip_net(text: &str) -> Result<IpNet, String> {
    if let Ok(net) = text.parse::<IpNet>() {
        return Ok(net.trunc());
    }
    text.parse::<IpAddr>().map(IpNet::from).map_err(|_| {
        format!("invalid IP address or CIDR {text:?}: expected e.g. \"192.0.2.10\", \"192.0.2.0/24\" or \"2001:db8::/32\"")
    })
}

#[cfg(test)]
mod tests {
    use crate::config::model::{DigestSecret, GatewayTransport};
    use crate::config::testing::{error_lines, valid};

    #[test]
    fn tls_client_name_needs_a_client_ca_and_a_tls_listener() {
        let tls =
            "[sip]\nlisten_tls = [\"127.0.0.1:5061\"]\ntls_cert = \"c.pem\"\ntls_key = \"k.pem\"\n";
        let config = valid(&format!(
            "{tls}tls_client_ca = \"ca.pem\"\n[[trunk]]\nname = \"t\"\nallow = [\"10.0.0.1\"]\ntls_client_name = \"Carrier.Example\"\n"
        ));
        assert_eq!(config.sip.tls_client_ca, Some("ca.pem".into()));
        assert_eq!(
            config.trunks[0].tls_client_name.as_deref(),
            Some("carrier.example")
        );
        assert_eq!(valid("").sip.tls_client_ca, None);
        assert_eq!(
            error_lines(&format!(
                "{tls}[[trunk]]\nname = \"t\"\nallow = [\"10.0.0.1\"]\ntls_client_name = \"carrier.example\"\n"
            )),
            vec!["t.toml:8:19: trunk[0].tls_client_name: needs [sip] tls_client_ca (the CA certificates the trunk's client certificate must chain to)"]
        );
        assert_eq!(
            error_lines("[sip]\ntls_client_ca = \"ca.pem\"\n"),
            vec!["t.toml:2:17: sip.tls_client_ca: client certificates are asked for in TLS handshakes: set listen_tls"]
        );
        assert_eq!(
            error_lines(&format!(
                "{tls}tls_client_ca = \"ca.pem\"\n[[trunk]]\nname = \"t\"\nallow = [\"10.0.0.1\"]\ntls_client_name = \"a b\"\n"
            )),
            vec!["t.toml:9:19: trunk[0].tls_client_name: \"a b\" is not a certificate name: expected a DNS name such as \"carrier.example\" or an IP address"]
        );
    }

    #[test]
    fn a_trunk_needs_allow_or_credentials() {
        assert_eq!(
            error_lines("[[trunk]]\nname = \"t\"\n\n[[trunk]]\nname = \"u\"\nallow = []\n"),
            vec![
                "t.toml:1:1: trunk[0].allow: the trunk would accept no calls: set `allow` (source IPs/CIDRs) and/or `username` with `password` or `ha1`, or `gateway` for calls out",
                "t.toml:6:9: trunk[1].allow: the trunk would accept no calls: set `allow` (source IPs/CIDRs) and/or `username` with `password` or `ha1`, or `gateway` for calls out",
            ]
        );
    }

    #[test]
    fn identity_is_trusted_only_when_configured() {
        let config = valid(
            "[[trunk]]\nname = \"t\"\nallow = [\"10.0.0.1\"]\n[[trunk]]\nname = \"u\"\nallow = [\"10.0.0.2\"]\ntrust_identity = true\n",
        );
        assert!(!config.trunks[0].trust_identity);
        assert!(config.trunks[1].trust_identity);
        assert_eq!(
            error_lines(
                "[[trunk]]\nname = \"t\"\nallow = [\"10.0.0.1\"]\ntrust_identity = \"yes\"\n"
            ),
            vec!["t.toml:4:18: trunk[0].trust_identity: expected true or false, found a string"]
        );
    }

    #[test]
    fn duplicate_names_are_refused() {
        let text = "[[trunk]]\nname = \"t\"\nallow = [\"10.0.0.1\"]\n[[trunk]]\nname = \"t\"\nallow = [\"10.0.0.2\"]\n";
        assert_eq!(
            error_lines(text),
            vec!["t.toml:5:8: trunk[1].name: duplicate trunk `t` (first defined at trunk[0].name, line 2)"]
        );
    }

    #[test]
    fn cidrs_and_addresses_are_parsed() {
        let config = valid(
            "[[trunk]]\nname = \"t\"\nallow = [\"10.1.2.3/8\", \"::1\", \"2001:db8::/32\"]\n",
        );
        let allow: Vec<String> = config.trunks[0]
            .allow
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(allow, vec!["10.0.0.0/8", "::1/128", "2001:db8::/32"]);
        assert_eq!(
            error_lines("[[trunk]]\nname = \"t\"\nallow = [\"10.0.0.0/33\", 7]\n"),
            vec![
                "t.toml:3:10: trunk[0].allow[0]: invalid IP address or CIDR \"10.0.0.0/33\": expected e.g. \"192.0.2.10\", \"192.0.2.0/24\" or \"2001:db8::/32\"",
                "t.toml:3:25: trunk[0].allow[1]: expected a string, found an integer",
            ]
        );
    }

    #[test]
    fn credentials_need_a_username_and_exactly_one_secret() {
        let text = "[[trunk]]\nname = \"a\"\nusername = \"u\"\n\n[[trunk]]\nname = \"b\"\npassword = \"p\"\n\n[[trunk]]\nname = \"c\"\nusername = \"u\"\npassword = \"p\"\nha1 = \"0123456789abcdef0123456789abcdef\"\n";
        assert_eq!(
            error_lines(text),
            vec![
                "t.toml:1:1: trunk[0].password: `username` is set but neither `password` nor `ha1` is",
                "t.toml:5:1: trunk[1].username: `password`/`ha1` is set but `username` is not",
                "t.toml:13:7: trunk[2].ha1: set either `password` or `ha1`, not both",
            ]
        );
        let config = valid("[[trunk]]\nname = \"a\"\nusername = \"u\"\npassword = \"p\"\n");
        let credentials = config.trunks[0]
            .credentials
            .as_ref()
            .expect("credentials were set");
        assert_eq!(credentials.secret, DigestSecret::Password("p".to_owned()));
        assert!(config.trunks[0].allow.is_empty());
    }

    #[test]
    fn trunk_ha1_must_be_32_hex_digits() {
        assert_eq!(
            error_lines("[[trunk]]\nname = \"a\"\nusername = \"u\"\nha1 = \"abc\"\n"),
            vec!["t.toml:4:7: trunk[0].ha1: ha1 must be 32 hex digits (md5 of user:realm:password), got 3 characters"]
        );
    }

    #[test]
    fn a_gateway_makes_an_outbound_trunk() {
        let config = valid(
            "[[trunk]]\nname = \"out\"\ngateway = \"192.0.2.1:5070\"\ngateway_transport = \"udp\"\noutbound_username = \"acct\"\noutbound_password = \"pw\"\n[[trunk]]\nname = \"in\"\nallow = [\"10.0.0.1\"]\n",
        );
        let gateway = config.trunks[0].gateway.as_ref().expect("gateway set");
        assert_eq!(gateway.address.to_string(), "192.0.2.1:5070");
        assert_eq!(
            gateway.credentials,
            Some(("acct".to_owned(), "pw".to_owned()))
        );
        assert!(!gateway.register, "register defaults to false");
        assert_eq!(gateway.transport, GatewayTransport::Udp);
        assert!(config.trunks[1].gateway.is_none());
        let config = valid(
            "[[trunk]]\nname = \"out\"\ngateway = \"192.0.2.1:5070\"\noutbound_username = \"acct\"\noutbound_password = \"pw\"\nregister = true\n",
        );
        assert!(config.trunks[0]
            .gateway
            .as_ref()
            .is_some_and(|g| g.register));
        let config = valid(
            "[[trunk]]\nname = \"out\"\ngateway = \"192.0.2.1:5070\"\ngateway_transport = \"tcp\"\n",
        );
        assert_eq!(
            config.trunks[0].gateway.as_ref().map(|g| g.transport),
            Some(GatewayTransport::Tcp)
        );
        assert_eq!(
            error_lines("[[trunk]]\nname = \"a\"\ngateway = \"192.0.2.1:5060\"\nregister = true\n"),
            vec!["t.toml:4:12: trunk[0].register: `register = true` needs `outbound_username` and `outbound_password`"]
        );
    }

    #[test]
    fn bad_gateway_settings_are_refused_where_written() {
        assert_eq!(
            error_lines("[[trunk]]\nname = \"a\"\ngateway = \"carrier.example:5060\"\ngateway_transport = \"tls\"\noutbound_username = \"u\"\n"),
            vec![
                "t.toml:3:11: trunk[0].gateway: invalid gateway \"carrier.example:5060\": expected an IP address and port, e.g. \"192.0.2.1:5060\" or \"[2001:db8::1]:5060\" (host names are not resolved)",
            ]
        );
        assert_eq!(
            error_lines("[[trunk]]\nname = \"a\"\ngateway = \"192.0.2.1:5061\"\ngateway_tls_name = \"sip.carrier.example\"\n"),
            vec!["t.toml:4:20: trunk[0].gateway_tls_name: `gateway_tls_name` is the name the gateway's TLS certificate must carry: set gateway_transport = \"tls\""]
        );
        assert_eq!(
            error_lines("[sip]\nlisten_tls = [\"127.0.0.1:5061\"]\ntls_cert = \"c.pem\"\ntls_key = \"k.pem\"\n[[trunk]]\nname = \"a\"\ngateway = \"192.0.2.1:5061\"\ngateway_transport = \"tls\"\ngateway_tls_name = \"not a name\"\n"),
            vec!["t.toml:9:20: trunk[0].gateway_tls_name: \"not a name\" is not a certificate name: expected a DNS name such as \"sip.carrier.example\" or an IP address"]
        );
        assert_eq!(
            error_lines("[[trunk]]\nname = \"a\"\ngateway = \"192.0.2.1:5061\"\ngateway_transport = \"tls\"\n"),
            vec!["t.toml:4:21: trunk[0].gateway_transport: a TLS gateway needs a TLS listener (our Contact on that leg names its port): set [sip] listen_tls"]
        );
        assert_eq!(
            error_lines("[[trunk]]\nname = \"a\"\ngateway = \"192.0.2.1:5060\"\noutbound_username = \"u\"\n"),
            vec!["t.toml:1:1: trunk[0].outbound_password: `outbound_username` is set but `outbound_password` is not"]
        );
        assert_eq!(
            error_lines("[[trunk]]\nname = \"a\"\nallow = [\"10.0.0.1\"]\noutbound_password = \"p\"\noutbound_username = \"u\"\n"),
            vec!["t.toml:5:21: trunk[0].outbound_username: `outbound_username` needs `gateway` (where calls out are sent)"]
        );
        assert_eq!(
            error_lines("[[trunk]]\nname = \"a\"\ngateway = \"192.0.2.1:5060\"\ngateway_transport = \"sctp\"\n"),
            vec!["t.toml:4:21: trunk[0].gateway_transport: unknown transport \"sctp\": expected \"udp\", \"tcp\" or \"tls\""]
        );
    }

    #[test]
    fn a_tls_gateway_is_verified_by_its_name() {
        let tls =
            "[sip]\nlisten_tls = [\"127.0.0.1:5061\"]\ntls_cert = \"c.pem\"\ntls_key = \"k.pem\"\n";
        let config = valid(&format!(
            "{tls}[[trunk]]\nname = \"out\"\ngateway = \"192.0.2.1:5061\"\ngateway_transport = \"tls\"\ngateway_tls_name = \"SIP.Carrier.Example\"\n[[trunk]]\nname = \"by-ip\"\ngateway = \"192.0.2.2:5061\"\ngateway_transport = \"tls\"\n"
        ));
        let gateway = config.trunks[0].gateway.as_ref().expect("gateway set");
        assert_eq!(gateway.transport, GatewayTransport::Tls);
        assert_eq!(gateway.tls_name.as_deref(), Some("sip.carrier.example"));
        let routes = crate::tls_routes::gateway_routes(&config);
        assert_eq!(routes.len(), 2);
        assert_eq!(routes[0].0.to_string(), "192.0.2.1:5061");
        assert_eq!(routes[0].1.server_name, "sip.carrier.example");
        assert!(routes[0].1.verify, "gateways are always verified");
        assert_eq!(
            routes[1].1.server_name, "192.0.2.2",
            "without a name: the IP"
        );
    }
}
