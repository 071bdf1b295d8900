//! Reports from real CDRs: calls go through the binary, then `switchboard report` reads the CDR
//! files as a table and as an HTML page, which must load in headless Chromium without a single
//! console message.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use sip_tests::cdr::wait_for_call;
use sip_tests::paths::switchboard_binary;
use sip_tests::trace::call_ids;
use sip_tests::{start_agent, HarnessError, HarnessResult, Switchboard, SwitchboardConfig};
use time::OffsetDateTime;

const WAIT: Duration = Duration::from_secs(60);

fn report(dir: &Path, format: &str, output: &Path) -> HarnessResult<String> {
    let today = OffsetDateTime::now_utc().date();
    let run = Command::new(switchboard_binary()?)
        .args(["report", "--dir"])
        .arg(dir)
        .args(["--from", &today.to_string()])
        .args(["--to", &today.next_day().unwrap_or(today).to_string()])
        .args(["--interval", "hour", "--format", format, "--output"])
        .arg(output)
        .output()
        .map_err(|e| HarnessError::io("running switchboard report", e))?;
    if !run.status.success() {
        return Err(HarnessError::Unexpected(format!(
            "switchboard report failed: {}",
            String::from_utf8_lossy(&run.stderr)
        )));
    }
    std::fs::read_to_string(output).map_err(|e| HarnessError::io("reading the report", e))
}

#[test]
fn report_of_real_calls_as_table_and_html_without_console_errors() -> HarnessResult<()> {
    let switchboard = Switchboard::start(SwitchboardConfig::default())?;
    let agent = start_agent(&switchboard, "1001", "agent_answer.xml", WAIT)?;
    let trunk = switchboard
        .sipp_client("trunk_call.xml")?
        .service("100")
        .run()?;
    trunk.ensure_success()?;
    agent.wait()?.ensure_success()?;
    let trunk_id = call_ids(&trunk.messages())
        .into_iter()
        .next()
        .ok_or_else(|| HarnessError::Unexpected("trunk sent no Call-ID".into()))?;
    wait_for_call(switchboard.cdr_dir(), &trunk_id, WAIT)?;

    let out = switchboard.dir().join("report");
    std::fs::create_dir_all(&out).map_err(|e| HarnessError::io("creating the report dir", e))?;
    let table = report(switchboard.cdr_dir(), "table", &out.join("report.txt"))?;
    assert!(table.contains("support"), "queue row missing:\n{table}");

    let html_path = out.join("report.html");
    let html = report(switchboard.cdr_dir(), "html", &html_path)?;
    assert!(html.contains("<svg"), "no chart in the HTML report");
    let chromium = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--enable-logging=stderr",
            "--v=0",
            "--dump-dom",
        ])
        .arg(format!(
            "--user-data-dir={}",
            out.join("chromium").display()
        ))
        .arg(format!("file://{}", html_path.display()))
        .output()
        .map_err(|e| HarnessError::Unexpected(format!("chromium could not run: {e}")))?;
    let dom = String::from_utf8_lossy(&chromium.stdout);
    let log = String::from_utf8_lossy(&chromium.stderr);
    assert!(chromium.status.success(), "chromium failed:\n{log}");
    assert!(
        dom.contains("<svg"),
        "the page did not render its charts:\n{log}"
    );
    let console: Vec<&str> = log.lines().filter(|l| l.contains(":CONSOLE")).collect();
    assert!(console.is_empty(), "console messages: {console:#?}");
    Ok(())
}
