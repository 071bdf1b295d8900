//! A small CRM for the caller lookup hook (`[lookup]`): an HTTP/1.1 server on 127.0.0.1 that
//! records every request and answers as the test says, per caller number.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

use crate::error::{HarnessError, HarnessResult};

/// How the CRM answers a lookup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CrmReply {
    /// 200 with this body as `application/json`.
    Json(String),
    /// 200 with this body as `text/html` (not JSON).
    Html(String),
    /// This status with an empty body.
    Status(u16),
    /// Never answers: holds the connection until the client gives up.
    Silent,
}

/// One request as the CRM received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrmRequest {
    /// `GET /caller?caller=...&did=... HTTP/1.1`.
    pub request_line: String,
    /// The body (POST).
    pub body: String,
}

/// The running CRM; stops accepting when dropped (the listener thread ends with the process).
pub struct Crm {
    addr: SocketAddr,
    requests: Arc<Mutex<Vec<CrmRequest>>>,
}

impl Crm {
    /// Starts a CRM answering `replies[caller]`, or `fallback` for callers not listed.
    pub fn start(replies: HashMap<String, CrmReply>, fallback: CrmReply) -> HarnessResult<Crm> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .map_err(|e| HarnessError::io("binding the test CRM", e))?;
        let addr = listener
            .local_addr()
            .map_err(|e| HarnessError::io("the test CRM's address", e))?;
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = requests.clone();
        let replies = Arc::new(replies);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let seen = seen.clone();
                let replies = replies.clone();
                let fallback = fallback.clone();
                std::thread::spawn(move || serve(stream, &seen, &replies, &fallback));
            }
        });
        Ok(Crm { addr, requests })
    }

    /// `http://127.0.0.1:<port>/caller`.
    pub fn url(&self) -> String {
        format!("http://{}/caller", self.addr)
    }

    /// The requests received so far.
    pub fn requests(&self) -> Vec<CrmRequest> {
        self.requests
            .lock()
            .map(|requests| requests.clone())
            .unwrap_or_default()
    }
}

/// Answers one connection (one request: the client is told to close).
fn serve(
    mut stream: TcpStream,
    seen: &Mutex<Vec<CrmRequest>>,
    replies: &HashMap<String, CrmReply>,
    fallback: &CrmReply,
) {
    let Some(request) = read_request(&mut stream) else {
        return;
    };
    let text = format!("{} {}", request.request_line, request.body);
    let reply = replies
        .iter()
        .find(|(caller, _)| {
            text.contains(&format!("caller={caller}&"))
                || text.contains(&format!("\"caller\":\"{caller}\""))
        })
        .map_or(fallback, |(_, reply)| reply)
        .clone();
    if let Ok(mut requests) = seen.lock() {
        requests.push(request);
    }
    let (status, kind, body) = match reply {
        CrmReply::Json(body) => (200, "application/json", body),
        CrmReply::Html(body) => (200, "text/html", body),
        CrmReply::Status(code) => (code, "text/plain", String::new()),
        CrmReply::Silent => {
            // Hold the connection until the client closes it.
            let mut sink = [0u8; 256];
            while matches!(stream.read(&mut sink), Ok(n) if n > 0) {}
            return;
        }
    };
    let response = format!(
        "HTTP/1.1 {status} X\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(response.as_bytes());
}

fn read_request(stream: &mut TcpStream) -> Option<CrmRequest> {
    let mut data = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(end) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            break end + 4;
        }
        let n = stream.read(&mut chunk).ok().filter(|&n| n > 0)?;
        data.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&data[..head_end]).into_owned();
    let length = head
        .lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse::<usize>().ok())?
        })
        .unwrap_or(0);
    while data.len() < head_end + length {
        let n = stream.read(&mut chunk).ok().filter(|&n| n > 0)?;
        data.extend_from_slice(&chunk[..n]);
    }
    Some(CrmRequest {
        request_line: head.lines().next().unwrap_or_default().to_owned(),
        body: String::from_utf8_lossy(&data[head_end..head_end + length]).into_owned(),
    })
}
