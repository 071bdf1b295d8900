//! A two-node site behind the shipped Kamailio front (docs/site.md): the front on 127.0.0.20,
//! node `a` on 127.0.0.11 (home of DIDs 100/101, agent 1001), node `b` on 127.0.0.12 (home of
//! 200/201, agent 2001), each the other's standby, one PostgreSQL for both nodes' CDRs. SIPp
//! trunks on 127.0.0.1 call through the front.

#[path = "../../crates/cdr/tests/support/pg_server.rs"]
mod pg_server;

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use pg_server::PgServer;
use sip_tests::agent_phone::AgentPhone;
use sip_tests::api::agent_state;
use sip_tests::dialog::invite;
use sip_tests::ports::free_port;
use sip_tests::rtp::pcmu_offer;
use sip_tests::site::{Site, SiteOptions, IVR_DID_A, IVR_DID_B};
use sip_tests::uac::RequestSpec;
use sip_tests::UdpPeer;
use sip_tests::{HarnessError, HarnessResult, Sipp, SippProcess, SippRun};

const WAIT: Duration = Duration::from_secs(60);
/// The domain phones register for through the front (the shipped configuration's alias).
const DOMAIN: &str = "sip.example.com";
/// How long the PostgreSQL counts may take to catch up with the journals.
const CDR_WAIT: Duration = Duration::from_secs(90);

/// A throw-away PostgreSQL with database `cdr`, and the site writing its CDRs there.
fn site_with_postgres(
    test: &str,
    rtp_slot: u16,
    drain_timeout_s: u32,
) -> Option<(PgServer, Site, tempfile::TempDir)> {
    let pg = pg_server::start_or_skip(test)?;
    let url = pg.create_database("cdr");
    let dir = tempfile::Builder::new()
        .prefix("sip-tests-site-")
        .tempdir()
        .expect("creating a temp dir");
    let site = Site::start(
        dir.path(),
        &SiteOptions {
            cdr_lines: vec![format!("postgres_url = \"{url}\"")],
            drain_timeout_s,
            rtp_slot,
        },
        WAIT,
    )
    .unwrap_or_else(|e| panic!("the site did not start: {e}"));
    Some((pg, site, dir))
}

/// A SIPp trunk on 127.0.0.1 calling `did` through the front: `calls` calls at `rate` per
/// second, each held `hold_ms` after the answer, then hung up by the trunk.
fn trunk_load(
    site: &Site,
    dir: &Path,
    did: &str,
    calls: u32,
    rate: u32,
    hold_ms: u32,
) -> HarnessResult<SippProcess> {
    Sipp::client("trunk_call_via_proxy.xml", site.front.addr(), dir)?
        .service(did)
        .calls(calls)
        .timeout(Duration::from_secs(120))
        .arg("-r")
        .arg(&rate.to_string())
        .arg("-d")
        .arg(&hold_ms.to_string())
        .spawn()
}

/// The CDRs in PostgreSQL of node a and node b, once `condition` holds for them (or the wait
/// ran out: the caller's assertion then shows the counts).
fn wait_cdr_counts(pg: &PgServer, condition: impl Fn(u64, u64) -> bool) -> (u64, u64) {
    let started = Instant::now();
    loop {
        let count = |node: &str| {
            pg.count(
                "cdr",
                &format!("SELECT count(*) FROM cdr_calls WHERE node = '{node}'"),
            )
        };
        // The first node to connect creates the tables.
        let created = pg.count(
            "cdr",
            "SELECT count(*) FROM pg_tables WHERE tablename = 'cdr_calls'",
        ) > 0;
        let counts = if created {
            (count("a"), count("b"))
        } else {
            (0, 0)
        };
        if condition(counts.0, counts.1) || started.elapsed() > CDR_WAIT {
            return counts;
        }
        // The forwarder ships batches on its own schedule; PostgreSQL has no change feed here.
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// A trunk call through the front to `did` rings `phone` (its INVITE comes through the
/// front), the phone answers and the trunk hangs up; returns the node's INVITE.
fn call_rings(site: &Site, phone: &AgentPhone, did: &str) -> HarnessResult<sip_tests::SipMessage> {
    let trunk = UdpPeer::bind(0, site.front.addr())?;
    std::thread::scope(|scope| {
        let caller = scope.spawn(|| {
            let mut spec = RequestSpec::new(
                "INVITE",
                &format!("sip:{did}@{}", site.front.addr()),
                "2000",
            );
            spec.body = pcmu_offer(40_000, false);
            let (answer, dialog) = invite(&trunk, &spec, "", WAIT)?;
            let mut dialog = dialog.ok_or_else(|| {
                HarnessError::Unexpected(format!(
                    "trunk call to {did} not answered:\n{}",
                    answer.final_response.to_text()
                ))
            })?;
            dialog.send(&trunk, "BYE", &[], "", WAIT)
        });
        let offer = phone.next_request("INVITE", WAIT)?;
        let _call = phone.answer(offer.clone(), &pcmu_offer(free_port()?, false), WAIT)?;
        let bye = phone.next_request("BYE", WAIT)?;
        phone.reply(&bye, 200, "OK", &[], "")?;
        let hung_up = caller
            .join()
            .map_err(|_| HarnessError::Unexpected("the trunk thread panicked".into()))??;
        assert_eq!(
            hung_up.final_response.status(),
            Some(200),
            "the trunk's BYE is answered"
        );
        Ok(offer)
    })
}

/// An INVITE to `did` through the front from 127.0.0.3, an address that is not a trunk;
/// returns the status line of the answer.
fn invite_from_elsewhere(site: &Site, did: &str) -> HarnessResult<String> {
    let socket = std::net::UdpSocket::bind("127.0.0.3:0")
        .map_err(|e| HarnessError::io("binding 127.0.0.3", e))?;
    socket
        .set_read_timeout(Some(WAIT))
        .map_err(|e| HarnessError::io("setting a read timeout", e))?;
    let local = socket
        .local_addr()
        .map_err(|e| HarnessError::io("reading the local address", e))?;
    let front = site.front.addr();
    let invite = format!(
        "INVITE sip:{did}@{front} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bKelsewhere;rport\r\n\
         Max-Forwards: 70\r\nFrom: <sip:intruder@127.0.0.3>;tag=x1\r\nTo: <sip:{did}@{front}>\r\n\
         Call-ID: elsewhere-1\r\nCSeq: 1 INVITE\r\nContact: <sip:intruder@{local}>\r\n\
         Content-Length: 0\r\n\r\n"
    );
    socket
        .send_to(invite.as_bytes(), front)
        .map_err(|e| HarnessError::io("sending the INVITE", e))?;
    let mut buffer = [0u8; 4096];
    loop {
        let (length, _) = socket
            .recv_from(&mut buffer)
            .map_err(|e| HarnessError::io("waiting for the front's answer", e))?;
        let text = String::from_utf8_lossy(buffer.get(..length).unwrap_or_default()).into_owned();
        let status = text.lines().next().unwrap_or_default().to_owned();
        if !status.starts_with("SIP/2.0 1") {
            return Ok(status);
        }
    }
}

/// Whether a message came from (its top Via names) `node`.
fn sent_by(message: &sip_tests::SipMessage, node: SocketAddr) -> bool {
    message
        .headers_named("Via")
        .iter()
        .any(|via| via.contains(&node.to_string()))
}

fn finished(process: SippProcess, front: &sip_tests::kamailio::KamailioFront) -> SippRun {
    match process.wait() {
        Ok(run) => run,
        Err(e) => panic!(
            "sipp did not finish: {e}\n--- kamailio ---\n{}",
            front.log()
        ),
    }
}

#[test]
fn calls_go_to_the_home_node_of_their_number_and_agents_register_with_theirs() -> HarnessResult<()>
{
    let Some((pg, site, dir)) = site_with_postgres("site_spread", 0, 0) else {
        return Ok(());
    };
    let to_a = trunk_load(&site, dir.path(), IVR_DID_A, 10, 10, 100)?;
    let to_b = trunk_load(&site, dir.path(), IVR_DID_B, 10, 10, 100)?;
    let (to_a, to_b) = (finished(to_a, &site.front), finished(to_b, &site.front));
    to_a.ensure_success()?;
    to_b.ensure_success()?;
    let (a, b) = wait_cdr_counts(&pg, |a, b| a >= 10 && b >= 10);
    assert_eq!((a, b), (10, 10), "each number's calls are on its home node");

    // Trunks are admitted at the front: a node refuses a trunk calling it directly, and the
    // front refuses a source that is not in its address.list.
    Sipp::client("expect_403.xml", site.a.sip_addr(), dir.path())?
        .service(IVR_DID_A)
        .run()?
        .ensure_success()?;
    let status = invite_from_elsewhere(&site, IVR_DID_A)?;
    assert!(status.starts_with("SIP/2.0 403"), "{status}");

    // deploy/rolling-upgrade refuses what it cannot do before touching the front.
    let script = sip_tests::paths::workspace_dir().join("deploy/rolling-upgrade");
    let ctl = format!("unix:{}", site.front.ctl_socket().display());
    let missing = Command::new(&script)
        .args(["--ctl", &ctl])
        .output()
        .map_err(|e| HarnessError::io("running deploy/rolling-upgrade", e))?;
    assert_eq!(missing.status.code(), Some(2), "usage error without --node");
    assert!(String::from_utf8_lossy(&missing.stderr).contains("Usage:"));
    let unknown = Command::new(&script)
        .args(["--ctl", &ctl, "--node", "sip:127.0.0.99:5060"])
        .args(["--readyz", "http://127.0.0.1:9/readyz"])
        .args(["--stop", "false", "--start", "false"])
        .output()
        .map_err(|e| HarnessError::io("running deploy/rolling-upgrade", e))?;
    let said = String::from_utf8_lossy(&unknown.stderr);
    assert_eq!(unknown.status.code(), Some(1), "{said}");
    assert!(
        said.contains("not in the front's dispatcher list"),
        "{said}"
    );
    for node in [site.a.sip_addr(), site.b.sip_addr()] {
        assert!(
            site.front
                .node_state(node)?
                .iter()
                .all(|(_, flags)| flags.starts_with('A')),
            "nothing was disabled"
        );
    }

    // An agent's registration reaches the node of its set, and only that node.
    let alice = AgentPhone::register_through(&site.a, "1001", site.front.addr(), DOMAIN)?;
    let sam = AgentPhone::register_through(&site.b, "2001", site.front.addr(), DOMAIN)?;
    site.a.api().wait_for_agent_state("1001", "ready", WAIT)?;
    site.b.api().wait_for_agent_state("2001", "ready", WAIT)?;
    for (node, agent) in [(&site.b, "1001"), (&site.a, "2001")] {
        let seen = node.api().agent(agent)?;
        assert_ne!(
            agent_state(&seen),
            Some("ready"),
            "{agent} registered with its home node only: {seen}"
        );
    }
    // A call to each agent's number is offered by that agent's node, through the front.
    let offer = call_rings(&site, &alice, "101")?;
    assert!(sent_by(&offer, site.a.sip_addr()), "{}", offer.to_text());
    assert!(sent_by(&offer, site.front.addr()), "{}", offer.to_text());
    let offer = call_rings(&site, &sam, "201")?;
    assert!(sent_by(&offer, site.b.sip_addr()), "{}", offer.to_text());
    Ok(())
}

#[test]
fn an_agent_re_registers_with_the_standby_while_the_home_node_is_down_and_rings_there(
) -> HarnessResult<()> {
    let dir = tempfile::Builder::new()
        .prefix("sip-tests-site-")
        .tempdir()
        .map_err(|e| HarnessError::io("creating a temp dir", e))?;
    let options = SiteOptions {
        rtp_slot: 4,
        ..SiteOptions::default()
    };
    let mut site = Site::start(dir.path(), &options, WAIT)?;
    let a_addr = site.a.sip_addr();
    let alice = AgentPhone::register_through(&site.a, "1001", site.front.addr(), DOMAIN)?;
    site.a.api().wait_for_agent_state("1001", "ready", WAIT)?;
    drop(alice);

    site.a.kill()?;
    // No traffic: the probes take a out of both sets.
    let detected = site.wait_node_state(a_addr, None, 'I', WAIT)?;
    eprintln!(
        "the front took the dead node out after {} ms",
        detected.as_millis()
    );
    // The phone's next registration (the same account) goes to the standby of set 1.
    let alice = AgentPhone::register_through(&site.b, "1001", site.front.addr(), DOMAIN)?;
    site.b.api().wait_for_agent_state("1001", "ready", WAIT)?;
    let offer = call_rings(&site, &alice, "101")?;
    assert!(sent_by(&offer, site.b.sip_addr()), "{}", offer.to_text());
    drop(alice);

    // a is back: the next registration goes home again.
    site.a.restart()?;
    site.wait_node_state(a_addr, None, 'A', WAIT)?;
    let alice = AgentPhone::register_through(&site.a, "1001", site.front.addr(), DOMAIN)?;
    site.a.api().wait_for_agent_state("1001", "ready", WAIT)?;
    let offer = call_rings(&site, &alice, "101")?;
    assert!(sent_by(&offer, a_addr), "{}", offer.to_text());
    Ok(())
}

#[test]
fn a_node_killed_under_load_is_taken_out_and_no_completed_calls_cdr_is_lost() -> HarnessResult<()> {
    let Some((pg, mut site, dir)) = site_with_postgres("site_sigkill", 1, 0) else {
        return Ok(());
    };
    let (rate, seconds, hold_ms) = (50, 12, 300);
    let to_a = trunk_load(&site, dir.path(), IVR_DID_A, rate * seconds, rate, hold_ms)?;
    let to_b = trunk_load(&site, dir.path(), IVR_DID_B, rate * seconds, rate, hold_ms)?;
    // Kill node a once it has completed calls (and carries more).
    wait_cdr_counts(&pg, |a, _| a >= 50);
    let a_addr: SocketAddr = site.a.sip_addr();
    site.a.kill()?;
    // Set 1 (a's home): taken out by the first INVITE a leaves unanswered; set 2 (a as
    // standby, no traffic): by the OPTIONS probes.
    let by_traffic = site.wait_node_state(a_addr, Some(1), 'I', WAIT)?;
    let by_probes = site.wait_node_state(a_addr, None, 'I', WAIT)? + by_traffic;
    eprintln!(
        "front marked the killed node down after {} ms in its home set, {} ms in every set",
        by_traffic.as_millis(),
        by_probes.as_millis()
    );
    let (to_a, to_b) = (finished(to_a, &site.front), finished(to_b, &site.front));
    let (ok_a, failed_a) = to_a.call_counts();
    let (ok_b, failed_b) = to_b.call_counts();
    eprintln!("SIPp to {IVR_DID_A}: {ok_a} ok, {failed_a} failed; to {IVR_DID_B}: {ok_b} ok, {failed_b} failed");
    assert_eq!(ok_a + failed_a, u64::from(rate * seconds));
    assert_eq!(
        (ok_b, failed_b),
        (u64::from(rate * seconds), 0),
        "node b's own calls are untouched"
    );
    // Calls in progress on a when it died are lost; at the offered rate that is at most a few
    // seconds' worth, never the calls placed after the front took a out.
    assert!(failed_a < u64::from(rate * 5), "{failed_a} calls failed");
    assert!(ok_a > 0);

    // a comes back, replays its journal into PostgreSQL, and the front takes it back.
    site.a.restart()?;
    site.wait_node_state(a_addr, None, 'A', WAIT)?;
    let successful = ok_a + ok_b;
    let (a, b) = wait_cdr_counts(&pg, |a, b| a + b >= successful);
    eprintln!("CDRs in PostgreSQL: a {a}, b {b}; SIPp successful {successful}, failed {failed_a}");
    // Every completed call has its CDR; a call that failed may have one too (a ended it but
    // died before its 200 to the BYE left).
    assert!(a + b >= successful, "CDRs lost: {a} + {b} < {successful}");
    assert!(
        a + b <= successful + failed_a,
        "more CDRs than calls: {a} + {b}"
    );
    Ok(())
}

#[test]
fn a_node_stopped_with_sigterm_drains_and_drops_no_call() -> HarnessResult<()> {
    let Some((pg, mut site, dir)) = site_with_postgres("site_sigterm", 2, 60) else {
        return Ok(());
    };
    let (rate, seconds, hold_ms) = (20, 10, 2000);
    let to_a = trunk_load(&site, dir.path(), IVR_DID_A, rate * seconds, rate, hold_ms)?;
    wait_cdr_counts(&pg, |a, _| a >= 10);
    let a_addr = site.a.sip_addr();
    site.a.terminate()?;
    site.a.wait_for_log("draining: new calls refused", WAIT)?;
    let by_traffic = site.wait_node_state(a_addr, Some(1), 'I', WAIT)?;
    let by_probes = site.wait_node_state(a_addr, None, 'I', WAIT)? + by_traffic;
    eprintln!(
        "front marked the draining node inactive after {} ms in its home set, {} ms in every set",
        by_traffic.as_millis(),
        by_probes.as_millis()
    );
    let status = site.a.wait_exit(Duration::from_secs(90))?;
    assert!(status.success(), "node a exits 0 after its drain: {status}");
    let to_a = finished(to_a, &site.front);
    let (ok, failed) = to_a.call_counts();
    eprintln!("SIPp: {ok} ok, {failed} failed");
    to_a.ensure_success()?;
    assert_eq!((ok, failed), (u64::from(rate * seconds), 0));
    let (a, b) = wait_cdr_counts(&pg, |a, b| a + b >= ok);
    assert_eq!(a + b, ok, "one CDR per call (a {a}, b {b})");
    assert!(
        a > 0 && b > 0,
        "calls before the drain on a, after it on b: a {a}, b {b}"
    );
    Ok(())
}

#[test]
fn the_rolling_upgrade_script_replaces_a_node_with_calls_flowing() -> HarnessResult<()> {
    let Some((pg, mut site, dir)) = site_with_postgres("site_rolling_upgrade", 3, 60) else {
        return Ok(());
    };
    let (rate, seconds, hold_ms) = (20, 20, 1000);
    let to_a = trunk_load(&site, dir.path(), IVR_DID_A, rate * seconds, rate, hold_ms)?;
    wait_cdr_counts(&pg, |a, _| a >= 10);
    // The "new release": a small launcher of this worktree's binary (a copy of the debug
    // binary would be 200 MB on a shared disk). The script installs it and starts what it
    // installed, so a node answering afterwards runs the installed file.
    let release = dir.path().join("switchboard-new");
    std::fs::write(
        &release,
        format!(
            "#!/bin/sh\nexec {} \"$@\"\n",
            sip_tests::paths::switchboard_binary()?.display()
        ),
    )
    .map_err(|e| HarnessError::io("writing the new release", e))?;
    let installed = dir.path().join("bin/switchboard");
    let pid_file = dir.path().join("upgraded.pid");
    let a_addr = site.a.sip_addr();
    let start = format!(
        "{} run --config {} --log-level debug >> {} 2>&1 & echo $! > {}",
        installed.display(),
        site.a.config_path().display(),
        dir.path().join("upgraded.log").display(),
        pid_file.display(),
    );
    // Agent 1001 is homed on a.
    let alice = AgentPhone::register_through(&site.a, "1001", site.front.addr(), DOMAIN)?;
    site.a.api().wait_for_agent_state("1001", "ready", WAIT)?;
    drop(alice);
    let script_log = dir.path().join("rolling-upgrade.log");
    let log_file = std::fs::File::create(&script_log)
        .map_err(|e| HarnessError::io("creating the script's log", e))?;
    let log_err = log_file
        .try_clone()
        .map_err(|e| HarnessError::io("duplicating the log handle", e))?;
    let mut script = Command::new(sip_tests::paths::workspace_dir().join("deploy/rolling-upgrade"))
        .args([
            "--ctl",
            &format!("unix:{}", site.front.ctl_socket().display()),
        ])
        .args(["--node", &format!("sip:{a_addr}")])
        .args(["--readyz", &format!("http://{}/readyz", site.a.http_addr())])
        .args(["--stop", &format!("kill -TERM {}", site.a.pid())])
        .args([
            "--install",
            &release.display().to_string(),
            &installed.display().to_string(),
        ])
        .args(["--start", &start])
        .args(["--timeout", "90"])
        .args(["--rehome-wait", "10"])
        .stdout(log_file)
        .stderr(log_err)
        .spawn()
        .map_err(|e| HarnessError::io("running deploy/rolling-upgrade", e))?;
    // During the re-home wait a is out of the front but still up: the phone's next
    // registration reaches the standby.
    site.wait_node_state(a_addr, None, 'D', WAIT)?;
    assert!(
        site.a.is_running(),
        "a is not stopped before the re-home wait"
    );
    let alice = AgentPhone::register_through(&site.b, "1001", site.front.addr(), DOMAIN)?;
    site.b.api().wait_for_agent_state("1001", "ready", WAIT)?;
    drop(alice);
    let status = sip_tests::process::wait_with_timeout(
        &mut script,
        Duration::from_secs(300),
        "rolling-upgrade",
    )?;
    let upgraded_pid = std::fs::read_to_string(&pid_file).unwrap_or_default();
    let stop_upgraded = || {
        if let Ok(pid) = upgraded_pid.trim().parse::<u32>() {
            let _ = Command::new("kill").arg(pid.to_string()).status();
        }
    };
    let report = std::fs::read_to_string(&script_log).unwrap_or_default();
    if !status.success() {
        stop_upgraded();
        panic!(
            "rolling-upgrade failed:\n{report}\n--- kamailio ---\n{}",
            site.front.log()
        );
    }
    eprintln!("{report}");
    assert!(
        site.a.wait_exit(Duration::from_secs(5))?.success(),
        "the old process drained and exited 0"
    );
    assert!(
        site.front
            .node_state(a_addr)?
            .iter()
            .all(|(_, flags)| flags.starts_with('A')),
        "the front sends a calls again"
    );
    let to_a = finished(to_a, &site.front);
    let (ok, failed) = to_a.call_counts();
    eprintln!("SIPp: {ok} ok, {failed} failed");
    let result = to_a.ensure_success();
    let (a, b) = wait_cdr_counts(&pg, |a, b| a + b >= ok);
    stop_upgraded();
    result?;
    let upgraded_log = std::fs::read_to_string(dir.path().join("upgraded.log")).unwrap_or_default();
    assert!(
        upgraded_log.contains("call arrived"),
        "the upgraded node took calls again:\n{upgraded_log}"
    );
    assert_eq!((ok, failed), (u64::from(rate * seconds), 0));
    assert_eq!(a + b, ok, "one CDR per call (a {a}, b {b})");
    Ok(())
}
