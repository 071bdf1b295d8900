//! The phone farm registers every agent from its one socket, answering the MD5 digest
//! challenge the way a phone does; every binding's Contact is that socket.

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use sip_tests::digest::{self, Credentials, DigestAlgorithm};
use sip_tests::SipMessage;

use crate::error::{LoadError, LoadResult};
use crate::sip_text::Request;
use crate::step_config::{agent_password, agent_user};

/// How long one REGISTER waits for its answer.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(5);

/// Registers agents `0..count` from `socket` with `registrar`, one after the other.
pub fn register_agents(socket: &UdpSocket, registrar: SocketAddr, count: usize) -> LoadResult<()> {
    socket
        .set_read_timeout(Some(ANSWER_TIMEOUT))
        .map_err(|e| LoadError::io("setting the phone farm's timeout", e))?;
    let local = socket
        .local_addr()
        .map_err(|e| LoadError::io("reading the phone farm's address", e))?;
    let mut buf = vec![0u8; 65536];
    for index in 0..count {
        let user = agent_user(index);
        let password = agent_password(index);
        let fail = |reason: String| LoadError::Registration {
            agent: user.clone(),
            reason,
        };
        let uri = format!("sip:{registrar}");
        let call_id = format!("rtp-load-reg-{index}");
        let from = format!("<sip:{user}@127.0.0.1>;tag=r{index}");
        let to = format!("<sip:{user}@127.0.0.1>");
        let via_host = local.to_string();
        let contact = format!("Contact: <sip:{user}@{local}>\r\nExpires: 3600\r\n");
        let send = |cseq: u32, authorization: &str| -> LoadResult<()> {
            let branch = format!("-reg-{index}-{cseq}");
            let extra = format!("{contact}{authorization}");
            let text = Request {
                method: "REGISTER",
                uri: &uri,
                via_host: &via_host,
                branch: &branch,
                from: &from,
                to: &to,
                call_id: &call_id,
                cseq,
                extra: &extra,
                sdp: "",
            }
            .render();
            socket
                .send_to(text.as_bytes(), registrar)
                .map(|_| ())
                .map_err(|e| LoadError::io("sending REGISTER", e))
        };
        send(1, "")?;
        let challenge = final_response(socket, &mut buf, &call_id, 1).map_err(fail)?;
        if challenge.status() != Some(401) {
            return Err(fail(format!("expected 401, got {}", challenge.start_line)));
        }
        let offered = challenge.headers_named("WWW-Authenticate");
        let answer = digest::pick(&offered, DigestAlgorithm::Md5)
            .and_then(|c| {
                c.answer(
                    &Credentials {
                        username: &user,
                        password: &password,
                    },
                    "REGISTER",
                    &uri,
                    "0a4f113b",
                    1,
                )
            })
            .map_err(|e| fail(e.to_string()))?;
        send(2, &format!("Authorization: {answer}\r\n"))?;
        let ok = final_response(socket, &mut buf, &call_id, 2).map_err(fail)?;
        if ok.status() != Some(200) {
            return Err(fail(format!("expected 200, got {}", ok.start_line)));
        }
    }
    Ok(())
}

/// Waits for the final response to REGISTER `cseq` of `call_id`, skipping anything else
/// (provisional answers, strays): a malformed datagram is skipped, never a panic.
fn final_response(
    socket: &UdpSocket,
    buf: &mut [u8],
    call_id: &str,
    cseq: u32,
) -> Result<SipMessage, String> {
    let deadline = Instant::now() + ANSWER_TIMEOUT;
    while Instant::now() < deadline {
        let len = match socket.recv_from(buf) {
            Ok((len, _)) => len,
            Err(e) => return Err(format!("no answer: {e}")),
        };
        let Some(Ok(message)) = buf.get(..len).map(SipMessage::parse) else {
            continue;
        };
        let ours = message.header("Call-ID") == Some(call_id)
            && message.cseq() == Some((cseq, "REGISTER"));
        if ours && message.status().is_some_and(|s| s >= 200) {
            return Ok(message);
        }
    }
    Err("no final answer in time".to_owned())
}
