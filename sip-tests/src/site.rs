//! A two-node site as docs/site.md describes it: the shipped Kamailio front on 127.0.0.20, node
//! `a` on 127.0.0.11 and node `b` on 127.0.0.12, both with the same configuration. Each node is
//! the home of one dispatcher set and the standby of the other:
//!
//! | set | home (priority 10) | standby (priority 5) | DIDs     | agents |
//! |-----|--------------------|----------------------|----------|--------|
//! | 1   | a                  | b                    | 100, 101 | 1001   |
//! | 2   | b                  | a                    | 200, 201 | 2001   |
//!
//! DIDs 100 and 200 answer in an IVR (load: no agent needed, so a standby takes them at once);
//! 101 rings queue `support` (agent 1001), 201 queue `sales` (agent 2001). The nodes admit only
//! the front as a trunk; the front admits trunks from 127.0.0.1 (any port).

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use crate::config::{AgentAccount, NumberSpec, QueueSpec, SwitchboardConfig, TrunkConfig};
use crate::error::HarnessResult;
use crate::kamailio::{KamailioFront, SitePlan, FRONT_ADDRESS};
use crate::switchboard::{Placement, Switchboard};

/// Node `a`'s SIP address.
pub const NODE_A: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 11);
/// Node `b`'s SIP address.
pub const NODE_B: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 12);
/// The IVR numbers homed on node `a` (set 1) and node `b` (set 2).
pub const IVR_DID_A: &str = "100";
/// See [`IVR_DID_A`].
pub const IVR_DID_B: &str = "200";
/// RTP ports per node: 96 calls at once (four ports each), about twice what the tests hold.
const RTP_PORTS: u16 = 384;
/// Site tests place their nodes' RTP ranges below the range every other test shares
/// (10000–32000, random blocks): a port there taken by another test's node between the check
/// and the bind ends a call with media-failed. Slot n uses 6000 + 768·n (node a) and the
/// next 384 ports (node b); five slots end below 9840.
const RTP_SLOTS_BASE: u16 = 6000;

/// What the nodes add to their configuration.
#[derive(Debug, Clone, Default)]
pub struct SiteOptions {
    /// Lines for `[cdr]` shared by both nodes (e.g. `postgres_url`); `node = "a"`/`"b"` is
    /// added by the site.
    pub cdr_lines: Vec<String>,
    /// `sip.drain_timeout_s` of both nodes (the harness default when 0).
    pub drain_timeout_s: u32,
    /// Which RTP slot the nodes use: distinct for tests that may run at the same time.
    pub rtp_slot: u16,
}

/// The front and its two nodes; everything is stopped when dropped.
pub struct Site {
    /// Node `a` (127.0.0.11): home of set 1.
    pub a: Switchboard,
    /// Node `b` (127.0.0.12): home of set 2.
    pub b: Switchboard,
    /// The Kamailio front (127.0.0.20).
    pub front: KamailioFront,
}

/// The configuration both nodes run (the standby of a set has the home node's configuration).
pub fn node_config(options: &SiteOptions) -> SwitchboardConfig {
    let mut config = SwitchboardConfig {
        trunks: vec![TrunkConfig {
            name: "front".into(),
            allow: vec![format!("{FRONT_ADDRESS}/32")],
            credentials: None,
        }],
        dids: vec!["101".into()],
        other_queues: vec![QueueSpec::new("sales", "sales")],
        numbers: vec![NumberSpec::new("201", "sales")],
        agents: vec![
            AgentAccount::new("1001", "Alice"),
            AgentAccount::new("2001", "Sam")
                .without_support()
                .with_skill("sales", 5),
        ],
        extra_toml: format!(
            "\n[[number]]\ndid = \"{IVR_DID_A}\"\nivr = \"main\"\n\n\
             [[number]]\ndid = \"{IVR_DID_B}\"\nivr = \"main\"\n\n\
             [[ivr]]\nname = \"main\"\nentry = \"top\"\n\n\
             [[ivr.menu]]\nname = \"top\"\nprompt = [\"menu\"]\ndigit_timeout_s = 60\nretries = 0\n\
             keys = {{ \"1\" = \"queue:support\" }}\n"
        ),
        ..SwitchboardConfig::default()
    };
    if options.drain_timeout_s > 0 {
        config.drain_timeout_s = options.drain_timeout_s;
    }
    config
}

impl Site {
    /// Starts both nodes, then the front (which probes them), and returns once the front
    /// answers and sees both nodes up.
    pub fn start(
        dir: &std::path::Path,
        options: &SiteOptions,
        timeout: Duration,
    ) -> HarnessResult<Self> {
        let config = node_config(options);
        let slot_base = RTP_SLOTS_BASE + options.rtp_slot * 2 * RTP_PORTS;
        let placement = |host: Ipv4Addr, name: &str, rtp_base: u16| {
            let mut cdr_lines = options.cdr_lines.clone();
            cdr_lines.push(format!("node = \"{name}\""));
            Placement {
                host,
                cdr_lines,
                rtp_ports: RTP_PORTS,
                rtp_base: Some(rtp_base),
            }
        };
        let a = Switchboard::start_placed(config.clone(), &placement(NODE_A, "a", slot_base))?;
        let b = Switchboard::start_placed(config, &placement(NODE_B, "b", slot_base + RTP_PORTS))?;
        let (sa, sb) = (a.sip_addr(), b.sip_addr());
        let front = KamailioFront::start_site(
            dir,
            &SitePlan {
                destinations: &[(1, sa, 10), (1, sb, 5), (2, sb, 10), (2, sa, 5)],
                trunk: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
                dids: &[(IVR_DID_A, 1), ("101", 1), (IVR_DID_B, 2), ("201", 2)],
                agents: &[("1001", 1), ("2001", 2)],
            },
            timeout,
        )?;
        let site = Site { a, b, front };
        site.wait_node_state(sa, None, 'A', timeout)?;
        site.wait_node_state(sb, None, 'A', timeout)?;
        Ok(site)
    }

    /// Waits until the front's dispatcher shows `node` with the state letter `state` (`A`
    /// active, `I` inactive, `D` disabled) in `set`, or in every set listing it when `set` is
    /// `None`; returns how long that took.
    pub fn wait_node_state(
        &self,
        node: SocketAddr,
        set: Option<u32>,
        state: char,
        timeout: Duration,
    ) -> HarnessResult<Duration> {
        let started = std::time::Instant::now();
        let mut last = Vec::new();
        while started.elapsed() < timeout {
            last = self.front.node_state(node)?;
            let reached = last
                .iter()
                .filter(|(listed, _)| set.is_none_or(|set| set == *listed))
                .all(|(_, flags)| flags.starts_with(state));
            if reached {
                return Ok(started.elapsed());
            }
            // kamcmd offers no notification of a state change; this only runs in tests.
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(crate::error::HarnessError::Unexpected(format!(
            "the front never showed {node} in state {state} (set {set:?}) within {} s (last: {last:?})\n--- kamailio ---\n{}",
            timeout.as_secs(),
            self.front.log()
        )))
    }
}
