//! The PostgreSQL sink: each batch is one transaction of multi-row inserts into `cdr_calls`
//! and `cdr_agent_states`, with `ON CONFLICT (node, seq) DO NOTHING` so re-sent records are
//! skipped while other nodes' rows with the same journal numbers are kept.
//!
//! A batch is sent column-wise as arrays and expanded with `UNNEST`: one prepared statement
//! per table whatever the batch size (no bind-parameter limit, no per-row round trip).

use time::OffsetDateTime;

use super::{Sink, SinkError};
use crate::model::{AgentStateRecord, CallRecord, Record};
use crate::postgres::{PostgresConfig, PostgresError, Session};

const INSERT_CALLS: &str = "\
INSERT INTO cdr_calls (node, seq, id, trunk_call_id, arrived, ivr_ended, enqueued, offered, answered,
    ended, caller, did, language, queue, agent, priority, wait_s, ring_s, talk_s, hold_s,
    wrap_up_s, disposition, hangup_side, sip_cause, transfer_count, survey_score, recording,
    service_level_threshold_s, record, label)
SELECT $29::text, seq, id, trunk_call_id, arrived, ivr_ended, enqueued, offered, answered,
    ended, caller, did, language, queue, agent, priority, wait_s, ring_s, talk_s, hold_s,
    wrap_up_s, disposition, hangup_side, sip_cause, transfer_count, survey_score, recording,
    service_level_threshold_s, record::jsonb, label
FROM UNNEST($1::int8[], $2::text[], $3::text[], $4::timestamptz[], $5::timestamptz[],
    $6::timestamptz[], $7::timestamptz[], $8::timestamptz[], $9::timestamptz[], $10::text[],
    $11::text[], $12::text[], $13::text[], $14::text[], $15::int8[], $16::float8[],
    $17::float8[], $18::float8[], $19::float8[], $20::float8[], $21::text[], $22::text[],
    $23::int4[], $24::int4[], $25::int2[], $26::text[], $27::float8[], $28::text[], $30::text[])
    AS batch(seq, id, trunk_call_id, arrived, ivr_ended, enqueued, offered, answered,
    ended, caller, did, language, queue, agent, priority, wait_s, ring_s, talk_s, hold_s,
    wrap_up_s, disposition, hangup_side, sip_cause, transfer_count, survey_score, recording,
    service_level_threshold_s, record, label)
ON CONFLICT (node, seq) DO NOTHING";

const INSERT_AGENT_STATES: &str = "\
INSERT INTO cdr_agent_states (node, seq, agent, state, reason, started, ended, duration_s,
    call_id, record)
SELECT $10::text, seq, agent, state, reason, started, ended, duration_s, call_id, record::jsonb
FROM UNNEST($1::int8[], $2::text[], $3::text[], $4::text[], $5::timestamptz[],
    $6::timestamptz[], $7::float8[], $8::text[], $9::text[])
    AS batch(seq, agent, state, reason, started, ended, duration_s, call_id, record)
ON CONFLICT (node, seq) DO NOTHING";

/// What a [`PostgresSink`] has written since it was created.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PostgresSinkStats {
    /// Batches committed.
    pub batches: u64,
    /// Rows inserted.
    pub inserted: u64,
    /// Records skipped because a row with their `seq` was already there (re-sent batches).
    pub already_stored: u64,
    /// `write_batch` calls that failed (database down, timeout, …).
    pub failures: u64,
}

/// Stores CDRs in PostgreSQL (`cdr_calls`, `cdr_agent_states`); see the crate docs for the
/// schema. `write_batch` blocks on a private runtime; the connection is opened on first use,
/// the schema migrated then, and re-opened on the next call after any failure.
pub struct PostgresSink {
    session: Session,
    stats: PostgresSinkStats,
    /// Stored in every row's `node` column.
    node: String,
}

impl PostgresSink {
    /// A sink for `config`. Only checks the URL: connecting waits for the first batch (or
    /// [`PostgresSink::connect`]), so a database that is down at start-up delays nothing.
    pub fn new(config: &PostgresConfig) -> Result<PostgresSink, PostgresError> {
        Ok(PostgresSink {
            session: Session::new(config, true)?,
            stats: PostgresSinkStats::default(),
            node: config.node.clone(),
        })
    }

    /// Connects and brings the schema up to date now (to fail early on a bad configuration).
    pub fn connect(&mut self) -> Result<(), PostgresError> {
        self.session.connect()
    }

    /// Whether a connection is open (it is dropped after any failure).
    pub fn is_connected(&self) -> bool {
        self.session.is_connected()
    }

    /// Counters since creation.
    pub fn stats(&self) -> PostgresSinkStats {
        self.stats
    }

    fn insert(&mut self, batch: &Columns) -> Result<u64, PostgresError> {
        let node = self.node.as_str();
        self.session.run("insert CDR batch", async |connection| {
            use sqlx::Connection;
            let mut transaction = connection.begin().await?;
            let mut inserted = 0;
            if !batch.calls.seq.is_empty() {
                inserted += batch
                    .calls
                    .bind(sqlx::query(INSERT_CALLS))
                    .bind(node)
                    // $30, after the node: added with migration 3.
                    .bind(&batch.calls.label)
                    .execute(&mut *transaction)
                    .await?
                    .rows_affected();
            }
            if !batch.states.seq.is_empty() {
                inserted += batch
                    .states
                    .bind(sqlx::query(INSERT_AGENT_STATES))
                    .bind(node)
                    .execute(&mut *transaction)
                    .await?
                    .rows_affected();
            }
            transaction.commit().await?;
            Ok(inserted)
        })
    }
}

impl Sink for PostgresSink {
    fn write_batch(&mut self, records: &[(u64, Record)]) -> Result<(), SinkError> {
        if records.is_empty() {
            return Ok(());
        }
        let columns = Columns::from_records(records)?;
        match self.insert(&columns) {
            Ok(inserted) => {
                self.stats.batches += 1;
                self.stats.inserted += inserted;
                self.stats.already_stored += (records.len() as u64).saturating_sub(inserted);
                Ok(())
            }
            Err(error) => {
                self.stats.failures += 1;
                Err(SinkError::Backend(Box::new(error)))
            }
        }
    }

    fn name(&self) -> &str {
        "postgres"
    }
}

type Query<'q> = sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>;

/// A batch split by table, column-wise.
#[derive(Default)]
struct Columns {
    calls: CallColumns,
    states: AgentStateColumns,
}

impl Columns {
    fn from_records(records: &[(u64, Record)]) -> Result<Columns, SinkError> {
        let mut columns = Columns::default();
        for (seq, record) in records {
            let key = i64::try_from(*seq).map_err(|_| SinkError::Encode {
                seq: *seq,
                reason: "sequence number does not fit PostgreSQL BIGINT".into(),
            })?;
            let json = serde_json::to_string(record).map_err(|e| SinkError::Encode {
                seq: *seq,
                reason: e.to_string(),
            })?;
            match record {
                Record::Call(call) => columns.calls.push(key, call, json),
                Record::AgentState(state) => columns.states.push(key, state, json),
            }
        }
        Ok(columns)
    }
}

#[derive(Default)]
struct CallColumns {
    seq: Vec<i64>,
    id: Vec<String>,
    trunk_call_id: Vec<String>,
    arrived: Vec<OffsetDateTime>,
    ivr_ended: Vec<Option<OffsetDateTime>>,
    enqueued: Vec<Option<OffsetDateTime>>,
    offered: Vec<Option<OffsetDateTime>>,
    answered: Vec<Option<OffsetDateTime>>,
    ended: Vec<OffsetDateTime>,
    caller: Vec<String>,
    did: Vec<String>,
    language: Vec<Option<String>>,
    queue: Vec<Option<String>>,
    agent: Vec<Option<String>>,
    priority: Vec<i64>,
    wait_s: Vec<f64>,
    ring_s: Vec<f64>,
    talk_s: Vec<f64>,
    hold_s: Vec<f64>,
    wrap_up_s: Vec<f64>,
    disposition: Vec<&'static str>,
    hangup_side: Vec<&'static str>,
    sip_cause: Vec<Option<i32>>,
    transfer_count: Vec<i32>,
    survey_score: Vec<Option<i16>>,
    recording: Vec<Option<String>>,
    service_level_threshold_s: Vec<f64>,
    record: Vec<String>,
    label: Vec<Option<String>>,
}

impl CallColumns {
    fn push(&mut self, seq: i64, call: &CallRecord, json: String) {
        self.seq.push(seq);
        self.id.push(call.id.clone());
        self.trunk_call_id.push(call.trunk_call_id.clone());
        self.arrived.push(call.arrived);
        self.ivr_ended.push(call.ivr_ended);
        self.enqueued.push(call.enqueued);
        self.offered.push(call.offered);
        self.answered.push(call.answered);
        self.ended.push(call.ended);
        self.caller.push(call.caller.clone());
        self.did.push(call.did.clone());
        self.language.push(call.language.clone());
        self.queue.push(call.queue.clone());
        self.agent.push(call.agent.clone());
        self.priority.push(i64::from(call.priority));
        self.wait_s.push(call.wait_s);
        self.ring_s.push(call.ring_s);
        self.talk_s.push(call.talk_s);
        self.hold_s.push(call.hold_s);
        self.wrap_up_s.push(call.wrap_up_s);
        self.disposition.push(call.disposition.as_str());
        self.hangup_side.push(call.hangup_side.as_str());
        self.sip_cause.push(call.sip_cause.map(i32::from));
        // More than 2^31 transfers cannot happen; saturate rather than fail the batch.
        self.transfer_count
            .push(i32::try_from(call.transfers.len()).unwrap_or(i32::MAX));
        self.survey_score.push(call.survey_score.map(i16::from));
        self.recording.push(call.recording.clone());
        self.service_level_threshold_s
            .push(call.service_level_threshold_s);
        self.record.push(json);
        self.label.push(call.label.clone());
    }

    fn bind<'q>(&'q self, query: Query<'q>) -> Query<'q> {
        query
            .bind(&self.seq)
            .bind(&self.id)
            .bind(&self.trunk_call_id)
            .bind(&self.arrived)
            .bind(&self.ivr_ended)
            .bind(&self.enqueued)
            .bind(&self.offered)
            .bind(&self.answered)
            .bind(&self.ended)
            .bind(&self.caller)
            .bind(&self.did)
            .bind(&self.language)
            .bind(&self.queue)
            .bind(&self.agent)
            .bind(&self.priority)
            .bind(&self.wait_s)
            .bind(&self.ring_s)
            .bind(&self.talk_s)
            .bind(&self.hold_s)
            .bind(&self.wrap_up_s)
            .bind(&self.disposition)
            .bind(&self.hangup_side)
            .bind(&self.sip_cause)
            .bind(&self.transfer_count)
            .bind(&self.survey_score)
            .bind(&self.recording)
            .bind(&self.service_level_threshold_s)
            .bind(&self.record)
    }
}

#[derive(Default)]
struct AgentStateColumns {
    seq: Vec<i64>,
    agent: Vec<String>,
    state: Vec<&'static str>,
    reason: Vec<Option<String>>,
    started: Vec<OffsetDateTime>,
    ended: Vec<OffsetDateTime>,
    duration_s: Vec<f64>,
    call_id: Vec<Option<String>>,
    record: Vec<String>,
}

impl AgentStateColumns {
    fn push(&mut self, seq: i64, state: &AgentStateRecord, json: String) {
        self.seq.push(seq);
        self.agent.push(state.agent.clone());
        self.state.push(state.state.as_str());
        self.reason.push(state.reason.clone());
        self.started.push(state.started);
        self.ended.push(state.ended);
        self.duration_s.push(state.duration_s);
        self.call_id.push(state.call_id.clone());
        self.record.push(json);
    }

    fn bind<'q>(&'q self, query: Query<'q>) -> Query<'q> {
        query
            .bind(&self.seq)
            .bind(&self.agent)
            .bind(&self.state)
            .bind(&self.reason)
            .bind(&self.started)
            .bind(&self.ended)
            .bind(&self.duration_s)
            .bind(&self.call_id)
            .bind(&self.record)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::fixtures::{answered_call, not_ready_period};

    #[test]
    fn a_batch_is_split_by_table_in_order() {
        let mut call = answered_call();
        call.seq = 7;
        let mut state = not_ready_period();
        state.seq = 8;
        let records = vec![
            (7, Record::Call(call.clone())),
            (8, Record::AgentState(state)),
            (9, Record::Call(call)),
        ];
        let columns = Columns::from_records(&records).unwrap();
        assert_eq!(columns.calls.seq, vec![7, 9]);
        assert_eq!(columns.states.seq, vec![8]);
        assert_eq!(columns.calls.disposition, vec!["answered"; 2]);
        assert_eq!(columns.calls.transfer_count, vec![1, 1]);
        assert_eq!(columns.calls.survey_score, vec![Some(9), Some(9)]);
        assert_eq!(columns.states.state, vec!["not-ready"]);
        // The JSON column is the record's documented line form.
        let back = Record::from_json(columns.calls.record[0].as_bytes()).unwrap();
        assert_eq!(back, records[0].1);
    }

    #[test]
    fn every_column_has_one_value_per_call() {
        let records: Vec<_> = (1..=5)
            .map(|seq| (seq, Record::Call(answered_call())))
            .collect();
        let c = Columns::from_records(&records).unwrap().calls;
        let lengths = [
            c.seq.len(),
            c.id.len(),
            c.trunk_call_id.len(),
            c.arrived.len(),
            c.ivr_ended.len(),
            c.enqueued.len(),
            c.offered.len(),
            c.answered.len(),
            c.ended.len(),
            c.caller.len(),
            c.did.len(),
            c.language.len(),
            c.queue.len(),
            c.agent.len(),
            c.priority.len(),
            c.wait_s.len(),
            c.ring_s.len(),
            c.talk_s.len(),
            c.hold_s.len(),
            c.wrap_up_s.len(),
            c.disposition.len(),
            c.hangup_side.len(),
            c.sip_cause.len(),
            c.transfer_count.len(),
            c.survey_score.len(),
            c.recording.len(),
            c.service_level_threshold_s.len(),
            c.record.len(),
            c.label.len(),
        ];
        assert_eq!(lengths, [5; 29]);
    }

    #[test]
    fn negative_priority_and_label_reach_their_columns() {
        let mut call = answered_call();
        call.priority = -1_000_000;
        call.label = Some("vip".into());
        let records = vec![(1, Record::Call(call)), (2, Record::Call(answered_call()))];
        let c = Columns::from_records(&records).unwrap().calls;
        assert_eq!(c.priority, vec![-1_000_000, 1]);
        assert_eq!(c.label, vec![Some("vip".to_owned()), None]);
    }

    #[test]
    fn a_sequence_beyond_bigint_is_refused_not_wrapped() {
        let records = vec![(u64::MAX, Record::Call(answered_call()))];
        match Columns::from_records(&records) {
            Err(SinkError::Encode { seq, reason }) => {
                assert_eq!(seq, u64::MAX);
                assert!(reason.contains("BIGINT"), "{reason}");
            }
            Err(other) => panic!("expected an encode error, got {other}"),
            Ok(_) => panic!("expected an encode error"),
        }
    }

    #[test]
    fn a_bad_url_is_refused_up_front() {
        for url in ["mysql://db/cdr", "db/cdr", "postgres://db:port/cdr"] {
            let error = PostgresSink::new(&PostgresConfig::new(url)).err();
            assert!(
                matches!(error, Some(PostgresError::InvalidUrl(_))),
                "{url}: {error:?}"
            );
        }
    }

    #[test]
    fn an_unreachable_database_fails_the_batch_without_losing_it() {
        // Port 1 on loopback: nothing listens, the connection is refused at once.
        let mut sink =
            PostgresSink::new(&PostgresConfig::new("postgres://cdr@127.0.0.1:1/cdr")).unwrap();
        let records = vec![(1, Record::Call(answered_call()))];
        let error = sink.write_batch(&records).unwrap_err();
        assert!(matches!(error, SinkError::Backend(_)), "{error}");
        assert!(error.to_string().contains("cannot connect"), "{error}");
        assert!(!sink.is_connected());
        assert_eq!(sink.stats().failures, 1);
        assert_eq!(sink.stats().inserted, 0);
        assert_eq!(sink.name(), "postgres");
    }
}
