//! The agent desktop's built-in softphone in real headless Chromium (Playwright for Python with
//! the system browser and a fake microphone, sip-tests/tools/webrtc_softphone.py), against the
//! real binary: the page registers over the SIP WebSocket listener, the agent goes Ready, a
//! trunk call with RTP arrives and is answered in the page, RTP flows both ways through
//! Switchboard's WebRTC leg (ICE-lite, DTLS-SRTP) and the plain trunk leg — counted at the
//! trunk's RTP socket and in the page's getStats —, the page's JsSIP puts the call on hold
//! and takes it off again with re-INVITEs (the caller hears music, then the agent), and the
//! agent hangs up in the page.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use sip_tests::browser_script::{hash_password, BrowserScript};
use sip_tests::rtp::{pcmu_offer, RtpPeer};
use sip_tests::tls::TestCertificate;
use sip_tests::uac::place_media_call;
use sip_tests::{
    AgentAccount, HarnessError, HarnessResult, Switchboard, SwitchboardConfig, UdpPeer,
};

const AGENT_PASSWORD: &str = "desk-pass-1001";
/// Packets from the browser the trunk must receive (one second of 20 ms packets).
const TRUNK_PACKETS: usize = 50;
const WAIT: Duration = Duration::from_secs(60);

#[test]
fn the_desktop_softphone_answers_a_trunk_call_and_rtp_flows_both_ways() -> HarnessResult<()> {
    let agent_hash = hash_password(AGENT_PASSWORD)?;
    let switchboard = Switchboard::start(SwitchboardConfig {
        agents: vec![AgentAccount::new("1001", "Alice").with_web_password_hash(&agent_hash)],
        websocket: true,
        ..SwitchboardConfig::default()
    })?;
    let base = format!("http://{}", switchboard.http_addr());
    answer_in_the_page(&switchboard, &base)
}

/// The same over HTTPS: the page's softphone registers over the `wss` listener (the test's
/// self-signed certificate, accepted by this Chromium only).
#[test]
fn over_https_the_desktop_softphone_registers_over_wss() -> HarnessResult<()> {
    let certs = tempfile::tempdir().map_err(|e| HarnessError::io("temp dir", e))?;
    let certificate = TestCertificate::generate(certs.path(), "server")?;
    let agent_hash = hash_password(AGENT_PASSWORD)?;
    let switchboard = Switchboard::start(SwitchboardConfig {
        agents: vec![AgentAccount::new("1001", "Alice").with_web_password_hash(&agent_hash)],
        websocket: true,
        sip_tls: Some(certificate.files.clone()),
        http_tls: Some(certificate.files.clone()),
        ..SwitchboardConfig::default()
    })?;
    let base = format!("https://localhost:{}", switchboard.http_addr().port());
    answer_in_the_page(&switchboard, &base)?;
    // The call was offered to the page over its secure WebSocket.
    switchboard.wait_for_log(
        "offering call to agent call=1 agent=1001 attempt=1 peer=WSS:",
        WAIT,
    )?;
    Ok(())
}

/// Logs the agent in at `base`, turns the softphone on, places a trunk call with RTP, answers
/// it in the page, counts RTP both ways and hangs up in the page.
fn answer_in_the_page(switchboard: &Switchboard, base: &str) -> HarnessResult<()> {
    let shots = switchboard.dir().join("screenshots");
    std::fs::create_dir_all(&shots).map_err(|e| HarnessError::io("screenshot dir", e))?;
    let mut browser = BrowserScript::start(
        "webrtc_softphone.py",
        &[
            base.to_string(),
            "1001".into(),
            AGENT_PASSWORD.into(),
            shots.display().to_string(),
        ],
    )?;

    browser.expect_step("call-me")?;
    let rtp = RtpPeer::bind()?;
    let sip = UdpPeer::bind(0, switchboard.sip_addr())?;
    let offer = pcmu_offer(rtp.port()?, false);
    let stop_sending = AtomicBool::new(false);
    std::thread::scope(|scope| -> HarnessResult<()> {
        let call = scope.spawn(|| place_media_call(&sip, "100", &offer, WAIT));
        browser.go()?;
        let (call, relay) = call
            .join()
            .map_err(|_| HarnessError::Unexpected("the caller thread panicked".into()))??;
        // The caller talks (a 20 ms media clock) until the page has counted its packets.
        let (rtp, stop_sending) = (&rtp, &stop_sending);
        let sender = scope.spawn(move || -> HarnessResult<u16> {
            let deadline = Instant::now() + WAIT;
            let mut sent = 0u16;
            while !stop_sending.load(Ordering::Relaxed) && Instant::now() < deadline {
                rtp.send_to(&RtpPeer::packet(sent, 0, 0x5157_1234), relay)?;
                sent = sent.wrapping_add(1);
                std::thread::sleep(Duration::from_millis(20));
            }
            Ok(sent)
        });
        // What the browser's fake microphone says reaches the trunk as plain PCMU from
        // Switchboard's trunk-side port.
        let received = rtp.receive(TRUNK_PACKETS, WAIT)?;
        let lines = browser.expect_step("rtp-flows")?;
        assert_eq!(
            received.len(),
            TRUNK_PACKETS,
            "RTP from the browser at the trunk within {WAIT:?}"
        );
        assert!(
            received
                .iter()
                .all(|p| p.from == relay && p.payload_type() == Some(0)),
            "plain PCMU from Switchboard's trunk port {relay}: {:?}",
            received
                .iter()
                .map(|p| (p.from, p.payload_type()))
                .collect::<Vec<_>>()
        );
        let stats = lines
            .iter()
            .find_map(|line| line.strip_prefix("STATS "))
            .ok_or_else(|| HarnessError::Unexpected(format!("no STATS line: {lines:?}")))?;
        let stats: serde_json::Value = serde_json::from_str(stats)
            .map_err(|e| HarnessError::Unexpected(format!("STATS {stats}: {e}")))?;
        assert!(
            stats["received"].as_u64().unwrap_or(0) >= 25
                && stats["sent"].as_u64().unwrap_or(0) >= 25,
            "the page's getStats counts RTP both ways: {stats}"
        );
        assert_eq!(stats["codec"], "audio/PCMU", "{stats}");
        // Relayed unchanged: what the trunk got is the browser's own stream (its SSRC).
        let browser_ssrc = stats["ssrc"].as_u64().and_then(|s| u32::try_from(s).ok());
        assert!(
            browser_ssrc.is_some() && received.iter().all(|p| p.ssrc() == browser_ssrc),
            "the trunk's packets carry the page's outbound SSRC {browser_ssrc:?}: {:?}",
            received.iter().map(|p| p.ssrc()).collect::<Vec<_>>()
        );

        // JsSIP's hold: a re-INVITE with the same ICE and DTLS, sendonly. Switchboard answers
        // it (no 488, which would make JsSIP hang up) and plays music to the caller.
        browser.go()?;
        browser.expect_step("held")?;
        switchboard.wait_for_log("agent hold changed call=1 holding=true", WAIT)?;
        let held = wait_for_stream(rtp, relay, |ssrc| ssrc != browser_ssrc)?;
        // And resume: the browser's own stream reaches the caller again, and the page hears
        // the caller again (it counted more packets after the resume).
        browser.go()?;
        browser.expect_step("resumed")?;
        switchboard.wait_for_log("agent hold changed call=1 holding=false", WAIT)?;
        wait_for_stream(rtp, relay, |ssrc| ssrc == browser_ssrc)?;
        assert!(
            held.is_some(),
            "music on hold is an RTP stream of its own: {held:?}"
        );
        stop_sending.store(true, Ordering::Relaxed);
        let sent = sender
            .join()
            .map_err(|_| HarnessError::Unexpected("the RTP sender panicked".into()))??;
        assert!(u64::from(sent) >= 50, "the trunk sent {sent} packets");

        // The agent hangs up in the page: the caller gets Switchboard's BYE.
        browser.go()?;
        call.wait_for_bye(WAIT)?;
        Ok(())
    })?;
    browser.expect_step("done")?;
    browser.go()?;
    browser.finish()
}

/// How many packets in a row from Switchboard's trunk port make a stream "the one heard".
const STREAK: usize = 10;

/// Reads the caller's RTP until `STREAK` packets in a row from `relay` carry an SSRC that
/// `wanted` accepts (what was queued before the change is read through); that SSRC.
fn wait_for_stream(
    rtp: &RtpPeer,
    relay: std::net::SocketAddr,
    wanted: impl Fn(Option<u32>) -> bool,
) -> HarnessResult<Option<u32>> {
    let deadline = Instant::now() + WAIT;
    let mut streak = 0;
    let mut seen = Vec::new();
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        for packet in rtp.receive(1, left)? {
            let ssrc = packet.ssrc();
            if packet.from == relay && wanted(ssrc) {
                streak += 1;
                if streak == STREAK {
                    return Ok(ssrc);
                }
            } else {
                streak = 0;
            }
            if seen.last() != Some(&ssrc) {
                seen.push(ssrc);
            }
        }
    }
    Err(HarnessError::Unexpected(format!(
        "no {STREAK} packets in a row of the expected stream within {WAIT:?}; SSRCs seen: {seen:?}"
    )))
}
