//! Streams the call facts a report needs out of a directory of `cdr-YYYY-MM-DD.jsonl` files.
//!
//! Each line is parsed into a slim view that borrows its strings and skips fields the report
//! does not use, so a month of CDRs is read at close to disk speed in constant memory.
//! Agent-state lines are skipped; lines that are not valid CDRs are counted, never fatal.

use std::borrow::Cow;
use std::fmt;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use serde::de::{self, Deserializer, IgnoredAny, SeqAccess, Visitor};
use serde::Deserialize;
use time::{Date, Duration as TimeDuration, Month, OffsetDateTime};

use super::figures::CallFacts;
use super::{ReportError, ReportQuery};
use crate::model::Disposition;
use crate::timestamp::parse_utc;

/// How far a long report has got, for a progress bar.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReportProgress {
    /// CDR lines read so far.
    pub records_read: u64,
    /// Bytes read so far.
    pub bytes_read: u64,
    /// Total bytes of the files being read.
    pub bytes_total: u64,
}

/// What reading the source found, for the report footer and for alerting.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SourceStats {
    /// Files read.
    pub files_read: usize,
    /// Lines read.
    pub lines_read: u64,
    /// Call records counted in the report (in range and matching the filters).
    pub calls_counted: u64,
    /// Call records outside the range or not matching the queue/agent filter, and agents'
    /// calls out (reports are of the ACD's inbound traffic).
    pub calls_filtered_out: u64,
    /// Agent-state lines (not part of call reports).
    pub agent_state_lines: u64,
    /// Lines that are not valid CDRs (skipped).
    pub malformed_lines: u64,
}

/// Progress is reported after this many lines (and at the end).
const PROGRESS_EVERY_LINES: u64 = 50_000;

/// A JSON string borrowed from the line when it has no escapes, copied otherwise.
struct Text<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TextVisitor<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for TextVisitor<'a> {
            type Value = Text<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(v.to_owned())))
            }
        }
        deserializer.deserialize_str(TextVisitor(std::marker::PhantomData))
    }
}

/// `true` if a JSON array has at least one element (elements are skipped, not built).
#[derive(Default)]
struct NonEmpty(bool);

impl<'de> Deserialize<'de> for NonEmpty {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct NonEmptyVisitor;
        impl<'de> Visitor<'de> for NonEmptyVisitor {
            type Value = NonEmpty;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an array")
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(NonEmpty(false))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut any = false;
                while seq.next_element::<IgnoredAny>()?.is_some() {
                    any = true;
                }
                Ok(NonEmpty(any))
            }
        }
        deserializer.deserialize_any(NonEmptyVisitor)
    }
}

/// The fields of a CDR line a report reads; everything else is skipped unparsed.
#[derive(Deserialize)]
struct CallLine<'a> {
    #[serde(rename = "type", borrow)]
    kind: Text<'a>,
    #[serde(default, borrow)]
    arrived: Option<Text<'a>>,
    #[serde(default, borrow)]
    enqueued: Option<Text<'a>>,
    #[serde(default, borrow)]
    queue: Option<Text<'a>>,
    #[serde(default, borrow)]
    agent: Option<Text<'a>>,
    #[serde(default)]
    disposition: Option<Disposition>,
    #[serde(default)]
    wait_s: f64,
    #[serde(default)]
    talk_s: f64,
    #[serde(default)]
    hold_s: f64,
    #[serde(default)]
    wrap_up_s: f64,
    #[serde(default)]
    service_level_threshold_s: f64,
    #[serde(default)]
    transfers: NonEmpty,
    #[serde(default)]
    direction: crate::model::Direction,
    #[serde(default)]
    survey_score: Option<u8>,
}

enum Line<'a> {
    Call(CallFacts<'a>),
    /// An agent's call out: not ACD traffic, so not part of the queue and agent figures.
    CallOut,
    AgentState,
    Malformed,
}

/// Turns a parsed line into call facts that borrow from it.
fn classify<'l>(line: &'l CallLine<'_>) -> Line<'l> {
    match &*line.kind.0 {
        "call" => {}
        "agent_state" => return Line::AgentState,
        _ => return Line::Malformed,
    }
    let Some(disposition) = line.disposition else {
        return Line::Malformed;
    };
    if line.direction == crate::model::Direction::Outbound {
        return Line::CallOut;
    }
    let Some(at) = line.enqueued.as_ref().or(line.arrived.as_ref()) else {
        return Line::Malformed;
    };
    let Ok(at) = parse_utc(&at.0) else {
        return Line::Malformed;
    };
    let durations = [
        line.wait_s,
        line.talk_s,
        line.hold_s,
        line.wrap_up_s,
        line.service_level_threshold_s,
    ];
    if durations.iter().any(|d| !d.is_finite()) {
        return Line::Malformed;
    }
    Line::Call(CallFacts {
        at_unix_s: at.unix_timestamp(),
        queue: line.queue.as_ref().map(|t| &*t.0),
        agent: line.agent.as_ref().map(|t| &*t.0),
        disposition,
        wait_s: line.wait_s,
        handle_s: line.talk_s + line.hold_s + line.wrap_up_s,
        threshold_s: line.service_level_threshold_s,
        transferred: line.transfers.0,
        survey_score: line.survey_score,
    })
}

/// `cdr-YYYY-MM-DD.jsonl` → the date.
fn file_date(name: &str) -> Option<Date> {
    let stem = name.strip_prefix("cdr-")?.strip_suffix(".jsonl")?;
    let mut parts = stem.split('-');
    let year: i32 = parts.next()?.parse().ok()?;
    let month: u8 = parts.next()?.parse().ok()?;
    let day: u8 = parts.next()?.parse().ok()?;
    if parts.next().is_some() {
        return None;
    }
    Date::from_calendar_date(year, Month::try_from(month).ok()?, day).ok()
}

/// The daily files that can hold calls counted in `[from, to)`.
///
/// Files are named by the day a call *ended*, and a call counts when it was queued, so one
/// extra day after `to` is read for calls that were queued before midnight and ended after
/// it. Calls lasting more than a day past the range end are not found (none are expected).
pub fn files_for_range(
    dir: &Path,
    from: OffsetDateTime,
    to: OffsetDateTime,
) -> Result<Vec<PathBuf>, ReportError> {
    let first = from.date();
    let last = (to - TimeDuration::nanoseconds(1)).date().next_day();
    let entries = std::fs::read_dir(dir).map_err(|e| ReportError::io("list", dir, e))?;
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| ReportError::io("list", dir, e))?;
        let name = entry.file_name();
        let Some(date) = name.to_str().and_then(file_date) else {
            continue;
        };
        if date >= first && last.is_none_or(|last| date <= last) {
            files.push((date, entry.path()));
        }
    }
    files.sort();
    Ok(files.into_iter().map(|(_, path)| path).collect())
}

/// Reads every call from the files that may hold calls of `query`'s range and hands it to
/// `on_call`, which returns whether the call counted (in range, matching the filters).
pub(crate) fn read_cdr_dir(
    dir: &Path,
    query: &ReportQuery,
    on_call: &mut dyn FnMut(&CallFacts<'_>) -> bool,
    progress: &mut dyn FnMut(&ReportProgress),
) -> Result<SourceStats, ReportError> {
    let files = files_for_range(dir, query.from, query.to)?;
    let mut done = ReportProgress::default();
    for path in &files {
        let size = std::fs::metadata(path)
            .map_err(|e| ReportError::io("stat", path, e))?
            .len();
        done.bytes_total += size;
    }
    let mut stats = SourceStats::default();
    let mut line = Vec::with_capacity(4096);
    progress(&done);
    for path in &files {
        let file = File::open(path).map_err(|e| ReportError::io("open", path, e))?;
        let mut reader = BufReader::with_capacity(1 << 20, file);
        stats.files_read += 1;
        loop {
            line.clear();
            let read = reader
                .read_until(b'\n', &mut line)
                .map_err(|e| ReportError::io("read", path, e))?;
            if read == 0 {
                break;
            }
            done.bytes_read += read as u64;
            done.records_read += 1;
            stats.lines_read += 1;
            if stats.lines_read % PROGRESS_EVERY_LINES == 0 {
                progress(&done);
            }
            count_line(&line, &mut stats, on_call);
        }
    }
    progress(&done);
    Ok(stats)
}

fn count_line(
    bytes: &[u8],
    stats: &mut SourceStats,
    on_call: &mut dyn FnMut(&CallFacts<'_>) -> bool,
) {
    let Ok(line) = serde_json::from_slice::<CallLine<'_>>(bytes) else {
        stats.malformed_lines += 1;
        return;
    };
    let facts = match classify(&line) {
        Line::Call(facts) => facts,
        Line::CallOut => {
            stats.calls_filtered_out += 1;
            return;
        }
        Line::AgentState => {
            stats.agent_state_lines += 1;
            return;
        }
        Line::Malformed => {
            stats.malformed_lines += 1;
            return;
        }
    };
    if on_call(&facts) {
        stats.calls_counted += 1;
    } else {
        stats.calls_filtered_out += 1;
    }
}
