//! `rtp-load`: Switchboard's media plane measured end to end on loopback, the way a carrier
//! and a room of agents load it. For each N: a fresh switchboard, N agents registered from one
//! "phone farm" socket, N trunk calls answered by those phones (Switchboard anchors both
//! legs' RTP), S seconds of 50 packets/s each way per call, then loss, one-way delay, added
//! jitter, CPU and memory per call. See README.md.

mod bencode;
mod call_signalling;
mod clock;
mod error;
mod histogram;
mod media_call;
mod media_phase;
mod probe_packet;
mod proc_stats;
mod receiver;
mod registration;
mod report;
mod rtpengine_peer;
mod sdp;
mod sender;
mod sip_text;
mod step_config;
mod switchboard_process;

use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clap::Parser;

use call_signalling::{CallEndpoints, Signalling};
use error::{LoadError, LoadResult};
use media_call::MediaCall;
use media_phase::QueueWatch;
use proc_stats::Process;
use report::StepResult;
use step_config::StepConfig;
use switchboard_process::SwitchboardProcess;

/// Most calls one step may place: the generator holds two sockets per call and Switchboard
/// four, and everything must stay well inside one machine's limits.
const MAX_CALLS: usize = 5_000;
/// Longest media window accepted.
const MAX_SECONDS: u32 = 60;
/// Time allowed after the last INVITE (or BYE) for the answers.
const SIGNALLING_GRACE: Duration = Duration::from_secs(20);
/// A sender that had to skip more than this share of its schedule (percent) could not offer
/// the load: a larger step would measure the generator, not Switchboard.
const STOP_SKIPPED_PERCENT: f64 = 50.0;
/// Time Switchboard gets to exit after SIGTERM.
const STOP_TIMEOUT: Duration = Duration::from_secs(40);

/// End-to-end RTP load through a real switchboard process on 127.0.0.1.
#[derive(Debug, Parser)]
#[command(name = "rtp-load", version)]
struct Args {
    /// Concurrent calls of each step, in order; stops early once a step fails badly.
    #[arg(long, value_delimiter = ',', default_value = "250,500,1000,2000,4000")]
    calls: Vec<usize>,
    /// Seconds of media per step.
    #[arg(long, default_value_t = 10)]
    seconds: u32,
    /// The switchboard binary (default: $CARGO_TARGET_DIR/release/switchboard, else
    /// target/release/switchboard of the workspace).
    #[arg(long)]
    binary: Option<PathBuf>,
    /// Call setup (and hang-up) rate, calls per second, so signalling is not what is measured.
    #[arg(long, default_value_t = 200.0)]
    cps: f64,
    /// Switchboard's RTP port range MIN-MAX; kept below the kernel's ephemeral range, where
    /// the generator's own sockets live.
    #[arg(long, default_value = "10000-29999")]
    rtp_ports: String,
    /// Loss in either direction (%) past which no larger step is tried.
    #[arg(long, default_value_t = 5.0)]
    stop_loss: f64,
    /// Keep each step's work directory (config, switchboard log) instead of deleting it
    /// (always kept when a call failed to come up).
    #[arg(long)]
    keep: bool,
    /// After each step, send the same schedule socket to socket without Switchboard, to show
    /// the generator's and kernel's own floor of delay and jitter (adds S seconds per step).
    #[arg(long)]
    baseline: bool,
    /// After each step, relay the same calls' packets through this peer in the same run and
    /// print its row next to Switchboard's (rtpengine: Debian's rtpengine-daemon, userspace
    /// forwarding, set up over its ng control protocol).
    #[arg(long, value_enum)]
    peer: Option<Peer>,
}

/// A relay measured with the same generator in the same run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Peer {
    /// rtpengine (`--table=-1`: no kernel module), ng protocol offer/answer per call.
    Rtpengine,
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("rtp-load: {error}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> LoadResult<()> {
    let rtp_ports = parse_port_range(&args.rtp_ports)?;
    validate(args, rtp_ports)?;
    let binary = args.binary.clone().unwrap_or_else(default_binary);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "rtp-load: {} s of media per step, {} calls/s setup, switchboard {}, {cores} cores, load average {}",
        args.seconds,
        args.cps,
        binary.display(),
        proc_stats::load_average()?
    );
    let mut results: Vec<StepResult> = Vec::new();
    for &calls in &args.calls {
        eprintln!("--- step N={calls}");
        let result = match run_step(args, &binary, calls, rtp_ports, cores) {
            Ok(result) => result,
            Err(error) => {
                println!("N={calls}: step could not run: {error}");
                break;
            }
        };
        eprint!("{}", result.details());
        let worst_loss = result.worst_loss_percent();
        let up_share = result.up as f64 / calls.max(1) as f64;
        let skipped = result.media.skipped_percent();
        results.push(result);
        if worst_loss > args.stop_loss || up_share < 0.95 || skipped > STOP_SKIPPED_PERCENT {
            println!(
                "N={calls} failed badly (loss {worst_loss:.2} %, {:.0} % of calls up, sender skipped {skipped:.0} % of its schedule): no larger step tried",
                100.0 * up_share
            );
            break;
        }
    }
    println!();
    println!("{}", report::header());
    for result in &results {
        println!("{}", result.row());
    }
    if args.peer.is_some() {
        println!();
        println!("same generator, same sockets, same schedule, same run: Switchboard, then rtpengine (userspace)");
        println!("{}", report::peer_header());
        for result in &results {
            for row in result.peer_rows() {
                println!("{row}");
            }
        }
    }
    if args.baseline {
        println!();
        println!("generator floor: same sockets and schedule, socket to socket, no switchboard");
        println!("{}", report::baseline_header());
        for row in results.iter().filter_map(StepResult::baseline_row) {
            println!("{row}");
        }
    }
    println!();
    for result in &results {
        print!("{}", result.details());
    }
    println!();
    println!("{}", report::LEGEND);
    println!("{}", report::verdict(&results));
    Ok(())
}

fn validate(args: &Args, rtp_ports: (u16, u16)) -> LoadResult<()> {
    if args.calls.is_empty() || args.calls.iter().any(|&n| n == 0 || n > MAX_CALLS) {
        return Err(LoadError::Argument(format!(
            "--calls takes 1..={MAX_CALLS} per step"
        )));
    }
    if args.seconds == 0 || args.seconds > MAX_SECONDS {
        return Err(LoadError::Argument(format!(
            "--seconds takes 1..={MAX_SECONDS}"
        )));
    }
    if !(1.0..=2000.0).contains(&args.cps) {
        return Err(LoadError::Argument("--cps takes 1..=2000".to_owned()));
    }
    let ports = usize::from(rtp_ports.1 - rtp_ports.0) + 1;
    let largest = args.calls.iter().copied().max().unwrap_or(0);
    if ports < largest * 4 {
        return Err(LoadError::Argument(format!(
            "--rtp-ports holds {ports} ports, {largest} calls need {}",
            largest * 4
        )));
    }
    Ok(())
}

fn parse_port_range(text: &str) -> LoadResult<(u16, u16)> {
    let bad = || {
        LoadError::Argument(format!(
            "--rtp-ports {text:?} is not MIN-MAX (1024..=65535)"
        ))
    };
    let (min, max) = text.split_once('-').ok_or_else(bad)?;
    let min: u16 = min.trim().parse().map_err(|_| bad())?;
    let max: u16 = max.trim().parse().map_err(|_| bad())?;
    if min < 1024 || max <= min {
        return Err(bad());
    }
    Ok((min, max))
}

fn default_binary() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    target.join("release").join("switchboard")
}

fn local_udp_socket(what: &str) -> LoadResult<UdpSocket> {
    UdpSocket::bind("127.0.0.1:0")
        .map_err(|e| LoadError::io(format!("binding the {what} socket"), e))
}

fn local_port(socket: &UdpSocket) -> LoadResult<SocketAddr> {
    socket
        .local_addr()
        .map_err(|e| LoadError::io("reading a socket address", e))
}

/// One step with a fresh switchboard; the process is killed on any error (guard drop).
fn run_step(
    args: &Args,
    binary: &Path,
    calls: usize,
    rtp_ports: (u16, u16),
    cores: usize,
) -> LoadResult<StepResult> {
    let dir = tempfile::Builder::new()
        .prefix("rtp-load-")
        .tempdir()
        .map_err(|e| LoadError::io("creating the work directory", e))?;
    let sip: SocketAddr = SocketAddr::from(([127, 0, 0, 1], sip_tests::ports::free_port()?));
    let http: SocketAddr = SocketAddr::from(([127, 0, 0, 1], sip_tests::ports::free_port()?));
    let config_path = dir.path().join("switchboard.toml");
    let config = StepConfig {
        sip,
        http,
        data_dir: dir.path(),
        rtp_ports,
        agents: calls,
    };
    std::fs::write(&config_path, config.render())
        .map_err(|e| LoadError::io(format!("writing {}", config_path.display()), e))?;
    let log_path = dir.path().join("switchboard.log");
    let switchboard = SwitchboardProcess::start(binary, &config_path, &log_path, sip)?;
    eprintln!("switchboard pid {} ready on {sip}", switchboard.pid());
    let measured = measure(args, &switchboard, sip, calls, cores, rtp_ports, dir.path());
    let result = match measured {
        Ok(result) => result,
        Err(error) => {
            eprintln!(
                "switchboard log (last lines):\n{}",
                switchboard.log_tail(30)
            );
            return Err(error);
        }
    };
    let status = switchboard.stop(STOP_TIMEOUT)?;
    if !status.success() {
        eprintln!("switchboard exited with {status}");
    }
    // A call that did not come up is worth a look at Switchboard's log: keep it.
    if args.keep || result.up < result.calls {
        let kept = dir.keep();
        eprintln!("work directory kept: {}", kept.display());
    }
    Ok(result)
}

fn measure(
    args: &Args,
    switchboard: &SwitchboardProcess,
    sip: SocketAddr,
    calls: usize,
    cores: usize,
    rtp_ports: (u16, u16),
    dir: &Path,
) -> LoadResult<StepResult> {
    let pid = switchboard.pid();
    let farm = local_udp_socket("phone farm")?;
    let registering = Instant::now();
    registration::register_agents(&farm, sip, calls)?;
    let registration_s = registering.elapsed().as_secs_f64();
    let rss_idle_kib = proc_stats::rss_kib(Process::Pid(pid))?;
    eprintln!(
        "{calls} agents registered in {registration_s:.1} s; switchboard RSS {rss_idle_kib} KiB"
    );

    let mut sockets = Vec::with_capacity(calls);
    let mut endpoints = Vec::with_capacity(calls);
    for _ in 0..calls {
        let trunk_rtp = local_udp_socket("trunk RTP")?;
        let agent_rtp = local_udp_socket("agent RTP")?;
        for socket in [&trunk_rtp, &agent_rtp] {
            socket
                .set_nonblocking(true)
                .map_err(|e| LoadError::io("making an RTP socket non-blocking", e))?;
        }
        endpoints.push(CallEndpoints {
            trunk_rtp: local_port(&trunk_rtp)?,
            agent_rtp: local_port(&agent_rtp)?,
        });
        sockets.push(Some((trunk_rtp, agent_rtp)));
    }
    let mut signalling = Signalling::new(local_udp_socket("trunk SIP")?, farm, sip, endpoints)?;
    let setting_up = Instant::now();
    let established = signalling.establish(args.cps, SIGNALLING_GRACE);
    let setup_s = setting_up.elapsed().as_secs_f64();
    eprintln!(
        "{} of {calls} calls up in {setup_s:.1} s",
        established.len()
    );

    let mut media_calls = Vec::with_capacity(established.len());
    for call in &established {
        // Only loopback is ever a target, whatever an SDP says.
        if !call.switchboard_trunk.ip().is_loopback() || !call.switchboard_agent.ip().is_loopback()
        {
            return Err(LoadError::Argument(format!(
                "switchboard offered a non-loopback RTP address ({} / {}): refusing to send there",
                call.switchboard_trunk, call.switchboard_agent
            )));
        }
        let Some((trunk_rtp, agent_rtp)) = sockets.get_mut(call.index).and_then(Option::take)
        else {
            continue;
        };
        media_calls.push(MediaCall {
            index: u32::try_from(call.index).unwrap_or(u32::MAX),
            trunk_rtp,
            agent_rtp,
            switchboard_trunk: call.switchboard_trunk,
            switchboard_agent: call.switchboard_agent,
        });
    }
    let mut generator_ports = Vec::with_capacity(media_calls.len() * 2);
    for call in &media_calls {
        generator_ports.push(local_port(&call.trunk_rtp)?.port());
        generator_ports.push(local_port(&call.agent_rtp)?.port());
    }
    let watch = QueueWatch {
        switchboard_ports: proc_stats::port_set(
            established
                .iter()
                .flat_map(|c| [c.switchboard_trunk.port(), c.switchboard_agent.port()]),
        ),
        generator_ports: proc_stats::port_set(generator_ports),
    };
    let load_before = proc_stats::load_average()?;
    eprintln!("media: {} s over {} calls", args.seconds, media_calls.len());
    let media = media_phase::run(&media_calls, args.seconds, pid, &watch)?;
    let load_after = proc_stats::load_average()?;
    let switchboard_socket_drops =
        proc_stats::udp_receive_drops(|port| watch.switchboard_ports.contains(&port))?;
    let generator_socket_drops =
        proc_stats::udp_receive_drops(|port| watch.generator_ports.contains(&port))?;

    let hangup = signalling.hang_up(args.cps, SIGNALLING_GRACE);
    eprintln!("hung up: {} BYE, {} answered", hangup.sent, hangup.answered);
    let up = media_calls.len();
    let (media_calls, peer) = match args.peer {
        Some(Peer::Rtpengine) => {
            // Switchboard has hung up: its ports in the range are free again.
            let mut engine =
                rtpengine_peer::Rtpengine::start(rtp_ports, &dir.join("rtpengine.log"))?;
            let relayed = engine.set_up(media_calls)?;
            let peer_watch = QueueWatch {
                switchboard_ports: proc_stats::port_set(
                    relayed
                        .iter()
                        .flat_map(|c| [c.switchboard_trunk.port(), c.switchboard_agent.port()]),
                ),
                generator_ports: watch.generator_ports.clone(),
            };
            eprintln!(
                "peer rtpengine (pid {}): {} s over {} calls",
                engine.pid(),
                args.seconds,
                relayed.len()
            );
            let outcome = media_phase::run(&relayed, args.seconds, engine.pid(), &peer_watch)?;
            (relayed, Some(outcome))
        }
        None => (media_calls, None),
    };
    let baseline = if args.baseline {
        eprintln!("baseline: {} s socket to socket", args.seconds);
        let mut direct = Vec::with_capacity(up);
        for call in media_calls {
            direct.push(MediaCall {
                switchboard_trunk: local_port(&call.agent_rtp)?,
                switchboard_agent: local_port(&call.trunk_rtp)?,
                ..call
            });
        }
        // Only the generator's own sockets are in the path now.
        let direct_watch = QueueWatch {
            generator_ports: watch.generator_ports.clone(),
            ..QueueWatch::default()
        };
        Some(media_phase::run(&direct, args.seconds, pid, &direct_watch)?)
    } else {
        None
    };
    Ok(StepResult {
        calls,
        up,
        setup_failures: signalling.failures(),
        sip_malformed: signalling.malformed(),
        media,
        rss_idle_kib,
        switchboard_socket_drops,
        generator_socket_drops,
        load_average: (load_before, load_after),
        cores,
        hangup,
        setup_seconds: (registration_s, setup_s),
        baseline,
        peer,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_ranges_parse_and_bad_ones_are_errors() {
        assert_eq!(parse_port_range("10000-29999").ok(), Some((10000, 29999)));
        assert!(parse_port_range("80-90").is_err());
        assert!(parse_port_range("3000").is_err());
        assert!(parse_port_range("5000-4000").is_err());
        assert!(parse_port_range("a-b").is_err());
    }

    #[test]
    fn the_port_range_must_hold_four_ports_per_call() {
        let args = Args::parse_from(["rtp-load", "--calls", "250,4000"]);
        assert!(validate(&args, (10000, 29999)).is_ok());
        assert!(validate(&args, (10000, 19999)).is_err());
        let zero = Args::parse_from(["rtp-load", "--calls", "0"]);
        assert!(validate(&zero, (10000, 29999)).is_err());
    }
}
