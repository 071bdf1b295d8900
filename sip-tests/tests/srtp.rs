//! SRTP with SDES keys (RFC 4568, RFC 3711) through the real binary: baresip (libre's SRTP)
//! as an agent over TLS that only speaks SRTP, a plain RTP trunk on the other side, and
//! audio that both sides can hear; SDES keys offered over plain UDP refused with 488; and
//! SRTP packets with a wrong key, tampered or replayed dropped and counted.

use std::time::{Duration, Instant};

use base64::Engine as _;
use sip_tests::baresip::Baresip;
use sip_tests::rtp::{linear_to_ulaw, pcmu_offer, ulaw_to_linear, RtpPeer, RtpStream};
use sip_tests::tls::TestCertificate;
use sip_tests::uac::{place_media_call, send_ack_for_failure, RequestSpec};
use sip_tests::{
    start_echo_agent, AgentAccount, HarnessError, HarnessResult, Switchboard, SwitchboardConfig,
    UdpPeer,
};
use webrtc_srtp::context::Context;
use webrtc_srtp::option::srtp_replay_protection;
use webrtc_srtp::protection_profile::ProtectionProfile;

const WAIT: Duration = Duration::from_secs(60);

/// A trunk admitted from loopback with `srtp = "optional"`.
fn srtp_trunk() -> String {
    "[[trunk]]\nname = \"t1\"\nallow = [\"127.0.0.0/8\"]\nsrtp = \"optional\"\n\n".to_string()
}

/// Sign changes per 160 samples, averaged over `packets` of G.711 µ-law: about 17.6 for a
/// 440 Hz tone at 8 kHz, about 80 for noise (what an undecrypted payload decodes to).
fn crossings_per_packet(payloads: &[&[u8]]) -> f64 {
    let mut crossings = 0usize;
    for payload in payloads {
        let samples: Vec<i16> = payload.iter().map(|b| ulaw_to_linear(*b)).collect();
        crossings += samples
            .windows(2)
            .filter(|w| (w[0] < 0) != (w[1] < 0))
            .count();
    }
    crossings as f64 / payloads.len().max(1) as f64
}

/// 20 ms of a 1 kHz tone in µ-law (8 samples a period: 40 crossings a packet).
fn tone_1k() -> Vec<u8> {
    (0..160)
        .map(|i| {
            let phase = f64::from(i) * 2.0 * std::f64::consts::PI / 8.0;
            linear_to_ulaw((phase.sin() * 8000.0) as i16)
        })
        .collect()
}

#[test]
fn baresip_srtp_agent_over_tls_echoes_a_plain_rtp_trunks_tone() -> HarnessResult<()> {
    let certs = tempfile::tempdir().map_err(|e| HarnessError::io("temp dir", e))?;
    let certificate = TestCertificate::generate(certs.path(), "server")?;
    let switchboard = Switchboard::start(SwitchboardConfig {
        sip_tls: Some(certificate.files.clone()),
        agents: vec![AgentAccount::new("1001", "Alice").with_line("srtp = \"required\"")],
        ..SwitchboardConfig::default()
    })?;
    let tls = switchboard
        .tls_addr()
        .ok_or_else(|| HarnessError::Unexpected("no TLS listener".into()))?;
    // baresip refuses anything but RTP/SAVP (srtp-mand) and loops what it hears back.
    let baresip = Baresip::tls_srtp_echo_agent(
        &switchboard.dir().join("baresip"),
        "1001",
        "secret1001",
        tls,
        &certificate.files.cert,
    )?;
    baresip.wait_for_log("{0/TLS/v4} 200 OK", WAIT)?;
    switchboard
        .api()
        .wait_for_agent_state("1001", "ready", WAIT)
        .map_err(|e| HarnessError::Unexpected(format!("{e}\nbaresip:\n{}", baresip.log())))?;

    let rtp = RtpPeer::bind()?;
    let sip = UdpPeer::bind(0, switchboard.sip_addr())?;
    let (call, relay) = place_media_call(&sip, "100", &pcmu_offer(rtp.port()?, true), WAIT)
        .map_err(|e| HarnessError::Unexpected(format!("{e}\nbaresip:\n{}", baresip.log())))?;
    let answer = &call.answer.final_response.body;
    assert!(
        answer.contains("RTP/AVP") && !answer.contains("crypto"),
        "the plain trunk gets a plain answer:\n{answer}"
    );
    baresip.wait_for_log(
        "SRTP is Enabled (cryptosuite=AES_CM_128_HMAC_SHA1_80)",
        WAIT,
    )?;
    baresip.wait_for_log("Call established", WAIT)?;

    // Trunk to phone: four seconds of a 1 kHz tone, paced like a phone; the echo comes
    // back through both SRTP directions of the agent leg.
    let mut stream = RtpStream::new(0x7e57_0001);
    let tone = tone_1k();
    let start = Instant::now();
    let mut received = Vec::new();
    for index in 0..200u64 {
        let due = start + Duration::from_millis(20 * index);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            received.extend(rtp.receive(usize::MAX, wait)?);
        }
        rtp.send_to(&stream.audio(0, &tone), relay)?;
    }
    received.extend(rtp.receive(usize::MAX, Duration::from_millis(500))?);
    let audio: Vec<&[u8]> = received
        .iter()
        .filter(|p| p.payload_type() == Some(0) && p.bytes.len() == 12 + 160)
        .map(|p| &p.bytes[12..])
        .collect();
    assert!(
        audio.len() >= 100,
        "plain PCMU comes back from the SRTP phone: {} of {} packets",
        audio.len(),
        received.len()
    );
    // Each packet is the echoed tone (40 sign changes), or silence while the phone's jitter
    // buffer fills and after the tone ends; never ciphertext (about 80, noise).
    let per_packet: Vec<f64> = audio.iter().map(|p| crossings_per_packet(&[p])).collect();
    let tone_packets = per_packet
        .iter()
        .filter(|c| (36.0..=44.0).contains(*c))
        .count();
    assert!(
        tone_packets >= 100,
        "the trunk hears its 1 kHz tone back in at least 100 packets, got {tone_packets}: {per_packet:?}"
    );
    assert!(
        per_packet.iter().all(|c| *c < 60.0),
        "no packet sounds like noise (undecrypted): {per_packet:?}"
    );
    call.hang_up(WAIT)?;
    // The count is added when the call's media ends.
    switchboard.wait_for_log("media session ended call=1", WAIT)?;
    let failures = switchboard
        .api()
        .metrics()?
        .counter("switchboard_srtp_auth_failures_total", &[("stream", "rtp")]);
    assert_eq!(
        failures, 0.0,
        "every SRTP packet of the phone authenticated"
    );
    Ok(())
}

/// Every `.wav` file under `dir`.
fn wav_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    let mut folders = vec![dir.to_path_buf()];
    while let Some(folder) = folders.pop() {
        let Ok(entries) = std::fs::read_dir(&folder) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                folders.push(path);
            } else if path.extension().is_some_and(|e| e == "wav") {
                found.push(path);
            }
        }
    }
    found
}

#[test]
fn a_baresip_trunk_calling_over_tls_with_srtp_is_decrypted_into_the_recording() -> HarnessResult<()>
{
    let certs = tempfile::tempdir().map_err(|e| HarnessError::io("temp dir", e))?;
    let certificate = TestCertificate::generate(certs.path(), "server")?;
    let switchboard = Switchboard::start(SwitchboardConfig {
        sip_tls: Some(certificate.files.clone()),
        trunks: Vec::new(),
        extra_toml: "[[trunk]]\nname = \"pbx\"\nusername = \"pbx\"\npassword = \"pbxpass\"\nsrtp = \"optional\"\n\n".into(),
        support_queue_lines: vec!["record = \"all\"".into()],
        // The call ends when the caller goes silent (baresip is stopped).
        media_timeout_s: 2,
        ..SwitchboardConfig::default()
    })?;
    let tls = switchboard
        .tls_addr()
        .ok_or_else(|| HarnessError::Unexpected("no TLS listener".into()))?;
    let agent = start_echo_agent(&switchboard, "1001", WAIT)?;
    let baresip = Baresip::tls_srtp_caller(
        &switchboard.dir().join("baresip"),
        "pbx",
        "pbxpass",
        tls,
        &format!("sip:100@{tls};transport=tls"),
        &certificate.files.cert,
    )?;
    baresip
        .wait_for_log(
            "SRTP is Enabled (cryptosuite=AES_CM_128_HMAC_SHA1_80)",
            WAIT,
        )
        .map_err(|e| HarnessError::Unexpected(format!("{e}\n{}", switchboard.log())))?;
    baresip.wait_for_log("Call established", WAIT)?;
    // Three seconds of baresip's 440 Hz tone, then the caller goes away.
    baresip.wait_for_log("[0:00:03]", WAIT)?;
    let phone_log = baresip.log();
    drop(baresip);
    agent.wait()?.ensure_success()?;
    switchboard.wait_for_log("media session ended call=1", WAIT)?;
    assert!(
        !phone_log.contains("unprotect"),
        "libre decrypted every SRTP packet Switchboard sent:\n{phone_log}"
    );
    let failures = switchboard
        .api()
        .metrics()?
        .counter("switchboard_srtp_auth_failures_total", &[("stream", "rtp")]);
    assert_eq!(failures, 0.0, "every SRTP packet of libre authenticated");

    let wavs = wav_files(&switchboard.recordings_dir());
    let [path] = wavs.as_slice() else {
        return Err(HarnessError::Unexpected(format!(
            "one recording expected: {wavs:?}"
        )));
    };
    let mut reader = hound::WavReader::open(path)
        .map_err(|e| HarnessError::Unexpected(format!("{path:?}: {e}")))?;
    let rate = reader.spec().sample_rate as usize;
    let samples: Vec<i16> = reader.samples::<i16>().filter_map(Result::ok).collect();
    let caller: Vec<i16> = samples.iter().step_by(2).copied().collect();
    // One second from the loud part: the caller's channel is the decrypted 440 Hz tone.
    let first = caller
        .iter()
        .position(|s| s.unsigned_abs() > 2000)
        .unwrap_or(0);
    let window = &caller[first..(first + rate).min(caller.len())];
    assert!(
        window.len() == rate,
        "a second of the caller's audio, got {} samples",
        window.len()
    );
    let crossings = window
        .windows(2)
        .filter(|w| (w[0] < 0) != (w[1] < 0))
        .count();
    let hz = crossings as f64 / 2.0;
    assert!(
        (400.0..=480.0).contains(&hz),
        "the recording holds baresip's 440 Hz tone (SRTP decrypted), measured {hz:.0} Hz"
    );
    Ok(())
}

/// An SDP offer of RTP/SAVP PCMU to `port` with `key` (30 bytes) on tag 1.
fn savp_offer(port: u16, key: &[u8; 30]) -> String {
    let inline = base64::engine::general_purpose::STANDARD.encode(key);
    format!(
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
         m=audio {port} RTP/SAVP 0\r\na=rtpmap:0 PCMU/8000\r\n\
         a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{inline}\r\na=sendrecv\r\n"
    )
}

#[test]
fn an_sdes_offer_over_udp_is_refused_with_488_and_a_warning() -> HarnessResult<()> {
    let switchboard = Switchboard::start(SwitchboardConfig {
        trunks: Vec::new(),
        extra_toml: srtp_trunk(),
        ..SwitchboardConfig::default()
    })?;
    let sip = UdpPeer::bind(0, switchboard.sip_addr())?;
    let mut invite = RequestSpec::new("INVITE", &format!("sip:100@{}", sip.remote()), "2000");
    invite.body = savp_offer(40_000, &[7; 30]);
    let answered = sip.request(&invite.render(sip.local_addr()?), WAIT)?;
    let response = &answered.final_response;
    send_ack_for_failure(&sip, &invite, response)?;
    assert_eq!(response.status(), Some(488), "{}", response.to_text());
    let warning = response.header("Warning").unwrap_or_default();
    assert!(
        warning.contains("SDES keys (a=crypto) are refused over a transport without TLS"),
        "the Warning says why: {warning}"
    );
    Ok(())
}

#[test]
fn a_trunk_that_requires_srtp_gets_488_for_plain_or_delayed_offers() -> HarnessResult<()> {
    let switchboard = Switchboard::start(SwitchboardConfig {
        trunks: Vec::new(),
        extra_toml: srtp_trunk().replace("\"optional\"", "\"required\""),
        ..SwitchboardConfig::default()
    })?;
    let sip = UdpPeer::bind(0, switchboard.sip_addr())?;
    let plain = pcmu_offer(40_000, false);
    for (body, reason) in [
        (
            plain.as_str(),
            "SRTP is required: offer RTP/SAVP with an a=crypto (SDES) line",
        ),
        ("", "a delayed offer is answered with plain RTP"),
    ] {
        let mut invite = RequestSpec::new("INVITE", &format!("sip:100@{}", sip.remote()), "2000");
        invite.body = body.to_owned();
        let answered = sip.request(&invite.render(sip.local_addr()?), WAIT)?;
        let response = &answered.final_response;
        send_ack_for_failure(&sip, &invite, response)?;
        assert_eq!(response.status(), Some(488), "{}", response.to_text());
        let warning = response.header("Warning").unwrap_or_default();
        assert!(warning.contains(reason), "{warning}");
    }
    Ok(())
}

/// The SRTP context for the key in the answer's `a=crypto` line.
fn answer_context(answer: &str) -> HarnessResult<Context> {
    let inline = answer
        .lines()
        .find_map(|l| l.strip_prefix("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:"))
        .ok_or_else(|| HarnessError::Unexpected(format!("no crypto line for tag 1:\n{answer}")))?;
    let key = base64::engine::general_purpose::STANDARD
        .decode(inline.trim())
        .map_err(|e| HarnessError::Unexpected(format!("answer key: {e}")))?;
    if key.len() != 30 {
        return Err(HarnessError::Unexpected(format!(
            "answer key of {} bytes",
            key.len()
        )));
    }
    Context::new(
        &key[..16],
        &key[16..],
        ProtectionProfile::Aes128CmHmacSha1_80,
        Some(srtp_replay_protection(64)),
        None,
    )
    .map_err(|e| HarnessError::Unexpected(format!("SRTP context: {e}")))
}

fn sender(key: &[u8; 30]) -> HarnessResult<Context> {
    Context::new(
        &key[..16],
        &key[16..],
        ProtectionProfile::Aes128CmHmacSha1_80,
        None,
        None,
    )
    .map_err(|e| HarnessError::Unexpected(format!("SRTP context: {e}")))
}

#[test]
fn srtp_packets_with_a_wrong_key_tampered_or_replayed_are_dropped_and_counted() -> HarnessResult<()>
{
    let switchboard = Switchboard::start(SwitchboardConfig {
        trunks: Vec::new(),
        extra_toml: srtp_trunk(),
        // Keys over UDP only because this test allows it; Switchboard answers the call
        // itself (music on hold) so the trunk leg is all there is.
        media_lines: vec!["allow_sdes_without_tls = true".into()],
        support_queue_lines: vec!["answer = \"on-queue\"".into()],
        ..SwitchboardConfig::default()
    })?;
    let rtp = RtpPeer::bind()?;
    let sip = UdpPeer::bind(0, switchboard.sip_addr())?;
    let trunk_key = [0x42u8; 30];
    let (call, relay) = place_media_call(&sip, "100", &savp_offer(rtp.port()?, &trunk_key), WAIT)?;
    let answer = call.answer.final_response.body.clone();
    assert!(answer.contains(" RTP/SAVP 0"), "an SRTP answer:\n{answer}");

    // Switchboard's music on hold arrives as SRTP under the key of its answer.
    let mut from_switchboard = answer_context(&answer)?;
    let received = rtp.receive(10, WAIT)?;
    assert_eq!(received.len(), 10, "music on hold reaches the trunk");
    for packet in &received {
        let plain = from_switchboard
            .decrypt_rtp(&packet.bytes)
            .map_err(|e| HarnessError::Unexpected(format!("Switchboard's SRTP: {e}")))?;
        assert_eq!(plain.len(), 12 + 160, "PCMU after decryption");
        assert_eq!(packet.bytes.len(), 12 + 160 + 10, "80-bit tag on the wire");
    }

    let mut ours = sender(&trunk_key)?;
    let mut stranger = sender(&[0x99; 30])?;
    let mut stream = RtpStream::new(0x7e57_0002);
    let tone = tone_1k();
    let mut dropped = 0.0;
    let mut last_good = Vec::new();
    for round in 0..5 {
        let good = ours
            .encrypt_rtp(&stream.audio(0, &tone))
            .map_err(|e| HarnessError::Unexpected(format!("{e}")))?;
        rtp.send_to(&good, relay)?;
        last_good = good.to_vec();
        let mut tampered = ours
            .encrypt_rtp(&stream.audio(0, &tone))
            .map_err(|e| HarnessError::Unexpected(format!("{e}")))?
            .to_vec();
        tampered[40] ^= 0x01;
        rtp.send_to(&tampered, relay)?;
        dropped += 1.0;
        if round % 2 == 0 {
            let foreign = stranger
                .encrypt_rtp(&stream.audio(0, &tone))
                .map_err(|e| HarnessError::Unexpected(format!("{e}")))?;
            rtp.send_to(&foreign, relay)?;
            dropped += 1.0;
        }
    }
    rtp.send_to(&last_good, relay)?; // a replay
    dropped += 1.0;
    call.hang_up(WAIT)?;

    // Counted when the call's media ends.
    let counted = switchboard.api().wait_for_counter(
        "switchboard_srtp_auth_failures_total",
        &[("stream", "rtp")],
        dropped,
        WAIT,
    )?;
    assert_eq!(
        counted, dropped,
        "each bad packet counted once, the good ones not at all"
    );
    Ok(())
}
