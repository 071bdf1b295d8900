//! Supervisors from their phones: supervisor 1003 dials `*411001` while agent 1001 talks to a
//! caller. Each party sends its own tone (caller 500 Hz, agent 1100 Hz, supervisor 1900 Hz)
//! and each party's received audio is analysed (Goertzel): in listen mode the supervisor
//! hears caller and agent and nobody hears the supervisor; in whisper mode (key 2 by SIP INFO)
//! the agent hears the supervisor and the caller never does (and `GET /api/calls` shows the
//! supervisor's leg and mode); in barge mode (key 3) the caller
//! hears the supervisor too; key 1 sent as RFC 4733 goes back to listening. The agent's phone
//! gets no SIP at all, and the CDR lists the supervision with its modes.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use sip_tests::agent_phone::AgentPhone;
use sip_tests::cdr::wait_for_call;
use sip_tests::digest::{Credentials, DigestAlgorithm};
use sip_tests::rtp::{
    pcmu_offer, pcmu_samples, sdp_audio_address, tone_payloads, tone_share, RtpPeer, RtpStream,
};
use sip_tests::uac::{authenticated_invite, place_media_call};
use sip_tests::{
    AgentAccount, HarnessError, HarnessResult, Switchboard, SwitchboardConfig, UdpPeer,
};

const WAIT: Duration = Duration::from_secs(30);
const CALLER_HZ: f64 = 500.0;
const AGENT_HZ: f64 = 1100.0;
const SUPERVISOR_HZ: f64 = 1900.0;
/// A tone makes up about half of a two-tone mix and nearly all of a lone one; absent, it is
/// quantisation noise.
const PRESENT: f64 = 0.15;
const ABSENT: f64 = 0.05;

fn config() -> SwitchboardConfig {
    SwitchboardConfig {
        agents: vec![
            AgentAccount::new("1001", "Alice"),
            AgentAccount::new("1002", "Bob").without_support(),
            AgentAccount::new("1003", "Carol")
                .without_support()
                .as_supervisor(),
        ],
        ..SwitchboardConfig::default()
    }
}

/// Stops the talking threads when dropped, so a failed check ends the test instead of
/// leaving the scope waiting for them.
struct StopOnDrop<'a>(&'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Sends a continuous tone from `rtp` to `to` every 20 ms until `stop`.
fn talk(rtp: &RtpPeer, to: SocketAddr, hz: f64, ssrc: u32, stop: &AtomicBool) {
    let payloads = tone_payloads(&[hz], 4000.0, 50);
    let mut stream = RtpStream::new(ssrc);
    let start = Instant::now();
    let mut sent = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let packet = stream.audio(0, &payloads[sent as usize % payloads.len()]);
        if rtp.send_to(&packet, to).is_err() {
            return;
        }
        sent += 1;
        let due = start + Duration::from_millis(20 * sent);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
    }
}

/// Half a second of what `rtp` receives, decoded.
fn heard(rtp: &RtpPeer) -> HarnessResult<Vec<i16>> {
    Ok(pcmu_samples(&rtp.receive(25, Duration::from_secs(2))?))
}

/// Listens on `rtp` until `condition` holds for what arrives (or fails after `WAIT`).
fn wait_until(rtp: &RtpPeer, what: &str, condition: impl Fn(&[i16]) -> bool) -> HarnessResult<()> {
    let deadline = Instant::now() + WAIT;
    let mut last = Vec::new();
    while Instant::now() < deadline {
        last = heard(rtp)?;
        if !last.is_empty() && condition(&last) {
            return Ok(());
        }
    }
    Err(HarnessError::Unexpected(format!(
        "{what} within {} s; last window: caller {:.2} agent {:.2} supervisor {:.2}",
        WAIT.as_secs(),
        tone_share(&last, CALLER_HZ),
        tone_share(&last, AGENT_HZ),
        tone_share(&last, SUPERVISOR_HZ),
    )))
}

/// `rtp` does not hear the supervisor over a few windows.
fn never_hears_supervisor(rtp: &RtpPeer, who: &str) -> HarnessResult<()> {
    for _ in 0..4 {
        let samples = heard(rtp)?;
        let share = tone_share(&samples, SUPERVISOR_HZ);
        assert!(
            !samples.is_empty() && share < ABSENT,
            "{who} must not hear the supervisor (share {share:.3})"
        );
    }
    Ok(())
}

#[test]
fn a_supervisor_listens_whispers_and_barges_and_the_cdr_keeps_it() -> HarnessResult<()> {
    let switchboard = Switchboard::start(config())?;
    let agent = AgentPhone::register(&switchboard, "1001")?;
    let agent_rtp = RtpPeer::bind()?;
    let caller_rtp = RtpPeer::bind()?;
    let supervisor_rtp = RtpPeer::bind()?;
    let caller_sip = UdpPeer::bind(0, switchboard.sip_addr())?;
    let supervisor_sip = UdpPeer::bind(0, switchboard.sip_addr())?;
    let stop = AtomicBool::new(false);
    let (agent_rtp, caller_rtp, supervisor_rtp) = (&agent_rtp, &caller_rtp, &supervisor_rtp);

    std::thread::scope(|scope| -> HarnessResult<()> {
        let answering =
            scope.spawn(|| agent.answer_next(&pcmu_offer(agent_rtp.port()?, false), WAIT));
        let (call, caller_relay) = place_media_call(
            &caller_sip,
            "100",
            &pcmu_offer(caller_rtp.port()?, false),
            WAIT,
        )?;
        let agent_call = answering
            .join()
            .map_err(|_| HarnessError::Unexpected("agent thread panicked".into()))??;
        let agent_relay = sdp_audio_address(&agent_call.invite.body).ok_or_else(|| {
            HarnessError::Unexpected("no audio address in the agent's INVITE".into())
        })?;
        let stop = &stop;
        let _stop_talking = StopOnDrop(stop);
        scope.spawn(move || talk(caller_rtp, caller_relay, CALLER_HZ, 0xca11, stop));
        scope.spawn(move || talk(agent_rtp, agent_relay, AGENT_HZ, 0xa6e7, stop));
        wait_until(caller_rtp, "the caller hears the agent", |s| {
            tone_share(s, AGENT_HZ) > PRESENT
        })?;

        // Listen.
        let credentials = Credentials {
            username: "1003",
            password: "secret1003",
        };
        let (_, joined) = authenticated_invite(
            &supervisor_sip,
            "*411001",
            &credentials,
            DigestAlgorithm::Md5,
            &pcmu_offer(supervisor_rtp.port()?, true),
            WAIT,
        )?;
        let mut supervision = joined.map_err(|refused| {
            HarnessError::Unexpected(format!(
                "*411001 refused:\n{}",
                refused.final_response.to_text()
            ))
        })?;
        let supervisor_relay = sdp_audio_address(&supervision.answer.final_response.body)
            .ok_or_else(|| HarnessError::Unexpected("no audio address in the 200".into()))?;
        scope.spawn(move || talk(supervisor_rtp, supervisor_relay, SUPERVISOR_HZ, 0x5e9, stop));
        wait_until(
            supervisor_rtp,
            "the supervisor hears caller and agent",
            |s| tone_share(s, CALLER_HZ) > PRESENT && tone_share(s, AGENT_HZ) > PRESENT,
        )?;
        never_hears_supervisor(caller_rtp, "the caller (listen)")?;
        never_hears_supervisor(agent_rtp, "the agent (listen)")?;

        // Whisper, by SIP INFO.
        let info = supervision.request(
            "INFO",
            "application/dtmf-relay",
            "Signal=2\r\nDuration=100\r\n",
            WAIT,
        )?;
        assert_eq!(info.final_response.status(), Some(200));
        wait_until(agent_rtp, "the agent hears the whisper", |s| {
            tone_share(s, SUPERVISOR_HZ) > PRESENT && tone_share(s, CALLER_HZ) > PRESENT
        })?;
        never_hears_supervisor(caller_rtp, "the caller (whisper)")?;
        // The live call list shows the supervisor's leg and mode.
        let listed = switchboard.api().get("/api/calls")?.json()?;
        let legs = listed["calls"][0]["legs"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let supervisor_leg = legs
            .iter()
            .find(|leg| leg["role"] == "supervisor")
            .ok_or_else(|| HarnessError::Unexpected(format!("no supervisor leg: {listed}")))?;
        assert_eq!(supervisor_leg["party"], "1003", "{listed}");
        assert_eq!(supervisor_leg["mode"], "whisper", "{listed}");
        assert_eq!(supervisor_leg["state"], "answered", "{listed}");

        // Barge, by SIP INFO.
        let info = supervision.request(
            "INFO",
            "application/dtmf-relay",
            "Signal=3\r\nDuration=100\r\n",
            WAIT,
        )?;
        assert_eq!(info.final_response.status(), Some(200));
        wait_until(caller_rtp, "the caller hears the barging supervisor", |s| {
            tone_share(s, SUPERVISOR_HZ) > PRESENT && tone_share(s, AGENT_HZ) > PRESENT
        })?;

        // Back to listening, by RFC 4733 from the supervisor's phone.
        let mut keys = RtpStream::new(0x5e9);
        for packet in keys.key_press(101, 1) {
            supervisor_rtp.send_to(&packet, supervisor_relay)?;
        }
        wait_until(caller_rtp, "the caller stops hearing the supervisor", |s| {
            tone_share(s, SUPERVISOR_HZ) < ABSENT && tone_share(s, AGENT_HZ) > PRESENT
        })?;

        let bye = supervision.hang_up(WAIT)?;
        assert_eq!(bye.final_response.status(), Some(200));
        // The call goes on between caller and agent.
        wait_until(caller_rtp, "the caller still hears the agent", |s| {
            tone_share(s, AGENT_HZ) > PRESENT
        })?;
        let to_agent = agent.collect_for(Duration::from_millis(200))?;
        assert!(
            to_agent.is_empty(),
            "the agent's phone is told nothing of the supervision: {to_agent:?}"
        );
        stop.store(true, Ordering::Relaxed);
        let call_id = call.call_id().to_owned();
        call.hang_up(WAIT)?;

        let record = wait_for_call(switchboard.cdr_dir(), &call_id, WAIT)?;
        let supervisions = record["supervisions"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        assert_eq!(supervisions.len(), 1, "{record}");
        assert_eq!(supervisions[0]["supervisor"], "1003", "{record}");
        assert_eq!(supervisions[0]["agent"], "1001", "{record}");
        assert_eq!(
            supervisions[0]["modes"],
            serde_json::json!(["listen", "whisper", "barge", "listen"]),
            "{record}"
        );
        Ok(())
    })
}

#[test]
fn supervisor_codes_are_refused_with_a_reason() -> HarnessResult<()> {
    let switchboard = Switchboard::start(config())?;
    let refused = |user: &str, dialled: &str| -> HarnessResult<(u16, String)> {
        let peer = UdpPeer::bind(0, switchboard.sip_addr())?;
        let password = format!("secret{user}");
        let credentials = Credentials {
            username: user,
            password: &password,
        };
        let (_, outcome) = authenticated_invite(
            &peer,
            dialled,
            &credentials,
            DigestAlgorithm::Md5,
            &pcmu_offer(40_000, false),
            WAIT,
        )?;
        match outcome {
            Ok(_) => Err(HarnessError::Unexpected(format!(
                "{user} dialling {dialled} was answered"
            ))),
            Err(exchange) => Ok((
                exchange.final_response.status().unwrap_or_default(),
                exchange
                    .final_response
                    .header("Warning")
                    .unwrap_or_default()
                    .to_owned(),
            )),
        }
    };
    let (code, warning) = refused("1002", "*411001")?;
    assert_eq!(code, 403, "an agent without the role: {warning}");
    assert!(warning.contains("not a supervisor"), "{warning}");
    let (code, warning) = refused("1003", "*419999")?;
    assert_eq!(code, 404, "{warning}");
    assert!(warning.contains("unknown agent 9999"), "{warning}");
    let (code, warning) = refused("1003", "*421001")?;
    assert_eq!(code, 480, "agent 1001 is on no call: {warning}");
    assert!(warning.contains("not on a call"), "{warning}");
    Ok(())
}
