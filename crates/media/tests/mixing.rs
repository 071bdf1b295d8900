//! Mixed media sessions over real UDP sockets on 127.0.0.1: three phones (caller on the
//! trunk leg, agent, supervisor on `Leg::Extra(0)`) each send a pure tone at their own
//! frequency, and what each phone receives is checked with a Goertzel filter for the tones
//! it must and must not hear. Nothing waits for time to pass: every check waits for packets
//! or events, with generous timeouts.

use std::f32::consts::PI;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use media::dtmf::telephone_event_packets;
use media::g711::{ulaw_decode, G711Law};
use media::routing::{self, Routing};
use media::{
    Codec, DtmfDigit, Leg, LegConfig, MediaCommand, MediaEvent, MediaSession, PortPair, PortPool,
    RecorderMetrics, RecorderPool, RecordingOutcome, SessionConfig, SessionId, StopReason,
    MAX_EXTRA_LEGS,
};
use rtp_rs::{RtpPacketBuilder, RtpReader, Seq};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

type Events = mpsc::UnboundedReceiver<(SessionId, MediaEvent)>;

const WAIT: Duration = Duration::from_secs(10);
/// Packets a phone may receive while waiting for what it should hear (3 s of audio).
const PATIENCE: usize = 150;
const CALLER_HZ: f32 = 500.0;
const AGENT_HZ: f32 = 1000.0;
const SUPERVISOR_HZ: f32 = 2000.0;
/// A tone sent at amplitude 6000 measures ~6000; a tone not in the mix measures ~0.
const PRESENT: f32 = 2000.0;
const ABSENT: f32 = 300.0;
const SUPERVISOR: Leg = Leg::Extra(0);

/// Ports for this test binary (its own range, so it does not meet the unit tests' pool);
/// ports taken by other processes are skipped by retrying.
fn pair() -> PortPair {
    static POOL: OnceLock<Mutex<PortPool>> = OnceLock::new();
    let pool = POOL.get_or_init(|| Mutex::new(PortPool::new(44000, 45999).expect("range")));
    let mut pool = pool.lock().expect("pool lock");
    match pool.allocate() {
        Ok(pair) => pair,
        Err(_) => {
            // Exhausted by retries: start over, the earlier sessions are gone.
            *pool = PortPool::new(44000, 45999).expect("range");
            pool.allocate().expect("a fresh pool has pairs")
        }
    }
}

async fn phone() -> Arc<UdpSocket> {
    Arc::new(UdpSocket::bind("127.0.0.1:0").await.expect("bind phone"))
}

fn config(socket: &UdpSocket) -> LegConfig {
    LegConfig {
        remote_rtp: Some(socket.local_addr().expect("addr")),
        codec: Some((Codec::Pcmu, 0)),
        telephone_event: Some(101),
        ..LegConfig::default()
    }
}

fn start_with(
    caller: &UdpSocket,
    agent: &UdpSocket,
    timeout: Option<Duration>,
) -> (MediaSession, Events) {
    let (sink, events) = mpsc::unbounded_channel();
    for _ in 0..100 {
        let session = MediaSession::start(
            SessionConfig {
                id: 7,
                bind_ip: "127.0.0.1".parse().expect("loopback"),
                trunk_ports: pair(),
                agent_ports: pair(),
                trunk: config(caller),
                agent: Some(config(agent)),
                media_timeout: timeout,
                relatch_after: Duration::from_secs(2),
                rtcp: true,
            },
            sink.clone(),
        );
        if let Ok(session) = session {
            return (session, events);
        }
    }
    panic!("no free ports for the test session");
}

fn start(caller: &UdpSocket, agent: &UdpSocket) -> (MediaSession, Events) {
    start_with(caller, agent, None)
}

async fn next_event(events: &mut Events) -> MediaEvent {
    let (id, event) = tokio::time::timeout(WAIT, events.recv())
        .await
        .expect("event in time")
        .expect("sink open");
    assert_eq!(id, 7);
    event
}

/// Adds `leg` for `phone`, retrying on other ports if one is taken; its local RTP address.
async fn add_leg(
    session: &MediaSession,
    events: &mut Events,
    leg: Leg,
    phone: &UdpSocket,
) -> (SocketAddr, PortPair) {
    for _ in 0..100 {
        let ports = pair();
        session.command(MediaCommand::AddLeg {
            leg,
            ports,
            config: config(phone),
        });
        loop {
            match next_event(events).await {
                MediaEvent::LegAdded {
                    leg: added,
                    local_rtp,
                } if added == leg => return (local_rtp, ports),
                MediaEvent::AddLegFailed { leg: failed, .. } if failed == leg => break,
                _ => {}
            }
        }
    }
    panic!("no free ports for the extra leg");
}

/// One 20 ms frame of a sine at `hz`, amplitude 6000, continuous across frames.
fn tone(hz: f32, frame: u32) -> Vec<u8> {
    let samples: Vec<i16> = (0..160u32)
        .map(|i| {
            let t = (frame * 160 + i) as f32 / 8000.0;
            (6000.0 * (2.0 * PI * hz * t).sin()) as i16
        })
        .collect();
    let mut out = Vec::new();
    G711Law::Ulaw.encode_into(&samples, &mut out);
    out
}

/// The amplitude of `hz` in `samples` (Goertzel): ~A for a sine of amplitude A.
fn amplitude(samples: &[i16], hz: f32) -> f32 {
    let coefficient = 2.0 * (2.0 * PI * hz / 8000.0).cos();
    let (mut s1, mut s2) = (0.0f32, 0.0f32);
    for &sample in samples {
        let s0 = f32::from(sample) + coefficient * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    let power = s1 * s1 + s2 * s2 - coefficient * s1 * s2;
    2.0 * power.max(0.0).sqrt() / samples.len() as f32
}

/// A phone talking: one tone packet every 20 ms to `to`, until dropped.
struct Talker(JoinHandle<()>);

impl Drop for Talker {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn talk(socket: &Arc<UdpSocket>, to: SocketAddr, hz: f32, ssrc: u32) -> Talker {
    let socket = Arc::clone(socket);
    Talker(tokio::spawn(async move {
        // Paces the generated traffic like a phone does; nothing waits on it.
        let mut clock = tokio::time::interval(Duration::from_millis(20));
        for frame in 0u32.. {
            clock.tick().await;
            let packet = RtpPacketBuilder::new()
                .payload_type(0)
                .ssrc(ssrc)
                .sequence(Seq::from(frame as u16))
                .timestamp(frame * 160)
                .payload(&tone(hz, frame))
                .build()
                .expect("valid packet");
            let _ = socket.send_to(&packet, to).await;
        }
    }))
}

/// One received RTP packet: its SSRC and decoded audio.
struct Heard {
    ssrc: u32,
    samples: Vec<i16>,
}

impl Heard {
    fn has(&self, hz: f32) -> bool {
        amplitude(&self.samples, hz) > PRESENT
    }

    fn lacks(&self, hz: f32) -> bool {
        amplitude(&self.samples, hz) < ABSENT
    }
}

async fn hear(socket: &UdpSocket) -> Heard {
    let mut buf = [0u8; 2048];
    let (len, _) = tokio::time::timeout(WAIT, socket.recv_from(&mut buf))
        .await
        .expect("audio in time")
        .expect("recv");
    let packet = RtpReader::new(&buf[..len]).expect("valid RTP");
    Heard {
        ssrc: packet.ssrc(),
        samples: packet.payload().iter().map(|&b| ulaw_decode(b)).collect(),
    }
}

/// Receives until `wanted` holds for `count` packets; every packet received on the way must
/// satisfy `never_violated`. Fails if `PATIENCE` packets pass first.
async fn hear_until(
    socket: &UdpSocket,
    count: usize,
    wanted: impl Fn(&Heard) -> bool,
    never_violated: impl Fn(&Heard) -> bool,
    what: &str,
) {
    let mut seen = 0;
    for _ in 0..PATIENCE {
        let heard = hear(socket).await;
        assert!(never_violated(&heard), "{what}: a forbidden tone was heard");
        if wanted(&heard) {
            seen += 1;
            if seen == count {
                return;
            }
        }
    }
    panic!("{what}: not heard in {PATIENCE} packets");
}

/// Packets already queued on a socket, without waiting.
fn queued(socket: &UdpSocket) -> usize {
    let mut buf = [0u8; 2048];
    std::iter::from_fn(|| socket.try_recv_from(&mut buf).ok()).count()
}

/// Caller, agent and supervisor phones all talking into a session with `routing`.
struct ThreeParty {
    session: MediaSession,
    events: Events,
    caller: Arc<UdpSocket>,
    agent: Arc<UdpSocket>,
    supervisor: Arc<UdpSocket>,
    supervisor_ports: PortPair,
    _talkers: Vec<Talker>,
}

async fn three_party(routing: Routing) -> ThreeParty {
    let (caller, agent, supervisor) = (phone().await, phone().await, phone().await);
    let (session, mut events) = start(&caller, &agent);
    let (supervisor_addr, supervisor_ports) =
        add_leg(&session, &mut events, SUPERVISOR, &supervisor).await;
    session.command(MediaCommand::SetRouting(routing));
    let talkers = vec![
        talk(&caller, session.trunk_addr(), CALLER_HZ, 1),
        talk(&agent, session.agent_addr(), AGENT_HZ, 2),
        talk(&supervisor, supervisor_addr, SUPERVISOR_HZ, 3),
    ];
    ThreeParty {
        session,
        events,
        caller,
        agent,
        supervisor,
        supervisor_ports,
        _talkers: talkers,
    }
}

#[tokio::test]
async fn whisper_reaches_the_agent_but_never_the_caller() {
    let call = three_party(routing::whisper(Leg::Trunk, Leg::Agent, SUPERVISOR)).await;
    hear_until(
        &call.caller,
        25,
        |h| h.has(AGENT_HZ),
        |h| h.lacks(SUPERVISOR_HZ) && h.lacks(CALLER_HZ),
        "caller hears the agent only",
    )
    .await;
    hear_until(
        &call.agent,
        5,
        |h| h.has(CALLER_HZ) && h.has(SUPERVISOR_HZ),
        |h| h.lacks(AGENT_HZ),
        "agent hears caller and supervisor",
    )
    .await;
    hear_until(
        &call.supervisor,
        5,
        |h| h.has(CALLER_HZ) && h.has(AGENT_HZ),
        |h| h.lacks(SUPERVISOR_HZ),
        "supervisor hears caller and agent",
    )
    .await;
}

#[tokio::test]
async fn listen_hides_the_supervisor_from_everyone() {
    let call = three_party(routing::listen(Leg::Trunk, Leg::Agent, SUPERVISOR)).await;
    hear_until(
        &call.supervisor,
        5,
        |h| h.has(CALLER_HZ) && h.has(AGENT_HZ),
        |h| h.lacks(SUPERVISOR_HZ),
        "supervisor hears both",
    )
    .await;
    hear_until(
        &call.caller,
        25,
        |h| h.has(AGENT_HZ),
        |h| h.lacks(SUPERVISOR_HZ),
        "caller never hears the supervisor",
    )
    .await;
    hear_until(
        &call.agent,
        25,
        |h| h.has(CALLER_HZ),
        |h| h.lacks(SUPERVISOR_HZ),
        "agent never hears the supervisor",
    )
    .await;
}

#[tokio::test]
async fn in_a_conference_of_three_each_hears_the_other_two() {
    let call = three_party(routing::conference(&[Leg::Trunk, Leg::Agent, SUPERVISOR])).await;
    for (socket, own, others, who) in [
        (&call.caller, CALLER_HZ, [AGENT_HZ, SUPERVISOR_HZ], "caller"),
        (&call.agent, AGENT_HZ, [CALLER_HZ, SUPERVISOR_HZ], "agent"),
        (
            &call.supervisor,
            SUPERVISOR_HZ,
            [CALLER_HZ, AGENT_HZ],
            "supervisor",
        ),
    ] {
        hear_until(
            socket,
            5,
            |h| h.has(others[0]) && h.has(others[1]),
            |h| h.lacks(own),
            who,
        )
        .await;
    }
}

#[tokio::test]
async fn mixed_audio_is_one_continuous_stream_per_listener() {
    let call = three_party(routing::conference(&[Leg::Trunk, Leg::Agent, SUPERVISOR])).await;
    // Skip to the mix (the first packets may still be relayed ones from before SetRouting).
    hear_until(&call.caller, 1, |h| h.has(AGENT_HZ), |_| true, "mix starts").await;
    let mut buf = [0u8; 2048];
    let mut previous: Option<(u32, u16, u32)> = None;
    for _ in 0..20 {
        let (len, _) = tokio::time::timeout(WAIT, call.caller.recv_from(&mut buf))
            .await
            .expect("in time")
            .expect("recv");
        let packet = RtpReader::new(&buf[..len]).expect("RTP");
        let now = (
            packet.ssrc(),
            u16::from(packet.sequence_number()),
            packet.timestamp(),
        );
        if let Some((ssrc, seq, ts)) = previous {
            assert_eq!(now.0, ssrc, "one SSRC");
            assert_eq!(now.1, seq.wrapping_add(1), "gap-free sequence");
            assert_eq!(
                now.2.wrapping_sub(ts) % 160,
                0,
                "timestamps move in whole 20 ms frames"
            );
            assert!(now.2.wrapping_sub(ts) >= 160, "timestamps advance");
        }
        assert_eq!(packet.payload_type(), 0);
        assert_eq!(packet.payload().len(), 160);
        previous = Some(now);
    }
}

#[tokio::test]
async fn relay_then_mix_then_relay_keeps_both_legs_talking() {
    let (caller, agent) = (phone().await, phone().await);
    let (session, _events) = start(&caller, &agent);
    let _talkers = [
        talk(&caller, session.trunk_addr(), CALLER_HZ, 0x1111),
        talk(&agent, session.agent_addr(), AGENT_HZ, 0x2222),
    ];
    let relayed_from = |ssrc: u32| move |h: &Heard| h.ssrc == ssrc;
    // Relay: byte for byte, the talker's own SSRC.
    hear_until(&agent, 5, relayed_from(0x1111), |_| true, "relay to agent").await;
    hear_until(
        &caller,
        5,
        relayed_from(0x2222),
        |_| true,
        "relay to caller",
    )
    .await;

    session.command(MediaCommand::SetRouting(routing::conference(&[
        Leg::Trunk,
        Leg::Agent,
    ])));
    let mixed = |ssrc: u32, hz: f32| move |h: &Heard| h.ssrc != ssrc && h.has(hz);
    hear_until(
        &agent,
        5,
        mixed(0x1111, CALLER_HZ),
        |_| true,
        "mix to agent",
    )
    .await;
    hear_until(
        &caller,
        5,
        mixed(0x2222, AGENT_HZ),
        |_| true,
        "mix to caller",
    )
    .await;

    session.command(MediaCommand::SetRouting(Routing::Relay));
    hear_until(
        &agent,
        5,
        relayed_from(0x1111),
        |_| true,
        "relay again to agent",
    )
    .await;
    hear_until(
        &caller,
        5,
        relayed_from(0x2222),
        |_| true,
        "relay again to caller",
    )
    .await;
}

#[tokio::test]
async fn add_leg_on_a_taken_port_fails_with_an_event_and_the_call_goes_on() {
    let (caller, agent) = (phone().await, phone().await);
    let (session, mut events) = start(&caller, &agent);
    let (ports, _squatter) = loop {
        let ports = pair();
        if let Ok(socket) = std::net::UdpSocket::bind(("127.0.0.1", ports.rtp())) {
            break (ports, socket);
        }
    };
    session.command(MediaCommand::AddLeg {
        leg: SUPERVISOR,
        ports,
        config: config(&caller),
    });
    match next_event(&mut events).await {
        MediaEvent::AddLegFailed {
            leg,
            ports: failed,
            reason,
        } => {
            assert_eq!((leg, failed), (SUPERVISOR, ports));
            assert!(reason.contains(&ports.rtp().to_string()), "{reason}");
        }
        other => panic!("expected AddLegFailed, got {other:?}"),
    }
    // Trunk and agent are not extra legs; a number past the limit is refused.
    for leg in [Leg::Agent, Leg::Extra(MAX_EXTRA_LEGS)] {
        session.command(MediaCommand::AddLeg {
            leg,
            ports: pair(),
            config: config(&caller),
        });
        assert!(
            matches!(next_event(&mut events).await, MediaEvent::AddLegFailed { leg: failed, .. } if failed == leg),
            "{leg:?} refused"
        );
    }
    // The same leg twice: the second is refused, the first stays.
    let supervisor = phone().await;
    add_leg(&session, &mut events, SUPERVISOR, &supervisor).await;
    session.command(MediaCommand::AddLeg {
        leg: SUPERVISOR,
        ports: pair(),
        config: config(&supervisor),
    });
    match next_event(&mut events).await {
        MediaEvent::AddLegFailed { reason, .. } => assert!(reason.contains("already"), "{reason}"),
        other => panic!("expected AddLegFailed, got {other:?}"),
    }
    // The call still relays.
    let _talker = talk(&caller, session.trunk_addr(), CALLER_HZ, 0x1111);
    hear_until(&agent, 3, |h| h.ssrc == 0x1111, |_| true, "relay goes on").await;
}

#[tokio::test]
async fn remove_leg_stops_its_traffic_and_returns_its_ports() {
    let mut call = three_party(routing::conference(&[Leg::Trunk, Leg::Agent, SUPERVISOR])).await;
    hear_until(
        &call.supervisor,
        3,
        |h| h.has(CALLER_HZ) && h.has(AGENT_HZ),
        |_| true,
        "supervisor in the conference",
    )
    .await;
    call.session
        .command(MediaCommand::RemoveLeg { leg: SUPERVISOR });
    loop {
        match next_event(&mut call.events).await {
            MediaEvent::LegRemoved { leg, ports, .. } => {
                assert_eq!((leg, ports), (SUPERVISOR, call.supervisor_ports));
                break;
            }
            MediaEvent::Latched { .. } => {}
            other => panic!("expected LegRemoved, got {other:?}"),
        }
    }
    // Its sockets are closed: the ports can be bound again at once.
    drop(
        std::net::UdpSocket::bind(("127.0.0.1", call.supervisor_ports.rtp()))
            .expect("RTP port free again"),
    );
    // What was sent before the removal is discarded; from now on nothing reaches the
    // supervisor, and the others no longer hear it.
    queued(&call.supervisor);
    queued(&call.caller);
    queued(&call.agent);
    hear_until(
        &call.caller,
        15,
        |h| h.has(AGENT_HZ),
        |h| h.lacks(SUPERVISOR_HZ),
        "caller after the removal",
    )
    .await;
    assert_eq!(queued(&call.supervisor), 0, "nothing sent to a removed leg");
    call.session.stop();
    loop {
        if let MediaEvent::Ended(report) = next_event(&mut call.events).await {
            assert!(
                report.extra_legs.is_empty(),
                "the removed leg is not reported again"
            );
            assert!(report.mixed_packets > 0);
            break;
        }
    }
}

#[tokio::test]
async fn ports_of_extra_legs_still_present_come_back_in_the_final_report() {
    let call = three_party(routing::conference(&[Leg::Trunk, Leg::Agent, SUPERVISOR])).await;
    let ThreeParty {
        session,
        mut events,
        supervisor,
        supervisor_ports,
        ..
    } = call;
    hear_until(&supervisor, 3, |h| h.has(CALLER_HZ), |_| true, "mixing").await;
    session.stop();
    loop {
        if let MediaEvent::Ended(report) = next_event(&mut events).await {
            assert_eq!(report.extra_legs.len(), 1);
            let (leg, ports, counters) = report.extra_legs[0];
            assert_eq!((leg, ports), (SUPERVISOR, supervisor_ports));
            assert!(counters.mixed > 0, "its audio went to the mixer");
            break;
        }
    }
}

#[tokio::test]
async fn key_presses_from_a_mixed_leg_are_reported_not_mixed() {
    let (caller, agent, supervisor) = (phone().await, phone().await, phone().await);
    let (session, mut events) = start(&caller, &agent);
    let (supervisor_addr, _) = add_leg(&session, &mut events, SUPERVISOR, &supervisor).await;
    session.command(MediaCommand::SetRouting(routing::barge(
        Leg::Trunk,
        Leg::Agent,
        SUPERVISOR,
    )));
    let digit = DtmfDigit::from_char('7').expect("key");
    for (seq, packet) in telephone_event_packets(digit, 120, 10)
        .into_iter()
        .enumerate()
    {
        let bytes = RtpPacketBuilder::new()
            .payload_type(101)
            .ssrc(0xBEEF)
            .sequence(Seq::from(seq as u16))
            .timestamp(4000)
            .marked(packet.marker)
            .payload(&packet.event.encode())
            .build()
            .expect("valid");
        supervisor
            .send_to(&bytes, supervisor_addr)
            .await
            .expect("send");
    }
    loop {
        match next_event(&mut events).await {
            MediaEvent::Dtmf {
                leg, digit: got, ..
            } => {
                assert_eq!((leg, got), (SUPERVISOR, digit));
                break;
            }
            MediaEvent::Latched { .. } => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    // The caller's mix carries no telephone-event packets, only audio.
    let _talker = talk(&agent, session.agent_addr(), AGENT_HZ, 2);
    for _ in 0..10 {
        let mut buf = [0u8; 2048];
        let (len, _) = tokio::time::timeout(WAIT, caller.recv_from(&mut buf))
            .await
            .expect("in time")
            .expect("recv");
        assert_eq!(RtpReader::new(&buf[..len]).expect("RTP").payload_type(), 0);
    }
}

#[tokio::test]
async fn a_silent_extra_leg_is_reported_without_ending_the_call() {
    let (caller, agent, supervisor) = (phone().await, phone().await, phone().await);
    let (session, mut events) = start_with(&caller, &agent, Some(Duration::from_millis(300)));
    // Trunk and agent hold the call (their silence is legitimate), so only the extra leg is watched.
    for leg in [Leg::Trunk, Leg::Agent] {
        session.command(MediaCommand::Direction {
            leg,
            direction: media::sdp::Direction::Inactive,
        });
    }
    add_leg(&session, &mut events, SUPERVISOR, &supervisor).await;
    loop {
        match next_event(&mut events).await {
            MediaEvent::LegSilent { leg } => {
                assert_eq!(leg, SUPERVISOR);
                break;
            }
            MediaEvent::MediaTimeout { .. } | MediaEvent::Ended(_) => {
                panic!("an extra leg's silence must not end the call")
            }
            _ => {}
        }
    }
    session.stop();
    loop {
        if let MediaEvent::Ended(report) = next_event(&mut events).await {
            assert_eq!(report.reason, StopReason::Stopped);
            break;
        }
    }
}

#[tokio::test]
async fn commands_for_a_leg_never_added_are_answered_or_ignored() {
    let (caller, agent) = (phone().await, phone().await);
    let (session, mut events) = start(&caller, &agent);
    session.command(MediaCommand::StopPlayback { leg: Leg::Extra(5) });
    session.command(MediaCommand::RemoveLeg { leg: Leg::Extra(5) });
    session.command(MediaCommand::Play {
        leg: Leg::Extra(5),
        clips: Vec::new(),
        looping: false,
        token: 99,
    });
    assert_eq!(
        next_event(&mut events).await,
        MediaEvent::PlaybackFinished {
            leg: Leg::Extra(5),
            token: 99
        },
        "nothing else happened before the Play's answer"
    );
}

#[tokio::test]
async fn recording_while_mixing_puts_the_caller_left_and_everyone_else_right() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("mixed.wav");
    let pool = RecorderPool::new(1, Arc::new(RecorderMetrics::default())).expect("pool");
    let call = three_party(routing::conference(&[Leg::Trunk, Leg::Agent, SUPERVISOR])).await;
    call.session
        .command(MediaCommand::Record(pool.start(&path).expect("start")));
    // 50 mixed frames with all three talking.
    hear_until(
        &call.caller,
        50,
        |h| h.has(AGENT_HZ) && h.has(SUPERVISOR_HZ),
        |_| true,
        "mixing",
    )
    .await;
    let ThreeParty {
        session,
        mut events,
        ..
    } = call;
    session.stop();
    let outcome = loop {
        if let MediaEvent::Ended(report) = next_event(&mut events).await {
            break report.recording;
        }
    };
    assert!(
        matches!(outcome, Some(RecordingOutcome::Complete { .. })),
        "{outcome:?}"
    );
    let samples: Vec<i16> = hound::WavReader::open(&path)
        .expect("WAV")
        .into_samples::<i16>()
        .collect::<Result<_, _>>()
        .expect("readable");
    let left: Vec<i16> = samples.iter().step_by(2).copied().collect();
    let right: Vec<i16> = samples.iter().skip(1).step_by(2).copied().collect();
    let frames = |channel: &[i16]| -> Vec<Heard> {
        channel
            .chunks_exact(160)
            .map(|c| Heard {
                ssrc: 0,
                samples: c.to_vec(),
            })
            .collect()
    };
    let (left, right) = (frames(&left), frames(&right));
    assert!(
        left.iter().any(|f| f.has(CALLER_HZ)),
        "the caller is on the left"
    );
    assert!(
        left.iter()
            .all(|f| f.lacks(AGENT_HZ) && f.lacks(SUPERVISOR_HZ)),
        "only the caller on the left"
    );
    assert!(
        right
            .iter()
            .any(|f| f.has(AGENT_HZ) && f.has(SUPERVISOR_HZ)),
        "agent and supervisor together on the right"
    );
    assert!(
        right.iter().all(|f| f.lacks(CALLER_HZ)),
        "no caller on the right"
    );
}

#[tokio::test]
async fn play_update_and_latching_work_for_an_extra_leg() {
    let (caller, agent, supervisor) = (phone().await, phone().await, phone().await);
    let (session, mut events) = start(&caller, &agent);
    let (supervisor_addr, _) = add_leg(&session, &mut events, SUPERVISOR, &supervisor).await;
    // Play reaches the extra leg from its own port, and finishes with its token.
    let clip = Arc::new(media::AudioClip::from_samples(vec![1000; 480]));
    session.command(MediaCommand::Play {
        leg: SUPERVISOR,
        clips: vec![clip],
        looping: false,
        token: 5,
    });
    let mut buf = [0u8; 2048];
    for _ in 0..3 {
        let (_, from) = tokio::time::timeout(WAIT, supervisor.recv_from(&mut buf))
            .await
            .expect("prompt in time")
            .expect("recv");
        assert_eq!(from, supervisor_addr, "sent from the extra leg's port");
    }
    assert_eq!(
        next_event(&mut events).await,
        MediaEvent::PlaybackFinished {
            leg: SUPERVISOR,
            token: 5
        }
    );
    // UpdateLeg moves the extra leg to another phone: the mix follows it there.
    let moved = phone().await;
    session.command(MediaCommand::UpdateLeg {
        leg: SUPERVISOR,
        config: config(&moved),
    });
    session.command(MediaCommand::SetRouting(routing::listen(
        Leg::Trunk,
        Leg::Agent,
        SUPERVISOR,
    )));
    let _talkers = [
        talk(&caller, session.trunk_addr(), CALLER_HZ, 1),
        talk(&agent, session.agent_addr(), AGENT_HZ, 2),
    ];
    hear_until(
        &moved,
        3,
        |h| h.has(CALLER_HZ) && h.has(AGENT_HZ),
        |_| true,
        "the moved supervisor hears the call",
    )
    .await;
    // Latching per leg: the supervisor's phone sends from a third address (NAT); the extra
    // leg latches to it and its mix goes there.
    let behind_nat = phone().await;
    let _supervisor_talks = talk(&behind_nat, supervisor_addr, SUPERVISOR_HZ, 3);
    loop {
        if let MediaEvent::Latched { leg, source } = next_event(&mut events).await {
            if leg == SUPERVISOR {
                assert_eq!(source, behind_nat.local_addr().expect("addr"));
                break;
            }
        }
    }
    hear_until(
        &behind_nat,
        3,
        |h| h.has(CALLER_HZ) && h.has(AGENT_HZ),
        |h| h.lacks(SUPERVISOR_HZ),
        "the latched supervisor hears the call, not itself",
    )
    .await;
}

#[tokio::test]
async fn playback_to_a_mixed_leg_wins_then_the_mix_continues_the_same_stream() {
    let call = three_party(routing::conference(&[Leg::Trunk, Leg::Agent, SUPERVISOR])).await;
    hear_until(&call.caller, 3, |h| h.has(AGENT_HZ), |_| true, "mixing").await;
    let prompt_hz = 3000.0;
    let samples: Vec<i16> = (0..800)
        .map(|i| (6000.0 * (2.0 * PI * prompt_hz * i as f32 / 8000.0).sin()) as i16)
        .collect();
    call.session.command(MediaCommand::Play {
        leg: Leg::Trunk,
        clips: vec![Arc::new(media::AudioClip::from_samples(samples))],
        looping: false,
        token: 1,
    });
    // Follow the caller's stream: mix, then the prompt (no mix meanwhile), then mix again,
    // all in one SSRC with consecutive sequence numbers.
    let mut buf = [0u8; 2048];
    let mut previous: Option<(u32, u16)> = None;
    let (mut prompt_frames, mut mixed_after_prompt) = (0, 0);
    for _ in 0..PATIENCE {
        let (len, _) = tokio::time::timeout(WAIT, call.caller.recv_from(&mut buf))
            .await
            .expect("in time")
            .expect("recv");
        let packet = RtpReader::new(&buf[..len]).expect("RTP");
        let heard = Heard {
            ssrc: packet.ssrc(),
            samples: packet.payload().iter().map(|&b| ulaw_decode(b)).collect(),
        };
        let now = (packet.ssrc(), u16::from(packet.sequence_number()));
        if let Some((ssrc, seq)) = previous {
            assert_eq!(now.0, ssrc, "one stream for prompt and mix");
            assert_eq!(now.1, seq.wrapping_add(1), "no sequence gap or overlap");
        }
        previous = Some(now);
        if heard.has(prompt_hz) {
            assert!(
                heard.lacks(AGENT_HZ),
                "the prompt is not mixed with the call"
            );
            assert_eq!(mixed_after_prompt, 0, "the prompt plays in one piece");
            prompt_frames += 1;
        } else if prompt_frames > 0 && heard.has(AGENT_HZ) {
            mixed_after_prompt += 1;
            if mixed_after_prompt == 5 {
                break;
            }
        }
    }
    assert_eq!(prompt_frames, 5, "the 100 ms prompt, whole");
    assert_eq!(mixed_after_prompt, 5, "the mix came back");
}
