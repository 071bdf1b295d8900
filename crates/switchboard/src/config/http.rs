//! The `[http]` section: API listener and bearer tokens.

use std::net::SocketAddr;

use super::diagnostics::Diagnostics;
use super::model::{ApiRole, ApiToken, HttpConfig};
use super::names::Declared;
use super::reader::{Field, TableReader};
use super::sip::parse_socket_addr;

const KEYS: &[&str] = &["listen", "token", "tls_cert", "tls_key"];
const TOKEN_KEYS: &[&str] = &["token", "role", "agent"];

/// A role as named in the file, before the agent id is attached.
#[derive(Debug, Clone, Copy)]
enum RoleName {
    Agent,
    Supervisor,
    Admin,
    Analyst,
}

const ROLES: [(&str, RoleName); 4] = [
    ("agent", RoleName::Agent),
    ("supervisor", RoleName::Supervisor),
    ("admin", RoleName::Admin),
    ("analyst", RoleName::Analyst),
];

/// Reads `[http]`; `agents` are the declared agent ids that `role = "agent"` tokens must name.
/// `None` means an error was recorded.
pub(super) fn read(
    d: &mut Diagnostics<'_>,
    root: &TableReader<'_>,
    agents: &Declared<String>,
) -> Option<HttpConfig> {
    let http = TableReader::section(d, root, "http", KEYS);
    let listen = http.or(
        d,
        "listen",
        SocketAddr::from(([127, 0, 0, 1], 8080)),
        |d, field| field.parsed(d, parse_socket_addr),
    );
    let tls = super::tls::read_pair(d, &http);
    let tokens = http.or(d, "token", Vec::new(), |d, field| {
        let mut seen = Declared::new("API token");
        field.list(d, |d, element| {
            let token = api_token(d, element, agents)?;
            // The token is a secret: the duplicate error names its place, not its value.
            seen.declare(d, token.token.clone(), "", &element.path().key("token"));
            Some(token)
        })
    });
    Some(HttpConfig {
        listen: listen?,
        tls: tls?,
        tokens: tokens?,
    })
}

fn api_token(
    d: &mut Diagnostics<'_>,
    field: &Field<'_>,
    agents: &Declared<String>,
) -> Option<ApiToken> {
    let table = field.table(d, TOKEN_KEYS)?;
    let token = table.required(d, "token", |d, field| field.parsed(d, parse_bearer_token));
    let role = table.required(d, "role", |d, field| {
        field.parsed(d, |text| {
            ROLES
                .iter()
                .find(|(name, _)| *name == text)
                .map(|&(_, role)| role)
                .ok_or_else(|| {
                    let names: Vec<&str> = ROLES.iter().map(|(name, _)| *name).collect();
                    format!(
                        "unknown role {text:?}; expected one of: {}",
                        names.join(", ")
                    )
                })
        })
    });
    let agent = table.optional(d, "agent", |d, field| {
        let id = field.identifier(d)?;
        agents.check_reference(d, &id, field.path()).then_some(id)
    });

    let role = match (role?, agent?) {
        (RoleName::Agent, Some(id)) => ApiRole::Agent(id),
        (RoleName::Agent, None) => {
            d.error(
                &table.path().key("agent"),
                "role \"agent\" needs `agent`, the id of the agent this token belongs to",
            );
            return None;
        }
        (_, Some(_)) => {
            d.error(
                &table.path().key("agent"),
                "`agent` is only allowed with role \"agent\"",
            );
            return None;
        }
        (RoleName::Supervisor, None) => ApiRole::Supervisor,
        (RoleName::Admin, None) => ApiRole::Admin,
        (RoleName::Analyst, None) => ApiRole::Analyst,
    };
    Some(ApiToken {
        token: token?,
        role,
    })
}

/// Checks the RFC 6750 `b64token` syntax, so the token can be sent in an Authorization header.
fn parse_bearer_token(text: &str) -> Result<String, String> {
    let body = text.trim_end_matches('=');
    let valid = !body.is_empty()
        && body
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-._~+/".contains(c));
    if valid {
        Ok(text.to_owned())
    } else {
        Err(
            "invalid token: use letters, digits and - . _ ~ + / (optionally ending in =)"
                .to_owned(),
        )
    }
}

#[cfg(test)]
mod tests {
    use crate::config::model::ApiRole;
    use crate::config::testing::{error_lines, valid};

    const AGENT: &str = "[[agent]]\nid = \"1001\"\nname = \"A\"\npassword = \"p\"\n";

    #[test]
    fn agent_tokens_must_name_a_configured_agent() {
        let text = format!(
            "{AGENT}[[http.token]]\ntoken = \"a\"\nrole = \"agent\"\n\n[[http.token]]\ntoken = \"b\"\nrole = \"agent\"\nagent = \"9999\"\n"
        );
        assert_eq!(
            error_lines(&text),
            vec![
                "t.toml:5:1: http.token[0].agent: role \"agent\" needs `agent`, the id of the agent this token belongs to",
                "t.toml:12:9: http.token[1].agent: unknown agent `9999` (configured: 1001)",
            ]
        );
        let config = valid(&format!(
            "{AGENT}[[http.token]]\ntoken = \"a\"\nrole = \"agent\"\nagent = \"1001\"\n"
        ));
        assert_eq!(
            config.http.tokens[0].role,
            ApiRole::Agent("1001".to_owned())
        );
    }

    #[test]
    fn agent_is_only_for_the_agent_role() {
        let text =
            format!("{AGENT}[[http.token]]\ntoken = \"a\"\nrole = \"admin\"\nagent = \"1001\"\n");
        assert_eq!(
            error_lines(&text),
            vec!["t.toml:8:9: http.token[0].agent: `agent` is only allowed with role \"agent\""]
        );
    }

    #[test]
    fn roles_tokens_and_listen_are_checked() {
        let text = "[http]\nlisten = \"127.0.0.1\"\n[[http.token]]\ntoken = \"has space\"\nrole = \"root\"\n[[http.token]]\nrole = \"analyst\"\n";
        assert_eq!(
            error_lines(text),
            vec![
                "t.toml:2:10: http.listen: invalid socket address \"127.0.0.1\": expected IP:PORT such as \"127.0.0.1:5060\" or \"[::1]:5060\"",
                "t.toml:4:9: http.token[0].token: invalid token: use letters, digits and - . _ ~ + / (optionally ending in =)",
                "t.toml:5:8: http.token[0].role: unknown role \"root\"; expected one of: agent, supervisor, admin, analyst",
                "t.toml:6:1: http.token[1].token: missing required key `token`",
            ]
        );
    }

    #[test]
    fn duplicate_tokens_are_refused_without_echoing_the_secret() {
        let text = "[[http.token]]\ntoken = \"s3cret\"\nrole = \"admin\"\n[[http.token]]\ntoken = \"s3cret\"\nrole = \"analyst\"\n";
        assert_eq!(
            error_lines(text),
            vec!["t.toml:5:9: http.token[1].token: duplicate API token (first defined at http.token[0].token, line 2)"]
        );
    }
}
