//! The `[[agent]]` entries: who can log in, how they authenticate, and what they are skilled at.

use super::credentials;
use super::diagnostics::Diagnostics;
use super::model::AgentConfig;
use super::names::Declared;
use super::reader::{Field, TableReader};
use super::skills;

const KEYS: &[&str] = &[
    "id",
    "name",
    "sip_user",
    "password",
    "ha1",
    "skills",
    "max_calls",
    "allow",
    "supervisor",
    "web_password_hash",
    "srtp",
    "outbound",
];

/// Reads every `[[agent]]`. Also returns the declared agent ids, for API tokens.
/// `None` means an error was recorded.
pub(super) fn read(
    d: &mut Diagnostics<'_>,
    root: &TableReader<'_>,
) -> (Option<Vec<AgentConfig>>, Declared<String>) {
    let mut ids = Declared::new("agent");
    let mut sip_users = Declared::new("SIP user");
    let agents = root.or(d, "agent", Vec::new(), |d, field| {
        field.list(d, |d, element| agent(d, element, &mut ids, &mut sip_users))
    });
    (agents, ids)
}

fn agent(
    d: &mut Diagnostics<'_>,
    field: &Field<'_>,
    ids: &mut Declared<String>,
    sip_users: &mut Declared<String>,
) -> Option<AgentConfig> {
    let table = field.table(d, KEYS)?;
    let mut id_is_new = false;
    let id = table.required(d, "id", |d, field| {
        let id = field.identifier(d)?;
        id_is_new = ids.declare(d, id.clone(), &id, field.path());
        Some(id)
    });
    let name = table.required(d, "name", |d, field| {
        let name = field.string(d)?;
        if name.trim().is_empty() {
            d.error(field.path(), "must not be empty");
            return None;
        }
        Some(name)
    });
    let sip_user = match table.get("sip_user") {
        Some(field) => {
            let user = field.identifier(d);
            if let Some(user) = &user {
                sip_users.declare(d, user.clone(), user, field.path());
            }
            user
        }
        None => {
            // The SIP user defaults to the id. A clash is reported at the id, and not at all if
            // the id is itself a duplicate: that error already says it all.
            if let (Some(id), true) = (&id, id_is_new) {
                sip_users.declare(d, id.clone(), id, &table.path().key("id"));
            }
            id.clone()
        }
    };
    let secret = match credentials::secret(d, &table) {
        Some(None) => {
            d.error(
                &table.path().key("password"),
                "missing `password` or `ha1` (exactly one is required)",
            );
            None
        }
        secret => secret.flatten(),
    };
    let skills = table.or(d, "skills", Default::default(), skills::read);
    // The ACD offers a voice agent one call at a time; a larger value would be accepted here
    // and refused at start, so it is refused here with the reason.
    let max_calls = table.or(d, "max_calls", 1, |d, field| {
        let calls: u32 = field.integer(d, 1..=100)?;
        if calls != 1 {
            d.error(
                field.path(),
                format!("{calls} is not supported: an agent takes 1 voice call at a time (the only value accepted is 1)"),
            );
            return None;
        }
        Some(calls)
    });
    // Like FreeSWITCH's apply-register-acl: the agent's phones may only register from here.
    let allow = table.or(d, "allow", Vec::new(), |d, field| {
        field.list(d, |d, element| {
            element.parsed(d, super::trunk::parse_ip_net)
        })
    });
    let supervisor = table.or(d, "supervisor", false, |d, field| field.boolean(d));
    let web_password_hash = table.optional(d, "web_password_hash", |d, field| {
        field.parsed(d, crate::web::password::parse_hash)
    });
    let srtp = table.or(d, "srtp", Default::default(), super::media::srtp_mode);
    let outbound = table.or(d, "outbound", Vec::new(), |d, field| {
        field.list(d, |d, element| element.parsed(d, parse_dial_pattern))
    });
    Some(AgentConfig {
        web_password_hash: web_password_hash?,
        id: id?,
        name: name?,
        sip_user: sip_user?,
        secret: secret?,
        skills: skills?,
        max_calls: max_calls?,
        allow: allow?,
        supervisor: supervisor?,
        srtp: srtp?,
        outbound: outbound?,
    })
}

/// An allow-list entry: digits (and a leading `+`, `*` or `#`), with an optional trailing `*`
/// meaning "and anything after".
fn parse_dial_pattern(text: &str) -> Result<String, String> {
    let fixed = text.strip_suffix('*').unwrap_or(text);
    let (first, rest) = fixed.split_at(fixed.len().min(1));
    let plausible = first
        .chars()
        .all(|c| c.is_ascii_digit() || c == '+' || c == '#')
        && rest.chars().all(|c| c.is_ascii_digit() || c == '#');
    if !plausible || (fixed.is_empty() && text.is_empty()) {
        return Err(format!(
            "invalid dial pattern {text:?}: expected digits with an optional leading + and an optional trailing *, e.g. \"+86*\" or \"4000\""
        ));
    }
    Ok(text.to_owned())
}

#[cfg(test)]
mod tests {
    use crate::config::model::DigestSecret;
    use crate::config::testing::{error_lines, valid};

    #[test]
    fn allow_lists_networks_and_defaults_to_anywhere() {
        let config = crate::config::load_str(
            "t.toml",
            "[[agent]]\nid = \"1\"\nname = \"A\"\npassword = \"p\"\n\
             allow = [\"192.0.2.0/24\", \"2001:db8::1\"]\n\
             [[agent]]\nid = \"2\"\nname = \"B\"\npassword = \"p\"\n",
        )
        .expect("valid");
        let allow: Vec<String> = config.agents[0]
            .allow
            .iter()
            .map(|n| n.to_string())
            .collect();
        assert_eq!(allow, vec!["192.0.2.0/24", "2001:db8::1/128"]);
        assert!(config.agents[1].allow.is_empty());
        let lines = error_lines(
            "[[agent]]\nid = \"1\"\nname = \"A\"\npassword = \"p\"\nallow = [\"nope\"]\n",
        );
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with("t.toml:5:10: agent[0].allow[0]")),
            "{lines:?}"
        );
    }

    #[test]
    fn exactly_one_of_password_and_ha1() {
        let text = "[[agent]]\nid = \"1\"\nname = \"A\"\npassword = \"p\"\nha1 = \"xyz\"\n\n[[agent]]\nid = \"2\"\nname = \"B\"\n";
        assert_eq!(
            error_lines(text),
            vec![
                "t.toml:5:7: agent[0].ha1: ha1 must be 32 hex digits (md5 of user:realm:password), got 3 characters",
                "t.toml:5:7: agent[0].ha1: set either `password` or `ha1`, not both",
                "t.toml:7:1: agent[1].password: missing `password` or `ha1` (exactly one is required)",
            ]
        );
    }

    #[test]
    fn ha1_must_be_32_hex_digits() {
        let text =
            "[[agent]]\nid = \"1\"\nname = \"A\"\nha1 = \"0123456789abcdef0123456789abcdeg\"\n";
        assert_eq!(
            error_lines(text),
            vec!["t.toml:4:7: agent[0].ha1: ha1 must be 32 hex digits (md5 of user:realm:password), got a non-hex character"]
        );
        let config = valid(
            "[[agent]]\nid = \"1\"\nname = \"A\"\nha1 = \"0123456789ABCDEF0123456789abcdef\"\n",
        );
        assert_eq!(
            config.agents[0].secret,
            DigestSecret::Ha1("0123456789abcdef0123456789abcdef".to_owned())
        );
    }

    #[test]
    fn ids_and_sip_users_are_unique() {
        let text = "[[agent]]\nid = \"1\"\nname = \"A\"\npassword = \"p\"\n[[agent]]\nid = \"1\"\nname = \"B\"\npassword = \"p\"\n[[agent]]\nid = \"3\"\nname = \"C\"\nsip_user = \"1\"\npassword = \"p\"\n[[agent]]\nid = \"alice\"\nname = \"D\"\npassword = \"p\"\n[[agent]]\nid = \"5\"\nname = \"E\"\nsip_user = \"alice\"\npassword = \"p\"\n";
        assert_eq!(
            error_lines(text),
            vec![
                // The second "1" clashes as an id; its defaulted SIP user is not reported again.
                "t.toml:6:6: agent[1].id: duplicate agent `1` (first defined at agent[0].id, line 2)",
                "t.toml:12:12: agent[2].sip_user: duplicate SIP user `1` (first defined at agent[0].id, line 2)",
                "t.toml:21:12: agent[4].sip_user: duplicate SIP user `alice` (first defined at agent[3].id, line 15)",
            ]
        );
    }

    #[test]
    fn name_is_required_and_limits_are_checked() {
        let text =
            "[[agent]]\nid = \"1\"\npassword = \"p\"\nmax_calls = 0\nskills = { support = 11 }\n";
        assert_eq!(
            error_lines(text),
            vec![
                "t.toml:1:1: agent[0].name: missing required key `name`",
                "t.toml:4:13: agent[0].max_calls: 0 out of range 1..=100",
                "t.toml:5:22: agent[0].skills.support: level 11 out of range 1..=10",
            ]
        );
        assert_eq!(
            error_lines("[[agent]]\nid = \"1\"\nname = \"A\"\npassword = \"p\"\nmax_calls = 2\n"),
            vec!["t.toml:5:13: agent[0].max_calls: 2 is not supported: an agent takes 1 voice call at a time (the only value accepted is 1)"]
        );
        let explicit =
            valid("[[agent]]\nid = \"1\"\nname = \"A\"\npassword = \"p\"\nmax_calls = 1\n");
        assert_eq!(explicit.agents[0].max_calls, 1);
        let config = valid("[[agent]]\nid = \"1\"\nname = \"Ann Lee\"\npassword = \"p\"\n");
        assert_eq!(config.agents[0].name, "Ann Lee");
        assert_eq!(config.agents[0].max_calls, 1);
        assert!(config.agents[0].skills.is_empty());
    }

    #[test]
    fn web_password_hash_is_an_argon2_string() {
        let hash = crate::web::password::hash("pw").expect("hash");
        let config = valid(&format!(
            "[[agent]]\nid = \"1\"\nname = \"A\"\npassword = \"p\"\nweb_password_hash = \"{hash}\"\n"
        ));
        assert_eq!(
            config.agents[0].web_password_hash.as_deref(),
            Some(hash.as_str())
        );
        let lines = error_lines(
            "[[agent]]\nid = \"1\"\nname = \"A\"\npassword = \"p\"\nweb_password_hash = \"pw\"\n",
        );
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(
            lines[0]
                .starts_with("t.toml:5:21: agent[0].web_password_hash: not an argon2 PHC string"),
            "{lines:?}"
        );
    }

    #[test]
    fn outbound_allow_lists_are_checked() {
        let config = valid(
            "[[agent]]\nid = \"1\"\nname = \"A\"\npassword = \"p\"\noutbound = [\"+86*\", \"4000\", \"*\"]\n[[agent]]\nid = \"2\"\nname = \"B\"\npassword = \"p\"\n",
        );
        assert_eq!(config.agents[0].outbound, vec!["+86*", "4000", "*"]);
        assert!(config.agents[1].outbound.is_empty());
        assert_eq!(
            error_lines("[[agent]]\nid = \"1\"\nname = \"A\"\npassword = \"p\"\noutbound = [\"86x*\", \"\"]\n"),
            vec![
                "t.toml:5:13: agent[0].outbound[0]: invalid dial pattern \"86x*\": expected digits with an optional leading + and an optional trailing *, e.g. \"+86*\" or \"4000\"",
                "t.toml:5:21: agent[0].outbound[1]: invalid dial pattern \"\": expected digits with an optional leading + and an optional trailing *, e.g. \"+86*\" or \"4000\"",
            ]
        );
    }
}
