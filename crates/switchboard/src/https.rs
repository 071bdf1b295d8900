//! HTTPS for the API and web pages (`[http] tls_cert` / `tls_key`): the limited listener's
//! connections (caps, read deadlines) wrapped in TLS. The handshake runs on the connection's
//! own task, on its first read or write, not in the accept loop, so a client that stalls its
//! handshake holds only its own slot, and the limited stream's request deadline closes it.

use std::future::Future as _;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_rustls::server::TlsStream;
use tokio_rustls::{Accept, TlsAcceptor};
use transport::ServerIdentity;

use crate::http_limits::{LimitedListener, LimitedStream};

/// A [`LimitedListener`] whose connections speak TLS.
pub struct HttpsListener {
    inner: LimitedListener,
    acceptor: TlsAcceptor,
}

impl HttpsListener {
    /// Wraps `inner`; handshakes present `identity` as it is at the time of each handshake.
    pub fn new(inner: LimitedListener, identity: &Arc<ServerIdentity>) -> anyhow::Result<Self> {
        let mut config = Arc::unwrap_or_clone(identity.server_config(None)?);
        // axum serves HTTP/1.1 here; offering h2 would make browsers try it.
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Self {
            inner,
            acceptor: TlsAcceptor::from(Arc::new(config)),
        })
    }
}

impl axum::serve::Listener for HttpsListener {
    type Io = HttpsStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        let (stream, peer) = self.inner.accept().await;
        let state = State::Handshaking(Box::new(self.acceptor.accept(stream)), peer);
        (HttpsStream { state }, peer)
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

/// One HTTPS connection: handshaking until the first I/O completes it, then TLS.
pub struct HttpsStream {
    state: State,
}

enum State {
    Handshaking(Box<Accept<LimitedStream>>, SocketAddr),
    Ready(Box<TlsStream<LimitedStream>>),
    Failed,
}

impl HttpsStream {
    /// Drives the handshake; `Ready(Ok)` once the TLS stream is usable.
    fn poll_handshake(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if let State::Handshaking(accept, peer) = &mut self.state {
            match Pin::new(accept.as_mut()).poll(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Ok(stream)) => self.state = State::Ready(Box::new(stream)),
                Poll::Ready(Err(error)) => {
                    tracing::info!(peer = %peer, %error, "HTTPS handshake failed");
                    self.state = State::Failed;
                    return Poll::Ready(Err(error));
                }
            }
        }
        match self.state {
            State::Failed => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::NotConnected,
                "TLS handshake failed",
            ))),
            _ => Poll::Ready(Ok(())),
        }
    }

    fn ready(&mut self) -> Option<Pin<&mut TlsStream<LimitedStream>>> {
        match &mut self.state {
            State::Ready(stream) => Some(Pin::new(stream.as_mut())),
            _ => None,
        }
    }
}

macro_rules! after_handshake {
    ($this:expr, $cx:expr, $stream:ident => $op:expr) => {{
        let this = $this.get_mut();
        match this.poll_handshake($cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(Err(error)) => return Poll::Ready(Err(error)),
            Poll::Ready(Ok(())) => {}
        }
        match this.ready() {
            Some($stream) => $op,
            None => Poll::Ready(Err(io::Error::from(io::ErrorKind::NotConnected))),
        }
    }};
}

impl AsyncRead for HttpsStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        after_handshake!(self, cx, stream => stream.poll_read(cx, buf))
    }
}

impl AsyncWrite for HttpsStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        after_handshake!(self, cx, stream => stream.poll_write(cx, data))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        after_handshake!(self, cx, stream => stream.poll_flush(cx))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        after_handshake!(self, cx, stream => stream.poll_shutdown(cx))
    }
}
