//! The peer row of a step (`--peer rtpengine`): Debian's rtpengine daemon in userspace
//! forwarding (`--table=-1`, no kernel module), set up over its ng control protocol (bencode
//! over UDP) with one offer and one answer per call carrying the generator's own SDP, so the
//! same sockets send the same packets through it that went through Switchboard.

use std::collections::BTreeMap;
use std::net::{SocketAddr, UdpSocket};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::bencode::{self, Value};
use crate::error::{LoadError, LoadResult};
use crate::media_call::MediaCall;
use crate::sdp;

/// How long rtpengine may take to answer its first ping.
const READY_TIMEOUT: Duration = Duration::from_secs(20);
/// How long one ng request waits for its reply before it is sent again (the same cookie,
/// so rtpengine answers a repeat from its cookie cache instead of acting twice).
const REQUEST_RETRY: Duration = Duration::from_millis(500);
/// Attempts per ng request.
const REQUEST_ATTEMPTS: u32 = 10;

/// A running rtpengine; killed on drop.
#[derive(Debug)]
pub struct Rtpengine {
    child: Child,
    control: UdpSocket,
    ng: SocketAddr,
    cookie: u64,
}

impl Rtpengine {
    /// Starts `rtpengine` in the foreground on 127.0.0.1 with media ports `ports`, its log in
    /// `log`, and returns once it answers an ng ping.
    pub fn start(ports: (u16, u16), log: &Path) -> LoadResult<Self> {
        let ng = SocketAddr::from(([127, 0, 0, 1], sip_tests::ports::free_port()?));
        let log_file = std::fs::File::create(log)
            .map_err(|e| LoadError::io(format!("creating {}", log.display()), e))?;
        let log_err = log_file
            .try_clone()
            .map_err(|e| LoadError::io("duplicating the log file handle", e))?;
        let child = Command::new("rtpengine")
            .arg("--config-file=none")
            .arg("--foreground")
            .arg("--log-stderr")
            .arg("--log-level=4")
            .arg("--table=-1")
            .arg("--interface=127.0.0.1")
            .arg(format!("--listen-ng={ng}"))
            .arg(format!("--port-min={}", ports.0))
            .arg(format!("--port-max={}", ports.1))
            .stdin(Stdio::null())
            .stdout(log_file)
            .stderr(log_err)
            .spawn()
            .map_err(|e| {
                LoadError::io("starting rtpengine (Debian package rtpengine-daemon)", e)
            })?;
        let control = UdpSocket::bind("127.0.0.1:0")
            .map_err(|e| LoadError::io("binding the ng control socket", e))?;
        control
            .set_read_timeout(Some(Duration::from_millis(100)))
            .map_err(|e| LoadError::io("setting the ng socket timeout", e))?;
        let mut engine = Rtpengine {
            child,
            control,
            ng,
            cookie: 0,
        };
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            let mut ping = BTreeMap::new();
            ping.insert("command", Value::Text("ping".to_owned()));
            if let Ok(reply) = engine.request_once(&ping) {
                if reply.get("result").map(String::as_str) == Some("pong") {
                    break;
                }
            }
            if Instant::now() > deadline {
                return Err(LoadError::NotReady(format!(
                    "rtpengine did not answer an ng ping on {ng} within {READY_TIMEOUT:?} (log: {})",
                    log.display()
                )));
            }
        }
        Ok(engine)
    }

    /// The process id, for /proc.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sets up each call through rtpengine (offer with the trunk's SDP, answer with the agent
    /// phone's) and returns the calls with their destinations pointed at rtpengine's ports.
    pub fn set_up(&mut self, calls: Vec<MediaCall>) -> LoadResult<Vec<MediaCall>> {
        let mut relayed = Vec::with_capacity(calls.len());
        for call in calls {
            let trunk = local_addr(&call.trunk_rtp)?;
            let agent = local_addr(&call.agent_rtp)?;
            let call_id = format!("rtp-load-{}", call.index);
            let mut offer = BTreeMap::new();
            offer.insert("command", Value::Text("offer".to_owned()));
            offer.insert("call-id", Value::Text(call_id.clone()));
            offer.insert("from-tag", Value::Text("trunk".to_owned()));
            // The SDP names the generator's sockets exactly: use them, not the ng sender's.
            offer.insert("flags", Value::List(vec!["trust address".to_owned()]));
            offer.insert("sdp", Value::Text(sdp::offer(trunk, u64::from(call.index))));
            let toward_agent = self.sdp_destination(&offer)?;
            let mut answer = BTreeMap::new();
            answer.insert("command", Value::Text("answer".to_owned()));
            answer.insert("call-id", Value::Text(call_id));
            answer.insert("from-tag", Value::Text("trunk".to_owned()));
            answer.insert("to-tag", Value::Text("agent".to_owned()));
            answer.insert("flags", Value::List(vec!["trust address".to_owned()]));
            answer.insert(
                "sdp",
                Value::Text(sdp::answer(agent, u64::from(call.index))),
            );
            let toward_trunk = self.sdp_destination(&answer)?;
            for address in [toward_agent, toward_trunk] {
                if !address.ip().is_loopback() {
                    return Err(LoadError::Argument(format!(
                        "rtpengine offered a non-loopback RTP address ({address}): refusing to send there"
                    )));
                }
            }
            relayed.push(MediaCall {
                // The trunk sends to the port rtpengine put in its answer to the trunk, the
                // agent to the one it put in the offer it passed on to the agent.
                switchboard_trunk: toward_trunk,
                switchboard_agent: toward_agent,
                ..call
            });
        }
        Ok(relayed)
    }

    /// Sends an offer or answer and reads where rtpengine wants RTP sent from its SDP.
    fn sdp_destination(&mut self, request: &BTreeMap<&str, Value>) -> LoadResult<SocketAddr> {
        let reply = self.request(request)?;
        if reply.get("result").map(String::as_str) != Some("ok") {
            return Err(LoadError::Harness(format!(
                "rtpengine refused an ng request: {reply:?}"
            )));
        }
        let body = reply
            .get("sdp")
            .ok_or_else(|| LoadError::Harness("rtpengine's reply carries no sdp".to_owned()))?;
        sdp::audio_destination(body)
            .map_err(|e| LoadError::Harness(format!("rtpengine's SDP: {e}")))
    }

    fn request(&mut self, request: &BTreeMap<&str, Value>) -> LoadResult<BTreeMap<String, String>> {
        self.cookie += 1;
        let cookie = self.cookie;
        let mut last = None;
        for _ in 0..REQUEST_ATTEMPTS {
            match self.exchange(cookie, request, REQUEST_RETRY) {
                Ok(reply) => return Ok(reply),
                Err(error) => last = Some(error),
            }
        }
        Err(last.unwrap_or_else(|| LoadError::Harness("no ng attempt made".to_owned())))
    }

    fn request_once(
        &mut self,
        request: &BTreeMap<&str, Value>,
    ) -> LoadResult<BTreeMap<String, String>> {
        self.cookie += 1;
        self.exchange(self.cookie, request, Duration::from_millis(200))
    }

    /// One datagram out, then replies read until the one with our cookie or `wait` passes.
    fn exchange(
        &self,
        cookie: u64,
        request: &BTreeMap<&str, Value>,
        wait: Duration,
    ) -> LoadResult<BTreeMap<String, String>> {
        let prefix = format!("{cookie} ");
        let mut datagram = prefix.clone().into_bytes();
        datagram.extend_from_slice(&bencode::encode_dict(request));
        self.control
            .send_to(&datagram, self.ng)
            .map_err(|e| LoadError::io("sending an ng request", e))?;
        let deadline = Instant::now() + wait;
        let mut buffer = vec![0u8; 65536];
        while Instant::now() < deadline {
            let Ok(len) = self.control.recv(&mut buffer) else {
                continue;
            };
            let Some(body) = buffer[..len].strip_prefix(prefix.as_bytes()) else {
                continue; // a late reply to an earlier attempt
            };
            return bencode::decode_dict_strings(body)
                .map_err(|e| LoadError::Harness(format!("rtpengine's ng reply: {e}")));
        }
        Err(LoadError::Harness(format!(
            "no ng reply from rtpengine on {} within {wait:?}",
            self.ng
        )))
    }
}

impl Drop for Rtpengine {
    fn drop(&mut self) {
        // Best effort: the process is ours and has no state worth a graceful stop.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn local_addr(socket: &UdpSocket) -> LoadResult<SocketAddr> {
    socket
        .local_addr()
        .map_err(|e| LoadError::io("reading a socket address", e))
}
