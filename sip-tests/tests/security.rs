//! Switchboard on the open Internet, attacked as an attacker would: SIPVicious password guessing
//! (svcrack) and extension enumeration (svwar) from 127.0.0.2, while the trunk (127.0.0.1) and
//! a real agent keep working. The attacker's address is checked in the security log.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use sip_tests::digest::{self, Credentials, DigestAlgorithm};
use sip_tests::uac::{unique_token, RequestSpec};
use sip_tests::{
    start_agent, HarnessError, HarnessResult, SipMessage, Switchboard, SwitchboardConfig,
    TrunkConfig, UdpPeer,
};

const ATTACKER: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);
const WAIT: Duration = Duration::from_secs(60);

/// Only 127.0.0.1 is a trunk; everyone else is an untrusted source.
fn exposed(security: &str) -> SwitchboardConfig {
    SwitchboardConfig {
        trunks: vec![TrunkConfig {
            name: "carrier".into(),
            allow: vec!["127.0.0.1/32".into()],
            credentials: None,
        }],
        extra_toml: format!("\n[security]\n{security}\n"),
        ..SwitchboardConfig::default()
    }
}

/// Runs a SIPVicious tool bound to 127.0.0.2 (see tools/sipvicious_bound.py) and returns its
/// output.
fn sipvicious(tool: &str, args: &[String], dir: &Path) -> HarnessResult<String> {
    let shim = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tools/sipvicious_bound.py");
    let output = Command::new("/usr/bin/python3")
        .arg(&shim)
        .arg(format!("/usr/bin/{tool}"))
        .args(args)
        .env("BIND_IP", ATTACKER.to_string())
        .current_dir(dir)
        .output()
        .map_err(|e| HarnessError::io(format!("running {tool}"), e))?;
    Ok(format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    ))
}

/// Polls the log until `pattern` shows up.
fn wait_for_log(switchboard: &Switchboard, pattern: &str) -> HarnessResult<String> {
    let deadline = Instant::now() + WAIT;
    loop {
        let log = switchboard.log();
        if log.contains(pattern) {
            return Ok(log);
        }
        if Instant::now() > deadline {
            return Err(HarnessError::Unexpected(format!(
                "{pattern:?} never appeared in the log:\n{log}"
            )));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn register_request(
    peer: &UdpPeer,
    user: &str,
    authorization: Option<&str>,
) -> HarnessResult<String> {
    let registrar = format!("sip:{}", peer.remote());
    let mut spec = RequestSpec::new("REGISTER", &registrar, user);
    spec.to = format!("<sip:{user}@{}>", peer.remote());
    spec.extra_headers.push("Expires: 60".into());
    if let Some(authorization) = authorization {
        spec.extra_headers
            .push(format!("Authorization: {authorization}"));
    }
    Ok(spec.render(peer.local_addr()?))
}

/// The challenge to a REGISTER for `user`, and the answer with `password`.
fn challenge_and_answer(
    peer: &UdpPeer,
    user: &str,
    password: &str,
) -> HarnessResult<(SipMessage, String)> {
    let challenge = peer
        .request(&register_request(peer, user, None)?, WAIT)?
        .final_response;
    let offered = challenge.headers_named("WWW-Authenticate");
    let answer = digest::pick(&offered, DigestAlgorithm::Md5)?.answer(
        &Credentials {
            username: user,
            password,
        },
        "REGISTER",
        &format!("sip:{}", peer.remote()),
        &unique_token(),
        1,
    )?;
    Ok((challenge, answer))
}

/// A response with everything that differs per request by design (tags, branch, Call-ID,
/// nonce, opaque) and the user name blanked, for byte comparison.
fn normalized(message: &SipMessage, user: &str) -> String {
    let mut text = message.to_text().replace(user, "USER");
    for key in ["tag=", "branch=", "nonce=\"", "opaque=\""] {
        while let Some(start) = text.find(key) {
            let value_start = start + key.len();
            let end = text[value_start..]
                .find([';', '"', '\r', '\n', ',', '>'])
                .map_or(text.len(), |i| value_start + i);
            text.replace_range(start..end, &key.to_uppercase().replace(['=', '"'], ""));
        }
    }
    text.lines()
        .filter(|line| !line.starts_with("Call-ID:"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn svcrack_from_another_address_is_banned_while_the_trunk_and_agent_go_on() -> HarnessResult<()> {
    let switchboard = Switchboard::start(exposed("max_auth_failures = 5\nban_time_s = 600"))?;
    // Thirty wrong guesses, then the right password: the ban must come first.
    let mut dictionary: Vec<String> = (0..30).map(|i| format!("guess{i}")).collect();
    dictionary.push("secret1001".into());
    let dict = switchboard.dir().join("passwords.txt");
    std::fs::write(&dict, dictionary.join("\n"))
        .map_err(|e| HarnessError::io("writing the dictionary", e))?;
    let output = sipvicious(
        "svcrack",
        &[
            "-u".into(),
            "1001".into(),
            "-d".into(),
            dict.display().to_string(),
            "-p".into(),
            switchboard.sip_addr().port().to_string(),
            "--maximumtime".into(),
            "3".into(),
            switchboard.sip_addr().ip().to_string(),
        ],
        switchboard.dir(),
    )?;
    assert!(
        !output.contains("secret1001"),
        "svcrack found the password:\n{output}"
    );
    let log = wait_for_log(&switchboard, "security event=ban src=127.0.0.2 ")?;
    let failures_before_ban = log
        .lines()
        .take_while(|line| !line.contains("security event=ban "))
        .filter(|line| line.contains("security event=auth-failure src=127.0.0.2 "))
        .count();
    assert_eq!(failures_before_ban, 5, "{log}");
    assert!(
        log.contains("security event=banned-drop src=127.0.0.2 "),
        "later guesses are dropped:\n{log}"
    );

    // The real log, as fail2ban's filter reads it: every failure line gives 127.0.0.2.
    let log_copy = switchboard.dir().join("security.log");
    std::fs::write(&log_copy, &log).map_err(|e| HarnessError::io("copying the log", e))?;
    let filter = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../deploy/fail2ban/filter.d/switchboard.conf");
    let regex = Command::new("fail2ban-regex")
        .arg("-v")
        .arg(&log_copy)
        .arg(&filter)
        .output()
        .map_err(|e| HarnessError::io("running fail2ban-regex (package fail2ban)", e))?;
    let report = String::from_utf8_lossy(&regex.stdout);
    let matched: Vec<&str> = report
        .lines()
        .filter_map(|line| line.strip_prefix("|      "))
        .filter_map(|line| line.split_whitespace().next())
        .filter(|addr| addr.parse::<std::net::IpAddr>().is_ok())
        .collect();
    assert!(
        matched.len() >= 5 && matched.iter().all(|addr| *addr == "127.0.0.2"),
        "fail2ban-regex matched {matched:?}:\n{report}"
    );

    // The ban is listed for admins.
    let bans = switchboard
        .api()
        .get("/api/bans")?
        .expect_status(200, "GET /api/bans")?
        .json()?;
    let listed: Vec<&str> = bans["bans"]
        .as_array()
        .map(|list| list.iter().filter_map(|b| b["addr"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(listed, vec!["127.0.0.2"], "{bans}");

    // The banned address gets no answer at all, not even a challenge.
    let attacker = UdpPeer::bind_on(ATTACKER, 0, switchboard.sip_addr())?;
    attacker.send(&register_request(&attacker, "1001", None)?)?;
    assert!(attacker.recv(Duration::from_secs(2))?.is_none());

    // Meanwhile the agent registers (from 127.0.0.3, untrusted too) and the trunk's call is
    // answered by the agent on 127.0.0.1.
    let phone = UdpPeer::bind_on(Ipv4Addr::new(127, 0, 0, 3), 0, switchboard.sip_addr())?;
    let registration = sip_tests::uac::register(
        &phone,
        &Credentials {
            username: "1002",
            password: "secret1002",
        },
        DigestAlgorithm::Md5,
        60,
    )?;
    assert_eq!(registration.result.final_response.status(), Some(200));
    let agent = start_agent(&switchboard, "1001", "agent_answer.xml", WAIT)?;
    switchboard
        .sipp_client("trunk_call.xml")?
        .service("100")
        .run()?
        .ensure_success()?;
    agent.wait()?.ensure_success()?;

    // Lifting the ban over the API lets the address in again.
    switchboard
        .api()
        .delete("/api/bans/127.0.0.2")?
        .expect_status(200, "DELETE /api/bans/127.0.0.2")?;
    let exchange = attacker.request(&register_request(&attacker, "1001", None)?, WAIT)?;
    assert_eq!(exchange.final_response.status(), Some(401));
    Ok(())
}

#[test]
fn a_ban_expires_by_itself() -> HarnessResult<()> {
    let switchboard = Switchboard::start(exposed("max_auth_failures = 2\nban_time_s = 2"))?;
    let attacker = UdpPeer::bind_on(ATTACKER, 0, switchboard.sip_addr())?;
    for _ in 0..2 {
        let (_, answer) = challenge_and_answer(&attacker, "1001", "wrong")?;
        let refused =
            attacker.request(&register_request(&attacker, "1001", Some(&answer))?, WAIT)?;
        assert_eq!(refused.final_response.status(), Some(403));
    }
    attacker.send(&register_request(&attacker, "1001", None)?)?;
    assert!(
        attacker.recv(Duration::from_millis(500))?.is_none(),
        "banned"
    );
    // Ask until the ban has run out (the UAC retransmits; the first answer is a 401).
    let exchange = attacker.request(&register_request(&attacker, "1001", None)?, WAIT)?;
    assert_eq!(exchange.final_response.status(), Some(401));
    Ok(())
}

#[test]
fn svwar_finds_nothing_and_users_cannot_be_told_apart() -> HarnessResult<()> {
    let switchboard = Switchboard::start(exposed("max_auth_failures = 1000"))?;
    let output = sipvicious(
        "svwar",
        &[
            "--force".into(),
            "-e".into(),
            "995-1010".into(),
            "-p".into(),
            switchboard.sip_addr().port().to_string(),
            switchboard.sip_addr().ip().to_string(),
        ],
        switchboard.dir(),
    )?;
    assert!(output.contains("found nothing"), "svwar output:\n{output}");
    for user in ["1001", "1002"] {
        assert!(
            !output.contains(&format!("| {user} ")),
            "{user} found:\n{output}"
        );
    }

    // By hand: a challenge and a refusal for an existing and a non-existing user.
    let attacker = UdpPeer::bind_on(ATTACKER, 0, switchboard.sip_addr())?;
    let mut challenges = Vec::new();
    let mut refusals = Vec::new();
    for user in ["1001", "9999"] {
        let (challenge, answer) = challenge_and_answer(&attacker, user, "wrong-password")?;
        let refusal = attacker
            .request(&register_request(&attacker, user, Some(&answer))?, WAIT)?
            .final_response;
        assert_eq!(refusal.status(), Some(403), "{}", refusal.to_text());
        assert!(refusal.header("Warning").is_none(), "{}", refusal.to_text());
        challenges.push(normalized(&challenge, user));
        refusals.push(normalized(&refusal, user));
    }
    assert_eq!(challenges[0], challenges[1]);
    assert_eq!(refusals[0], refusals[1]);

    // Amplification: an unauthenticated source never gets back much more than it sent.
    let request = register_request(&attacker, "1001", None)?;
    let (challenge, _) = challenge_and_answer(&attacker, "1001", "x")?;
    let ratio = challenge.to_text().len() as f64 / request.len() as f64;
    eprintln!(
        "401 of {} bytes to a REGISTER of {} bytes: {ratio:.2}",
        challenge.to_text().len(),
        request.len()
    );
    assert!(ratio <= 2.0, "the 401 is {ratio:.2} times the request");
    let log = wait_for_log(&switchboard, "reason=\"unknown-user\"")?;
    assert!(
        log.contains("security event=auth-failure src=127.0.0.2 ")
            && log.contains("user=\"1001\" reason=\"wrong-password\""),
        "{log}"
    );
    Ok(())
}

#[test]
fn bans_are_for_admins_and_a_bad_address_is_refused_with_a_json_error() -> HarnessResult<()> {
    let mut config = exposed("max_auth_failures = 5");
    config
        .extra_toml
        .push_str("\n[[http.token]]\ntoken = \"supervisor-token\"\nrole = \"supervisor\"\n");
    let switchboard = Switchboard::start(config)?;
    let supervisor = switchboard.api().with_token(Some("supervisor-token"));
    let listing = supervisor
        .get("/api/bans")?
        .expect_status(403, "GET /api/bans as supervisor")?;
    assert_eq!(listing.error_code()?, "forbidden");
    let lifting = supervisor
        .delete("/api/bans/127.0.0.2")?
        .expect_status(403, "DELETE /api/bans as supervisor")?;
    assert_eq!(lifting.error_code()?, "forbidden");
    let anonymous = switchboard.api().with_token(None);
    anonymous
        .get("/api/bans")?
        .expect_status(401, "GET /api/bans without a token")?;
    let bad = switchboard
        .api()
        .delete("/api/bans/not-an-address")?
        .expect_status(400, "DELETE /api/bans/not-an-address")?;
    assert_eq!(bad.error_code()?, "invalid_address");
    // Lifting an address that is not banned is not an error: it says so.
    let idle = switchboard
        .api()
        .delete("/api/bans/192.0.2.1")?
        .expect_status(200, "DELETE of an address without a ban")?
        .json()?;
    assert_eq!(idle["lifted"], false, "{idle}");
    Ok(())
}
