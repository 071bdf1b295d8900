//! Outgoing TLS connections (the client side) against a rustls server in the test with
//! certificates from a test CA: a destination is connected to as its route says and its
//! certificate is verified by the route's name; a wrong name or an unknown CA fails the
//! handshake and is counted; `verify = false` accepts a self-signed certificate; the new
//! connection is reused for the next message and for answers from the peer; and a message
//! for a phone's dead registration connection goes to the route's address instead.

use bytes::Bytes;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use sip::{Peer, Transmit};
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use transport::{Inbound, Payload, TlsConnector, TlsTarget, TransportConfig, Transports};

const WAIT: Duration = Duration::from_secs(30);

fn options(branch: &str) -> String {
    format!(
        "OPTIONS sip:phone@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TLS 127.0.0.1:5061;branch=z9hG4bK{branch}\r\nFrom: <sip:sb@127.0.0.1>;tag=1\r\nTo: <sip:phone@127.0.0.1>\r\nCall-ID: {branch}\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    )
}

struct Ca {
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
    der: CertificateDer<'static>,
}

fn ca() -> Ca {
    let key = rcgen::KeyPair::generate().expect("key");
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "lab CA");
    params.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::DigitalSignature,
    ];
    let cert = params.self_signed(&key).expect("CA certificate");
    Ca {
        der: cert.der().clone(),
        issuer: rcgen::Issuer::new(params, key),
    }
}

/// A server certificate for `names`, signed by `ca` (or self-signed without one).
fn server_cert(
    ca: Option<&Ca>,
    names: &[&str],
) -> (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>) {
    let key = rcgen::KeyPair::generate().expect("key");
    let params =
        rcgen::CertificateParams::new(names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>())
            .expect("params");
    let cert = match ca {
        Some(ca) => params.signed_by(&key, &ca.issuer),
        None => params.self_signed(&key),
    }
    .expect("certificate");
    let key = PrivateKeyDer::from_pem_slice(key.serialize_pem().as_bytes()).expect("key PEM");
    (vec![cert.der().clone()], key)
}

/// A TLS server on 127.0.0.1 that sends each accepted connection's stream to the test.
async fn tls_server(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> (
    SocketAddr,
    mpsc::Receiver<tokio_rustls::server::TlsStream<tokio::net::TcpStream>>,
) {
    serve_tls(chain, key, None).await
}

#[allow(deprecated)] // ring lacks post-quantum key exchange, which no SIP peer uses
/// [`tls_server`] that, with `client_ca`, requires a client certificate chaining to it (a
/// carrier demanding mutual TLS).
async fn serve_tls(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    client_ca: Option<&Ca>,
) -> (
    SocketAddr,
    mpsc::Receiver<tokio_rustls::server::TlsStream<tokio::net::TcpStream>>,
) {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .expect("versions");
    let builder = match client_ca {
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            roots.add(ca.der.clone()).expect("client CA");
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider,
            )
            .build()
            .expect("client verifier");
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let config = builder.with_single_cert(chain, key).expect("server config");
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (tx, rx) = mpsc::channel(8);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            let tx = tx.clone();
            tokio::spawn(async move {
                // A refused handshake simply ends here: the test sees no connection.
                if let Ok(stream) = acceptor.accept(stream).await {
                    let _ = tx.send(stream).await;
                }
            });
        }
    });
    (addr, rx)
}

async fn start(extra: Option<&Ca>) -> (Transports, mpsc::Receiver<Inbound>) {
    let roots = extra.map(|ca| {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(ca.der.clone()).expect("CA usable as root");
        roots
    });
    let (tx, rx) = mpsc::channel(64);
    let config = TransportConfig {
        tls_connector: Some(Arc::new(
            TlsConnector::new(roots.as_ref()).expect("client config"),
        )),
        ..TransportConfig::without_listeners(65535, Duration::from_secs(300))
    };
    let transports = Transports::start(config, tx).await.expect("start");
    (transports, rx)
}

fn send(transports: &Transports, to: SocketAddr, branch: &str) {
    transports.send(Transmit {
        peer: Peer::tls(to),
        data: Bytes::from(options(branch)),
    });
}

async fn read_message<S: tokio::io::AsyncRead + Unpin>(stream: &mut S, branch: &str) {
    let mut received = Vec::new();
    let needle = format!("Call-ID: {branch}");
    tokio::time::timeout(WAIT, async {
        while !String::from_utf8_lossy(&received).contains(&needle) {
            let mut buffer = [0u8; 4096];
            let n = stream.read(&mut buffer).await.expect("read");
            assert!(n > 0, "connection closed before {branch} arrived");
            received.extend_from_slice(&buffer[..n]);
        }
    })
    .await
    .expect("the message arrives in time");
}

async fn wait_for_failures(transports: &Transports, count: u64) {
    tokio::time::timeout(WAIT, async {
        while transports
            .stats()
            .tls_connect_failures
            .load(Ordering::Relaxed)
            < count
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the failure is counted in time");
}

fn route(connect: SocketAddr, name: &str, verify: bool) -> Option<TlsTarget> {
    Some(TlsTarget {
        connect,
        server_name: name.to_owned(),
        verify,
        until: None,
    })
}

#[tokio::test]
async fn a_certificate_naming_the_route_is_accepted_and_the_connection_reused() {
    let ca = ca();
    let (chain, key) = server_cert(Some(&ca), &["carrier.example"]);
    let (addr, mut accepted) = tls_server(chain, key).await;
    let (transports, mut inbound) = start(Some(&ca)).await;
    transports.route_tls(addr, route(addr, "carrier.example", true));
    send(&transports, addr, "first");
    let mut stream = tokio::time::timeout(WAIT, accepted.recv())
        .await
        .expect("connected in time")
        .expect("server running");
    assert_eq!(
        stream.get_ref().1.server_name(),
        Some("carrier.example"),
        "SNI carries the route's name"
    );
    read_message(&mut stream, "first").await;
    send(&transports, addr, "second");
    read_message(&mut stream, "second").await;
    // The peer answers over the same connection; it arrives as TLS from the peer's address.
    stream
        .write_all(b"SIP/2.0 200 OK\r\nVia: SIP/2.0/TLS 127.0.0.1:5061;branch=z9hG4bKfirst\r\nFrom: <sip:sb@127.0.0.1>;tag=1\r\nTo: <sip:phone@127.0.0.1>;tag=2\r\nCall-ID: first\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n")
        .await
        .expect("write");
    let answer = tokio::time::timeout(WAIT, inbound.recv())
        .await
        .expect("delivered in time")
        .expect("open");
    assert_eq!(answer.source, Peer::tls(addr));
    assert!(matches!(answer.payload, Payload::Message(_)));
    assert_eq!(
        transports.stats().connections.load(Ordering::Relaxed),
        1,
        "one connection carried both messages and the answer"
    );
    assert_eq!(
        transports
            .stats()
            .tls_connect_failures
            .load(Ordering::Relaxed),
        0
    );
}

#[tokio::test]
async fn a_certificate_for_another_name_or_from_an_unknown_ca_is_refused_and_counted() {
    let ca = ca();
    let (chain, key) = server_cert(Some(&ca), &["other.example"]);
    let (addr, mut accepted) = tls_server(chain, key).await;
    let (transports, _inbound) = start(Some(&ca)).await;
    transports.route_tls(addr, route(addr, "carrier.example", true));
    send(&transports, addr, "wrong-name");
    wait_for_failures(&transports, 1).await;

    // Without the lab CA among the roots, the right name does not help either.
    let (chain, key) = server_cert(Some(&ca), &["carrier.example"]);
    let (addr2, mut accepted2) = tls_server(chain, key).await;
    let (untrusting, _inbound2) = start(None).await;
    untrusting.route_tls(addr2, route(addr2, "carrier.example", true));
    send(&untrusting, addr2, "unknown-ca");
    wait_for_failures(&untrusting, 1).await;
    assert!(accepted.try_recv().is_err() && accepted2.try_recv().is_err());
    assert_eq!(transports.stats().connections.load(Ordering::Relaxed), 0);
}

#[tokio::test]
async fn without_a_route_the_ip_address_must_be_in_the_certificate() {
    let ca = ca();
    let (chain, key) = server_cert(Some(&ca), &["127.0.0.1"]);
    let (addr, mut accepted) = tls_server(chain, key).await;
    let (transports, _inbound) = start(Some(&ca)).await;
    send(&transports, addr, "by-ip");
    let mut stream = tokio::time::timeout(WAIT, accepted.recv())
        .await
        .expect("connected in time")
        .expect("server running");
    read_message(&mut stream, "by-ip").await;

    let (chain, key) = server_cert(Some(&ca), &["phone.example"]);
    let (addr2, _accepted2) = tls_server(chain, key).await;
    send(&transports, addr2, "no-ip-san");
    wait_for_failures(&transports, 1).await;
}

#[tokio::test]
async fn an_unverified_route_takes_a_self_signed_phone_at_its_contact_address() {
    let (chain, key) = server_cert(None, &["phone.local"]);
    let (contact, mut accepted) = tls_server(chain, key).await;
    let (transports, _inbound) = start(None).await;
    // The phone registered from 127.0.0.1:40000 (its connection is gone); its Contact says
    // where it listens for TLS.
    let registered_from = SocketAddr::from(([127, 0, 0, 1], 40000));
    transports.route_tls(registered_from, route(contact, "127.0.0.1", false));
    send(&transports, registered_from, "to-phone");
    let mut stream = tokio::time::timeout(WAIT, accepted.recv())
        .await
        .expect("connected in time")
        .expect("server running");
    read_message(&mut stream, "to-phone").await;
    // The next request for the binding finds the connection at the Contact address.
    send(&transports, registered_from, "again");
    read_message(&mut stream, "again").await;

    // The same phone with verification on: its self-signed certificate is refused.
    let (verifying, _inbound2) = start(None).await;
    verifying.route_tls(registered_from, route(contact, "127.0.0.1", true));
    send(&verifying, registered_from, "verified");
    wait_for_failures(&verifying, 1).await;
}

#[tokio::test]
async fn extra_cas_replaced_while_running_apply_to_new_connections() {
    let ca = ca();
    let (chain, key) = server_cert(Some(&ca), &["carrier.example"]);
    let (addr, mut accepted) = tls_server(chain, key).await;
    let (transports, _inbound) = start(None).await;
    transports.route_tls(addr, route(addr, "carrier.example", true));
    send(&transports, addr, "before");
    wait_for_failures(&transports, 1).await;
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.der.clone()).expect("CA usable as root");
    transports
        .replace_trust(None, Some(&roots))
        .expect("a usable CA");
    send(&transports, addr, "after");
    let mut stream = tokio::time::timeout(WAIT, accepted.recv())
        .await
        .expect("connected in time")
        .expect("server running");
    read_message(&mut stream, "after").await;
}

/// The next delivery to the core, which must be a failed-connection report.
async fn connect_failure(inbound: &mut mpsc::Receiver<Inbound>) -> (Peer, String) {
    let report = tokio::time::timeout(WAIT, inbound.recv())
        .await
        .expect("reported in time")
        .expect("open");
    match report.payload {
        Payload::ConnectFailed { reason } => (report.source, reason),
        other => panic!("expected ConnectFailed, got {other:?}"),
    }
}

#[tokio::test]
async fn a_refused_certificate_is_reported_to_the_core_for_the_destination() {
    let ca = ca();
    let (chain, key) = server_cert(Some(&ca), &["other.example"]);
    let (addr, _accepted) = tls_server(chain, key).await;
    let (transports, mut inbound) = start(Some(&ca)).await;
    transports.route_tls(addr, route(addr, "carrier.example", true));
    send(&transports, addr, "refused");
    let (destination, reason) = connect_failure(&mut inbound).await;
    assert_eq!(
        destination,
        Peer::tls(addr),
        "named as the core addressed it"
    );
    assert!(reason.contains("certificate"), "reason: {reason}");
}

#[tokio::test]
async fn a_refused_tcp_connection_is_reported_to_the_core_for_the_destination() {
    // A port nobody listens on: bound, then released.
    let closed = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind")
        .local_addr()
        .expect("addr");
    let (transports, mut inbound) = start(None).await;
    transports.send(Transmit {
        peer: Peer::tcp(closed),
        data: Bytes::from(options("tcp-refused")),
    });
    let (destination, reason) = connect_failure(&mut inbound).await;
    assert_eq!(destination, Peer::tcp(closed));
    assert!(
        reason.to_lowercase().contains("refused"),
        "reason: {reason}"
    );
}

/// A client certificate for `name` signed by `ca`, as Switchboard loads one (PEM).
fn own_certificate(ca: &Ca, name: &str) -> transport::TlsIdentity {
    let key = rcgen::KeyPair::generate().expect("key");
    let params = rcgen::CertificateParams::new(vec![name.to_owned()]).expect("params");
    let cert = params.signed_by(&key, &ca.issuer).expect("certificate");
    transport::TlsIdentity::from_pem(
        cert.pem().as_bytes(),
        key.serialize_pem().as_bytes(),
        "client cert",
        "client key",
    )
    .expect("identity")
}

#[tokio::test]
async fn our_client_certificate_is_presented_to_a_carrier_that_requires_one() {
    let ca = ca();
    let (chain, key) = server_cert(Some(&ca), &["carrier.example"]);
    let (addr, mut accepted) = serve_tls(chain, key, Some(&ca)).await;
    let (transports, mut inbound) = start(Some(&ca)).await;
    transports.route_tls(addr, route(addr, "carrier.example", true));

    // Without a client certificate the carrier ends the handshake: reported as a failure.
    send(&transports, addr, "no-certificate");
    let (destination, reason) = connect_failure(&mut inbound).await;
    assert_eq!(destination, Peer::tls(addr));
    assert!(reason.contains("refused the handshake"), "reason: {reason}");
    assert_eq!(
        transports
            .stats()
            .tls_connect_failures
            .load(Ordering::Relaxed),
        1,
        "counted as a failed TLS connection"
    );

    // With one from the carrier's CA, the connection opens and carries the message.
    transports
        .tls_connector()
        .expect("a TLS client is configured")
        .replace_own_certificate(Some(&own_certificate(&ca, "switchboard.example")));
    send(&transports, addr, "with-certificate");
    let mut stream = tokio::time::timeout(WAIT, accepted.recv())
        .await
        .expect("connected in time")
        .expect("server running");
    let presented = stream.get_ref().1.peer_certificates().map_or(0, <[_]>::len);
    assert_eq!(presented, 1, "the server saw our certificate");
    read_message(&mut stream, "with-certificate").await;
}
