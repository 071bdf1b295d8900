//! Deterministic, varied CDRs for the PostgreSQL tests and bench.

#![allow(dead_code)] // Each test/bench target uses a different part of it.

use cdr::{
    AgentState, AgentStateRecord, CallRecord, Disposition, HangupSide, Leg, LegRole, Record,
    Transfer, TransferKind,
};
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

/// xorshift64*: the same records on every run.
pub struct Rng(pub u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// Whole milliseconds below `max_ms`, as seconds.
    fn seconds(&mut self, max_ms: u64) -> f64 {
        self.below(max_ms) as f64 / 1000.0
    }
}

const QUEUES: [&str; 4] = ["billing", "sales", "support", "vip"];

/// The first call arrives here; call `n` arrives `n * 7` seconds later (≈ 8 days for 100k).
pub const FIRST_ARRIVAL: OffsetDateTime = datetime!(2025-03-03 00:00:00 UTC);

/// Call number `n`: every disposition, some never queued, fractional seconds, transfers,
/// surveys, and strings that need escaping.
pub fn call(rng: &mut Rng, n: u64) -> Record {
    let disposition = match rng.below(20) {
        0..=11 => Disposition::Answered,
        12..=13 => Disposition::Abandoned,
        14 => Disposition::AbandonedShort,
        15 => Disposition::Overflowed,
        16 => Disposition::TimedOut,
        17 => Disposition::Voicemail,
        18 => Disposition::IvrCompleted,
        _ => Disposition::Rejected,
    };
    let queued = !matches!(
        disposition,
        Disposition::IvrCompleted | Disposition::Rejected
    );
    let answered = disposition == Disposition::Answered;
    let arrived = FIRST_ARRIVAL
        + Duration::seconds(n as i64 * 7)
        + Duration::milliseconds(rng.below(1000) as i64);
    let enqueued = arrived + Duration::milliseconds(rng.below(40_000) as i64);
    let wait_s = if queued { rng.seconds(120_000) } else { 0.0 };
    let answered_at = enqueued + Duration::seconds_f64(wait_s);
    let talk_s = if answered { rng.seconds(600_000) } else { 0.0 };
    let hold_s = if answered { rng.seconds(30_000) } else { 0.0 };
    let ended = answered_at + Duration::seconds_f64(talk_s + hold_s);
    let queue = QUEUES[rng.below(QUEUES.len() as u64) as usize];
    let agent = format!("agent{:02}", rng.below(12));
    let id = format!("sb-{n:08}");
    Record::Call(CallRecord {
        seq: 0,
        id: id.clone(),
        trunk_call_id: format!("{:016x}@carrier.example.net", rng.next()),
        arrived,
        ivr_ended: queued.then_some(enqueued),
        enqueued: queued.then_some(enqueued),
        offered: (answered || rng.below(2) == 0).then_some(enqueued),
        answered: answered.then_some(answered_at),
        ended,
        caller: format!("+4930{:07}", rng.below(10_000_000)),
        did: "+4930999000".into(),
        ivr_path: vec!["main".into(), (1 + rng.below(4)).to_string()],
        language: Some(if rng.below(3) == 0 { "zh" } else { "en" }.into()),
        queue: queued.then(|| queue.to_string()),
        agent: (answered || (queued && rng.below(3) == 0)).then(|| agent.clone()),
        priority: rng.below(3) as i32,
        label: None,
        customer_name: None,
        preferred_agent: None,
        preferred_agent_taken: false,
        wait_s,
        ring_s: if answered { 3.5 } else { 0.0 },
        talk_s,
        hold_s,
        wrap_up_s: if answered { rng.seconds(60_000) } else { 0.0 },
        disposition,
        hangup_side: if answered {
            HangupSide::Agent
        } else {
            HangupSide::Caller
        },
        sip_cause: (!answered).then_some(487),
        transfers: if answered && rng.below(10) == 0 {
            vec![Transfer {
                at: answered_at + Duration::seconds(20),
                from_agent: agent.clone(),
                to: "support \"tier 2\"".into(),
                kind: TransferKind::Attended,
            }]
        } else {
            Vec::new()
        },
        survey_score: (answered && rng.below(4) == 0).then(|| 1 + rng.below(10) as u8),
        recording: answered.then(|| format!("/var/lib/switchboard/rec/{id}.wav")),
        legs: vec![Leg {
            role: LegRole::Trunk,
            call_id: format!("{id}-trunk"),
            peer: "sip:203.0.113.5:5060".into(),
            started: arrived,
            answered: Some(arrived),
            ended,
            sip_cause: None,
            party: None,
            queue: None,
        }],
        supervisions: Vec::new(),
        conference: None,
        service_level_threshold_s: if queue == "vip" { 10.0 } else { 20.0 },
        direction: Default::default(),
        outbound: None,
        callback: None,
    })
}

/// An agent-state period (every 10th record of [`mixed`]).
pub fn agent_state(n: u64) -> Record {
    let started = FIRST_ARRIVAL + Duration::seconds(n as i64 * 7);
    Record::AgentState(AgentStateRecord {
        seq: 0,
        agent: format!("agent{:02}", n % 12),
        state: AgentState::NotReady,
        reason: Some("break".into()),
        started,
        ended: started + Duration::seconds(300),
        duration_s: 300.0,
        call_id: None,
    })
}

/// `count` records, mostly calls, numbered from `first_seq` in the order they ended (as the
/// journal numbers them: a record is appended when its call or period ends).
pub fn mixed(first_seq: u64, count: u64) -> Vec<(u64, Record)> {
    let mut rng = Rng(0x5eed_cafe ^ first_seq);
    let mut records: Vec<Record> = (first_seq..first_seq + count)
        .map(|n| {
            if n % 10 == 0 {
                agent_state(n)
            } else {
                call(&mut rng, n)
            }
        })
        .collect();
    records.sort_by_key(Record::ended);
    records
        .into_iter()
        .zip(first_seq..)
        .map(|(mut record, seq)| {
            record.set_seq(seq);
            (seq, record)
        })
        .collect()
}
