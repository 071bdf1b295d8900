//! What the PostgreSQL sink and report source share: the configuration, the error type, a
//! blocking session over one connection, and the schema.
//!
//! Callers of this crate are synchronous (the binary's CDR thread, the report command), so
//! each connection owns a small current-thread tokio runtime and blocks on it; no async
//! leaks out of the crate.

mod schema;
mod session;

use std::time::Duration;

pub use schema::migrations;
pub(crate) use session::Session;

/// How to reach the CDR database.
#[derive(Clone, PartialEq, Eq)]
pub struct PostgresConfig {
    /// Connection URL, e.g. `postgres://switchboard:secret@db.example.net:5432/cdr`.
    pub url: String,
    /// Give up connecting after this long (default 2 s), so a dead database fails a batch
    /// quickly instead of stalling the CDR thread.
    pub connect_timeout: Duration,
    /// Give up on one batch insert or report page after this long (default 30 s); the
    /// connection is then dropped and re-opened on the next call.
    pub operation_timeout: Duration,
    /// The writing node's name, stored with every row: rows are keyed by (node, seq), so
    /// several nodes can share one database. Empty by default.
    pub node: String,
}

impl PostgresConfig {
    /// A configuration for `url` with the default timeouts.
    pub fn new(url: impl Into<String>) -> PostgresConfig {
        PostgresConfig {
            url: url.into(),
            connect_timeout: Duration::from_secs(2),
            operation_timeout: Duration::from_secs(30),
            node: String::new(),
        }
    }

    /// This configuration, writing as `node`.
    pub fn with_node(self, node: impl Into<String>) -> PostgresConfig {
        PostgresConfig {
            node: node.into(),
            ..self
        }
    }
}

/// Hand-written so the password in the URL never reaches a log line.
impl std::fmt::Debug for PostgresConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresConfig")
            .field("url", &redact_password(&self.url))
            .field("connect_timeout", &self.connect_timeout)
            .field("operation_timeout", &self.operation_timeout)
            .field("node", &self.node)
            .finish()
    }
}

/// `postgres://user:secret@host/db` → `postgres://user:***@host/db`.
fn redact_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let Some((credentials, host)) = rest.rsplit_once('@') else {
        return url.to_string();
    };
    match credentials.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_string(),
    }
}

/// Errors talking to PostgreSQL. Messages never include the connection URL (it may carry a
/// password).
#[derive(Debug, thiserror::Error)]
pub enum PostgresError {
    /// The connection URL could not be parsed.
    #[error("postgres: invalid connection URL: {0}")]
    InvalidUrl(String),
    /// The private tokio runtime could not be created.
    #[error("postgres: cannot start the client runtime: {0}")]
    Runtime(#[source] std::io::Error),
    /// The server did not accept a connection within the connect timeout.
    #[error("postgres: no connection within {0:?}")]
    ConnectTimeout(Duration),
    /// Connecting failed (refused, authentication, unknown database, …).
    #[error("postgres: cannot connect: {0}")]
    Connect(#[source] sqlx::Error),
    /// Creating or upgrading the schema failed.
    #[error("postgres: schema migration failed: {0}")]
    Migrate(#[source] sqlx::migrate::MigrateError),
    /// An operation did not finish within the operation timeout.
    #[error("postgres: {op} did not finish within {timeout:?}")]
    Timeout {
        /// What was being done.
        op: &'static str,
        /// The limit that was hit.
        timeout: Duration,
    },
    /// A statement failed (server gone, constraint, …).
    #[error("postgres: {op} failed: {source}")]
    Query {
        /// What was being done.
        op: &'static str,
        /// What the driver reported.
        source: sqlx::Error,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_hides_the_password() {
        let config = PostgresConfig::new("postgres://cdr:hunter2@db:5432/cdr");
        let shown = format!("{config:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("postgres://cdr:***@db:5432/cdr"), "{shown}");
    }

    #[test]
    fn urls_without_password_are_shown_as_is() {
        assert_eq!(
            redact_password("postgres://cdr@db/cdr"),
            "postgres://cdr@db/cdr"
        );
        assert_eq!(redact_password("postgres:///cdr"), "postgres:///cdr");
        assert_eq!(redact_password("not a url"), "not a url");
        assert_eq!(
            redact_password("postgres://u:p@ss@db/x"),
            "postgres://u:***@db/x"
        );
    }

    #[test]
    fn defaults_fail_fast() {
        let config = PostgresConfig::new("postgres://db/cdr");
        assert_eq!(config.connect_timeout, Duration::from_secs(2));
        assert!(config.operation_timeout > config.connect_timeout);
    }
}
