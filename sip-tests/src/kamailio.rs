//! The shipped Kamailio front (deploy/kamailio/kamailio.cfg) run for one test, changed only in
//! addresses and ports: it listens on its own loopback address, its control socket and lists
//! live in the test's temp dir, and the lists name the test's node, trunk and numbers.

use std::fs;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::error::{HarnessError, HarnessResult};
use crate::logged_process::LoggedProcess;
use crate::paths::workspace_dir;
use crate::ports::free_port;
use crate::uac::options;
use crate::udp_peer::UdpPeer;

/// The front's own address: a phone or trunk on 127.0.0.1 is never mistaken for it.
pub const FRONT_ADDRESS: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 20);
/// How long one readiness probe waits.
const PROBE_TIMEOUT: Duration = Duration::from_millis(500);

/// What the front routes where.
#[derive(Debug, Clone)]
pub struct FrontPlan<'a> {
    /// The one Switchboard node (dispatcher set 1).
    pub node: SocketAddr,
    /// The trunk's source (address.list group 1, address and port).
    pub trunk: SocketAddr,
    /// Dialled numbers routed to the node.
    pub dids: &'a [&'a str],
    /// Agent SIP users routed to the node.
    pub agents: &'a [&'a str],
}

/// A front for several nodes: dispatcher sets with priorities, and DIDs and agents mapped to
/// sets (sip-tests/tests/site.rs).
#[derive(Debug, Clone)]
pub struct SitePlan<'a> {
    /// Dispatcher destinations: (set, node address, priority). Within a set the highest
    /// priority takes the traffic.
    pub destinations: &'a [(u32, SocketAddr, u32)],
    /// The trunks' source (address.list group 1; port 0 = any port).
    pub trunk: SocketAddr,
    /// Dialled number → set.
    pub dids: &'a [(&'a str, u32)],
    /// Agent SIP user → set.
    pub agents: &'a [(&'a str, u32)],
}

/// A running Kamailio front; killed on drop.
pub struct KamailioFront {
    process: LoggedProcess,
    addr: SocketAddr,
    ctl: std::path::PathBuf,
}

impl KamailioFront {
    /// Writes the adapted configuration and lists into `dir`, starts Kamailio in the
    /// foreground, and returns once it answers OPTIONS (addressed to itself) with 200.
    pub fn start(dir: &Path, plan: &FrontPlan<'_>, timeout: Duration) -> HarnessResult<Self> {
        let dids: Vec<(&str, u32)> = plan.dids.iter().map(|did| (*did, 1)).collect();
        let agents: Vec<(&str, u32)> = plan.agents.iter().map(|agent| (*agent, 1)).collect();
        Self::start_site(
            dir,
            &SitePlan {
                destinations: &[(1, plan.node, 10)],
                trunk: plan.trunk,
                dids: &dids,
                agents: &agents,
            },
            timeout,
        )
    }

    /// The same for a site of several nodes in dispatcher sets.
    pub fn start_site(dir: &Path, plan: &SitePlan<'_>, timeout: Duration) -> HarnessResult<Self> {
        let io = |what: &'static str| move |e| HarnessError::io(what, e);
        fs::create_dir_all(dir.join("db")).map_err(io("creating the kamailio dir"))?;
        fs::create_dir_all(dir.join("run")).map_err(io("creating the kamailio run dir"))?;
        let addr = SocketAddr::from((FRONT_ADDRESS, free_port()?));
        let shipped_path = workspace_dir().join("deploy/kamailio/kamailio.cfg");
        let shipped = fs::read_to_string(&shipped_path)
            .map_err(|e| HarnessError::io(format!("reading {}", shipped_path.display()), e))?;
        let ctl = dir.join("run/kamailio_ctl");
        let config = adapt(&shipped, addr, &ctl)?;
        let config_path = dir.join("kamailio.cfg");
        fs::write(&config_path, config).map_err(io("writing kamailio.cfg"))?;
        let dispatcher: String = plan
            .destinations
            .iter()
            .map(|(set, node, priority)| format!("{set} sip:{node} 0 {priority} duid={node}\n"))
            .collect();
        fs::write(dir.join("dispatcher.list"), dispatcher)
            .map_err(io("writing dispatcher.list"))?;
        fs::write(
            dir.join("address.list"),
            format!("1 {} 32 {} trunk\n", plan.trunk.ip(), plan.trunk.port()),
        )
        .map_err(io("writing address.list"))?;
        let header = "key_name(str) key_type(int) value_type(int) key_value(str) expires(int)\n";
        let table = |keys: &[(&str, u32)]| {
            let mut text = header.to_owned();
            for (key, set) in keys {
                text.push_str(&format!("{key}:0:1:{set}:0\n"));
            }
            text
        };
        fs::write(dir.join("db/did_routes"), table(plan.dids)).map_err(io("writing did_routes"))?;
        fs::write(dir.join("db/agent_routes"), table(plan.agents))
            .map_err(io("writing agent_routes"))?;
        let mut command = Command::new("kamailio");
        command
            .arg("-f")
            .arg(&config_path)
            .args(["-DD", "-E"])
            .arg("-A")
            .arg(format!("CFGDIR=\"{}\"", dir.display()))
            .arg("-A")
            .arg(format!("DBURL=\"text://{}/db\"", dir.display()))
            .arg("-Y")
            .arg(dir.join("run"))
            .arg("-P")
            .arg(dir.join("run/kamailio.pid"));
        let process = LoggedProcess::spawn("kamailio", command, &dir.join("kamailio.log"), false)?;
        let front = KamailioFront { process, addr, ctl };
        front.wait_ready(timeout)?;
        Ok(front)
    }

    fn wait_ready(&self, timeout: Duration) -> HarnessResult<()> {
        let peer = UdpPeer::bind(0, self.addr)?;
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            match options(&peer, PROBE_TIMEOUT) {
                Ok(exchange) if exchange.final_response.status() == Some(200) => return Ok(()),
                Ok(_) | Err(HarnessError::SipTimeout { .. }) => {}
                // ICMP port unreachable until Kamailio listens.
                Err(HarnessError::Io { .. }) => std::thread::sleep(PROBE_TIMEOUT),
                Err(other) => return Err(other),
            }
        }
        Err(self.process.failure("never answered OPTIONS with 200"))
    }

    /// Where the front listens (UDP and TCP).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Kamailio's log so far.
    pub fn log(&self) -> String {
        self.process.log()
    }

    /// The binrpc control socket (`kamcmd -s unix:<path>`).
    pub fn ctl_socket(&self) -> &Path {
        &self.ctl
    }

    /// Runs one RPC command over the control socket with `kamcmd` and returns its output.
    pub fn rpc(&self, args: &[&str]) -> HarnessResult<String> {
        let output = Command::new("kamcmd")
            .arg("-s")
            .arg(format!("unix:{}", self.ctl.display()))
            .args(args)
            .output()
            .map_err(|e| HarnessError::io("running kamcmd", e))?;
        if !output.status.success() {
            return Err(HarnessError::Unexpected(format!(
                "kamcmd {args:?} failed: {}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            )));
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    /// The dispatcher's state flags of `node` in each set that lists it (e.g. `AP` active and
    /// probed, `IP` inactive and probed, `DX` disabled), from `dispatcher.list`.
    pub fn node_state(&self, node: SocketAddr) -> HarnessResult<Vec<(u32, String)>> {
        let listing = self.rpc(&["dispatcher.list"])?;
        let states = dispatcher_flags(&listing, node);
        if states.is_empty() {
            return Err(HarnessError::Unexpected(format!(
                "{node} is not in dispatcher.list:\n{listing}"
            )));
        }
        Ok(states)
    }
}

/// (set, FLAGS) of every destination with URI `sip:<node>` in a `kamcmd dispatcher.list`
/// listing: a node listed in two sets has a state in each.
pub fn dispatcher_flags(listing: &str, node: SocketAddr) -> Vec<(u32, String)> {
    let uri = format!("URI: sip:{node}");
    let mut found = Vec::new();
    let mut set = 0;
    let mut here = false;
    for line in listing.lines().map(str::trim) {
        if let Some(id) = line.strip_prefix("ID:") {
            set = id.trim().parse().unwrap_or(0);
        } else if line.starts_with("URI:") {
            here = line == uri;
        } else if let Some(flags) = line.strip_prefix("FLAGS:") {
            if here {
                found.push((set, flags.trim().to_owned()));
                here = false;
            }
        }
    }
    found
}

/// The shipped configuration with only its listen sockets and control socket changed; fails
/// if the shipped file no longer has the lines this relies on.
pub fn adapt(shipped: &str, addr: SocketAddr, ctl: &Path) -> HarnessResult<String> {
    let replacements = [
        (
            "listen=udp:0.0.0.0:5060".to_owned(),
            format!("listen=udp:{addr}"),
        ),
        (
            "listen=tcp:0.0.0.0:5060".to_owned(),
            format!("listen=tcp:{addr}"),
        ),
        (
            "unix:/run/kamailio/kamailio_ctl".to_owned(),
            format!("unix:{}", ctl.display()),
        ),
    ];
    let mut config = shipped.to_owned();
    for (from, to) in replacements {
        if !config.contains(&from) {
            return Err(HarnessError::Unexpected(format!(
                "deploy/kamailio/kamailio.cfg no longer contains {from:?}: adapt sip-tests/src/kamailio.rs"
            )));
        }
        config = config.replace(&from, &to);
    }
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dispatcher_flags_reads_a_nodes_state_in_every_set() {
        // The shape of `kamcmd dispatcher.list` (Kamailio 5.6), trimmed.
        let listing = "{\n\tNRSETS: 2\n\tRECORDS: {\n\t\tSET: {\n\t\t\tID: 2\n\t\t\tTARGETS: {\n\
            \t\t\t\tDEST: {\n\t\t\t\t\tURI: sip:127.0.0.12:5060\n\t\t\t\t\tFLAGS: AP\n\t\t\t\t\tPRIORITY: 10\n\t\t\t\t}\n\
            \t\t\t\tDEST: {\n\t\t\t\t\tURI: sip:127.0.0.11:5060\n\t\t\t\t\tFLAGS: IP\n\t\t\t\t\tPRIORITY: 5\n\t\t\t\t}\n\
            \t\t\t}\n\t\t}\n\t\tSET: {\n\t\t\tID: 1\n\t\t\tTARGETS: {\n\
            \t\t\t\tDEST: {\n\t\t\t\t\tURI: sip:127.0.0.11:5060\n\t\t\t\t\tFLAGS: DX\n\t\t\t\t\tPRIORITY: 10\n\t\t\t\t}\n\
            \t\t\t}\n\t\t}\n\t}\n}\n";
        let a: SocketAddr = "127.0.0.11:5060".parse().expect("literal");
        let b: SocketAddr = "127.0.0.12:5060".parse().expect("literal");
        assert_eq!(
            dispatcher_flags(listing, a),
            vec![(2, "IP".to_owned()), (1, "DX".to_owned())]
        );
        assert_eq!(dispatcher_flags(listing, b), vec![(2, "AP".to_owned())]);
        let other: SocketAddr = "127.0.0.11:5061".parse().expect("literal");
        assert!(dispatcher_flags(listing, other).is_empty());
    }

    #[test]
    fn adapting_changes_only_the_sockets() {
        let shipped = "listen=udp:0.0.0.0:5060\nlisten=tcp:0.0.0.0:5060\nmodparam(\"ctl\", \"binrpc\", \"unix:/run/kamailio/kamailio_ctl\")\nroute{}\n";
        let adapted = adapt(
            shipped,
            "127.0.0.20:5999".parse().expect("literal"),
            Path::new("/tmp/k/ctl"),
        )
        .expect("all lines present");
        assert_eq!(
            adapted,
            "listen=udp:127.0.0.20:5999\nlisten=tcp:127.0.0.20:5999\nmodparam(\"ctl\", \"binrpc\", \"unix:/tmp/k/ctl\")\nroute{}\n"
        );
        assert!(adapt(
            "route{}",
            "127.0.0.20:1".parse().expect("literal"),
            Path::new("/x")
        )
        .is_err());
    }
}
