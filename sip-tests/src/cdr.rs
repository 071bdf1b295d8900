//! Reads the CDR files Switchboard writes (`<cdr.dir>/cdr-YYYY-MM-DD.jsonl`, one JSON object a
//! line) back as JSON values, and waits for records to appear: they are copied from the journal
//! into the daily files shortly after a call ends.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::error::{HarnessError, HarnessResult};

/// How often a wait re-reads the files: the files offer no notification, and this only runs in
/// tests.
const POLL_INTERVAL: Duration = Duration::from_millis(50);

/// The daily CDR files in `dir`, in name (= date) order.
pub fn cdr_files(dir: &Path) -> HarnessResult<Vec<PathBuf>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        // Nothing written yet.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(HarnessError::io(format!("listing {}", dir.display()), e)),
    };
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| HarnessError::io(format!("listing {}", dir.display()), e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with("cdr-") && name.ends_with(".jsonl") {
            files.push(entry.path());
        }
    }
    files.sort();
    Ok(files)
}

/// Every complete record (newline-terminated line) of every daily file in `dir`. A line still
/// being appended is left for the next read; a complete line that is not JSON is an error.
pub fn read_records(dir: &Path) -> HarnessResult<Vec<Value>> {
    let mut records = Vec::new();
    for file in cdr_files(dir)? {
        let text = std::fs::read_to_string(&file)
            .map_err(|e| HarnessError::io(format!("reading {}", file.display()), e))?;
        let complete = text.rfind('\n').map_or("", |end| &text[..end]);
        for line in complete.lines().filter(|l| !l.trim().is_empty()) {
            let record = serde_json::from_str(line).map_err(|e| {
                HarnessError::Unexpected(format!(
                    "{} holds a line that is not JSON ({e}): {line}",
                    file.display()
                ))
            })?;
            records.push(record);
        }
    }
    Ok(records)
}

/// The records of `records` with `"type": kind` (`call` or `agent_state`).
pub fn of_type<'r>(records: &'r [Value], kind: &str) -> Vec<&'r Value> {
    records
        .iter()
        .filter(|r| r.get("type").and_then(Value::as_str) == Some(kind))
        .collect()
}

/// The call records whose `trunk_call_id` is `trunk_call_id`.
pub fn calls_with_trunk_id<'r>(records: &'r [Value], trunk_call_id: &str) -> Vec<&'r Value> {
    of_type(records, "call")
        .into_iter()
        .filter(|r| str_field(r, "trunk_call_id") == Some(trunk_call_id))
        .collect()
}

/// Re-reads `dir` until the records satisfy `done`; returns them. `what` names the condition in
/// the timeout error, which also lists what was there.
pub fn wait_for_records(
    dir: &Path,
    what: &str,
    timeout: Duration,
    done: impl Fn(&[Value]) -> bool,
) -> HarnessResult<Vec<Value>> {
    let deadline = Instant::now() + timeout;
    loop {
        let records = read_records(dir)?;
        if done(&records) {
            return Ok(records);
        }
        if Instant::now() >= deadline {
            let shown: Vec<String> = records.iter().map(Value::to_string).collect();
            return Err(HarnessError::Unexpected(format!(
                "CDR files in {} did not show {what} within {} s; records:\n{}",
                dir.display(),
                timeout.as_secs(),
                shown.join("\n")
            )));
        }
        std::thread::sleep(POLL_INTERVAL);
    }
}

/// Waits for the call record of the trunk call `trunk_call_id` and returns it; more than one
/// record for the call is an error.
pub fn wait_for_call(dir: &Path, trunk_call_id: &str, timeout: Duration) -> HarnessResult<Value> {
    let records = wait_for_records(
        dir,
        &format!("a call record for trunk Call-ID {trunk_call_id}"),
        timeout,
        |records| !calls_with_trunk_id(records, trunk_call_id).is_empty(),
    )?;
    match calls_with_trunk_id(&records, trunk_call_id).as_slice() {
        [one] => Ok((*one).clone()),
        many => Err(HarnessError::Unexpected(format!(
            "{} call records for trunk Call-ID {trunk_call_id}: {many:?}",
            many.len()
        ))),
    }
}

/// A string field of a record (`None` when absent or not a string).
pub fn str_field<'r>(record: &'r Value, field: &str) -> Option<&'r str> {
    record.get(field).and_then(Value::as_str)
}

/// A number field of a record (`None` when absent or not a number).
pub fn f64_field(record: &Value, field: &str) -> Option<f64> {
    record.get(field).and_then(Value::as_f64)
}

/// An RFC 3339 timestamp field of a record; `Ok(None)` when absent or null, an error when present
/// but not RFC 3339.
pub fn time_field(record: &Value, field: &str) -> HarnessResult<Option<OffsetDateTime>> {
    match record.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => OffsetDateTime::parse(text, &Rfc3339)
            .map(Some)
            .map_err(|e| {
                HarnessError::Unexpected(format!(
                    "`{field}` = {text:?} is not RFC 3339 ({e}) in {record}"
                ))
            }),
        Some(other) => Err(HarnessError::Unexpected(format!(
            "`{field}` = {other} is not a timestamp string in {record}"
        ))),
    }
}

/// Like [`time_field`], but the field must be there.
pub fn required_time(record: &Value, field: &str) -> HarnessResult<OffsetDateTime> {
    time_field(record, field)?.ok_or_else(|| {
        HarnessError::Unexpected(format!("`{field}` missing in call record {record}"))
    })
}

/// `switchboard report --dir <dir>` over the calls of yesterday to tomorrow (UTC) with
/// `args` (e.g. `["--format", "csv", "--low-scores", "7"]`); returns what it printed.
pub fn report_around_today(dir: &Path, args: &[&str]) -> HarnessResult<String> {
    let today = OffsetDateTime::now_utc().date();
    let day = time::Duration::days(1);
    let run = std::process::Command::new(crate::paths::switchboard_binary()?)
        .args(["report", "--dir"])
        .arg(dir)
        .args(["--from", &(today - day).to_string()])
        .args(["--to", &(today + day + day).to_string()])
        .args(args)
        .output()
        .map_err(|e| HarnessError::io("running switchboard report", e))?;
    if !run.status.success() {
        return Err(HarnessError::Unexpected(format!(
            "switchboard report {args:?} failed: {}",
            String::from_utf8_lossy(&run.stderr)
        )));
    }
    Ok(String::from_utf8_lossy(&run.stdout).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn complete_lines_of_every_daily_file_are_read() {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(
            dir.path().join("cdr-2026-01-01.jsonl"),
            "{\"type\":\"call\",\"trunk_call_id\":\"a\"}\n",
        )
        .expect("write works");
        // The second line is still being appended: not read yet.
        std::fs::write(
            dir.path().join("cdr-2026-01-02.jsonl"),
            "{\"type\":\"agent_state\",\"agent\":\"1001\"}\n{\"type\":\"ca",
        )
        .expect("write works");
        std::fs::write(dir.path().join("other.txt"), "not a cdr").expect("write works");
        let records = read_records(dir.path()).expect("readable");
        assert_eq!(records.len(), 2);
        assert_eq!(of_type(&records, "call").len(), 1);
        assert_eq!(calls_with_trunk_id(&records, "a").len(), 1);
        assert!(calls_with_trunk_id(&records, "b").is_empty());
        let missing = read_records(&dir.path().join("none")).expect("absent dir is empty");
        assert!(missing.is_empty());
    }

    #[test]
    fn a_broken_complete_line_is_an_error() {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("cdr-2026-01-01.jsonl"), "{oops\n").expect("write works");
        assert!(read_records(dir.path()).is_err());
    }

    #[test]
    fn timestamps_parse_and_are_checked() {
        let record = json!({"answered": "2026-03-01T08:00:00.5Z", "ended": null, "bad": "noon"});
        let answered = time_field(&record, "answered").expect("valid");
        assert_eq!(answered.map(|t| t.millisecond()), Some(500));
        assert_eq!(time_field(&record, "ended").expect("null is none"), None);
        assert!(time_field(&record, "bad").is_err());
        assert!(required_time(&record, "offered").is_err());
    }

    #[test]
    fn waiting_reports_what_was_there() {
        let dir = tempfile::tempdir().expect("temp dir");
        let error = wait_for_records(dir.path(), "something", Duration::from_millis(1), |r| {
            !r.is_empty()
        })
        .expect_err("nothing there");
        assert!(error.to_string().contains("something"), "{error}");
    }
}
