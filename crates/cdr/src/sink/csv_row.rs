//! The CSV layout of the file sink, for spreadsheets and tools that do not read JSON.
//!
//! Calls and agent-state periods have different columns, so they go to different files.
//! Scalars are written as in the JSON form (RFC 3339 UTC instants, seconds as numbers,
//! kebab-case enums); lists (`ivr_path`, `transfers`, `legs`) are JSON text in one cell so
//! nothing is lost. Line breaks inside text cells are replaced by spaces: every row is then
//! exactly one line, which keeps crash recovery of the file simple. The JSON-lines file stays
//! the exact copy.

use csv::WriterBuilder;

use crate::model::{AgentStateRecord, CallRecord};
use crate::timestamp::format_utc;

use super::SinkError;

/// Header row of the calls CSV file.
pub(crate) const CALL_HEADER: &[&str] = &[
    "seq",
    "id",
    "trunk_call_id",
    "arrived",
    "ivr_ended",
    "enqueued",
    "offered",
    "answered",
    "ended",
    "caller",
    "did",
    "ivr_path",
    "language",
    "queue",
    "agent",
    "priority",
    "wait_s",
    "ring_s",
    "talk_s",
    "hold_s",
    "wrap_up_s",
    "disposition",
    "hangup_side",
    "sip_cause",
    "transfers",
    "survey_score",
    "recording",
    "legs",
    "service_level_threshold_s",
    // Added after the first release: last, so older columns keep their positions.
    "label",
    "customer_name",
    "preferred_agent",
    "preferred_agent_taken",
];

/// Header row of the agent-state CSV file.
pub(crate) const AGENT_STATE_HEADER: &[&str] = &[
    "seq",
    "agent",
    "state",
    "reason",
    "started",
    "ended",
    "duration_s",
    "call_id",
];

/// The header as one CSV line.
pub(crate) fn header_line(columns: &[&str]) -> Vec<u8> {
    let mut line = columns.join(",").into_bytes();
    line.push(b'\n');
    line
}

fn one_line(text: &str) -> String {
    text.replace(['\r', '\n'], " ")
}

fn instant(seq: u64, at: time::OffsetDateTime) -> Result<String, SinkError> {
    format_utc(at).map_err(|e| SinkError::Encode {
        seq,
        reason: e.to_string(),
    })
}

fn optional_instant(seq: u64, at: Option<time::OffsetDateTime>) -> Result<String, SinkError> {
    at.map(|at| instant(seq, at))
        .transpose()
        .map(Option::unwrap_or_default)
}

fn json_cell<T: serde::Serialize>(seq: u64, value: &T) -> Result<String, SinkError> {
    serde_json::to_string(value).map_err(|e| SinkError::Encode {
        seq,
        reason: e.to_string(),
    })
}

fn optional_text(text: &Option<String>) -> String {
    text.as_deref().map(one_line).unwrap_or_default()
}

fn optional_number<T: ToString>(value: Option<T>) -> String {
    value.map(|v| v.to_string()).unwrap_or_default()
}

/// Appends one call row (with its newline) to `out`.
pub(crate) fn write_call_row(out: &mut Vec<u8>, call: &CallRecord) -> Result<(), SinkError> {
    let seq = call.seq;
    let cells: [String; 33] = [
        seq.to_string(),
        one_line(&call.id),
        one_line(&call.trunk_call_id),
        instant(seq, call.arrived)?,
        optional_instant(seq, call.ivr_ended)?,
        optional_instant(seq, call.enqueued)?,
        optional_instant(seq, call.offered)?,
        optional_instant(seq, call.answered)?,
        instant(seq, call.ended)?,
        one_line(&call.caller),
        one_line(&call.did),
        json_cell(seq, &call.ivr_path)?,
        optional_text(&call.language),
        optional_text(&call.queue),
        optional_text(&call.agent),
        call.priority.to_string(),
        call.wait_s.to_string(),
        call.ring_s.to_string(),
        call.talk_s.to_string(),
        call.hold_s.to_string(),
        call.wrap_up_s.to_string(),
        call.disposition.as_str().to_string(),
        call.hangup_side.as_str().to_string(),
        optional_number(call.sip_cause),
        json_cell(seq, &call.transfers)?,
        optional_number(call.survey_score),
        optional_text(&call.recording),
        json_cell(seq, &call.legs)?,
        call.service_level_threshold_s.to_string(),
        optional_text(&call.label),
        optional_text(&call.customer_name),
        optional_text(&call.preferred_agent),
        call.preferred_agent_taken.to_string(),
    ];
    write_row(out, seq, &cells)
}

/// Appends one agent-state row (with its newline) to `out`.
pub(crate) fn write_agent_state_row(
    out: &mut Vec<u8>,
    state: &AgentStateRecord,
) -> Result<(), SinkError> {
    let seq = state.seq;
    let cells: [String; 8] = [
        seq.to_string(),
        one_line(&state.agent),
        state.state.as_str().to_string(),
        optional_text(&state.reason),
        instant(seq, state.started)?,
        instant(seq, state.ended)?,
        state.duration_s.to_string(),
        optional_text(&state.call_id),
    ];
    write_row(out, seq, &cells)
}

fn write_row(out: &mut Vec<u8>, seq: u64, cells: &[String]) -> Result<(), SinkError> {
    // A row is at most a few KB; the default 8 KB buffer per row is wasted allocation.
    let mut writer = WriterBuilder::new().buffer_capacity(2048).from_writer(out);
    writer
        .write_record(cells)
        .and_then(|()| writer.flush().map_err(csv::Error::from))
        .map_err(|e| SinkError::Encode {
            seq,
            reason: e.to_string(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::fixtures::{answered_call, not_ready_period};

    fn parse(bytes: &[u8], header: &[&str]) -> Vec<csv::StringRecord> {
        let mut text = header_line(header);
        text.extend_from_slice(bytes);
        csv::Reader::from_reader(text.as_slice())
            .records()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    #[test]
    fn call_row_matches_header_and_round_trips_cells() {
        let mut call = answered_call();
        call.seq = 12;
        call.queue = Some("sales, \"north\"\nfloor 2".into());
        let mut out = Vec::new();
        write_call_row(&mut out, &call).unwrap();
        assert_eq!(out.iter().filter(|&&b| b == b'\n').count(), 1);
        let rows = parse(&out, CALL_HEADER);
        assert_eq!(rows.len(), 1);
        let row = &rows[0];
        assert_eq!(row.len(), CALL_HEADER.len());
        let cell = |name: &str| {
            let i = CALL_HEADER.iter().position(|c| *c == name).unwrap();
            row[i].to_string()
        };
        assert_eq!(cell("seq"), "12");
        assert_eq!(cell("queue"), "sales, \"north\" floor 2");
        assert_eq!(cell("answered"), "2025-03-03T09:00:35.5Z");
        assert_eq!(cell("ivr_ended"), "2025-03-03T09:00:20Z");
        assert_eq!(cell("disposition"), "answered");
        assert_eq!(cell("sip_cause"), "");
        assert_eq!(cell("wait_s"), "15.5");
        let legs: Vec<crate::model::Leg> = serde_json::from_str(&cell("legs")).unwrap();
        assert_eq!(legs, call.legs);
    }

    #[test]
    fn negative_priority_and_label_are_written_as_they_are() {
        let mut call = answered_call();
        call.priority = -7;
        call.label = Some("vip".into());
        let mut out = Vec::new();
        write_call_row(&mut out, &call).unwrap();
        let rows = parse(&out, CALL_HEADER);
        let cell = |name: &str| {
            let i = CALL_HEADER.iter().position(|c| *c == name).unwrap();
            rows[0][i].to_string()
        };
        assert_eq!(cell("priority"), "-7");
        assert_eq!(cell("label"), "vip");
        assert_eq!(
            &CALL_HEADER[CALL_HEADER.len() - 4..],
            &[
                "label",
                "customer_name",
                "preferred_agent",
                "preferred_agent_taken"
            ],
            "new columns go last so older ones keep their positions"
        );
    }

    #[test]
    fn lookup_and_sticky_routing_columns_are_written() {
        let mut call = answered_call();
        call.customer_name = Some("Li Wei".into());
        call.preferred_agent = Some("1003".into());
        call.preferred_agent_taken = true;
        let mut out = Vec::new();
        write_call_row(&mut out, &call).unwrap();
        let rows = parse(&out, CALL_HEADER);
        let cell = |name: &str| {
            let i = CALL_HEADER.iter().position(|c| *c == name).unwrap();
            rows[0][i].to_string()
        };
        assert_eq!(cell("customer_name"), "Li Wei");
        assert_eq!(cell("preferred_agent"), "1003");
        assert_eq!(cell("preferred_agent_taken"), "true");
    }

    #[test]
    fn agent_state_row_matches_header() {
        let mut out = Vec::new();
        write_agent_state_row(&mut out, &not_ready_period()).unwrap();
        let rows = parse(&out, AGENT_STATE_HEADER);
        assert_eq!(rows[0].len(), AGENT_STATE_HEADER.len());
        assert_eq!(&rows[0][2], "not-ready");
        assert_eq!(&rows[0][3], "break");
        assert_eq!(&rows[0][6], "900");
    }
}
