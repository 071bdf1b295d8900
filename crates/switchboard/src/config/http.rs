//! The `[http]` section: API listener and bearer tokens.

use std::net::SocketAddr;

use super::diagnostics::Diagnostics;
use super::model::{ApiRole, ApiToken, HttpConfig, RoleKind, WebUser};
use super::names::Declared;
use super::reader::{Field, TableReader};
use super::sip::parse_socket_addr;
use crate::token_digest::TokenDigest;

const KEYS: &[&str] = &[
    "listen",
    "token",
    "tls_cert",
    "tls_key",
    "user",
    "session_idle_s",
    "mask_caller_for",
];
const USER_KEYS: &[&str] = &["name", "role", "web_password_hash"];
/// A web session idle this long is logged out unless `session_idle_s` says otherwise.
const DEFAULT_SESSION_IDLE_S: u64 = 1800;
/// Longest idle session: a 12-hour shift.
const MAX_SESSION_IDLE_S: i64 = 12 * 3600;
const TOKEN_KEYS: &[&str] = &["name", "token", "token_sha256", "role", "agent"];

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
        let mut names = Declared::new("API token name");
        let mut position = 0;
        field.list(d, |d, element| {
            position += 1;
            let (token, secret_key) = api_token(d, element, agents, position)?;
            // The token is a secret: the duplicate error names its place, not its value. A
            // plain token and the digest of the same token are duplicates too.
            seen.declare(d, token.digest, "", &element.path().key(secret_key));
            names.declare(
                d,
                token.name.clone(),
                &token.name,
                &element.path().key("name"),
            );
            Some(token)
        })
    });
    let users = http.or(d, "user", Vec::new(), |d, field| {
        let mut names = Declared::new("web user name");
        field.list(d, |d, element| {
            let user = web_user(d, element, agents)?;
            names.declare(
                d,
                user.name.clone(),
                &user.name,
                &element.path().key("name"),
            );
            Some(user)
        })
    });
    let session_idle = http.or(
        d,
        "session_idle_s",
        std::time::Duration::from_secs(DEFAULT_SESSION_IDLE_S),
        |d, field| field.seconds(d, 5..=MAX_SESSION_IDLE_S),
    );
    let mask_caller_for = http.or(d, "mask_caller_for", vec![RoleKind::Analyst], |d, field| {
        field.list(d, |d, element| {
            element.parsed(d, |text| match role_name(text)? {
                RoleName::Agent => Ok(RoleKind::Agent),
                RoleName::Supervisor => Ok(RoleKind::Supervisor),
                RoleName::Admin => Ok(RoleKind::Admin),
                RoleName::Analyst => Ok(RoleKind::Analyst),
            })
        })
    });
    Some(HttpConfig {
        users: users?,
        session_idle: session_idle?,
        mask_caller_for: mask_caller_for?,
        listen: listen?,
        tls: tls?,
        tokens: tokens?,
    })
}

/// One `[[http.token]]`, the `position`-th (from 1), and the key its secret was read from.
fn api_token(
    d: &mut Diagnostics<'_>,
    field: &Field<'_>,
    agents: &Declared<String>,
    position: usize,
) -> Option<(ApiToken, &'static str)> {
    let table = field.table(d, TOKEN_KEYS)?;
    let name = table.or(d, "name", format!("token-{position}"), |d, field| {
        field.parsed(d, parse_token_name)
    });
    let plain = table.optional(d, "token", |d, field| {
        field
            .parsed(d, parse_bearer_token)
            .map(|token| TokenDigest::of(&token))
    });
    let hashed = table.optional(d, "token_sha256", |d, field| {
        field.parsed(d, TokenDigest::from_hex)
    });
    let role = table.required(d, "role", |d, field| field.parsed(d, role_name));
    let agent = table.optional(d, "agent", |d, field| {
        let id = field.identifier(d)?;
        agents.check_reference(d, &id, field.path()).then_some(id)
    });

    // Every key is read before any error returns, so one pass reports them all.
    let secret = match (plain?, hashed?) {
        (Some(digest), None) => Some((digest, "token")),
        (None, Some(digest)) => Some((digest, "token_sha256")),
        (Some(_), Some(_)) => {
            d.error(
                &table.path().key("token_sha256"),
                "give either `token` or `token_sha256`, not both",
            );
            None
        }
        (None, None) => {
            d.error(
                &table.path().key("token"),
                "missing `token` (or `token_sha256`, the SHA-256 of the token in hex: see `switchboard hash-token`)",
            );
            None
        }
    };
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
    let (digest, secret_key) = secret?;
    Some((
        ApiToken {
            name: name?,
            digest,
            role,
        },
        secret_key,
    ))
}

/// A role as written in the file.
fn role_name(text: &str) -> Result<RoleName, String> {
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
}

/// One `[[http.user]]`: a supervisor, admin or analyst who logs in to the web pages. Agents
/// log in with their `[[agent]]` id and `web_password_hash` instead, so a user's name must not
/// be an agent id (the login form would not know whom it means).
fn web_user(
    d: &mut Diagnostics<'_>,
    field: &Field<'_>,
    agents: &Declared<String>,
) -> Option<WebUser> {
    let table = field.table(d, USER_KEYS)?;
    let name = table.required(d, "name", |d, field| {
        let name = field.identifier(d)?;
        if agents.contains(&name) {
            d.error(
                field.path(),
                format!(
                    "{name:?} is an agent id: agents log in with their [[agent]] web_password_hash"
                ),
            );
            return None;
        }
        Some(name)
    });
    let role = table.required(d, "role", |d, field| {
        field.parsed(d, |text| match role_name(text)? {
            RoleName::Supervisor => Ok(ApiRole::Supervisor),
            RoleName::Admin => Ok(ApiRole::Admin),
            RoleName::Analyst => Ok(ApiRole::Analyst),
            RoleName::Agent => Err(
                "role \"agent\" is not a web user: give the [[agent]] a web_password_hash"
                    .to_owned(),
            ),
        })
    });
    let hash = table.required(d, "web_password_hash", |d, field| {
        field.parsed(d, crate::web::password::parse_hash)
    });
    Some(WebUser {
        name: name?,
        role: role?,
        web_password_hash: hash?,
    })
}

/// Token names appear in log lines and audit records: keep them short and plain.
fn parse_token_name(text: &str) -> Result<String, String> {
    let valid = !text.is_empty()
        && text.len() <= 64
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-._".contains(c));
    if valid {
        Ok(text.to_owned())
    } else {
        Err(format!(
            "invalid token name {text:?}: use 1 to 64 letters, digits, '-', '.' and '_'"
        ))
    }
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
    use crate::token_digest::TokenDigest;

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
                "t.toml:6:1: http.token[1].token: missing `token` (or `token_sha256`, the SHA-256 of the token in hex: see `switchboard hash-token`)",
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

    #[test]
    fn names_default_to_their_position_and_name_the_token() {
        let config = valid(
            "[[http.token]]\nname = \"ops-desk\"\ntoken = \"a\"\nrole = \"admin\"\n[[http.token]]\ntoken = \"b\"\nrole = \"analyst\"\n",
        );
        assert_eq!(config.http.tokens[0].name, "ops-desk");
        assert_eq!(config.http.tokens[1].name, "token-2");
    }

    #[test]
    fn names_are_plain_and_unique() {
        let text = "[[http.token]]\nname = \"a b\"\ntoken = \"a\"\nrole = \"admin\"\n[[http.token]]\nname = \"x\"\ntoken = \"b\"\nrole = \"admin\"\n[[http.token]]\nname = \"x\"\ntoken = \"c\"\nrole = \"admin\"\n";
        assert_eq!(
            error_lines(text),
            vec![
                "t.toml:2:8: http.token[0].name: invalid token name \"a b\": use 1 to 64 letters, digits, '-', '.' and '_'",
                "t.toml:10:8: http.token[2].name: duplicate API token name `x` (first defined at http.token[1].name, line 6)",
            ]
        );
    }

    #[test]
    fn a_hashed_token_is_its_sha256_hex() {
        let hex = TokenDigest::of("s3cret").to_hex().to_uppercase();
        let config = valid(&format!(
            "[[http.token]]\ntoken_sha256 = \"{hex}\"\nrole = \"admin\"\n"
        ));
        assert!(config.http.tokens[0]
            .digest
            .matches(&TokenDigest::of("s3cret")));
        assert!(!config.http.tokens[0]
            .digest
            .matches(&TokenDigest::of("s3cret2")));
    }

    #[test]
    fn exactly_one_of_token_and_token_sha256() {
        let hex = TokenDigest::of("s3cret").to_hex();
        let text = format!(
            "[[http.token]]\ntoken = \"s3cret\"\ntoken_sha256 = \"{hex}\"\nrole = \"admin\"\n[[http.token]]\ntoken_sha256 = \"abc\"\nrole = \"admin\"\n"
        );
        assert_eq!(
            error_lines(&text),
            vec![
                "t.toml:3:16: http.token[0].token_sha256: give either `token` or `token_sha256`, not both",
                "t.toml:6:16: http.token[1].token_sha256: invalid SHA-256 digest: expected 64 hexadecimal digits, found 3 characters",
            ]
        );
    }

    #[test]
    fn a_plain_token_and_its_digest_are_duplicates() {
        let hex = TokenDigest::of("s3cret").to_hex();
        let text = format!(
            "[[http.token]]\ntoken = \"s3cret\"\nrole = \"admin\"\n[[http.token]]\ntoken_sha256 = \"{hex}\"\nrole = \"analyst\"\n"
        );
        assert_eq!(
            error_lines(&text),
            vec!["t.toml:5:16: http.token[1].token_sha256: duplicate API token (first defined at http.token[0].token, line 2)"]
        );
    }

    #[test]
    fn web_users_sessions_and_masking_are_read() {
        let hash = crate::web::password::hash("pw").expect("hash");
        let config = valid(&format!(
            "[http]\nsession_idle_s = 120\nmask_caller_for = [\"agent\"]\n[[http.user]]\nname = \"sue\"\nrole = \"admin\"\nweb_password_hash = \"{hash}\"\n"
        ));
        assert_eq!(
            config.http.session_idle,
            std::time::Duration::from_secs(120)
        );
        assert_eq!(
            config.http.mask_caller_for,
            vec![crate::config::RoleKind::Agent]
        );
        assert_eq!(config.http.users[0].role, ApiRole::Admin);
        let defaults = valid("");
        assert_eq!(
            defaults.http.session_idle,
            std::time::Duration::from_secs(1800)
        );
        assert_eq!(
            defaults.http.mask_caller_for,
            vec![crate::config::RoleKind::Analyst]
        );
    }

    #[test]
    fn web_users_are_checked() {
        let text = format!(
            "{AGENT}[http]\nsession_idle_s = 2\nmask_caller_for = [\"boss\"]\n[[http.user]]\nname = \"1001\"\nrole = \"agent\"\nweb_password_hash = \"plain\"\n"
        );
        assert_eq!(
            error_lines(&text),
            vec![
                "t.toml:6:18: http.session_idle_s: 2 out of range 5..=43200",
                "t.toml:7:20: http.mask_caller_for[0]: unknown role \"boss\"; expected one of: agent, supervisor, admin, analyst",
                "t.toml:9:8: http.user[0].name: \"1001\" is an agent id: agents log in with their [[agent]] web_password_hash",
                "t.toml:10:8: http.user[0].role: role \"agent\" is not a web user: give the [[agent]] a web_password_hash",
                "t.toml:11:21: http.user[0].web_password_hash: not an argon2 PHC string (password hash string missing field): make one with `switchboard hash-password`",
            ]
        );
    }
}
