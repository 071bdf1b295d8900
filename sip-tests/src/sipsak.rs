//! sipsak runs: one command to completion, its output and exit code kept for assertions.

use std::process::{Command, Stdio};
use std::time::Duration;

use crate::error::{HarnessError, HarnessResult};
use crate::process::wait_with_timeout;

/// How long one sipsak run may take (it retransmits for up to ~5 s on its own).
const RUN_TIMEOUT: Duration = Duration::from_secs(60);

/// What one sipsak run printed and how it ended.
#[derive(Debug)]
pub struct SipsakRun {
    /// The arguments, for failure messages.
    pub args: Vec<String>,
    /// stdout and stderr, in that order.
    pub output: String,
    /// Exit code (sipsak: 0 = 200 received, 1 = other final, 2 = local error, 3 = timeout).
    pub code: Option<i32>,
}

impl SipsakRun {
    /// Whether the output mentions `needle`.
    pub fn shows(&self, needle: &str) -> bool {
        self.output.contains(needle)
    }
}

/// Runs `sipsak -vv` (the received messages are printed) with `args`, from `dir`.
pub fn sipsak(args: &[&str], dir: &std::path::Path) -> HarnessResult<SipsakRun> {
    let out_path = dir.join(format!("sipsak-{}.out", crate::uac::unique_token()));
    let out = std::fs::File::create(&out_path)
        .map_err(|e| HarnessError::io(format!("creating {}", out_path.display()), e))?;
    let err = out
        .try_clone()
        .map_err(|e| HarnessError::io("duplicating a file handle", e))?;
    let mut child = Command::new("sipsak")
        .arg("-vv")
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .map_err(|e| {
            HarnessError::io(
                "starting sipsak (apt-get install -y sipsak; sip-tests/run-all does)",
                e,
            )
        })?;
    let status = match wait_with_timeout(&mut child, RUN_TIMEOUT, "sipsak") {
        Ok(status) => status,
        Err(e) => {
            let _ = child.kill();
            let _ = child.wait();
            return Err(e);
        }
    };
    let output = std::fs::read_to_string(&out_path).unwrap_or_default();
    Ok(SipsakRun {
        args: args.iter().map(|a| (*a).to_owned()).collect(),
        output,
        code: status.code(),
    })
}
