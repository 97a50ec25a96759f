//! A modern ClickHouse engine (chdb, ClickHouse 26.9 in-process, from PyPI) as a test
//! oracle: for what the 18.16 server here cannot show — newer settings such as
//! `insert_deduplication_token`, newer types, newer DDL.
//!
//! Each [`Chdb`] is a session with its own data directory; statements run in order in
//! one Python process, so tables persist between them within a call and across calls.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

/// Runs statements read from stdin (separated by NUL bytes) in one chdb session and
/// writes each result (or `ERROR: ...`) followed by a NUL byte.
const RUNNER: &str = r#"
import sys
from chdb import session
s = session.Session(sys.argv[1])
out = sys.stdout.buffer
for stmt in sys.stdin.buffer.read().decode().split("\0"):
    try:
        r = s.query(stmt)
        out.write(r.bytes() if hasattr(r, "bytes") else str(r).encode())
    except Exception as e:
        out.write(("ERROR: " + str(e)).encode())
    out.write(b"\0")
"#;

/// The Python with chdb installed: `$PENSTOCK_CHDB_PYTHON`, else the venv
/// `scripts/install.sh` creates under `$PENSTOCK_CACHE` (default `~/.cache/penstock`).
pub fn chdb_python() -> PathBuf {
    if let Ok(p) = std::env::var("PENSTOCK_CHDB_PYTHON") {
        return PathBuf::from(p);
    }
    venv_dir().join("bin/python")
}

/// The project's Python venv (chdb, and the confluent-kafka wheel whose librdkafka the
/// Kafka engine preloads), as `scripts/install.sh` creates it under `$PENSTOCK_CACHE`.
pub(crate) fn venv_dir() -> PathBuf {
    let cache = std::env::var("PENSTOCK_CACHE").map(PathBuf::from).unwrap_or_else(|_| {
        PathBuf::from(std::env::var("HOME").unwrap_or_else(|_| "/root".into())).join(".cache/penstock")
    });
    cache.join("chdb-venv")
}

/// A chdb session with its own data directory, removed on drop.
#[derive(Debug)]
pub struct Chdb {
    dir: tempfile::TempDir,
}

impl Chdb {
    /// A new, empty session.
    pub fn new() -> std::io::Result<Self> {
        Ok(Chdb { dir: tempfile::Builder::new().prefix("penstock-chdb-").tempdir()? })
    }

    /// A directory for files the statements read (`file('<dir>/x.native', 'Native')`).
    pub fn files(&self) -> std::path::PathBuf {
        self.dir.path().join("files")
    }

    /// Runs `statements` in order; one result per statement, `Err` holding the engine's
    /// message for a statement that failed.
    pub fn run(&self, statements: &[String]) -> std::io::Result<Vec<Result<String, String>>> {
        std::fs::create_dir_all(self.files())?;
        let python = chdb_python();
        let mut child = Command::new(&python)
            .args(["-c", RUNNER])
            .arg(self.dir.path().join("session"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| {
                std::io::Error::new(
                    e.kind(),
                    format!("cannot start {} (scripts/install.sh installs chdb): {e}", python.display()),
                )
            })?;
        child.stdin.take().expect("stdin").write_all(statements.join("\0").as_bytes())?;
        let out = child.wait_with_output()?;
        if !out.status.success() {
            return Err(std::io::Error::other(format!("chdb failed: {}", String::from_utf8_lossy(&out.stderr))));
        }
        let text = String::from_utf8_lossy(&out.stdout);
        let mut results: Vec<Result<String, String>> = text
            .split('\0')
            .map(|r| match r.strip_prefix("ERROR: ") {
                Some(e) => Err(e.to_string()),
                None => Ok(r.to_string()),
            })
            .collect();
        results.truncate(statements.len());
        Ok(results)
    }

    /// Runs one statement; panics with the engine's message if it fails.
    pub fn query(&self, statement: &str) -> String {
        match self.run(&[statement.to_string()]) {
            Ok(mut r) if r.len() == 1 => r.remove(0).unwrap_or_else(|e| panic!("chdb: `{statement}`: {e}")),
            Ok(r) => panic!("chdb: `{statement}` gave {} results", r.len()),
            Err(e) => panic!("chdb: {e}"),
        }
    }
}
