//! The `switchboard` command: run the softswitch, check a configuration, read live state.

use anyhow::Context;
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use switchboard::config;

/// mimalloc, not glibc's allocator: CDR records, media sessions' commands and events and SIP
/// messages from stream connections are allocated on one thread and dropped on another;
/// glibc serves such hand-overs from locked per-thread arenas, mimalloc from lock-free
/// per-thread free lists. 9–17 % less CPU per call, measured again after UDP messages moved
/// to call control's own thread (docs/scaling.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "switchboard",
    version,
    about = "SIP softswitch with a built-in ACD"
)]
struct Cli {
    /// Log filter: error, warn, info, debug, trace, or a tracing directive list.
    #[arg(long, global = true, default_value = "info")]
    log_level: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run Switchboard. Without --config, runs the embedded demo (see docs/demo.md).
    Run {
        /// Configuration file (TOML).
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Print the SHA-256 (hex) of an API token read from stdin, for `token_sha256` in
    /// `[[http.token]]`: `printf %s "$TOKEN" | switchboard hash-token`.
    HashToken,
    /// argon2id hash of a web password (stdin) for `web_password_hash` of `[[agent]]` or
    /// `[[http.user]]`: `printf %s "$PASSWORD" | switchboard hash-password`.
    HashPassword,
    /// Validate a configuration file and report every error with file, line and field.
    CheckConfig {
        /// Configuration file (TOML).
        file: PathBuf,
    },
    /// Report from the CDR files: offered, answered, abandoned, service level, ASA, AHT …
    Report {
        /// Start, inclusive: YYYY-MM-DD (UTC) or RFC 3339.
        #[arg(long)]
        from: String,
        /// End, exclusive: YYYY-MM-DD (UTC) or RFC 3339.
        #[arg(long)]
        to: String,
        /// 15m, hour, day, week or month.
        #[arg(long, default_value = "day")]
        interval: String,
        /// Only this queue.
        #[arg(long)]
        queue: Option<String>,
        /// Only this agent.
        #[arg(long)]
        agent: Option<String>,
        /// table, csv or html.
        #[arg(long, default_value = "table")]
        format: String,
        /// CDR directory (default: the one in --config, or the demo's).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Configuration whose [cdr] dir to read.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Write to this file instead of standard output.
        #[arg(long)]
        output: Option<PathBuf>,
        /// Read CDRs from PostgreSQL (postgres://…) instead of the files.
        #[arg(long)]
        postgres: Option<String>,
        /// Instead of the report, list the calls whose post-call survey score is this or
        /// less (table or csv), for follow-up.
        #[arg(long, value_name = "SCORE")]
        low_scores: Option<u8>,
    },
    /// Predict service level, ASA, abandons and occupancy for a staffing or routing change by
    /// driving the real ACD with simulated time (see docs/simulate.md).
    Simulate(SimulateArgs),
    /// Print every agent's live state from a running instance.
    Agents(ApiArgs),
    /// Print every queue's live state from a running instance.
    Queues(ApiArgs),
    /// Print every call in progress in a running instance.
    Calls(ApiArgs),
    /// Make a running instance re-read its configuration file and apply the changes live
    /// (the same as SIGHUP); prints what changed, or why nothing was.
    Reload(ApiArgs),
}

#[derive(clap::Args)]
#[command(group(clap::ArgGroup::new("demand").required(true).args(["cdr_dir", "arrivals"])))]
struct SimulateArgs {
    /// Configuration whose queues, strategies and agents are simulated.
    #[arg(long)]
    config: PathBuf,
    /// Take the calls, talk times and patience from the CDR files in this directory.
    #[arg(long, requires_all = ["from", "to"])]
    cdr_dir: Option<PathBuf>,
    /// Take the calls from an arrivals file (queue,start,end,calls,handle,patience[,priority]).
    #[arg(long, conflicts_with = "cdr_dir")]
    arrivals: Option<PathBuf>,
    /// Start, inclusive: YYYY-MM-DD (UTC) or RFC 3339 (with --arrivals: the day the file's
    /// times count from).
    #[arg(long)]
    from: Option<String>,
    /// End, exclusive (with --cdr-dir).
    #[arg(long)]
    to: Option<String>,
    /// With --cdr-dir: draw Poisson arrivals at each interval's rate instead of replaying the
    /// recorded calls.
    #[arg(long, requires = "cdr_dir")]
    poisson: bool,
    /// Staffing file (agent,start,end[,skills|pause]); default: the CDRs' agent states, or
    /// every configured agent the whole time.
    #[arg(long)]
    staffing: Option<PathBuf>,
    /// Ring time before agents answer, with --arrivals (fixed:S, exp:MEAN).
    #[arg(long, requires = "arrivals")]
    ring_time: Option<String>,
    /// Replications (confidence intervals need at least 2).
    #[arg(long, default_value_t = 10)]
    runs: usize,
    /// Seed of the random streams: the same seed gives the same figures.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// 15m, hour or day.
    #[arg(long, default_value = "hour")]
    interval: String,
    /// table, csv or html.
    #[arg(long, default_value = "table")]
    format: String,
    /// Write to this file instead of standard output.
    #[arg(long)]
    output: Option<PathBuf>,
    /// What-if sweep over headcount: agents=QUEUE:FROM..TO, e.g. agents=support:-3..+3.
    #[arg(long)]
    vary: Option<String>,
    /// Another configuration to simulate with the same calls and staffing, side by side.
    #[arg(long)]
    compare: Option<PathBuf>,
}

#[derive(clap::Args)]
struct ApiArgs {
    /// Base URL of the running instance's HTTP API.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    api: String,
    /// Bearer token (the demo's is demo-token).
    #[arg(long, env = "SWITCHBOARD_TOKEN", default_value = "demo-token")]
    token: String,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_new(&cli.log_level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colour only on a terminal, and not there either when NO_COLOR is set (no-color.org):
    // journald and log files get plain text.
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|value| !value.is_empty());
    let ansi = !no_color && std::io::IsTerminal::is_terminal(&std::io::stderr());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_ansi(ansi)
        .with_writer(std::io::stderr)
        .init();
    match cli.command {
        Command::CheckConfig { file } => match load_for_run(&file) {
            Ok(_) => {
                println!("{}: ok", file.display());
                ExitCode::SUCCESS
            }
            Err(code) => code,
        },
        Command::Report {
            from,
            to,
            interval,
            queue,
            agent,
            format,
            dir,
            config: config_path,
            output,
            postgres,
            low_scores,
        } => {
            let dir = match (dir, config_path) {
                (Some(dir), _) => dir,
                (None, Some(path)) => match load_config(&path) {
                    Ok(c) => c.cdr.dir,
                    Err(code) => return code,
                },
                (None, None) => config::demo().cdr.dir,
            };
            report(switchboard::report_cli::run(
                switchboard::report_cli::ReportRequest {
                    dir,
                    from,
                    to,
                    interval,
                    queue,
                    agent,
                    format,
                    output,
                    postgres_url: postgres,
                    low_scores,
                },
            ))
        }
        Command::Simulate(args) => simulate(args),
        Command::HashToken => hash_token(),
        Command::HashPassword => hash_password(),
        Command::Agents(args) => report(switchboard::live::print_agents(&args.api, &args.token)),
        Command::Queues(args) => report(switchboard::live::print_queues(&args.api, &args.token)),
        Command::Calls(args) => report(switchboard::live::print_calls(&args.api, &args.token)),
        Command::Reload(args) => report(switchboard::live::reload(&args.api, &args.token)),
        Command::Run { config: path } => {
            let config = match &path {
                Some(path) => match load_for_run(path) {
                    Ok(c) => c,
                    Err(code) => return code,
                },
                None => config::demo(),
            };
            match run(config, path) {
                Ok(()) => ExitCode::SUCCESS,
                Err(error) => {
                    eprintln!("switchboard: {error:#}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

/// Reads one token from stdin (a trailing newline is not part of it) and prints its digest.
fn hash_token() -> ExitCode {
    let mut input = String::new();
    if let Err(error) = std::io::Read::read_to_string(&mut std::io::stdin(), &mut input) {
        eprintln!("switchboard: reading the token from stdin: {error}");
        return ExitCode::FAILURE;
    }
    let token = input.trim_end_matches(['\n', '\r']);
    if token.is_empty() || token.contains(char::is_whitespace) {
        eprintln!("switchboard: expected one token (no spaces) on stdin");
        return ExitCode::from(2);
    }
    println!(
        "{}",
        switchboard::token_digest::TokenDigest::of(token).to_hex()
    );
    ExitCode::SUCCESS
}

fn hash_password() -> ExitCode {
    let mut input = String::new();
    if let Err(error) = std::io::Read::read_to_string(&mut std::io::stdin(), &mut input) {
        eprintln!("switchboard: reading the password from stdin: {error}");
        return ExitCode::FAILURE;
    }
    let password = input.trim_end_matches(['\n', '\r']);
    if password.is_empty() {
        eprintln!("switchboard: expected the password on stdin");
        return ExitCode::from(2);
    }
    match switchboard::web::password::hash(password) {
        Ok(hash) => {
            println!("{hash}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("switchboard: hashing failed: {error}");
            ExitCode::FAILURE
        }
    }
}

/// Loads a configuration file, printing every error (file:line:column: field: message) and
/// returning exit code 2 when it is invalid.
fn load_config(path: &std::path::Path) -> Result<config::Config, ExitCode> {
    config::load_file(path).map_err(|errors| {
        eprintln!("{errors}");
        ExitCode::from(2)
    })
}

/// Loads a configuration file and checks everything `run` would refuse at start because of
/// it (the same checks for `check-config` and `run`); exit code 2 when anything is wrong, so
/// systemd does not restart a node whose file cannot work (RestartPreventExitStatus=2).
fn load_for_run(path: &std::path::Path) -> Result<config::Config, ExitCode> {
    switchboard::start_check::load_file(path).map_err(|errors| {
        eprintln!("{errors}");
        ExitCode::from(2)
    })
}

fn simulate(args: SimulateArgs) -> ExitCode {
    use switchboard::simulate::command::{self, DemandSource, SimulateRequest};
    let demand = match (args.cdr_dir, args.arrivals) {
        (Some(dir), _) => DemandSource::Cdr {
            dir,
            from: args.from.unwrap_or_default(),
            to: args.to.unwrap_or_default(),
            poisson: args.poisson,
        },
        (None, Some(file)) => DemandSource::Arrivals {
            file,
            from: args.from,
        },
        (None, None) => {
            eprintln!("switchboard simulate: give --cdr-dir or --arrivals");
            return ExitCode::from(2);
        }
    };
    let request = SimulateRequest {
        config: args.config,
        demand,
        staffing: args.staffing,
        runs: args.runs,
        seed: args.seed,
        interval: args.interval,
        format: args.format,
        output: args.output,
        ring_time: args.ring_time,
        vary: args.vary,
        compare: args.compare,
    };
    match command::run(&request) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("switchboard simulate: {error}");
            if error.is_bad_input() {
                ExitCode::from(2)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

fn report(outcome: anyhow::Result<()>) -> ExitCode {
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("switchboard: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(config: config::Config, path: Option<PathBuf>) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(switchboard::runtime::run_from_file(
        config,
        path,
        shutdown_signal(),
    ))
}

/// Resolves on the first SIGTERM or SIGINT.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
    tracing::info!("shutdown requested");
}
