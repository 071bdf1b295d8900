//! What the agent desktop's built-in softphone needs to register as the agent's phone: the
//! SIP-over-WebSocket ports (RFC 7118) and the agent's own digest credentials.
//!
//! The page registers with JsSIP over the `ws`/`wss` listener like any WebRTC SIP client, so
//! the ACD offers it calls exactly as it offers a desk phone, and call control gives it a
//! WebRTC media leg because its binding is on a WebSocket flow. The credentials are the
//! agent's own phone password (or HA1), sent only in the answer to the agent's own
//! authenticated session (HttpOnly cookie), never to another role.

use crate::config::{ApiRole, Config, DigestSecret};
use serde_json::{json, Value};

/// The softphone settings for `role`: `null` unless it is an agent and a WebSocket listener is
/// configured (the page then says the softphone is unavailable and why).
pub fn softphone_json(config: &Config, role: &ApiRole) -> Value {
    let ApiRole::Agent(id) = role else {
        return Value::Null;
    };
    let Some(agent) = config.agents.iter().find(|a| a.id == id.as_str()) else {
        return Value::Null;
    };
    let ws_port = config.sip.listen_ws.first().map(|addr| addr.port());
    let wss_port = config.sip.listen_wss.first().map(|addr| addr.port());
    if ws_port.is_none() && wss_port.is_none() {
        return json!({ "unavailable": "no SIP WebSocket listener is configured ([sip] listen_ws / listen_wss)" });
    }
    let (password, ha1) = match &agent.secret {
        DigestSecret::Password(password) => (Some(password.as_str()), None),
        DigestSecret::Ha1(ha1) => (None, Some(ha1.as_str())),
    };
    json!({
        "ws_port": ws_port,
        "wss_port": wss_port,
        "user": agent.sip_user,
        "password": password,
        "ha1": ha1,
        "realm": config.sip.realm,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "[[trunk]]\nname = \"t\"\nallow = [\"127.0.0.0/8\"]\n\
        [[queue]]\nname = \"support\"\nskills = { support = 1 }\n\
        [[agent]]\nid = \"1001\"\nname = \"Ann\"\npassword = \"pw1001\"\nskills = { support = 1 }\n";

    fn config(sip: &str) -> Config {
        crate::config::load_str("t.toml", &format!("[sip]\n{sip}{BASE}")).expect("valid config")
    }

    #[test]
    fn an_agent_gets_the_websocket_ports_and_its_own_credentials() {
        let config = config("listen_ws = [\"127.0.0.1:5066\"]\nrealm = \"acme\"\n");
        let json = softphone_json(&config, &ApiRole::Agent("1001".into()));
        assert_eq!(json["ws_port"], 5066);
        assert_eq!(json["wss_port"], Value::Null);
        assert_eq!(json["user"], "1001");
        assert_eq!(json["password"], "pw1001");
        assert_eq!(json["realm"], "acme");
    }

    #[test]
    fn other_roles_get_no_credentials() {
        let config = config("listen_ws = [\"127.0.0.1:5066\"]\n");
        for role in [ApiRole::Supervisor, ApiRole::Admin, ApiRole::Analyst] {
            assert_eq!(softphone_json(&config, &role), Value::Null);
        }
    }

    #[test]
    fn without_a_websocket_listener_the_page_is_told_why() {
        let config = config("listen_udp = [\"127.0.0.1:5060\"]\n");
        let json = softphone_json(&config, &ApiRole::Agent("1001".into()));
        assert!(json["unavailable"]
            .as_str()
            .is_some_and(|why| why.contains("listen_ws")));
        assert_eq!(json.get("password"), None);
    }
}
