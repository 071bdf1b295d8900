//! Receive statistics for one RTP stream: packets, bytes, loss from sequence gaps and
//! RFC 3550 interarrival jitter. Sans-IO: the arrival time is a parameter.

use std::time::{Duration, Instant};

/// A sequence jump larger than this is treated as a restarted stream (RFC 3550 A.1 MAX_DROPOUT).
const MAX_DROPOUT: u16 = 3000;
/// A backwards jump up to this is a late/duplicate packet (RFC 3550 A.1 MAX_MISORDER).
const MAX_MISORDER: u16 = 100;

/// Counters and estimators for one direction of one leg.
#[derive(Debug, Clone)]
pub struct RtpStats {
    clock_rate: u32,
    packets: u64,
    bytes: u64,
    base_seq: u32,
    /// Highest sequence number seen, extended with the wrap count (RFC 3550 `cycles + max_seq`).
    max_seq: Option<u32>,
    ssrc: Option<u32>,
    /// Packets counted towards the current sequence space (reset when the SSRC changes).
    received_in_space: u64,
    lost_before_reset: u64,
    expected_before_reset: u64,
    /// RFC 3550 jitter, scaled by 16 as in A.8 to keep integer precision.
    jitter_q4: u64,
    last_transit: Option<i64>,
    epoch: Option<Instant>,
}

/// A snapshot of [`RtpStats`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StatsSnapshot {
    /// Valid RTP packets received.
    pub packets: u64,
    /// RTP bytes received (whole datagrams).
    pub bytes: u64,
    /// Packets never seen, from sequence gaps (late arrivals reduce it again).
    pub lost: u64,
    /// Packets the sender must have sent, from the sequence range.
    pub expected: u64,
    /// Interarrival jitter in RTP timestamp units.
    pub jitter: u32,
}

impl StatsSnapshot {
    /// Interarrival jitter as a duration for an 8 kHz clock.
    pub fn jitter_duration(&self, clock_rate: u32) -> Duration {
        if clock_rate == 0 {
            return Duration::ZERO;
        }
        Duration::from_micros(u64::from(self.jitter) * 1_000_000 / u64::from(clock_rate))
    }

    /// Fraction of expected packets that were lost, 0.0–1.0.
    pub fn loss_fraction(&self) -> f64 {
        if self.expected == 0 {
            0.0
        } else {
            self.lost as f64 / self.expected as f64
        }
    }
}

impl RtpStats {
    /// Fresh statistics for a stream with this RTP clock rate (8000 for G.711).
    pub fn new(clock_rate: u32) -> RtpStats {
        RtpStats {
            clock_rate,
            packets: 0,
            bytes: 0,
            base_seq: 0,
            max_seq: None,
            ssrc: None,
            received_in_space: 0,
            lost_before_reset: 0,
            expected_before_reset: 0,
            jitter_q4: 0,
            last_transit: None,
            epoch: None,
        }
    }

    /// Accounts one valid RTP packet that arrived at `now`.
    pub fn record(
        &mut self,
        now: Instant,
        ssrc: u32,
        seq: u16,
        rtp_timestamp: u32,
        datagram_len: usize,
    ) {
        self.packets += 1;
        self.bytes += datagram_len as u64;
        if self.ssrc != Some(ssrc) {
            // A new source (re-INVITE, transfer, prompt replaced by agent): start a new
            // sequence and timing space but keep what was lost in the old one.
            self.close_sequence_space();
            self.ssrc = Some(ssrc);
            self.restart_sequence(seq);
            self.last_transit = None;
        } else {
            self.update_sequence(seq);
        }
        self.update_jitter(now, rtp_timestamp);
    }

    /// Current figures.
    pub fn snapshot(&self) -> StatsSnapshot {
        StatsSnapshot {
            packets: self.packets,
            bytes: self.bytes,
            lost: self.lost_before_reset + self.lost_in_space(),
            expected: self.expected_before_reset + self.expected_in_space(),
            jitter: (self.jitter_q4 >> 4) as u32,
        }
    }

    fn close_sequence_space(&mut self) {
        self.lost_before_reset += self.lost_in_space();
        self.expected_before_reset += self.expected_in_space();
    }

    fn restart_sequence(&mut self, seq: u16) {
        self.base_seq = u32::from(seq);
        self.max_seq = Some(u32::from(seq));
        self.received_in_space = 1;
    }

    fn update_sequence(&mut self, seq: u16) {
        let Some(max) = self.max_seq else {
            self.restart_sequence(seq);
            return;
        };
        let max_low = max as u16;
        let delta = seq.wrapping_sub(max_low);
        if delta == 0 {
            // Duplicate: neither new nor lost.
            return;
        }
        if delta < MAX_DROPOUT {
            // In order (possibly with a gap); wrap when the low 16 bits go round.
            let cycles = if seq < max_low {
                max.wrapping_add(1 << 16) & !0xFFFF
            } else {
                max & !0xFFFF
            };
            self.max_seq = Some(cycles | u32::from(seq));
            self.received_in_space += 1;
        } else if delta <= u16::MAX - MAX_MISORDER {
            // A big jump without an SSRC change: the sender restarted its sequence.
            self.close_sequence_space();
            self.restart_sequence(seq);
        } else {
            // Late packet that fills a gap counted as lost earlier.
            self.received_in_space += 1;
        }
    }

    fn expected_in_space(&self) -> u64 {
        match self.max_seq {
            Some(max) => u64::from(max.wrapping_sub(self.base_seq)) + 1,
            None => 0,
        }
    }

    fn lost_in_space(&self) -> u64 {
        self.expected_in_space()
            .saturating_sub(self.received_in_space)
    }

    fn update_jitter(&mut self, now: Instant, rtp_timestamp: u32) {
        let epoch = *self.epoch.get_or_insert(now);
        let arrival_units = (now.saturating_duration_since(epoch).as_nanos()
            * u128::from(self.clock_rate)
            / 1_000_000_000) as i64;
        // Transit in timestamp units; only differences matter, so wrap-around in the sender's
        // timestamp is harmless when reduced to i32 as RFC 3550 does.
        let transit = arrival_units.wrapping_sub(i64::from(rtp_timestamp)) as i32 as i64;
        if let Some(last) = self.last_transit {
            let d = (transit - last).unsigned_abs();
            // J += (|D| - J) / 16, with J kept scaled by 16 (RFC 3550 A.8).
            self.jitter_q4 = (self.jitter_q4 + d).saturating_sub((self.jitter_q4 + 8) >> 4);
        }
        self.last_transit = Some(transit);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(stats: &mut RtpStats, start: Instant, seqs: &[u16]) {
        for (i, &seq) in seqs.iter().enumerate() {
            let at = start + Duration::from_millis(20 * i as u64);
            stats.record(at, 7, seq, u32::from(seq) * 160, 172);
        }
    }

    #[test]
    fn perfect_stream_has_no_loss_and_no_jitter() {
        let mut stats = RtpStats::new(8000);
        let seqs: Vec<u16> = (100..200).collect();
        feed(&mut stats, Instant::now(), &seqs);
        let s = stats.snapshot();
        assert_eq!(
            (s.packets, s.bytes, s.lost, s.expected, s.jitter),
            (100, 17200, 0, 100, 0)
        );
    }

    #[test]
    fn gaps_count_as_loss_and_late_packets_undo_it() {
        let mut stats = RtpStats::new(8000);
        feed(&mut stats, Instant::now(), &[1, 2, 3, 6, 7, 10]);
        let s = stats.snapshot();
        assert_eq!((s.expected, s.lost), (10, 4));
        // 4 and 5 turn up late.
        let now = Instant::now();
        stats.record(now, 7, 4, 640, 172);
        stats.record(now, 7, 5, 800, 172);
        assert_eq!(stats.snapshot().lost, 2);
        // A duplicate changes nothing.
        stats.record(now, 7, 10, 1600, 172);
        assert_eq!(stats.snapshot().lost, 2);
    }

    #[test]
    fn sequence_wrap_is_not_loss() {
        let mut stats = RtpStats::new(8000);
        feed(&mut stats, Instant::now(), &[65533, 65534, 65535, 0, 1, 2]);
        let s = stats.snapshot();
        assert_eq!((s.expected, s.lost), (6, 0));
        let mut gap = RtpStats::new(8000);
        feed(&mut gap, Instant::now(), &[65534, 1]);
        assert_eq!(gap.snapshot().lost, 2);
    }

    #[test]
    fn new_ssrc_starts_a_new_space_but_keeps_loss() {
        let mut stats = RtpStats::new(8000);
        let now = Instant::now();
        for seq in [1u16, 2, 4] {
            stats.record(now, 1, seq, 0, 100);
        }
        for seq in [9000u16, 9001] {
            stats.record(now, 2, seq, 0, 100);
        }
        let s = stats.snapshot();
        assert_eq!((s.lost, s.expected, s.packets), (1, 6, 5));
    }

    #[test]
    fn constant_delay_variation_converges_to_rfc3550_jitter() {
        // Packets alternate 10 ms early/late around the 20 ms grid: |D| is 20 ms = 160 units
        // every time, so J converges to 160 (J += (|D| - J) / 16).
        let mut stats = RtpStats::new(8000);
        let start = Instant::now();
        for i in 0..2000u32 {
            let offset = if i % 2 == 0 { 0 } else { 20 };
            let at = start + Duration::from_millis(u64::from(i) * 20 + offset);
            stats.record(at, 9, i as u16, i * 160, 172);
        }
        let jitter = stats.snapshot().jitter;
        assert!((155..=160).contains(&jitter), "jitter {jitter}");
        assert_eq!(
            stats.snapshot().jitter_duration(8000),
            Duration::from_micros(u64::from(jitter) * 125)
        );
    }

    #[test]
    fn single_late_packet_gives_one_sixteenth() {
        let mut stats = RtpStats::new(8000);
        let start = Instant::now();
        stats.record(start, 9, 0, 0, 172);
        // Second packet 16 ms (128 units) late: J = 128 / 16 = 8.
        stats.record(start + Duration::from_millis(36), 9, 1, 160, 172);
        assert_eq!(stats.snapshot().jitter, 8);
    }
}
