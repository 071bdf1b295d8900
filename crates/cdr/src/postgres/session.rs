//! One lazily opened connection driven from blocking code through a private runtime.
//!
//! The connection is opened on first use and dropped after any failure, so the next call
//! reconnects: the caller (the forwarder's owner) paces retries, the session never loops.

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection, PgConnection};
use tokio::runtime::Runtime;

use super::{schema, PostgresConfig, PostgresError};

/// A blocking handle on one PostgreSQL connection.
pub(crate) struct Session {
    runtime: Runtime,
    options: PgConnectOptions,
    connect_timeout: Duration,
    operation_timeout: Duration,
    /// Whether each new connection first brings the schema up to date.
    migrate: bool,
    connection: Option<PgConnection>,
}

impl Session {
    /// Parses the URL and starts the runtime; does not connect yet, so a database that is
    /// down at start-up does not stop the caller (records wait in the journal).
    pub(crate) fn new(config: &PostgresConfig, migrate: bool) -> Result<Session, PostgresError> {
        // sqlx ignores the scheme; a mysql:// URL left to it would fail much later, oddly.
        let scheme = config.url.split_once("://").map(|(scheme, _)| scheme);
        if !matches!(scheme, Some("postgres" | "postgresql")) {
            return Err(PostgresError::InvalidUrl(
                "expected postgres://[user[:password]@]host[:port]/database".into(),
            ));
        }
        let options = PgConnectOptions::from_str(&config.url)
            .map_err(|e| PostgresError::InvalidUrl(e.to_string()))?
            .application_name("switchboard-cdr");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()
            .map_err(PostgresError::Runtime)?;
        Ok(Session {
            runtime,
            options,
            connect_timeout: config.connect_timeout,
            operation_timeout: config.operation_timeout,
            migrate,
            connection: None,
        })
    }

    /// Whether a connection is currently open (it may still turn out to be dead).
    pub(crate) fn is_connected(&self) -> bool {
        self.connection.is_some()
    }

    /// Opens the connection (and migrates) now instead of on the first operation.
    pub(crate) fn connect(&mut self) -> Result<(), PostgresError> {
        if self.connection.is_some() {
            return Ok(());
        }
        let options = &self.options;
        let migrate = self.migrate;
        let timeout = self.connect_timeout;
        // The timer must be created inside the runtime, hence the outer `async`.
        let opened = self
            .runtime
            .block_on(async {
                tokio::time::timeout(timeout, async {
                    let mut connection = options.connect().await.map_err(PostgresError::Connect)?;
                    if migrate {
                        schema::migrate(&mut connection).await?;
                    }
                    Ok::<_, PostgresError>(connection)
                })
                .await
            })
            .map_err(|_| PostgresError::ConnectTimeout(timeout))??;
        self.connection = Some(opened);
        Ok(())
    }

    /// Runs `work` on the connection, connecting first if needed, within the operation
    /// timeout. On any failure the connection is dropped, since its state is unknown (a
    /// transaction may be half done, the server may be gone).
    pub(crate) fn run<T>(
        &mut self,
        op: &'static str,
        work: impl AsyncFnOnce(&mut PgConnection) -> Result<T, sqlx::Error>,
    ) -> Result<T, PostgresError> {
        self.connect()?;
        let Some(connection) = self.connection.as_mut() else {
            // connect() returned Ok, so a connection is open; be defensive all the same.
            return Err(PostgresError::ConnectTimeout(self.connect_timeout));
        };
        let timeout = self.operation_timeout;
        let outcome = self
            .runtime
            .block_on(async { tokio::time::timeout(timeout, work(connection)).await });
        match outcome {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(source)) => {
                self.disconnect();
                Err(PostgresError::Query { op, source })
            }
            Err(_) => {
                self.disconnect();
                Err(PostgresError::Timeout {
                    op,
                    timeout: self.operation_timeout,
                })
            }
        }
    }

    /// Like [`Session::run`] but without an overall deadline, for long streaming reads:
    /// `work` bounds its own waits with [`Session::operation_timeout`] (reported as an I/O
    /// time-out).
    pub(crate) fn run_streaming<T>(
        &mut self,
        op: &'static str,
        work: impl AsyncFnOnce(&mut PgConnection) -> Result<T, sqlx::Error>,
    ) -> Result<T, PostgresError> {
        self.connect()?;
        let Some(connection) = self.connection.as_mut() else {
            return Err(PostgresError::ConnectTimeout(self.connect_timeout));
        };
        match self.runtime.block_on(work(connection)) {
            Ok(value) => Ok(value),
            Err(source) => {
                self.disconnect();
                Err(PostgresError::Query { op, source })
            }
        }
    }

    /// The longest a single operation (or, for streaming reads, a single wait) may take.
    pub(crate) fn operation_timeout(&self) -> Duration {
        self.operation_timeout
    }

    /// Drops the connection without a goodbye: it may already be dead, and `close()` on a
    /// dead socket could wait.
    pub(crate) fn disconnect(&mut self) {
        if let Some(connection) = self.connection.take() {
            // Dropping inside the runtime lets sqlx's drop logic find a reactor.
            let _guard = self.runtime.enter();
            drop(connection);
        }
    }

    /// Closes the connection politely (used on shutdown).
    pub(crate) fn close(&mut self) {
        if let Some(connection) = self.connection.take() {
            let timeout = self.connect_timeout;
            // Nothing useful to do if the goodbye fails: the server drops the session anyway.
            let _ = self
                .runtime
                .block_on(async { tokio::time::timeout(timeout, connection.close()).await });
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.close();
    }
}
