//! `switchboard report --low-scores N`: the calls whose post-call survey score is N or less,
//! for a supervisor to follow up, read from the daily CDR files of the report's range (by
//! arrival time, with the report's queue and agent filters). Lines that are not readable call
//! records are skipped, as the report does.

use std::io::{BufRead, Write};
use std::path::Path;

use anyhow::Context;
use serde::Deserialize;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// One call scored at or below the threshold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LowScore {
    /// When the call arrived (RFC 3339, as in the CDR).
    pub arrived: String,
    /// Switchboard's call id.
    pub id: String,
    /// The queue it was in last.
    pub queue: String,
    /// The agent who answered.
    pub agent: String,
    /// The caller's number, to call them back.
    pub caller: String,
    /// The customer's name from the caller lookup, if any.
    pub customer_name: String,
    /// The score keyed.
    pub score: u8,
}

/// The fields of a CDR line the list needs.
#[derive(Deserialize)]
struct ScoredLine {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    id: String,
    #[serde(default)]
    arrived: String,
    #[serde(default)]
    queue: Option<String>,
    #[serde(default)]
    agent: Option<String>,
    #[serde(default)]
    caller: String,
    #[serde(default)]
    customer_name: Option<String>,
    #[serde(default)]
    survey_score: Option<u8>,
}

/// What to list.
pub struct LowScoreQuery<'a> {
    /// Calls arriving from (inclusive) ...
    pub from: OffsetDateTime,
    /// ... to (exclusive).
    pub to: OffsetDateTime,
    /// Scores up to this one are listed.
    pub max_score: u8,
    /// Only this queue.
    pub queue: Option<&'a str>,
    /// Only this agent.
    pub agent: Option<&'a str>,
}

/// The low-scored calls in `dir` matching `query`, oldest first.
pub fn low_scores(dir: &Path, query: &LowScoreQuery<'_>) -> anyhow::Result<Vec<LowScore>> {
    let files = cdr::report::files_for_range(dir, query.from, query.to)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut found = Vec::new();
    for path in files {
        let file =
            std::fs::File::open(&path).with_context(|| format!("opening {}", path.display()))?;
        for line in std::io::BufReader::new(file).split(b'\n') {
            let line = line.with_context(|| format!("reading {}", path.display()))?;
            let Ok(record) = serde_json::from_slice::<ScoredLine>(&line) else {
                continue;
            };
            if let Some(low) = matching(record, query) {
                found.push(low);
            }
        }
    }
    found.sort_by(|a, b| a.arrived.cmp(&b.arrived));
    Ok(found)
}

fn matching(record: ScoredLine, query: &LowScoreQuery<'_>) -> Option<LowScore> {
    let score = record.survey_score.filter(|s| *s <= query.max_score)?;
    if record.kind != "call" {
        return None;
    }
    let arrived = OffsetDateTime::parse(&record.arrived, &Rfc3339).ok()?;
    if arrived < query.from || arrived >= query.to {
        return None;
    }
    let queue = record.queue.unwrap_or_default();
    let agent = record.agent.unwrap_or_default();
    if query.queue.is_some_and(|q| q != queue) || query.agent.is_some_and(|a| a != agent) {
        return None;
    }
    Some(LowScore {
        arrived: record.arrived,
        id: record.id,
        queue,
        agent,
        caller: record.caller,
        customer_name: record.customer_name.unwrap_or_default(),
        score,
    })
}

/// Writes the list as an aligned table (`csv = false`) or as CSV with a header line.
pub fn write(scores: &[LowScore], csv: bool, out: &mut dyn Write) -> std::io::Result<()> {
    const HEADER: [&str; 7] = [
        "arrived", "call", "queue", "agent", "caller", "customer", "score",
    ];
    let rows: Vec<[String; 7]> = scores
        .iter()
        .map(|s| {
            [
                s.arrived.clone(),
                s.id.clone(),
                s.queue.clone(),
                s.agent.clone(),
                s.caller.clone(),
                s.customer_name.clone(),
                s.score.to_string(),
            ]
        })
        .collect();
    if csv {
        writeln!(out, "{}", HEADER.join(","))?;
        for row in &rows {
            let cells: Vec<String> = row.iter().map(|cell| csv_cell(cell)).collect();
            writeln!(out, "{}", cells.join(","))?;
        }
        return Ok(());
    }
    let mut widths = HEADER.map(str::len);
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        cells
            .iter()
            .zip(widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_owned()
    };
    writeln!(out, "{}", line(HEADER.to_vec()))?;
    for row in &rows {
        writeln!(out, "{}", line(row.iter().map(String::as_str).collect()))?;
    }
    writeln!(out, "{} call(s)", rows.len())
}

/// A CSV field, quoted when it holds a comma, a quote or a line break.
fn csv_cell(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(id: &str, arrived: &str, queue: &str, agent: &str, score: Option<u8>) -> String {
        serde_json::json!({
            "type": "call", "id": id, "arrived": arrived, "queue": queue, "agent": agent,
            "caller": "5550100", "customer_name": "Li, Wei", "survey_score": score,
        })
        .to_string()
    }

    #[test]
    fn calls_at_or_below_the_threshold_in_range_and_filters_are_listed() {
        let dir = tempfile::tempdir().expect("temp dir");
        let lines = [
            line("c1", "2026-03-10T09:00:00Z", "support", "1001", Some(3)),
            line("c2", "2026-03-10T09:05:00Z", "support", "1002", Some(9)),
            line("c3", "2026-03-10T08:00:00Z", "sales", "1001", Some(1)),
            line("c4", "2026-03-10T10:00:00Z", "support", "1001", None),
            // Outside the range.
            line("c5", "2026-03-11T10:00:00Z", "support", "1001", Some(2)),
            r#"{"type":"agent_state","agent":"1001"}"#.to_owned(),
            "garbage".to_owned(),
        ];
        std::fs::write(
            dir.path().join("cdr-2026-03-10.jsonl"),
            lines.join("\n") + "\n",
        )
        .expect("write");
        let mut query = LowScoreQuery {
            from: time::macros::datetime!(2026-03-10 0:00 UTC),
            to: time::macros::datetime!(2026-03-11 0:00 UTC),
            max_score: 4,
            queue: None,
            agent: None,
        };
        let found = low_scores(dir.path(), &query).expect("readable");
        let ids: Vec<&str> = found.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(ids, ["c3", "c1"], "oldest first");
        query.queue = Some("support");
        let found = low_scores(dir.path(), &query).expect("readable");
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].score, 3);
        query.queue = None;
        query.agent = Some("1002");
        assert!(low_scores(dir.path(), &query).expect("readable").is_empty());

        let mut csv = Vec::new();
        write(&found_all(dir.path()), true, &mut csv).expect("write");
        let csv = String::from_utf8(csv).expect("utf-8");
        assert_eq!(
            csv.lines().next(),
            Some("arrived,call,queue,agent,caller,customer,score")
        );
        assert!(
            csv.contains("2026-03-10T09:00:00Z,c1,support,1001,5550100,\"Li, Wei\",3"),
            "{csv}"
        );
        let mut table = Vec::new();
        write(&found_all(dir.path()), false, &mut table).expect("write");
        let table = String::from_utf8(table).expect("utf-8");
        assert!(table.ends_with("2 call(s)\n"), "{table}");
    }

    fn found_all(dir: &Path) -> Vec<LowScore> {
        low_scores(
            dir,
            &LowScoreQuery {
                from: time::macros::datetime!(2026-03-10 0:00 UTC),
                to: time::macros::datetime!(2026-03-11 0:00 UTC),
                max_score: 4,
                queue: None,
                agent: None,
            },
        )
        .expect("readable")
    }
}
