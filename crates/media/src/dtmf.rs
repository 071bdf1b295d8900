//! DTMF signalling: RFC 4733 telephone-event payloads in and out, and the SIP INFO bodies
//! `application/dtmf-relay` and `application/dtmf` in. In-band tones are in [`crate::inband_dtmf`].

/// One DTMF key: `0`–`9`, `*`, `#`, `A`–`D` (RFC 4733 events 0–15).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DtmfDigit(u8);

impl DtmfDigit {
    /// The digit for an RFC 4733 event code, if it is a DTMF event (0–15).
    pub fn from_event(code: u8) -> Option<DtmfDigit> {
        (code <= 15).then_some(DtmfDigit(code))
    }

    /// The digit for a key character (case-insensitive for A–D).
    pub fn from_char(c: char) -> Option<DtmfDigit> {
        let code = match c.to_ascii_uppercase() {
            d @ '0'..='9' => d as u8 - b'0',
            '*' => 10,
            '#' => 11,
            l @ 'A'..='D' => l as u8 - b'A' + 12,
            _ => return None,
        };
        Some(DtmfDigit(code))
    }

    /// The RFC 4733 event code.
    pub fn event(self) -> u8 {
        self.0
    }

    /// The key character.
    pub fn as_char(self) -> char {
        match self.0 {
            d @ 0..=9 => char::from(b'0' + d),
            10 => '*',
            11 => '#',
            l => char::from(b'A' + (l - 12)),
        }
    }
}

impl std::fmt::Display for DtmfDigit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.as_char())
    }
}

/// Why a DTMF payload or body was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DtmfError {
    /// A telephone-event payload shorter than its 4 bytes.
    #[error("telephone-event payload is {0} bytes, needs 4")]
    ShortPayload(usize),
    /// The INFO body does not name a digit.
    #[error("DTMF INFO body has no signal")]
    NoSignal,
    /// The INFO body names something that is not a DTMF key.
    #[error("DTMF INFO signal {0:?} is not a DTMF key")]
    BadSignal(String),
    /// The INFO body's duration is not a number.
    #[error("DTMF INFO duration {0:?} is not a number of milliseconds")]
    BadDuration(String),
    /// The INFO content type is not a DTMF one.
    #[error("content type {0:?} does not carry DTMF")]
    UnsupportedContentType(String),
}

/// One RFC 4733 telephone-event payload (§2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TelephoneEvent {
    /// Event code (0–15 are DTMF).
    pub event: u8,
    /// E bit: the last packets of an event.
    pub end: bool,
    /// Power level in -dBm0 (0–63).
    pub volume: u8,
    /// Duration so far, in RTP timestamp units.
    pub duration: u16,
}

impl TelephoneEvent {
    /// Decodes the first 4 bytes of a payload (RFC 4733 allows several events; the first is the one that matters for DTMF).
    pub fn decode(payload: &[u8]) -> Result<TelephoneEvent, DtmfError> {
        match payload {
            [event, flags, d0, d1, ..] => Ok(TelephoneEvent {
                event: *event,
                end: flags & 0x80 != 0,
                volume: flags & 0x3F,
                duration: u16::from_be_bytes([*d0, *d1]),
            }),
            _ => Err(DtmfError::ShortPayload(payload.len())),
        }
    }

    /// Encodes to the 4-byte wire form.
    pub fn encode(&self) -> [u8; 4] {
        let flags = (if self.end { 0x80 } else { 0 }) | (self.volume & 0x3F);
        let [d0, d1] = self.duration.to_be_bytes();
        [self.event, flags, d0, d1]
    }
}

/// A DTMF key press received from the network, reported once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DtmfPress {
    /// The key.
    pub digit: DtmfDigit,
    /// How long it was held, in milliseconds at 8 kHz.
    pub duration_ms: u32,
}

/// Turns the stream of telephone-event packets of one RTP source into key presses, once each:
/// every packet of one event shares its RTP timestamp, and the end packet is sent three
/// times (RFC 4733 §2.5.1.4), so presses are keyed by timestamp.
#[derive(Debug, Clone, Default)]
pub struct TelephoneEventReceiver {
    /// The event in progress: (RTP timestamp, latest payload).
    current: Option<(u32, TelephoneEvent)>,
    /// Timestamp of the last event already reported.
    reported: Option<u32>,
}

impl TelephoneEventReceiver {
    /// A receiver with no history.
    pub fn new() -> TelephoneEventReceiver {
        TelephoneEventReceiver::default()
    }

    /// Feeds one telephone-event packet; returns a press when one completes. A press whose
    /// end packets were all lost is reported when the next event starts (or via [`Self::flush`]).
    pub fn on_packet(
        &mut self,
        rtp_timestamp: u32,
        payload: &[u8],
    ) -> Result<Option<DtmfPress>, DtmfError> {
        let event = TelephoneEvent::decode(payload)?;
        if self.reported == Some(rtp_timestamp) {
            return Ok(None); // retransmitted end packet of a press already reported
        }
        let mut completed = None;
        if let Some((ts, previous)) = self.current {
            if ts != rtp_timestamp {
                completed = self.report(ts, previous);
            }
        }
        if event.end {
            self.current = None;
            return Ok(completed.or(self.report(rtp_timestamp, event)));
        }
        self.current = Some((rtp_timestamp, event));
        Ok(completed)
    }

    /// Reports an event whose end never arrived (call it on a timer or when the stream stops).
    pub fn flush(&mut self) -> Option<DtmfPress> {
        let (ts, event) = self.current.take()?;
        self.report(ts, event)
    }

    fn report(&mut self, rtp_timestamp: u32, event: TelephoneEvent) -> Option<DtmfPress> {
        self.reported = Some(rtp_timestamp);
        Some(DtmfPress {
            digit: DtmfDigit::from_event(event.event)?,
            duration_ms: u32::from(event.duration) / 8,
        })
    }
}

/// One telephone-event packet to send: marker bit and payload; all share one RTP timestamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TelephoneEventPacket {
    /// RTP marker: set on the first packet of the event.
    pub marker: bool,
    /// The payload.
    pub event: TelephoneEvent,
}

/// The packets that send `digit` for `duration_ms` (RFC 4733 §2.5): one every 20 ms with a
/// growing duration, the first marked, then the end packet three times for robustness.
pub fn telephone_event_packets(
    digit: DtmfDigit,
    duration_ms: u16,
    volume: u8,
) -> Vec<TelephoneEventPacket> {
    const STEP: u32 = 160; // 20 ms at 8 kHz
    let total = (u32::from(duration_ms) * 8).clamp(STEP, u32::from(u16::MAX));
    let mut packets = Vec::new();
    let mut elapsed = STEP;
    while elapsed < total {
        packets.push(TelephoneEventPacket {
            marker: packets.is_empty(),
            event: TelephoneEvent {
                event: digit.event(),
                end: false,
                volume: volume & 0x3F,
                duration: elapsed as u16,
            },
        });
        elapsed += STEP;
    }
    for _ in 0..3 {
        packets.push(TelephoneEventPacket {
            marker: packets.is_empty(),
            event: TelephoneEvent {
                event: digit.event(),
                end: true,
                volume: volume & 0x3F,
                duration: total as u16,
            },
        });
    }
    packets
}

/// Shortest key press sent (ms): RFC 4733 receivers and the tone generators behind them
/// may miss anything shorter.
pub const MIN_SENT_PRESS_MS: u32 = 40;
/// Longest key press sent (ms): a longer hold only keeps the stream busy (and no IVR
/// needs it), so an INFO asking for more is cut here.
pub const MAX_SENT_PRESS_MS: u32 = 1000;
/// Power level of the events Switchboard sends, in -dBm0: a usual key press level.
pub const SENT_VOLUME: u8 = 10;
/// Packet times without an event between two events sent back to back (40 ms), so the
/// receiver hears two presses, not one long one.
const TICKS_BETWEEN_EVENTS: u8 = 2;

/// Key presses to send as RFC 4733 events on one RTP stream, one after the other, paced
/// by the caller's 20 ms clock: each [`Self::tick`] gives the packet due then, if any.
/// Sans-IO: the caller adds the RTP header (every packet of one event carries the
/// timestamp the stream had at the event's first, marked, packet).
#[derive(Debug, Clone, Default)]
pub struct TelephoneEventSender {
    /// Presses not started yet: digit and clamped duration (ms).
    queued: std::collections::VecDeque<(DtmfDigit, u16)>,
    /// The rest of the event in progress.
    in_progress: std::collections::VecDeque<TelephoneEventPacket>,
    /// Ticks still to stay quiet after the last event ended.
    quiet_ticks: u8,
}

impl TelephoneEventSender {
    /// A sender with nothing to send.
    pub fn new() -> TelephoneEventSender {
        TelephoneEventSender::default()
    }

    /// Queues a press held `duration_ms`, clamped to
    /// [`MIN_SENT_PRESS_MS`]`..=`[`MAX_SENT_PRESS_MS`]; it starts after those queued before.
    pub fn push(&mut self, digit: DtmfDigit, duration_ms: u32) {
        let clamped = duration_ms.clamp(MIN_SENT_PRESS_MS, MAX_SENT_PRESS_MS);
        // The clamp keeps it far below u16::MAX ms.
        let duration = u16::try_from(clamped).unwrap_or(u16::MAX);
        self.queued.push_back((digit, duration));
    }

    /// True while ticks are needed: an event in progress, presses queued, or the quiet
    /// time after an event still running (a press queued then must still wait for it).
    pub fn is_active(&self) -> bool {
        !self.in_progress.is_empty() || !self.queued.is_empty() || self.quiet_ticks > 0
    }

    /// True between an event's first packet and its last end packet: audio towards the
    /// leg should stay silent meanwhile.
    pub fn in_event(&self) -> bool {
        !self.in_progress.is_empty()
    }

    /// One 20 ms tick: the packet to send now, or `None` (quiet time, or nothing to send).
    /// The first packet of every event is the only one with `marker` set.
    pub fn tick(&mut self) -> Option<TelephoneEventPacket> {
        if self.in_progress.is_empty() {
            if self.quiet_ticks > 0 {
                self.quiet_ticks -= 1;
                return None;
            }
            let (digit, duration_ms) = self.queued.pop_front()?;
            self.in_progress = telephone_event_packets(digit, duration_ms, SENT_VOLUME).into();
        }
        let packet = self.in_progress.pop_front();
        if self.in_progress.is_empty() {
            self.quiet_ticks = TICKS_BETWEEN_EVENTS;
        }
        packet
    }

    /// Forgets everything queued and in progress (the leg can no longer carry events).
    pub fn clear(&mut self) {
        *self = TelephoneEventSender::default();
    }
}

/// A DTMF key press signalled in a SIP INFO body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InfoDtmf {
    /// The key.
    pub digit: DtmfDigit,
    /// Duration in ms, when the body gives one.
    pub duration_ms: Option<u32>,
}

/// Parses a SIP INFO DTMF body by its Content-Type (`application/dtmf-relay` or `application/dtmf`).
pub fn parse_info(content_type: &str, body: &[u8]) -> Result<InfoDtmf, DtmfError> {
    let mime = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match mime.as_str() {
        "application/dtmf-relay" => parse_dtmf_relay(body),
        "application/dtmf" => parse_application_dtmf(body),
        _ => Err(DtmfError::UnsupportedContentType(content_type.to_string())),
    }
}

/// Parses `application/dtmf-relay` (`Signal=5\r\nDuration=160\r\n`, Cisco style).
pub fn parse_dtmf_relay(body: &[u8]) -> Result<InfoDtmf, DtmfError> {
    let text = String::from_utf8_lossy(body);
    let mut digit = None;
    let mut duration_ms = None;
    for line in text.lines() {
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let value = value.trim();
        if key.trim().eq_ignore_ascii_case("signal") {
            digit = Some(digit_from_text(value)?);
        } else if key.trim().eq_ignore_ascii_case("duration") {
            duration_ms = Some(
                value
                    .parse()
                    .map_err(|_| DtmfError::BadDuration(value.to_string()))?,
            );
        }
    }
    Ok(InfoDtmf {
        digit: digit.ok_or(DtmfError::NoSignal)?,
        duration_ms,
    })
}

/// Parses `application/dtmf`: the body is the key itself (some send the event number, e.g. `10` for `*`).
pub fn parse_application_dtmf(body: &[u8]) -> Result<InfoDtmf, DtmfError> {
    let text = String::from_utf8_lossy(body);
    let value = text.trim();
    if value.is_empty() {
        return Err(DtmfError::NoSignal);
    }
    Ok(InfoDtmf {
        digit: digit_from_text(value)?,
        duration_ms: None,
    })
}

fn digit_from_text(value: &str) -> Result<DtmfDigit, DtmfError> {
    let mut chars = value.chars();
    let single = match (chars.next(), chars.next()) {
        (Some(c), None) => DtmfDigit::from_char(c),
        // Event numbers 10–15 written out.
        _ => value.parse::<u8>().ok().and_then(DtmfDigit::from_event),
    };
    single.ok_or_else(|| DtmfError::BadSignal(value.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn digits_map_both_ways() {
        for (i, c) in "0123456789*#ABCD".chars().enumerate() {
            let digit = DtmfDigit::from_char(c).expect("DTMF key");
            assert_eq!(usize::from(digit.event()), i);
            assert_eq!(digit.as_char(), c);
        }
        assert_eq!(DtmfDigit::from_char('b'), DtmfDigit::from_event(13));
        assert_eq!(DtmfDigit::from_char('x'), None);
        assert_eq!(DtmfDigit::from_event(16), None);
    }

    #[test]
    fn decodes_rfc4733_payload() {
        // Event 5, end bit, volume 10, duration 1280 (160 ms).
        let event = TelephoneEvent::decode(&[5, 0x8A, 0x05, 0x00]).expect("4 bytes");
        assert_eq!(
            event,
            TelephoneEvent {
                event: 5,
                end: true,
                volume: 10,
                duration: 1280
            }
        );
        assert_eq!(event.encode(), [5, 0x8A, 0x05, 0x00]);
        assert_eq!(
            TelephoneEvent::decode(&[5, 0]),
            Err(DtmfError::ShortPayload(2))
        );
    }

    #[test]
    fn three_end_packets_give_one_press() {
        let mut rx = TelephoneEventReceiver::new();
        let packets = telephone_event_packets(DtmfDigit::from_char('7').expect("key"), 100, 10);
        let mut presses = Vec::new();
        for packet in &packets {
            if let Some(p) = rx.on_packet(48_000, &packet.event.encode()).expect("valid") {
                presses.push(p);
            }
        }
        assert_eq!(
            presses,
            vec![DtmfPress {
                digit: DtmfDigit::from_char('7').expect("key"),
                duration_ms: 100
            }]
        );
        assert_eq!(rx.flush(), None);
    }

    #[test]
    fn same_digit_twice_is_two_presses() {
        let mut rx = TelephoneEventReceiver::new();
        let end = TelephoneEvent {
            event: 1,
            end: true,
            volume: 10,
            duration: 800,
        }
        .encode();
        assert!(rx.on_packet(1000, &end).expect("valid").is_some());
        assert!(rx.on_packet(1000, &end).expect("valid").is_none());
        assert!(
            rx.on_packet(5000, &end).expect("valid").is_some(),
            "new timestamp, new press"
        );
    }

    #[test]
    fn lost_end_packets_still_report_the_press() {
        let mut rx = TelephoneEventReceiver::new();
        let start = TelephoneEvent {
            event: 3,
            end: false,
            volume: 10,
            duration: 320,
        }
        .encode();
        assert_eq!(rx.on_packet(1000, &start).expect("valid"), None);
        let next = TelephoneEvent {
            event: 4,
            end: false,
            volume: 10,
            duration: 160,
        }
        .encode();
        let press = rx
            .on_packet(9000, &next)
            .expect("valid")
            .expect("previous press completes");
        assert_eq!(press.digit.as_char(), '3');
        assert_eq!(press.duration_ms, 40);
        assert_eq!(rx.flush().map(|p| p.digit.as_char()), Some('4'));
    }

    #[test]
    fn sender_packets_follow_rfc4733() {
        let packets = telephone_event_packets(DtmfDigit::from_char('#').expect("key"), 100, 10);
        assert!(packets[0].marker);
        assert!(packets[1..].iter().all(|p| !p.marker));
        let (updates, ends): (Vec<&TelephoneEventPacket>, Vec<_>) =
            packets.iter().partition(|p| !p.event.end);
        assert_eq!(
            updates.iter().map(|p| p.event.duration).collect::<Vec<_>>(),
            [160, 320, 480, 640]
        );
        assert_eq!(ends.len(), 3);
        assert!(ends
            .iter()
            .all(|p| p.event.duration == 800 && p.event.event == 11));
    }

    /// Ticks `sender` until it is idle: `Some(event code, end, duration, marker)` or `None` per tick.
    fn run(sender: &mut TelephoneEventSender) -> Vec<Option<(u8, bool, u16, bool)>> {
        let mut ticks = Vec::new();
        while sender.is_active() {
            let packet = sender.tick();
            ticks.push(packet.map(|p| (p.event.event, p.event.end, p.event.duration, p.marker)));
            assert!(ticks.len() < 1000, "a sender always runs dry");
        }
        ticks
    }

    #[test]
    fn sender_sends_one_press_then_keeps_quiet_two_ticks() {
        let mut sender = TelephoneEventSender::new();
        assert!(!sender.is_active());
        assert_eq!(sender.tick(), None);
        sender.push(DtmfDigit::from_char('5').expect("key"), 100);
        assert!(sender.is_active());
        assert!(!sender.in_event(), "nothing sent yet");
        let ticks = run(&mut sender);
        assert_eq!(
            ticks,
            [
                Some((5, false, 160, true)),
                Some((5, false, 320, false)),
                Some((5, false, 480, false)),
                Some((5, false, 640, false)),
                Some((5, true, 800, false)),
                Some((5, true, 800, false)),
                Some((5, true, 800, false)),
                None,
                None,
            ]
        );
        assert_eq!(sender.tick(), None);
    }

    #[test]
    fn sender_queues_presses_in_order_with_quiet_time_between() {
        let mut sender = TelephoneEventSender::new();
        sender.push(DtmfDigit::from_char('1').expect("key"), 40);
        sender.push(DtmfDigit::from_char('#').expect("key"), 40);
        let ticks = run(&mut sender);
        let first = Some((1, false, 160, true));
        let first_end = Some((1, true, 320, false));
        let second = Some((11, false, 160, true));
        let second_end = Some((11, true, 320, false));
        assert_eq!(
            ticks,
            [
                first, first_end, first_end, first_end, None, None, second, second_end, second_end,
                second_end, None, None
            ]
        );
    }

    #[test]
    fn sender_clamps_durations() {
        let mut sender = TelephoneEventSender::new();
        sender.push(DtmfDigit::from_char('0').expect("key"), 0);
        let short = run(&mut sender);
        assert_eq!(
            short.iter().flatten().map(|p| p.2).max(),
            Some(320),
            "40 ms"
        );
        sender.push(DtmfDigit::from_char('0').expect("key"), u32::MAX);
        let long = run(&mut sender);
        assert_eq!(long.iter().flatten().map(|p| p.2).max(), Some(8000), "1 s");
        assert_eq!(long.iter().flatten().filter(|p| !p.1).count(), 49);
    }

    #[test]
    fn a_press_queued_during_the_quiet_time_waits_for_it() {
        let mut sender = TelephoneEventSender::new();
        sender.push(DtmfDigit::from_char('2').expect("key"), 40);
        while sender.tick().is_some() {}
        // One quiet tick has passed (the `None` above); one is left.
        sender.push(DtmfDigit::from_char('3').expect("key"), 40);
        assert_eq!(sender.tick(), None);
        assert_eq!(
            sender.tick().map(|p| (p.event.event, p.marker)),
            Some((3, true))
        );
        assert!(sender.in_event(), "its end packets are still to come");
        sender.clear();
        assert!(!sender.is_active());
        assert!(!sender.in_event());
    }

    #[test]
    fn info_bodies() {
        assert_eq!(
            parse_info("application/dtmf-relay", b"Signal=5\r\nDuration=160\r\n"),
            Ok(InfoDtmf {
                digit: DtmfDigit::from_char('5').expect("key"),
                duration_ms: Some(160)
            })
        );
        assert_eq!(
            parse_info("Application/DTMF-Relay; charset=x", b"signal= *\r\n")
                .map(|d| d.digit.as_char()),
            Ok('*')
        );
        assert_eq!(
            parse_info("application/dtmf", b"11\r\n").map(|d| d.digit.as_char()),
            Ok('#')
        );
        assert_eq!(
            parse_info("application/dtmf", b"9").map(|d| d.digit.as_char()),
            Ok('9')
        );
        assert_eq!(
            parse_dtmf_relay(b"Duration=160\r\n"),
            Err(DtmfError::NoSignal)
        );
        assert!(matches!(
            parse_dtmf_relay(b"Signal=Z\r\n"),
            Err(DtmfError::BadSignal(_))
        ));
        assert!(matches!(
            parse_dtmf_relay(b"Signal=1\r\nDuration=long\r\n"),
            Err(DtmfError::BadDuration(_))
        ));
        assert!(matches!(
            parse_info("text/plain", b"5"),
            Err(DtmfError::UnsupportedContentType(_))
        ));
        assert_eq!(parse_application_dtmf(b"  "), Err(DtmfError::NoSignal));
    }

    proptest! {
        #[test]
        fn decode_never_panics_and_round_trips(bytes in proptest::collection::vec(any::<u8>(), 0..8)) {
            if let Ok(event) = TelephoneEvent::decode(&bytes) {
                let wire = event.encode();
                // Bit 6 (reserved) is not kept; everything else is.
                prop_assert_eq!(wire[0], bytes[0]);
                prop_assert_eq!(wire[1], bytes[1] & 0xBF);
                prop_assert_eq!(&wire[2..], &bytes[2..4]);
            }
        }

        #[test]
        fn info_parsers_never_panic(body in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = parse_dtmf_relay(&body);
            let _ = parse_application_dtmf(&body);
        }
    }
}
