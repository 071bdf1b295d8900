//! The CDR schema, embedded in the binary and applied with sqlx's migrator.
//!
//! `sqlx::migrate!` is a macro and the crate builds sqlx without macros, so the SQL files
//! are embedded with `include_str!` and handed to the migrator as a [`MigrationSource`]. The
//! migrator records applied versions and checksums in `_sqlx_migrations` and takes an
//! advisory lock, so several nodes starting at once apply each migration exactly once.

use std::borrow::Cow;
use std::future::Future;
use std::pin::Pin;

use sqlx::migrate::{Migration, MigrationSource, MigrationType, Migrator};
use sqlx::PgConnection;

use super::PostgresError;

/// `(version, description, SQL)` of every migration, oldest first. Append only.
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "cdr tables",
        include_str!("../../migrations/0001_cdr_tables.sql"),
    ),
    (
        2,
        "node in key",
        include_str!("../../migrations/0002_node_in_key.sql"),
    ),
    (
        3,
        "call label",
        include_str!("../../migrations/0003_call_label.sql"),
    ),
    (4, "audit", include_str!("../../migrations/0004_audit.sql")),
];

/// The embedded migrations, in order (for tools that apply the schema themselves).
pub fn migrations() -> Vec<Migration> {
    MIGRATIONS
        .iter()
        .map(|&(version, description, sql)| {
            // Each migration runs in its own transaction: a failure leaves no half schema.
            Migration::new(
                version,
                Cow::Borrowed(description),
                MigrationType::Simple,
                Cow::Borrowed(sql),
                false,
            )
        })
        .collect()
}

#[derive(Debug)]
struct Embedded;

impl<'s> MigrationSource<'s> for Embedded {
    fn resolve(
        self,
    ) -> Pin<Box<dyn Future<Output = Result<Vec<Migration>, sqlx::error::BoxDynError>> + Send + 's>>
    {
        Box::pin(async { Ok(migrations()) })
    }
}

/// Applies the migrations the database does not have yet; a no-op when it is up to date.
pub(crate) async fn migrate(conn: &mut PgConnection) -> Result<(), PostgresError> {
    let migrator = Migrator::new(Embedded)
        .await
        .map_err(PostgresError::Migrate)?;
    migrator.run(conn).await.map_err(PostgresError::Migrate)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_increasing_and_sql_is_present() {
        let migrations = migrations();
        assert!(!migrations.is_empty());
        for pair in migrations.windows(2) {
            if let [older, newer] = pair {
                assert!(older.version < newer.version);
            }
        }
        let first = &migrations[0];
        assert!(first.sql.contains("CREATE TABLE cdr_calls"));
        assert!(first
            .sql
            .contains("seq                       BIGINT PRIMARY KEY"));
        assert!(first.sql.contains("CREATE TABLE cdr_agent_states"));
    }
}
