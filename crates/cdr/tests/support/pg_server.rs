//! A throw-away PostgreSQL server for tests and benches: `initdb` into a temporary
//! directory, started on a free loopback port with trust authentication, stopped (and its
//! files removed) when the guard is dropped, even when the test fails.
//!
//! PostgreSQL refuses to run as root; as root the cluster is owned by, and every server
//! command run as, `nobody` (through `runuser`). The binaries are looked up under
//! `/usr/lib/postgresql/<version>/bin` (newest first) unless `PG_BIN_DIR` names a directory.

#![allow(dead_code)] // Each test/bench target uses a different part of it.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The unprivileged account the server runs as when the tests run as root.
const UNPRIVILEGED_USER: &str = "nobody";

/// A running (or stopped, between `stop` and `start`) test server.
pub struct PgServer {
    bin: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
    run_as: Option<String>,
}

/// The directory holding `initdb`, `pg_ctl` and `psql`, if PostgreSQL is installed.
pub fn find_bin_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("PG_BIN_DIR") {
        let dir = PathBuf::from(dir);
        return dir.join("initdb").exists().then_some(dir);
    }
    let mut candidates: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    candidates.sort();
    candidates.pop().map(|(_, bin)| bin)
}

/// Starts a server, or prints why the caller should skip and returns `None` when the
/// PostgreSQL binaries are not installed. Any other failure panics with the server's log.
pub fn start_or_skip(test: &str) -> Option<PgServer> {
    let Some(bin) = find_bin_dir() else {
        eprintln!(
            "SKIPPED {test}: PostgreSQL binaries not found (install the `postgresql` package \
             or set PG_BIN_DIR)"
        );
        return None;
    };
    Some(PgServer::start(bin))
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|out| String::from_utf8_lossy(&out.stdout).trim() == "0")
        .unwrap_or(false)
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("binding an ephemeral port");
    listener
        .local_addr()
        .expect("a bound socket has an address")
        .port()
}

impl PgServer {
    fn start(bin: PathBuf) -> PgServer {
        let run_as = is_root().then(|| UNPRIVILEGED_USER.to_string());
        // Under /tmp so `nobody` can reach it whatever TMPDIR is.
        let dir = tempfile::Builder::new()
            .prefix("cdr-pg-")
            .tempdir_in("/tmp")
            .expect("creating the cluster directory");
        if let Some(user) = &run_as {
            let status = Command::new("chown")
                .arg(format!("{user}:"))
                .arg(dir.path())
                .status()
                .expect("running chown");
            assert!(status.success(), "chown of the cluster directory failed");
        }
        let mut server = PgServer {
            bin,
            dir,
            port: 0,
            run_as,
        };
        let data = server.data_dir();
        server.run_checked(
            "initdb",
            &[
                "-D",
                path_str(&data),
                "-U",
                "postgres",
                "--auth=trust",
                "--no-sync",
                "-E",
                "UTF8",
                "--locale=C",
            ],
        );
        // Another test may grab the port between probing and binding: try a few.
        for attempt in 0..5 {
            server.port = free_port();
            if server.try_start() {
                return server;
            }
            eprintln!(
                "postgres did not start on port {} (attempt {attempt})",
                server.port
            );
        }
        panic!("postgres would not start:\n{}", server.log());
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("server.log")
    }

    /// The server log so far (for failure messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    fn command(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        match &self.run_as {
            Some(user) => {
                let mut command = Command::new("runuser");
                command.args(["-u", user, "--"]).arg(path);
                command
            }
            None => Command::new(path),
        }
    }

    fn run(&self, program: &str, args: &[&str]) -> Output {
        self.command(program)
            .args(args)
            .current_dir(self.dir.path())
            .output()
            .unwrap_or_else(|e| panic!("cannot run {program}: {e}"))
    }

    fn run_checked(&self, program: &str, args: &[&str]) -> String {
        let out = self.run(program, args);
        assert!(
            out.status.success(),
            "{program} {args:?} failed: {}{}\nserver log:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn try_start(&self) -> bool {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c max_connections=20",
            self.port,
            path_str(self.dir.path())
        );
        let data = self.data_dir();
        let log = self.log_path();
        self.run(
            "pg_ctl",
            &[
                "-D",
                path_str(&data),
                "-l",
                path_str(&log),
                "-o",
                &options,
                "-w",
                "-t",
                "30",
                "start",
            ],
        )
        .status
        .success()
    }

    /// Starts the server again after [`PgServer::stop`], on the same port.
    pub fn start_again(&self) {
        assert!(
            self.try_start(),
            "postgres did not restart:\n{}",
            self.log()
        );
    }

    /// Stops the server (fast mode: sessions are terminated, as on a real restart).
    pub fn stop(&self) {
        let data = self.data_dir();
        self.run_checked(
            "pg_ctl",
            &["-D", path_str(&data), "-m", "fast", "-w", "stop"],
        );
    }

    /// The TCP port the server listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Creates a database and returns its connection URL.
    pub fn create_database(&self, name: &str) -> String {
        self.psql("postgres", &format!("CREATE DATABASE {name}"));
        self.url(name)
    }

    /// The connection URL of database `name`.
    pub fn url(&self, name: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{name}", self.port)
    }

    /// Runs one SQL statement with `psql` and returns its unaligned output, trimmed.
    pub fn psql(&self, database: &str, sql: &str) -> String {
        let port = self.port.to_string();
        let out = Command::new(self.bin.join("psql"))
            .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1"])
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &port,
                "-U",
                "postgres",
                "-d",
                database,
            ])
            .args(["-c", sql])
            .output()
            .expect("running psql");
        assert!(
            out.status.success(),
            "psql {sql:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// Runs a query returning one number.
    pub fn count(&self, database: &str, sql: &str) -> u64 {
        let text = self.psql(database, sql);
        text.parse()
            .unwrap_or_else(|_| panic!("{sql:?} returned {text:?}, not a count"))
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        // Immediate: nothing to keep, and the test may have left the server in any state.
        // Failure is fine (already stopped); the directory is removed by TempDir after this.
        let data = self.data_dir();
        let _ = self.run(
            "pg_ctl",
            &["-D", path_str(&data), "-m", "immediate", "-w", "stop"],
        );
    }
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("temporary paths are UTF-8")
}
