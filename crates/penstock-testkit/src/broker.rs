//! A Tansu Kafka-protocol broker on a free loopback port: sqlite storage (topics and
//! committed offsets survive restarts; every correctness test uses it) or memory
//! storage (for throughput benchmarks only: see [`Storage::Memory`]).

use crate::process::{free_port, locate, port_open, wait_until, ServerProcess};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// Where the broker keeps messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Storage {
    /// `sqlite://tansu.db` in the broker's directory.
    Sqlite,
    /// `memory://tansu/`: fast, but Tansu 0.6 answers ListOffsets(latest) wrongly and
    /// loses the rest of a stored batch when a group resumes inside it — throughput
    /// runs only.
    Memory,
}

impl Storage {
    /// `sqlite` or `memory`.
    pub fn name(self) -> &'static str {
        match self {
            Storage::Sqlite => "sqlite",
            Storage::Memory => "memory",
        }
    }
}

/// A Kafka-protocol broker on loopback.
#[derive(Debug)]
pub struct Broker {
    /// Listening port.
    pub port: u16,
    program: PathBuf,
    storage: Storage,
    process: ServerProcess,
}

/// The Tansu binary: `$PENSTOCK_TANSU`, else the project's install location, else PATH.
pub fn tansu_program() -> PathBuf {
    let cache = std::env::var("PENSTOCK_CACHE").map(PathBuf::from).unwrap_or_else(|_| {
        PathBuf::from(std::env::var("HOME").unwrap_or_else(|_| "/root".into())).join(".cache/penstock")
    });
    locate("PENSTOCK_TANSU", &[cache.join("tansu/bin/tansu")], "tansu")
}

impl Broker {
    /// Starts a broker storing its data in `dir/tansu.db`, and waits until it listens.
    pub fn start_in(dir: &Path) -> std::io::Result<Self> {
        Self::start_with_storage(dir, Storage::Sqlite)
    }

    /// Starts a broker with the given storage in `dir`, and waits until it listens.
    pub fn start_with_storage(dir: &Path, storage: Storage) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let port = free_port();
        let url = format!("tcp://127.0.0.1:{port}");
        let program = tansu_program();
        let args = vec![
            "broker".into(),
            "--listener-url".into(),
            url.clone(),
            "--advertised-listener-url".into(),
            url,
            "--storage-engine".into(),
            match storage {
                Storage::Sqlite => "sqlite://tansu.db".into(),
                Storage::Memory => "memory://tansu/".into(),
            },
        ];
        let process = ServerProcess::spawn("tansu", program.clone(), args, dir)?;
        let mut b = Broker { port, program, storage, process };
        b.wait_ready()?;
        // Topics a pipeline creates itself (the Kafka sink's `create:`) need the index
        // too: add it as soon as the broker has made its database.
        if storage == Storage::Sqlite {
            b.add_header_index()?;
        }
        Ok(b)
    }

    fn wait_ready(&mut self) -> std::io::Result<()> {
        let port = self.port;
        wait_until(&mut self.process, Duration::from_secs(30), || port_open(port))
    }

    /// `127.0.0.1:<port>`, for `bootstrap.servers`.
    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Creates a topic, then adds the header index Tansu's sqlite schema lacks (without
    /// it, fetching messages that carry headers becomes quadratic).
    pub fn create_topic(&self, name: &str, partitions: u32) -> std::io::Result<()> {
        let out = Command::new(&self.program)
            .args(["topic", "create", name, "--partitions", &partitions.to_string(), "--broker"])
            .arg(format!("tcp://127.0.0.1:{}", self.port))
            .output()?;
        if !out.status.success() {
            return Err(std::io::Error::other(format!(
                "creating topic {name} failed: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )));
        }
        match self.storage {
            Storage::Sqlite => self.add_header_index(),
            Storage::Memory => Ok(()),
        }
    }

    /// The storage this broker uses.
    pub fn storage(&self) -> Storage {
        self.storage
    }

    /// `tansu --version`, e.g. `tansu 0.6.0`.
    pub fn version(&self) -> String {
        Command::new(&self.program)
            .arg("--version")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default()
    }

    fn add_header_index(&self) -> std::io::Result<()> {
        let db = self.process.dir.join("tansu.db");
        let script = "import sqlite3,sys\nc=sqlite3.connect(sys.argv[1],timeout=30)\n\
                      c.execute('CREATE INDEX IF NOT EXISTS header_topition_offset ON header (topition, offset_id)')\nc.commit()\n";
        let out = Command::new("python3").args(["-c", script]).arg(&db).output()?;
        if !out.status.success() {
            return Err(std::io::Error::other(format!("header index: {}", String::from_utf8_lossy(&out.stderr))));
        }
        Ok(())
    }

    /// The broker process (PID, kill for fault tests).
    pub fn process(&mut self) -> &mut ServerProcess {
        &mut self.process
    }

    /// Starts again on the same port and storage.
    pub fn restart(&mut self) -> std::io::Result<()> {
        self.process.stop();
        self.process.start()?;
        self.wait_ready()
    }

    /// Leaves the broker running after this value is dropped (for the demo script).
    pub fn detach(&mut self) {
        self.process.detached = true;
    }
}
