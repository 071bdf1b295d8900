//! `switchboard agents`, `switchboard queues` and `switchboard calls`: live state read from a
//! running instance's HTTP API and printed as a table; `switchboard reload` asks it to re-read
//! its configuration.

use anyhow::{bail, Context};
use serde_json::Value;

/// Fetches `path` from the API with the bearer token, turning API errors into messages.
fn fetch(api: &str, token: &str, path: &str) -> anyhow::Result<Value> {
    let url = format!("{}{path}", api.trim_end_matches('/'));
    match ureq::get(&url)
        .set("Authorization", &format!("Bearer {token}"))
        .call()
    {
        Ok(response) => response.into_json().context("reading the API's JSON"),
        Err(ureq::Error::Status(code, response)) => {
            let body: Value = response.into_json().unwrap_or(Value::Null);
            let message = body["error"]["message"].as_str().unwrap_or("no detail");
            bail!("{url}: HTTP {code}: {message}")
        }
        Err(error) => bail!("{error} (is switchboard running?)"),
    }
}

/// `switchboard reload`: `POST /api/reload`, then prints each change applied, or fails with
/// the node's reason for changing nothing.
pub fn reload(api: &str, token: &str) -> anyhow::Result<()> {
    let url = format!("{}/api/reload", api.trim_end_matches('/'));
    let body: Value = match ureq::post(&url)
        .set("Authorization", &format!("Bearer {token}"))
        .call()
    {
        Ok(response) => response.into_json().context("reading the API's JSON")?,
        Err(ureq::Error::Status(code, response)) => {
            let body: Value = response.into_json().unwrap_or(Value::Null);
            let message = body["error"]["message"].as_str().unwrap_or("no detail");
            bail!("reload refused (HTTP {code}): {message}")
        }
        Err(error) => bail!("{error} (is switchboard running?)"),
    };
    let changes = body["changes"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    if changes.is_empty() {
        println!("reloaded: no change");
    }
    for change in changes {
        println!(
            "{} {} {}",
            text(&change["section"]),
            text(&change["name"]),
            text(&change["change"])
        );
    }
    Ok(())
}

fn text(value: &Value) -> String {
    match value {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Renders rows under a header with columns padded to their widest cell.
fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    let line = |cells: Vec<String>| {
        cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_string()
    };
    let mut out = line(header.iter().map(|h| h.to_string()).collect());
    for row in rows {
        out.push('\n');
        out.push_str(&line(row.clone()));
    }
    out
}

/// Prints every agent's live state.
pub fn print_agents(api: &str, token: &str) -> anyhow::Result<()> {
    let body = fetch(api, token, "/api/agents")?;
    let rows: Vec<Vec<String>> = body["agents"]
        .as_array()
        .map(|a| a.as_slice())
        .unwrap_or_default()
        .iter()
        .map(|a| {
            vec![
                text(&a["id"]),
                text(&a["name"]),
                text(&a["state"]),
                text(&a["reason"]),
                text(&a["state_seconds"]),
                text(&a["calls_answered"]),
            ]
        })
        .collect();
    println!(
        "{}",
        table(
            &["ID", "NAME", "STATE", "REASON", "FOR_S", "ANSWERED"],
            &rows
        )
    );
    Ok(())
}

/// Prints every queue's live state.
pub fn print_queues(api: &str, token: &str) -> anyhow::Result<()> {
    let body = fetch(api, token, "/api/queues")?;
    let rows: Vec<Vec<String>> = body["queues"]
        .as_array()
        .map(|a| a.as_slice())
        .unwrap_or_default()
        .iter()
        .map(|q| {
            let a = &q["agents"];
            vec![
                text(&q["name"]),
                text(&q["waiting"]),
                text(&q["longest_wait_seconds"]),
                text(&a["ready"]),
                text(&a["reserved"]),
                text(&a["on_call"]),
                text(&a["wrap_up"]),
                text(&a["not_ready"]),
                text(&a["logged_out"]),
            ]
        })
        .collect();
    println!(
        "{}",
        table(
            &[
                "QUEUE",
                "WAITING",
                "LONGEST_S",
                "READY",
                "RESERVED",
                "ON_CALL",
                "WRAP_UP",
                "NOT_READY",
                "LOGGED_OUT"
            ],
            &rows
        )
    );
    Ok(())
}

/// Prints every call in progress.
pub fn print_calls(api: &str, token: &str) -> anyhow::Result<()> {
    let body = fetch(api, token, "/api/calls")?;
    let rows: Vec<Vec<String>> = body["calls"]
        .as_array()
        .map(|a| a.as_slice())
        .unwrap_or_default()
        .iter()
        .map(|c| {
            let seconds = |v: &Value| v.as_f64().map_or("-".into(), |s| format!("{s:.0}"));
            vec![
                text(&c["id"]),
                text(&c["did"]),
                text(&c["caller"]),
                text(&c["queue"]),
                text(&c["state"]),
                text(&c["agent"]),
                seconds(&c["wait_s"]),
                seconds(&c["talk_s"]),
                if c["on_hold"].as_bool() == Some(true) {
                    "held".into()
                } else {
                    "-".into()
                },
            ]
        })
        .collect();
    println!(
        "{}",
        table(
            &["ID", "DID", "CALLER", "QUEUE", "STATE", "AGENT", "WAIT_S", "TALK_S", "HOLD"],
            &rows
        )
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_pads_columns() {
        let out = table(&["A", "LONGER"], &[vec!["wide cell".into(), "x".into()]]);
        assert_eq!(out, "A          LONGER\nwide cell  x");
    }
}
