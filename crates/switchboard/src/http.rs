//! The HTTP side: health endpoints now; the agent/supervisor API and metrics hang off the
//! same router.

use crate::config::Config;
use crate::runtime::Node;
use anyhow::Context;
use axum::routing::get;
use axum::Router;
use std::net::SocketAddr;
use std::sync::Arc;

/// Binds the HTTP listener and serves in the background; returns the bound address.
pub async fn serve(config: Arc<Config>, node: Arc<Node>) -> anyhow::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(config.http.listen)
        .await
        .with_context(|| format!("binding HTTP listener {}", config.http.listen))?;
    let addr = listener.local_addr()?;
    let app = Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(|| async { "ready\n" }))
        .with_state(node);
    tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, app).await {
            tracing::error!(%error, "HTTP server stopped");
        }
    });
    Ok(addr)
}
