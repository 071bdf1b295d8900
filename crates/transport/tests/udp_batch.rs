//! Many UDP messages sent at once leave in batches (sendmmsg): every datagram reaches its
//! peer, whole and in order, whatever the batch boundaries, and mixed with messages on other
//! transports.

use bytes::Bytes;
use sip::{Peer, Transmit};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use transport::{StreamLimits, TransportConfig, Transports};

const WAIT: Duration = Duration::from_secs(30);

async fn start() -> Transports {
    let (tx, _rx) = mpsc::channel(64);
    let config = TransportConfig {
        udp: vec![SocketAddr::from(([127, 0, 0, 1], 0))],
        tcp: Vec::new(),
        tls: Vec::new(),
        ws: Vec::new(),
        wss: Vec::new(),
        tls_identity: None,
        tls_client_roots: None,
        tls_connector: None,
        max_message_bytes: 65_535,
        idle_timeout: Duration::from_secs(300),
        limits: StreamLimits::default(),
    };
    Transports::start(config, tx).await.expect("UDP binds")
}

#[tokio::test]
async fn a_burst_to_several_peers_arrives_whole_and_in_order_across_batch_boundaries() {
    let transports = start().await;
    let mut peers = Vec::new();
    for _ in 0..3 {
        let socket = UdpSocket::bind("127.0.0.1:0").await.expect("peer binds");
        let _ = socket2::SockRef::from(&socket).set_recv_buffer_size(4 << 20);
        peers.push(socket);
    }
    // 150 messages round-robin over three peers: more than two batches of 64, each peer's
    // messages spread over all of them, and sizes that differ message to message.
    let messages: Vec<(usize, String)> = (0..150)
        .map(|n| (n % 3, format!("message {n} {}", "x".repeat(n * 7))))
        .collect();
    let transmits: Vec<Transmit> = messages
        .iter()
        .map(|(peer, text)| Transmit {
            peer: Peer::udp(peers[*peer].local_addr().expect("bound")),
            data: Bytes::from(text.clone()),
        })
        .collect();
    transports.send_all(transmits);
    assert_eq!(
        transports
            .stats()
            .sent
            .load(std::sync::atomic::Ordering::Relaxed),
        150
    );
    let mut buffer = vec![0u8; 65_535];
    for (index, peer) in peers.iter().enumerate() {
        for (_, expected) in messages.iter().filter(|(p, _)| *p == index) {
            let (len, from) = tokio::time::timeout(WAIT, peer.recv_from(&mut buffer))
                .await
                .expect("the datagram arrives")
                .expect("received");
            assert_eq!(&buffer[..len], expected.as_bytes());
            assert_eq!(from, transports.udp_addrs()[0]);
        }
    }
}
