//! The `[cdr]` section: where call detail records are written.

use std::path::PathBuf;

use super::diagnostics::Diagnostics;
use super::model::CdrConfig;
use super::reader::TableReader;

const KEYS: &[&str] = &["dir", "postgres_url", "csv", "node"];
const DEFAULT_DIR: &str = "/var/lib/switchboard/cdr";

/// Reads `[cdr]`; absent keys take their defaults. `None` means an error was recorded.
pub(super) fn read(d: &mut Diagnostics<'_>, root: &TableReader<'_>) -> Option<CdrConfig> {
    let cdr = TableReader::section(d, root, "cdr", KEYS);
    let dir = cdr.or(d, "dir", PathBuf::from(DEFAULT_DIR), |d, field| {
        let dir = field.string(d)?;
        if dir.is_empty() {
            d.error(field.path(), "must not be empty");
            return None;
        }
        Some(PathBuf::from(dir))
    });
    let postgres_url = cdr.or(d, "postgres_url", None, |d, field| {
        let url = field.string(d)?;
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            d.error(
                field.path(),
                "must be a PostgreSQL URL: postgres://user:password@host:port/database",
            );
            return None;
        }
        Some(Some(url))
    });
    let csv = cdr.or(d, "csv", false, |d, field| field.boolean(d));
    let node = cdr.or(d, "node", None, |d, field| field.identifier(d).map(Some));
    Some(CdrConfig {
        dir: dir?,
        postgres_url: postgres_url?,
        csv: csv?,
        node: node?,
    })
}
