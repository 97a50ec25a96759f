//! Real services on loopback for Penstock's integration tests and demo.
//!
//! [`Services::start`] starts a Tansu broker (sqlite storage) and a ClickHouse server,
//! each on free 127.0.0.1 ports with data in a fresh temporary directory, and waits
//! until both answer. Dropping it stops both by PID and removes the directory. Tests
//! kill and restart either server through [`Broker::process`] /
//! [`ClickHouseServer::restart`] to inject faults.
//!
//! [`Services::start_replicated`] adds a ZooKeeper so Replicated*MergeTree tables work;
//! [`Chdb`] runs statements in a modern ClickHouse engine (chdb) as a test oracle.
//!
//! Binaries: `$PENSTOCK_TANSU` (default `~/.cache/penstock/tansu/bin/tansu`, as
//! installed by `scripts/install.sh`) and `$PENSTOCK_CLICKHOUSE_SERVER` (default
//! `/usr/sbin/clickhouse-server`).

mod broker;
mod chdb;
mod clickhouse;
mod http;
mod process;
mod zookeeper;

pub use broker::{tansu_program, Broker, Storage};
pub use chdb::{chdb_python, Chdb};
pub use clickhouse::{kafka_engine_librdkafka, ClickHouseServer};
pub use http::http_post;
pub use process::{free_port, ServerProcess};
pub use zookeeper::ZooKeeper;

/// A broker and a ClickHouse server for one test.
#[derive(Debug)]
pub struct Services {
    /// Kafka-protocol broker.
    pub kafka: Broker,
    /// ClickHouse server.
    pub clickhouse: ClickHouseServer,
    /// ZooKeeper for Replicated*MergeTree tables, when started with
    /// [`start_replicated`](Self::start_replicated). Stops after ClickHouse.
    pub zookeeper: Option<ZooKeeper>,
    // Dropped last: the servers stop before their files go.
    dir: tempfile::TempDir,
}

impl Services {
    /// Starts both services in a new temporary directory.
    pub fn start() -> std::io::Result<Self> {
        let dir = tempfile::Builder::new().prefix("penstock-it-").tempdir()?;
        Self::start_in(dir, false)
    }

    /// Starts both services plus a ZooKeeper the ClickHouse server uses, so tests can
    /// create Replicated*MergeTree tables (`{shard}` and `{replica}` macros are set).
    pub fn start_replicated() -> std::io::Result<Self> {
        let dir = tempfile::Builder::new().prefix("penstock-it-").tempdir()?;
        Self::start_in(dir, true)
    }

    /// Starts a broker with `storage` and a ClickHouse server whose Kafka engine can
    /// reach it (a newer librdkafka preloaded when [`kafka_engine_librdkafka`] finds
    /// one), for `penstock bench`.
    pub fn start_for_bench(storage: Storage) -> std::io::Result<Self> {
        let dir = tempfile::Builder::new().prefix("penstock-bench-").tempdir()?;
        let kafka = Broker::start_with_storage(&dir.path().join("kafka"), storage)?;
        let env = kafka_engine_librdkafka()
            .map(|lib| vec![("LD_PRELOAD".to_string(), lib.display().to_string())])
            .unwrap_or_default();
        let clickhouse = ClickHouseServer::start_with_env(&dir.path().join("clickhouse"), None, env)?;
        Ok(Services { kafka, clickhouse, zookeeper: None, dir })
    }

    fn start_in(dir: tempfile::TempDir, replicated: bool) -> std::io::Result<Self> {
        let zookeeper = if replicated { Some(ZooKeeper::start_in(&dir.path().join("zookeeper"))?) } else { None };
        let kafka = Broker::start_in(&dir.path().join("kafka"))?;
        let clickhouse =
            ClickHouseServer::start_with(&dir.path().join("clickhouse"), zookeeper.as_ref().map(|z| z.port))?;
        Ok(Services { kafka, clickhouse, zookeeper, dir })
    }

    /// The directory holding both servers' files.
    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// Keeps both servers and their files after this value is dropped; returns the
    /// directory. Used by `penstock-services up`.
    pub fn detach(mut self) -> std::path::PathBuf {
        self.kafka.detach();
        self.clickhouse.detach();
        if let Some(z) = self.zookeeper.as_mut() {
            z.detach();
        }
        let Services { kafka, clickhouse, zookeeper, dir } = self;
        drop((kafka, clickhouse, zookeeper));
        dir.keep()
    }
}

/// A name unique to this process and call, usable as a topic or database name.
pub fn unique_name(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    format!("{prefix}_{}_{}_{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed), nanos % 100_000)
}
