//! Calls arriving: an arrivals file (a Poisson rate per queue and time window), or the calls
//! the CDRs recorded, replayed as they came or resampled as a Poisson process per interval.

use std::path::Path;

use rand::Rng;

use super::distribution::Distribution;
use super::input_error::InputError;

/// One simulated call arriving.
#[derive(Debug, Clone, PartialEq)]
pub struct Arrival {
    /// Microseconds from the start of the simulated period.
    pub at_us: u64,
    /// Index of the queue in the configuration.
    pub queue: usize,
    /// ACD priority (higher is served first).
    pub priority: i32,
    /// Index of the [`CallProfile`] its handle time and patience are drawn from.
    pub profile: usize,
}

/// How long calls of one kind talk and how long their callers wait before hanging up.
#[derive(Debug, Clone, PartialEq)]
pub struct CallProfile {
    /// Talk time (seconds), ringing and wrap-up excluded.
    pub handle: Distribution,
    /// Time a caller is willing to wait in queue (seconds).
    pub patience: Distribution,
}

/// A Poisson stream: `calls` expected between `start_s` and `end_s` into `queue`.
#[derive(Debug, Clone, PartialEq)]
pub struct RateWindow {
    /// Queue index.
    pub queue: usize,
    /// Window start, seconds from the start of the period.
    pub start_s: f64,
    /// Window end (exclusive).
    pub end_s: f64,
    /// Expected number of calls in the window.
    pub calls: f64,
    /// Priority of these calls.
    pub priority: i32,
    /// Profile index.
    pub profile: usize,
}

/// An arrivals file: rate windows and the profiles they use (one per line).
#[derive(Debug, Clone, PartialEq)]
pub struct ArrivalSpec {
    /// The Poisson windows.
    pub windows: Vec<RateWindow>,
    /// Their profiles (`windows[i].profile` indexes here).
    pub profiles: Vec<CallProfile>,
}

/// Where the calls of one replication come from.
#[derive(Debug, Clone, PartialEq)]
pub enum ArrivalModel {
    /// The same calls every run (trace-driven: the CDRs' real arrival instants).
    Replay(Vec<Arrival>),
    /// A fresh Poisson draw every run.
    Poisson(Vec<RateWindow>),
}

impl ArrivalModel {
    /// The calls of one replication, in time order.
    pub fn draw(&self, rng: &mut impl Rng) -> Vec<Arrival> {
        match self {
            ArrivalModel::Replay(calls) => calls.clone(),
            ArrivalModel::Poisson(windows) => {
                let mut calls = Vec::new();
                for window in windows {
                    let span = window.end_s - window.start_s;
                    if window.calls <= 0.0 || span <= 0.0 {
                        continue;
                    }
                    let mean_gap = span / window.calls;
                    let mut at = window.start_s;
                    loop {
                        let u: f64 = rng.gen();
                        at += -mean_gap * (1.0 - u).ln();
                        if at >= window.end_s {
                            break;
                        }
                        calls.push(Arrival {
                            at_us: (at * 1e6) as u64,
                            queue: window.queue,
                            priority: window.priority,
                            profile: window.profile,
                        });
                    }
                }
                calls.sort_by_key(|call| call.at_us);
                calls
            }
        }
    }

    /// Expected calls per queue in `[from_s, to_s)` (for the Erlang formulas).
    pub fn expected_calls(&self, queue: usize, from_s: f64, to_s: f64) -> f64 {
        match self {
            ArrivalModel::Replay(calls) => calls
                .iter()
                .filter(|c| {
                    let at = c.at_us as f64 / 1e6;
                    c.queue == queue && at >= from_s && at < to_s
                })
                .count() as f64,
            ArrivalModel::Poisson(windows) => windows
                .iter()
                .filter(|w| w.queue == queue && w.end_s > w.start_s)
                .map(|w| {
                    let overlap = (w.end_s.min(to_s) - w.start_s.max(from_s)).max(0.0);
                    w.calls * overlap / (w.end_s - w.start_s)
                })
                .sum(),
        }
    }
}

/// Parses `HH:MM` or `HH:MM:SS` (hours may exceed 23, e.g. `24:00` for the end of a day) into
/// seconds.
pub fn parse_clock(text: &str) -> Option<f64> {
    let mut parts = text.trim().split(':');
    let hours: u32 = parts.next()?.parse().ok()?;
    let minutes: u32 = parts.next()?.parse().ok()?;
    let seconds: u32 = match parts.next() {
        Some(s) => s.parse().ok()?,
        None => 0,
    };
    if parts.next().is_some() || minutes > 59 || seconds > 59 {
        return None;
    }
    Some(f64::from(hours * 3600 + minutes * 60 + seconds))
}

/// Reads an arrivals file: CSV lines `queue,start,end,calls,handle,patience[,priority]`
/// (`#` comments and blank lines ignored, an optional header line starting with `queue`).
/// `queue_index` maps a queue name to its index, `None` for an unknown queue.
pub fn read_spec(
    path: &Path,
    text: &str,
    queue_index: &dyn Fn(&str) -> Option<usize>,
) -> Result<ArrivalSpec, InputError> {
    let mut spec = ArrivalSpec {
        windows: Vec::new(),
        profiles: Vec::new(),
    };
    for (number, raw) in text.lines().enumerate() {
        let line = number + 1;
        let content = raw.trim();
        if content.is_empty() || content.starts_with('#') || content.starts_with("queue,") {
            continue;
        }
        let error = |message: String| InputError::at(path, line, message);
        let fields: Vec<&str> = content.split(',').map(str::trim).collect();
        if !(6..=7).contains(&fields.len()) {
            return Err(error(format!(
                "expected queue,start,end,calls,handle,patience[,priority], found {} fields",
                fields.len()
            )));
        }
        let queue = queue_index(fields[0])
            .ok_or_else(|| error(format!("unknown queue {:?}", fields[0])))?;
        let start_s = parse_clock(fields[1])
            .ok_or_else(|| error(format!("start {:?} is not HH:MM[:SS]", fields[1])))?;
        let end_s = parse_clock(fields[2])
            .ok_or_else(|| error(format!("end {:?} is not HH:MM[:SS]", fields[2])))?;
        if end_s <= start_s {
            return Err(error(format!(
                "end {} is not after start {}",
                fields[2], fields[1]
            )));
        }
        let calls: f64 = fields[3]
            .parse()
            .ok()
            .filter(|c: &f64| c.is_finite() && *c >= 0.0)
            .ok_or_else(|| error(format!("calls {:?} is not a number >= 0", fields[3])))?;
        let handle = Distribution::parse(fields[4]).map_err(|e| error(format!("handle: {e}")))?;
        if handle == Distribution::Never {
            return Err(error("handle: a call cannot last for ever".into()));
        }
        let patience =
            Distribution::parse(fields[5]).map_err(|e| error(format!("patience: {e}")))?;
        let priority = match fields.get(6) {
            Some(p) => p
                .parse()
                .map_err(|_| error(format!("priority {p:?} is not an integer")))?,
            None => 0,
        };
        spec.profiles.push(CallProfile { handle, patience });
        spec.windows.push(RateWindow {
            queue,
            start_s,
            end_s,
            calls,
            priority,
            profile: spec.profiles.len() - 1,
        });
    }
    if spec.windows.is_empty() {
        return Err(InputError::file(path, "no arrival lines"));
    }
    Ok(spec)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    fn queues(name: &str) -> Option<usize> {
        ["sales", "support"].iter().position(|q| *q == name)
    }

    fn read(text: &str) -> Result<ArrivalSpec, InputError> {
        read_spec(Path::new("arrivals.csv"), text, &queues)
    }

    #[test]
    fn reads_windows_and_profiles() {
        let spec = read(
            "queue,start,end,calls,handle,patience,priority\n\
             # morning\n\
             support,08:00,12:00,400,exp:240,exp:90\n\
             sales,08:00,08:30:30,10,fixed:60,none,3\n",
        )
        .expect("valid");
        assert_eq!(spec.windows.len(), 2);
        assert_eq!(spec.windows[0].queue, 1);
        assert_eq!(spec.windows[0].start_s, 8.0 * 3600.0);
        assert_eq!(spec.windows[1].end_s, 8.0 * 3600.0 + 1830.0);
        assert_eq!(spec.windows[1].priority, 3);
        assert_eq!(spec.profiles[1].patience, Distribution::Never);
        assert_eq!(spec.profiles[0].handle, Distribution::Exponential(240.0));
    }

    #[test]
    fn errors_name_the_file_and_line() {
        let cases = [
            ("support,08:00,12:00,400,exp:240\n", "found 5 fields"),
            (
                "\nbilling,08:00,12:00,1,60,none\n",
                "unknown queue \"billing\"",
            ),
            ("support,8h,12:00,1,60,none\n", "start \"8h\""),
            ("support,12:00,08:00,1,60,none\n", "not after start"),
            ("support,08:00,12:00,-1,60,none\n", "calls \"-1\""),
            ("support,08:00,12:00,1,gamma:2,none\n", "handle:"),
            ("support,08:00,12:00,1,none,none\n", "for ever"),
            ("support,08:00,12:00,1,60,soon\n", "patience:"),
            ("support,08:00,12:00,1,60,none,high\n", "priority"),
            ("# nothing\n", "no arrival lines"),
        ];
        for (text, expected) in cases {
            let error = read(text).expect_err(text).to_string();
            assert!(error.starts_with("arrivals.csv:"), "{error}");
            assert!(error.contains(expected), "{error} lacks {expected}");
        }
        let error = read("\nbilling,08:00,12:00,1,60,none\n").expect_err("line 2");
        assert!(error.to_string().starts_with("arrivals.csv:2:"), "{error}");
    }

    #[test]
    fn poisson_draws_average_the_expected_count_and_replay_repeats() {
        let model = ArrivalModel::Poisson(vec![RateWindow {
            queue: 0,
            start_s: 0.0,
            end_s: 3600.0,
            calls: 100.0,
            priority: 0,
            profile: 0,
        }]);
        let mut rng = StdRng::seed_from_u64(11);
        let runs = 400;
        let total: usize = (0..runs).map(|_| model.draw(&mut rng).len()).sum();
        let mean = total as f64 / runs as f64;
        // Poisson(100): the mean of 400 draws has a standard error of 0.5.
        assert!((mean - 100.0).abs() < 2.0, "{mean}");
        assert_eq!(model.expected_calls(0, 0.0, 1800.0), 50.0);
        let calls = model.draw(&mut rng);
        assert!(calls.windows(2).all(|w| w[0].at_us <= w[1].at_us));
        let replay = ArrivalModel::Replay(calls.clone());
        assert_eq!(replay.draw(&mut rng), calls);
    }

    #[test]
    fn clock_times() {
        assert_eq!(parse_clock("24:00"), Some(86_400.0));
        assert_eq!(parse_clock("00:00:59"), Some(59.0));
        assert_eq!(parse_clock("10:60"), None);
        assert_eq!(parse_clock("10"), None);
        assert_eq!(parse_clock("1:2:3:4"), None);
    }
}
