//! The `switchboard simulate` command: read the inputs, build the scenarios, run the
//! replications with progress on standard error, and write the result only once everything
//! succeeded (bad input writes nothing).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use cdr::report::Interval;
use time::OffsetDateTime;

use super::distribution::Distribution;
use super::engine::EngineError;
use super::input_error::InputError;
use super::output::{self, Format, Header};
use super::replication::{replicate, Scenario};
use super::scenario::{self, StaffingSource};
use super::summary::{summarise, Period, Summary};
use crate::config::{self, Config, ConfigErrors};

/// Where the calls come from.
#[derive(Debug, Clone)]
pub enum DemandSource {
    /// The CDR files of `[from, to)`.
    Cdr {
        /// CDR directory.
        dir: PathBuf,
        /// Start (inclusive), `YYYY-MM-DD` or RFC 3339.
        from: String,
        /// End (exclusive).
        to: String,
        /// Resample arrivals as a Poisson process per interval instead of replaying them.
        poisson: bool,
    },
    /// An arrivals file.
    Arrivals {
        /// The file.
        file: PathBuf,
        /// Day the file's times count from (default 2000-01-01).
        from: Option<String>,
    },
}

/// Everything `switchboard simulate` was asked.
#[derive(Debug, Clone)]
pub struct SimulateRequest {
    /// Configuration whose queues, strategies and agents are simulated.
    pub config: PathBuf,
    /// Calls.
    pub demand: DemandSource,
    /// Staffing file (default: the CDRs' agent states, or every agent all the time).
    pub staffing: Option<PathBuf>,
    /// Replications.
    pub runs: usize,
    /// Seed of the random streams.
    pub seed: u64,
    /// Row length: `15m`, `hour` or `day`.
    pub interval: String,
    /// `table`, `csv` or `html`.
    pub format: String,
    /// Write here instead of standard output.
    pub output: Option<PathBuf>,
    /// Ring time when the demand is an arrivals file (`fixed:5`, `exp:8`…).
    pub ring_time: Option<String>,
    /// `agents=QUEUE:FROM..TO`.
    pub vary: Option<String>,
    /// Another configuration to compare with.
    pub compare: Option<PathBuf>,
}

/// Why the command failed.
#[derive(Debug, thiserror::Error)]
pub enum SimulateError {
    /// Bad input (exit status 2).
    #[error("{0}")]
    Input(#[from] InputError),
    /// A configuration file is invalid (exit status 2).
    #[error("{0}")]
    Config(ConfigErrors),
    /// The simulation itself failed (a bug).
    #[error("{0}")]
    Engine(#[from] EngineError),
    /// Writing the output failed.
    #[error("writing {path}: {source}")]
    Write {
        /// Where.
        path: String,
        /// Why.
        source: std::io::Error,
    },
}

impl SimulateError {
    /// Whether the user's input was at fault (exit status 2 rather than 1).
    pub fn is_bad_input(&self) -> bool {
        matches!(self, SimulateError::Input(_) | SimulateError::Config(_))
    }
}

fn load(path: &Path) -> Result<Config, SimulateError> {
    config::load_file(path).map_err(SimulateError::Config)
}

fn read_text(path: &Path) -> Result<String, InputError> {
    std::fs::read_to_string(path).map_err(|e| InputError::file(path, e.to_string()))
}

fn time(text: &str, option: &str) -> Result<OffsetDateTime, InputError> {
    crate::report_cli::parse_time(text).map_err(|e| InputError::option(format!("{option}: {e:#}")))
}

/// Runs the command.
pub fn run(request: &SimulateRequest) -> Result<(), SimulateError> {
    let config = load(&request.config)?;
    if request.runs == 0 || request.runs > 10_000 {
        return Err(InputError::option("--runs must be between 1 and 10000").into());
    }
    let interval: Interval = request
        .interval
        .parse()
        .map_err(|e| InputError::option(format!("--interval: {e}")))?;
    if !matches!(
        interval,
        Interval::QuarterHour | Interval::Hour | Interval::Day
    ) {
        return Err(InputError::option("--interval: simulate reports by 15m, hour or day").into());
    }
    let format = match request.format.as_str() {
        "table" => Format::Table,
        "csv" => Format::Csv,
        "html" => Format::Html,
        other => {
            return Err(InputError::option(format!(
                "--format {other:?}: expected table, csv or html"
            ))
            .into())
        }
    };
    let vary = request
        .vary
        .as_deref()
        .map(scenario::parse_vary)
        .transpose()?;
    let (demand, staffing_from_cdr, origin, from, to, source) = match &request.demand {
        DemandSource::Cdr {
            dir,
            from,
            to,
            poisson,
        } => {
            let from = time(from, "--from")?;
            let to = time(to, "--to")?;
            if to <= from {
                return Err(InputError::option("--to must be after --from").into());
            }
            let history = super::history::read(dir, from, to)?;
            let length = poisson.then(|| interval_seconds(interval));
            let demand = scenario::demand_from_history(&config, dir, &history, from, length)?;
            let source = format!(
                "{} calls from the CDRs in {} ({}), talk times empirical, patience Kaplan-Meier, ring {}",
                history.calls.len(),
                dir.display(),
                if *poisson { "Poisson per interval" } else { "replayed" },
                demand.ring
            );
            (demand, Some(history.agent_states), from, from, to, source)
        }
        DemandSource::Arrivals { file, from } => {
            let ring = match &request.ring_time {
                Some(text) => Distribution::parse(text)
                    .map_err(|e| InputError::option(format!("--ring-time: {e}")))?,
                None => Distribution::Fixed(0.0),
            };
            let text = read_text(file)?;
            let demand = scenario::demand_from_spec(&config, file, &text, ring)?;
            let origin = time(from.as_deref().unwrap_or("2000-01-01"), "--from")?;
            let (start_s, end_s) = match &demand.arrivals {
                super::arrivals::ArrivalModel::Poisson(windows) => (
                    windows
                        .iter()
                        .map(|w| w.start_s)
                        .fold(f64::INFINITY, f64::min),
                    windows.iter().map(|w| w.end_s).fold(0.0, f64::max),
                ),
                super::arrivals::ArrivalModel::Replay(_) => (0.0, 0.0),
            };
            let from = origin + Duration::from_secs_f64(start_s);
            let to = origin + Duration::from_secs_f64(end_s);
            let source = format!("arrivals from {}, ring {}", file.display(), demand.ring);
            (demand, None, origin, from, to, source)
        }
    };
    let staffing = match (&request.staffing, staffing_from_cdr) {
        (Some(path), _) => StaffingSource::File(path.clone(), read_text(path)?),
        (None, Some(records)) => StaffingSource::AgentStates(records),
        (None, None) => StaffingSource::Everyone,
    };
    let mut scenarios = Vec::new();
    let (base, warnings) = scenario::build(
        "base",
        &config,
        &request.config,
        &demand,
        &staffing,
        (from, to),
    )?;
    for warning in warnings {
        eprintln!("simulate: {warning}");
    }
    if let Some(other) = &request.compare {
        let other_config = load(other)?;
        let name = other.file_name().map_or_else(
            || other.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        let (scenario, _) = scenario::build(
            &name,
            &other_config,
            other,
            &demand,
            &staffing,
            (origin, to),
        )?;
        scenarios.push(scenario);
    }
    match &vary {
        Some((queue, deltas)) => {
            for &delta in deltas {
                let mut variant = scenario::vary_agents(&base, queue, delta)?;
                if delta == 0 {
                    variant.name = "base".to_owned();
                }
                scenarios.push(variant);
            }
        }
        None => scenarios.insert(0, base),
    }
    let period = Period {
        origin_unix: origin.unix_timestamp(),
        from_unix: from.unix_timestamp(),
        to_unix: to.unix_timestamp(),
        interval,
    };
    let summaries = simulate_all(&scenarios, request.runs, request.seed, period)?;
    let header = Header {
        from_unix: period.from_unix,
        to_unix: period.to_unix,
        interval,
        seed: request.seed,
        source,
    };
    let mut text = Vec::new();
    output::write(format, &header, &summaries, &mut text).map_err(|source| {
        SimulateError::Write {
            path: "memory".into(),
            source,
        }
    })?;
    match &request.output {
        Some(path) => std::fs::write(path, &text).map_err(|source| SimulateError::Write {
            path: path.display().to_string(),
            source,
        }),
        None => std::io::stdout()
            .lock()
            .write_all(&text)
            .map_err(|source| SimulateError::Write {
                path: "standard output".into(),
                source,
            }),
    }
}

fn interval_seconds(interval: Interval) -> f64 {
    match interval {
        Interval::QuarterHour => 900.0,
        Interval::Hour => 3600.0,
        _ => 86_400.0,
    }
}

/// Runs every scenario with the same seed (common random numbers: differences between
/// scenarios are not drowned in sampling noise), reporting progress at most once a second.
fn simulate_all(
    scenarios: &[Scenario],
    runs: usize,
    seed: u64,
    period: Period,
) -> Result<Vec<Summary>, SimulateError> {
    let started = Instant::now();
    let mut last_shown = Instant::now();
    let total = scenarios.len() * runs;
    let mut summaries = Vec::new();
    for (index, scenario) in scenarios.iter().enumerate() {
        let mut progress = |done: usize, _runs: usize| {
            if last_shown.elapsed() >= Duration::from_secs(1) {
                last_shown = Instant::now();
                eprintln!(
                    "simulate: {} run {done}/{runs} ({} of {total} done)",
                    scenario.name,
                    index * runs + done
                );
            }
        };
        let results = replicate(scenario, runs, seed, &mut progress)?;
        summaries.push(summarise(scenario, period, &results));
    }
    eprintln!(
        "simulate: {total} runs of {} scenario(s) in {:.2} s",
        scenarios.len(),
        started.elapsed().as_secs_f64()
    );
    Ok(summaries)
}
