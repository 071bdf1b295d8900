//! Shared by the PostgreSQL tests and bench.
pub mod pg_server;
pub mod records;
