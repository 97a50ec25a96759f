//! A ClickHouse server process with its own config, data directory and ports.

use crate::http::http_post;
use crate::process::{free_port, locate, port_open, wait_until, ServerProcess};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A ClickHouse server on loopback.
#[derive(Debug)]
pub struct ClickHouseServer {
    /// HTTP port.
    pub http_port: u16,
    /// Native TCP port.
    pub tcp_port: u16,
    process: ServerProcess,
}

fn config_xml(dir: &Path, http_port: u16, tcp_port: u16, zookeeper_port: Option<u16>) -> String {
    let d = dir.display();
    // With ZooKeeper, Replicated*MergeTree tables work; `{replica}`/`{shard}` macros let
    // tests write the usual `ReplicatedMergeTree('/clickhouse/tables/{shard}/t', '{replica}')`.
    let zookeeper = zookeeper_port
        .map(|p| {
            format!(
                "<zookeeper><node><host>127.0.0.1</host><port>{p}</port></node><session_timeout_ms>30000</session_timeout_ms></zookeeper>\n  \
                 <macros><shard>1</shard><replica>replica-{http_port}</replica></macros>"
            )
        })
        .unwrap_or_default();
    format!(
        r#"<yandex>
  <logger><level>warning</level><log>{d}/log/server.log</log><errorlog>{d}/log/error.log</errorlog><console>0</console></logger>
  <listen_host>127.0.0.1</listen_host>
  <http_port>{http_port}</http_port>
  <tcp_port>{tcp_port}</tcp_port>
  <path>{d}/data/</path>
  <tmp_path>{d}/tmp/</tmp_path>
  <user_files_path>{d}/user_files/</user_files_path>
  <format_schema_path>{d}/format_schemas/</format_schema_path>
  <users_config>{d}/users.xml</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <timezone>UTC</timezone>
  <mark_cache_size>268435456</mark_cache_size>
  <max_concurrent_queries>100</max_concurrent_queries>
  <kafka><auto_offset_reset>earliest</auto_offset_reset><fetch_wait_max_ms>10</fetch_wait_max_ms></kafka>
  {zookeeper}
</yandex>
"#
    )
}

const USERS_XML: &str = r#"<yandex>
  <profiles><default><max_memory_usage>10000000000</max_memory_usage></default></profiles>
  <users><default><password></password><networks><ip>127.0.0.1</ip><ip>::1</ip></networks><profile>default</profile><quota>default</quota></default></users>
  <quotas><default><interval><duration>3600</duration><queries>0</queries><errors>0</errors><result_rows>0</result_rows><read_rows>0</read_rows><execution_time>0</execution_time></interval></default></quotas>
</yandex>
"#;

/// A librdkafka new enough to talk to Tansu, for ClickHouse 18.16's Kafka engine
/// (Debian's 2.0.2 cannot parse Tansu's ApiVersions reply): `$PENSTOCK_KAFKA_ENGINE_LIBRDKAFKA`,
/// else the copy inside the `confluent-kafka` wheel `scripts/install.sh` puts in the
/// project's Python venv.
pub fn kafka_engine_librdkafka() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("PENSTOCK_KAFKA_ENGINE_LIBRDKAFKA") {
        return Some(PathBuf::from(p));
    }
    let venv = crate::chdb::venv_dir();
    let lib = std::fs::read_dir(venv.join("lib")).ok()?;
    for python in lib.flatten() {
        let libs = python.path().join("site-packages/confluent_kafka.libs");
        for f in std::fs::read_dir(libs).into_iter().flatten().flatten() {
            let name = f.file_name().to_string_lossy().into_owned();
            if name.starts_with("librdkafka") && name.contains(".so") {
                return Some(f.path());
            }
        }
    }
    None
}

/// Start-ups tried before giving up on a server that exits during start-up.
const START_ATTEMPTS: u32 = 3;

/// The newest lines of a server's error log under `dir`, for start-up failures.
fn error_log_tail(dir: &Path) -> String {
    let log = std::fs::read_to_string(dir.join("log/error.log")).unwrap_or_default();
    let newest: Vec<&str> = log.lines().rev().take(5).collect();
    format!("error.log (newest first): {newest:?}")
}

impl ClickHouseServer {
    /// Starts a server whose files live under `dir`, and waits until `/ping` answers.
    pub fn start_in(dir: &Path) -> std::io::Result<Self> {
        Self::start_with(dir, None)
    }

    /// Like [`start_in`](Self::start_in), using the ZooKeeper on `zookeeper_port` for
    /// Replicated*MergeTree tables.
    pub fn start_with(dir: &Path, zookeeper_port: Option<u16>) -> std::io::Result<Self> {
        Self::start_with_env(dir, zookeeper_port, Vec::new())
    }

    /// Like [`start_with`](Self::start_with), with extra environment variables — e.g.
    /// `LD_PRELOAD` of a newer librdkafka, which 18.16's Kafka engine needs to talk to
    /// Tansu (see [`kafka_engine_librdkafka`]).
    pub fn start_with_env(
        dir: &Path,
        zookeeper_port: Option<u16>,
        env: Vec<(String, String)>,
    ) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir.join("log"))?;
        std::fs::write(dir.join("users.xml"), USERS_XML)?;
        let program = locate(
            "PENSTOCK_CLICKHOUSE_SERVER",
            &[PathBuf::from("/usr/sbin/clickhouse-server"), PathBuf::from("/usr/bin/clickhouse-server")],
            "clickhouse-server",
        );
        // A free port may be taken by a server of a parallel test between our choosing
        // it and the server binding it: a server that exits during start-up is started
        // again on other ports (its error log says why it exited).
        let mut attempt = 1;
        loop {
            let (http_port, tcp_port) = (free_port(), free_port());
            std::fs::write(dir.join("config.xml"), config_xml(dir, http_port, tcp_port, zookeeper_port))?;
            let args = vec![format!("--config-file={}", dir.join("config.xml").display())];
            let process = ServerProcess::spawn_with_env("clickhouse", program.clone(), args, dir, env.clone())?;
            let mut s = ClickHouseServer { http_port, tcp_port, process };
            match s.wait_ready() {
                Ok(()) => return Ok(s),
                Err(e) if attempt < START_ATTEMPTS && !s.process.is_running() => {
                    let tail = error_log_tail(dir);
                    eprintln!("clickhouse exited during start-up (attempt {attempt}), starting again: {e}; {tail}");
                    attempt += 1;
                }
                Err(e) => return Err(std::io::Error::other(format!("{e}\n{}", error_log_tail(dir)))),
            }
        }
    }

    fn wait_ready(&mut self) -> std::io::Result<()> {
        let port = self.http_port;
        wait_until(&mut self.process, Duration::from_secs(60), || {
            port_open(port) && http_post(port, "/ping", "").is_ok_and(|(s, b)| s == 200 && b.starts_with("Ok."))
        })
    }

    /// `http://127.0.0.1:<port>`
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.http_port)
    }

    /// Runs SQL and returns the body; panics with the server's message on error.
    pub fn query(&self, sql: &str) -> String {
        match http_post(self.http_port, "/", sql) {
            Ok((200, body)) => body,
            Ok((status, body)) => panic!("ClickHouse {status} for `{sql}`: {body}"),
            Err(e) => panic!("ClickHouse unreachable for `{sql}`: {e}"),
        }
    }

    /// Runs SQL and returns the body or the error text.
    pub fn try_query(&self, sql: &str) -> Result<String, String> {
        match http_post(self.http_port, "/", sql) {
            Ok((200, body)) => Ok(body),
            Ok((status, body)) => Err(format!("{status}: {body}")),
            Err(e) => Err(e.to_string()),
        }
    }

    /// Runs SQL and parses the single value it returns.
    pub fn scalar<T: std::str::FromStr>(&self, sql: &str) -> T
    where
        T::Err: std::fmt::Debug,
    {
        self.query(sql).trim().parse().expect("a single value")
    }

    /// The server's data directory (`<path>` in its config).
    pub fn data_dir(&self) -> PathBuf {
        self.process.dir.join("data")
    }

    /// The server process (PID, kill for fault tests).
    pub fn process(&mut self) -> &mut ServerProcess {
        &mut self.process
    }

    /// Graceful stop (SIGTERM).
    pub fn stop(&mut self) {
        self.process.stop();
    }

    /// Starts again on the same ports and data after [`stop`](Self::stop) or a kill.
    pub fn restart(&mut self) -> std::io::Result<()> {
        self.process.stop();
        self.process.start()?;
        self.wait_ready()
    }

    /// Leaves the server running after this value is dropped (for the demo script).
    pub fn detach(&mut self) {
        self.process.detached = true;
    }
}
