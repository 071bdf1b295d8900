//! SIP over WebSocket framing edge cases against a real `ws` listener, driven by a tungstenite
//! client: the subprotocol check, fragments, ping/pong, close, oversized messages and
//! per-message deadlines. Every wait is bounded by a generous timeout and ends on an event.

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use sip::{Transmit, Transport};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{CloseCode, Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::WebSocketStream;
use transport::{Inbound, Payload, StreamLimits, TransportConfig, Transports};

const WAIT: Duration = Duration::from_secs(30);
const MAX_MESSAGE: usize = 2048;

fn options(branch: &str) -> String {
    format!(
        "OPTIONS sip:switchboard@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/WS abc.invalid;branch=z9hG4bK{branch}\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:switchboard@127.0.0.1>\r\nCall-ID: {branch}\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    )
}

async fn start(limits: StreamLimits) -> (Transports, mpsc::Receiver<Inbound>, SocketAddr) {
    let (tx, rx) = mpsc::channel(64);
    let config = TransportConfig {
        ws: vec![SocketAddr::from(([127, 0, 0, 1], 0))],
        limits,
        ..TransportConfig::without_listeners(MAX_MESSAGE, Duration::from_secs(300))
    };
    let transports = Transports::start(config, tx).await.expect("listeners bind");
    let addr = transports.ws_addrs()[0];
    (transports, rx, addr)
}

async fn connect(addr: SocketAddr) -> WebSocketStream<TcpStream> {
    let mut request = format!("ws://{addr}/")
        .into_client_request()
        .expect("valid URL");
    request
        .headers_mut()
        .insert("Sec-WebSocket-Protocol", HeaderValue::from_static("sip"));
    let stream = TcpStream::connect(addr).await.expect("listener accepts");
    let (ws, response) = tokio_tungstenite::client_async(request, stream)
        .await
        .expect("upgrade accepted");
    assert_eq!(
        response
            .headers()
            .get("Sec-WebSocket-Protocol")
            .and_then(|v| v.to_str().ok()),
        Some("sip"),
        "the server selects the sip subprotocol"
    );
    ws
}

async fn next_inbound(rx: &mut mpsc::Receiver<Inbound>) -> Inbound {
    tokio::time::timeout(WAIT, rx.recv())
        .await
        .expect("the transport delivers in time")
        .expect("the channel stays open")
}

/// The next data or close message from the server (pongs are returned too).
async fn next_from_server(ws: &mut WebSocketStream<TcpStream>) -> Option<Message> {
    tokio::time::timeout(WAIT, ws.next())
        .await
        .expect("the server answers in time")
        .and_then(Result::ok)
}

#[tokio::test]
async fn upgrade_without_the_sip_subprotocol_is_refused_with_400() {
    let (transports, _rx, addr) = start(StreamLimits::default()).await;
    let stream = TcpStream::connect(addr).await.expect("listener accepts");
    let request = format!("ws://{addr}/")
        .into_client_request()
        .expect("valid URL");
    match tokio_tungstenite::client_async(request, stream).await {
        Err(WsError::Http(response)) => {
            assert_eq!(response.status().as_u16(), 400);
            let body = response.body().as_deref().unwrap_or_default();
            assert!(
                String::from_utf8_lossy(body).contains("Sec-WebSocket-Protocol: sip"),
                "the refusal says why"
            );
        }
        other => panic!("expected a 400 refusal, got {other:?}"),
    }
    assert_eq!(
        transports
            .stats()
            .websocket_handshake_failures
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
}

#[tokio::test]
async fn one_message_per_frame_and_replies_go_back_as_text() {
    let (transports, mut rx, addr) = start(StreamLimits::default()).await;
    let mut ws = connect(addr).await;
    ws.send(Message::text(options("one")))
        .await
        .expect("client sends");
    ws.send(Message::binary(options("two").into_bytes()))
        .await
        .expect("client sends");
    let first = next_inbound(&mut rx).await;
    assert_eq!(first.source.transport, Transport::Ws);
    assert!(matches!(first.payload, Payload::Message(_)));
    let second = next_inbound(&mut rx).await;
    assert!(
        matches!(second.payload, Payload::Message(_)),
        "a binary frame carries SIP too"
    );

    let reply = "SIP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n";
    transports.send(Transmit {
        peer: first.source,
        data: Bytes::from_static(reply.as_bytes()),
    });
    match next_from_server(&mut ws).await {
        Some(Message::Text(text)) => assert_eq!(text.as_str(), reply),
        other => panic!("expected the reply as a text message, got {other:?}"),
    }
    assert_eq!(
        transports
            .stats()
            .websocket_connections
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
}

#[tokio::test]
async fn fragmented_message_is_reassembled() {
    let (_transports, mut rx, addr) = start(StreamLimits::default()).await;
    let mut ws = connect(addr).await;
    let text = options("fragments");
    let (a, rest) = text.as_bytes().split_at(20);
    let (b, c) = rest.split_at(40);
    let frames = [
        Frame::message(Bytes::copy_from_slice(a), OpCode::Data(Data::Text), false),
        Frame::message(
            Bytes::copy_from_slice(b),
            OpCode::Data(Data::Continue),
            false,
        ),
        Frame::message(
            Bytes::copy_from_slice(c),
            OpCode::Data(Data::Continue),
            true,
        ),
    ];
    for frame in frames {
        ws.send(Message::Frame(frame)).await.expect("client sends");
    }
    match next_inbound(&mut rx).await.payload {
        Payload::Message(message) => {
            assert!(message.to_string().contains("Call-ID: fragments"));
        }
        other => panic!("expected one whole message, got {other:?}"),
    }
}

#[tokio::test]
async fn ping_is_answered_and_the_connection_stays() {
    let (_transports, mut rx, addr) = start(StreamLimits::default()).await;
    let mut ws = connect(addr).await;
    ws.send(Message::Ping(Bytes::from_static(b"are you there")))
        .await
        .expect("client pings");
    match next_from_server(&mut ws).await {
        Some(Message::Pong(data)) => assert_eq!(&data[..], b"are you there"),
        other => panic!("expected a pong, got {other:?}"),
    }
    ws.send(Message::text(options("after-ping")))
        .await
        .expect("client sends");
    assert!(matches!(
        next_inbound(&mut rx).await.payload,
        Payload::Message(_)
    ));
}

#[tokio::test]
async fn client_close_tells_the_core_the_flow_is_gone() {
    let (transports, mut rx, addr) = start(StreamLimits::default()).await;
    let mut ws = connect(addr).await;
    ws.send(Message::text(options("before-close")))
        .await
        .expect("client sends");
    let first = next_inbound(&mut rx).await;
    ws.close(None).await.expect("client closes");
    let closed = next_inbound(&mut rx).await;
    assert!(matches!(closed.payload, Payload::Closed));
    assert_eq!(closed.source, first.source, "the closed flow is named");
    // A message for the closed flow is not sent anywhere.
    transports.send(Transmit {
        peer: first.source,
        data: Bytes::from_static(b"SIP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n"),
    });
    assert_eq!(
        transports
            .stats()
            .send_errors
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
}

#[tokio::test]
async fn oversized_message_closes_with_1009_and_a_reason() {
    let (_transports, mut rx, addr) = start(StreamLimits::default()).await;
    let mut ws = connect(addr).await;
    let huge = format!("{}{}", options("huge"), "x".repeat(MAX_MESSAGE));
    // The client may see the close before its own send completes.
    let _ = ws.send(Message::text(huge)).await;
    let close = loop {
        match next_from_server(&mut ws).await {
            Some(Message::Close(frame)) => break frame,
            Some(_) => continue,
            None => panic!("connection ended without a Close frame"),
        }
    };
    let frame = close.expect("the Close frame carries a code");
    assert_eq!(frame.code, CloseCode::Size);
    assert!(frame.reason.contains("SIP message over 2048 bytes"));
    assert!(matches!(
        next_inbound(&mut rx).await.payload,
        Payload::Closed
    ));
}

#[tokio::test]
async fn fragments_adding_up_past_the_limit_close_too() {
    let (_transports, _rx, addr) = start(StreamLimits::default()).await;
    let mut ws = connect(addr).await;
    let part = Bytes::from(vec![b'x'; MAX_MESSAGE / 2 + 1]);
    let _ = ws
        .send(Message::Frame(Frame::message(
            part.clone(),
            OpCode::Data(Data::Text),
            false,
        )))
        .await;
    let _ = ws
        .send(Message::Frame(Frame::message(
            part,
            OpCode::Data(Data::Continue),
            true,
        )))
        .await;
    match next_from_server(&mut ws).await {
        Some(Message::Close(Some(frame))) => assert_eq!(frame.code, CloseCode::Size),
        other => panic!("expected a Close 1009, got {other:?}"),
    }
}

#[tokio::test]
async fn malformed_sip_in_a_frame_is_reported_and_the_connection_stays() {
    let (_transports, mut rx, addr) = start(StreamLimits::default()).await;
    let mut ws = connect(addr).await;
    ws.send(Message::text("this is not SIP\r\n\r\n"))
        .await
        .expect("client sends");
    assert!(matches!(
        next_inbound(&mut rx).await.payload,
        Payload::Malformed { .. }
    ));
    ws.send(Message::text(options("still-open")))
        .await
        .expect("client sends");
    assert!(matches!(
        next_inbound(&mut rx).await.payload,
        Payload::Message(_)
    ));
}

#[tokio::test]
async fn a_frame_that_never_completes_is_closed_by_the_message_deadline() {
    let limits = StreamLimits {
        header_timeout: Duration::from_millis(200),
        body_timeout: Duration::from_millis(200),
        ..StreamLimits::default()
    };
    let (transports, mut rx, addr) = start(limits).await;
    let ws = connect(addr).await;
    let mut raw = ws.into_inner();
    // A masked text frame header announcing 100 bytes, then only 3 of them.
    raw.write_all(&[0x81, 0x80 | 100, 1, 2, 3, 4, b'a', b'b', b'c'])
        .await
        .expect("client writes");
    assert!(matches!(
        next_inbound(&mut rx).await.payload,
        Payload::Closed
    ));
    assert_eq!(
        transports
            .stats()
            .read_timeouts
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
}

#[tokio::test]
async fn connection_caps_apply_to_websocket_listeners() {
    let limits = StreamLimits {
        max_per_source: 1,
        ..StreamLimits::default()
    };
    let (transports, _rx, addr) = start(limits).await;
    let _first = connect(addr).await;
    let stream = TcpStream::connect(addr).await.expect("TCP accept");
    let request = format!("ws://{addr}/")
        .into_client_request()
        .expect("valid URL");
    let refused = tokio::time::timeout(WAIT, tokio_tungstenite::client_async(request, stream))
        .await
        .expect("the refusal comes in time");
    assert!(
        refused.is_err(),
        "a second connection from one source is closed"
    );
    assert_eq!(
        transports
            .stats()
            .connections_refused
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
}

/// A fresh self-signed certificate for `localhost`: (certificate PEM, key PEM).
fn certificate() -> (String, String) {
    let made = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()])
        .expect("rcgen makes a certificate");
    (made.cert.pem(), made.signing_key.serialize_pem())
}

fn identity((cert, key): &(String, String)) -> transport::TlsIdentity {
    transport::TlsIdentity::from_pem(cert.as_bytes(), key.as_bytes(), "cert", "key")
        .expect("rcgen's pair is usable")
}

/// A TLS client trusting only `cert`.
#[allow(deprecated)] // rustls' ring provider, as the server uses (see transport::tls)
fn client_trusting(cert: &str) -> tokio_rustls::TlsConnector {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(rustls::pki_types::CertificateDer::from_pem_slice(cert.as_bytes()).expect("PEM"))
        .expect("a usable root");
    let config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("default versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    tokio_rustls::TlsConnector::from(std::sync::Arc::new(config))
}

/// Connects over TLS trusting `cert`, then upgrades with the sip subprotocol.
async fn wss_upgrade(addr: SocketAddr, cert: &str) -> Result<(), String> {
    let tcp = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    let name = rustls::pki_types::ServerName::try_from("localhost").map_err(|e| e.to_string())?;
    let tls = tokio::time::timeout(WAIT, client_trusting(cert).connect(name, tcp))
        .await
        .map_err(|_| "TLS handshake timed out".to_owned())?
        .map_err(|e| format!("TLS: {e}"))?;
    let mut request = format!("wss://localhost:{}/", addr.port())
        .into_client_request()
        .map_err(|e| e.to_string())?;
    request
        .headers_mut()
        .insert("Sec-WebSocket-Protocol", HeaderValue::from_static("sip"));
    let (mut ws, _) = tokio_tungstenite::client_async(request, tls)
        .await
        .map_err(|e| format!("upgrade: {e}"))?;
    ws.send(Message::Ping(Bytes::from_static(b"x")))
        .await
        .map_err(|e| e.to_string())?;
    match tokio::time::timeout(WAIT, ws.next()).await {
        Ok(Some(Ok(Message::Pong(_)))) => Ok(()),
        other => Err(format!("expected a pong over wss, got {other:?}")),
    }
}

#[tokio::test]
async fn wss_presents_the_tls_certificate_and_a_replaced_one_to_new_connections() {
    let first = certificate();
    let server_identity = transport::ServerIdentity::new(identity(&first));
    let (tx, _rx) = mpsc::channel(64);
    let config = TransportConfig {
        wss: vec![SocketAddr::from(([127, 0, 0, 1], 0))],
        tls_identity: Some(server_identity.clone()),
        ..TransportConfig::without_listeners(MAX_MESSAGE, Duration::from_secs(300))
    };
    let transports = Transports::start(config, tx).await.expect("listeners bind");
    let addr = transports.wss_addrs()[0];
    wss_upgrade(addr, &first.0)
        .await
        .expect("wss works with the configured certificate");

    // What a SIGHUP reload does: new handshakes present the new certificate.
    let second = certificate();
    server_identity.replace(identity(&second));
    let refused = wss_upgrade(addr, &first.0).await;
    assert!(
        refused.as_ref().is_err_and(|e| e.starts_with("TLS")),
        "a client trusting only the old certificate is refused: {refused:?}"
    );
    wss_upgrade(addr, &second.0)
        .await
        .expect("wss works with the replaced certificate");
}

#[tokio::test]
async fn wss_without_a_certificate_does_not_start() {
    let (tx, _rx) = mpsc::channel(64);
    let config = TransportConfig {
        wss: vec![SocketAddr::from(([127, 0, 0, 1], 0))],
        ..TransportConfig::without_listeners(MAX_MESSAGE, Duration::from_secs(300))
    };
    match Transports::start(config, tx).await {
        Err(error) => assert!(error.to_string().contains("WSS"), "{error}"),
        Ok(_) => panic!("a wss listener without a certificate started"),
    }
}

#[tokio::test]
async fn an_idle_connection_is_closed_unless_a_registration_pins_it() {
    let (tx, mut rx) = mpsc::channel(64);
    let config = TransportConfig {
        ws: vec![SocketAddr::from(([127, 0, 0, 1], 0))],
        ..TransportConfig::without_listeners(MAX_MESSAGE, Duration::from_secs(1))
    };
    let transports = Transports::start(config, tx).await.expect("listeners bind");
    let addr = transports.ws_addrs()[0];

    // Pinned: a registration lives on it for an hour (what the core asks after a REGISTER), so
    // it outlives the idle timeout.
    let mut pinned = connect(addr).await;
    let pinned_addr = pinned.get_ref().local_addr().expect("connected socket");
    transports.keep_connection(
        pinned_addr,
        Some(std::time::Instant::now() + Duration::from_secs(3600)),
    );

    // Unpinned: closed with a Close frame once idle.
    let mut idle = connect(addr).await;
    match next_from_server(&mut idle).await {
        Some(Message::Close(Some(frame))) => assert_eq!(frame.reason.as_str(), "idle"),
        other => panic!("expected an idle close, got {other:?}"),
    }
    let closed = next_inbound(&mut rx).await;
    assert!(matches!(closed.payload, Payload::Closed));
    assert_ne!(
        closed.source.addr, pinned_addr,
        "the idle one closed, not the pinned one"
    );
    // The pinned one still carries messages after the other timed out.
    pinned
        .send(Message::text(options("still-pinned")))
        .await
        .expect("client sends");
    let next = next_inbound(&mut rx).await;
    assert_eq!(next.source.addr, pinned_addr);
    assert!(matches!(next.payload, Payload::Message(_)));
}
