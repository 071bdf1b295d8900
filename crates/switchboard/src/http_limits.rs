//! Connection limits for the HTTP listener: the same per-source cap and read deadlines as
//! the SIP stream listeners (`[security]`), and a global cap of a quarter of
//! `RLIMIT_NOFILE` (SIP streams take another quarter at most). A connection over a cap is
//! closed at once; a request whose bytes trickle in (slowloris) or a connection idle for
//! `idle_timeout_s` is closed.

use crate::config::Config;
use std::future::Future as _;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use transport::{AcceptedConnections, StreamLimits};

/// Limits of the HTTP listener.
#[derive(Debug, Clone)]
pub struct HttpLimits {
    /// Caps and per-request deadline (header + body timeouts).
    pub stream: StreamLimits,
    /// An idle keep-alive connection closes after this.
    pub idle_timeout: Duration,
}

impl HttpLimits {
    /// The `[security]` limits applied to HTTP.
    pub fn from_config(config: &Config) -> Self {
        Self {
            stream: crate::security::connection_limits::stream_limits(config),
            idle_timeout: config.security.idle_timeout,
        }
    }
}

/// A TCP listener that enforces [`HttpLimits`].
pub struct LimitedListener {
    listener: TcpListener,
    limits: HttpLimits,
    accepted: Arc<AcceptedConnections>,
    epoch: Instant,
}

impl LimitedListener {
    /// Wraps a bound listener.
    pub fn new(listener: TcpListener, limits: HttpLimits) -> Self {
        Self {
            listener,
            limits,
            accepted: Arc::new(AcceptedConnections::default()),
            epoch: Instant::now(),
        }
    }
}

impl axum::serve::Listener for LimitedListener {
    type Io = LimitedStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let (stream, peer) = match self.listener.accept().await {
                Ok(accepted) => accepted,
                Err(error) => {
                    // EMFILE and friends: keep accepting once descriptors free up.
                    tracing::warn!(%error, "HTTP accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            if let Err(refusal) = self.accepted.try_acquire(peer.ip(), &self.limits.stream) {
                drop(stream);
                self.accepted.log_refusal(peer, refusal, self.epoch, "HTTP");
                continue;
            }
            let stream = LimitedStream {
                stream,
                peer,
                accepted: self.accepted.clone(),
                request_budget: self.limits.stream.header_timeout + self.limits.stream.body_timeout,
                idle_timeout: self.limits.idle_timeout,
                request_started: None,
                deadline: Box::pin(tokio::time::sleep(self.limits.idle_timeout)),
            };
            return (stream, peer);
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.listener.local_addr()
    }
}

/// An accepted connection: counted until dropped, and closed (reads fail with `TimedOut`)
/// when a request takes longer than header + body timeouts to arrive or the connection
/// idles past the idle timeout.
pub struct LimitedStream {
    stream: TcpStream,
    peer: SocketAddr,
    accepted: Arc<AcceptedConnections>,
    request_budget: Duration,
    idle_timeout: Duration,
    /// When the first byte of the request being read arrived (cleared by the response).
    request_started: Option<Instant>,
    deadline: Pin<Box<tokio::time::Sleep>>,
}

impl LimitedStream {
    fn rearm(&mut self) {
        let at = match self.request_started {
            Some(start) => start + self.request_budget,
            None => Instant::now() + self.idle_timeout,
        };
        self.deadline.as_mut().reset(at.into());
    }
}

impl Drop for LimitedStream {
    fn drop(&mut self) {
        self.accepted.release(self.peer.ip());
    }
}

impl AsyncRead for LimitedStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.stream).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before && this.request_started.is_none() {
                    this.request_started = Some(Instant::now());
                    this.rearm();
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(error)) => Poll::Ready(Err(error)),
            Poll::Pending => match this.deadline.as_mut().poll(cx) {
                Poll::Ready(()) => {
                    if this.request_started.is_some() {
                        tracing::info!(peer = %this.peer, "HTTP connection closed: request not complete in time");
                    }
                    Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "HTTP read deadline passed",
                    )))
                }
                Poll::Pending => Poll::Pending,
            },
        }
    }
}

impl AsyncWrite for LimitedStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        // A response is going out: the request was read in time; idle time starts over.
        if this.request_started.take().is_some() {
            this.rearm();
        }
        Pin::new(&mut this.stream).poll_write(cx, data)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}
