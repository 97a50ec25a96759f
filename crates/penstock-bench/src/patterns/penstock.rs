//! Penstock as a user runs it: a `penstock run` process with a pipeline file, its
//! default settings or tuned ones, exactly-once delivery (the default) included.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Pipeline settings a pattern varies; everything else is Penstock's default.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// `sink.clickhouse.batch.max_wait` (`None`: the default, 500 ms).
    pub max_wait: Option<Duration>,
    /// Run transforms: `event_ts` computed by parsing `event_time_text`
    /// (`toDateTime(event_time_text)`) instead of decoded, and a filter every event
    /// passes (`amount >= 0 AND region != ''`), so the rows stored are the same and only
    /// the stages' cost differs. (`event_time_text` stays decoded: the bench reads its
    /// milliseconds for freshness.)
    pub transforms: bool,
    /// Deduplicate by `event_id` within an hour of the Kafka timestamp (state under
    /// [`Endpoints::state_dir`], changelog on): the generator's duplicates are dropped,
    /// so the table holds the distinct events.
    pub dedup: bool,
}

impl Settings {
    /// Penstock's defaults.
    pub fn defaults() -> Self {
        Settings { max_wait: None, transforms: false, dedup: false }
    }

    /// The defaults plus `dedup: { key: event_id, window: 1h }`.
    pub fn with_dedup() -> Self {
        Settings { dedup: true, ..Settings::defaults() }
    }

    /// The defaults plus a computed column and a filter (see [`Settings::transforms`]).
    pub fn with_transforms() -> Self {
        Settings { transforms: true, ..Settings::defaults() }
    }

    /// The lowest CPU found here that still keeps freshness p99 under DESIGN.md's 1 s:
    /// batches sealed after 800 ms instead of 500 ms — fewer inserts and ledger rows for
    /// the ClickHouse server. (Shorter waits were tried: 200 ms raised the server's CPU
    /// by half and, with more parts to merge on 18.16, made p99 worse, not better.)
    pub fn tuned() -> Self {
        Settings { max_wait: Some(Duration::from_millis(800)), ..Settings::defaults() }
    }
}

/// How a pattern is set up, for the report.
pub fn describe(s: &Settings) -> String {
    if s.dedup {
        return "`penstock run` with default settings plus `dedup: { key: event_id, window: 1h }` on the Kafka \
                timestamp (state on local disk, 64 MiB cache, changelog topic on)"
            .to_string();
    }
    if s.transforms {
        return "`penstock run` with default settings plus transforms: `event_ts` computed as \
                `toDateTime(event_time_text)` instead of decoded, and `filter: \"amount >= 0 AND region != ''\"` (every event passes)"
            .to_string();
    }
    match s.max_wait {
        None => "`penstock run` with default settings: batches of up to 200,000 rows / 64 MiB / 500 ms, \
                 exactly-once (ledger) delivery, Native + LZ4 inserts, fetch.wait.max.ms = 10"
            .to_string(),
        Some(w) => format!(
            "`penstock run`, defaults except batch max_wait = {} ms (exactly-once delivery as by default)",
            w.as_millis()
        ),
    }
}

/// Where a pipeline reads and writes.
#[derive(Debug, Clone)]
pub struct Endpoints<'a> {
    /// Bootstrap servers.
    pub brokers: &'a str,
    /// Topic.
    pub topic: &'a str,
    /// Consumer group.
    pub group: &'a str,
    /// ClickHouse URL.
    pub clickhouse: &'a str,
    /// Database holding `transactions`.
    pub database: &'a str,
    /// Where a dedup keeps its state.
    pub state_dir: &'a str,
}

/// The pipeline file for `settings`.
pub fn pipeline_yaml(name: &str, e: &Endpoints<'_>, s: &Settings) -> String {
    let q = |v: &str| format!("\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\""));
    let batch = s.max_wait.map_or(String::new(), |w| format!("    batch: {{ max_wait: {}ms }}\n", w.as_millis()));
    // The event time: decoded, or (transforms) parsed from the text column before it.
    let (decoded_ts, computed_ts, transforms) = if s.transforms {
        (
            "",
            "  event_ts: { type: \"DateTime('UTC')\", expr: \"toDateTime(event_time_text)\" }\n",
            "transforms:\n  - filter: \"amount >= 0 AND region != ''\"\n",
        )
    } else {
        ("  event_ts: { type: \"DateTime('UTC')\", from: event_time }\n", "", "")
    };
    let dedup = if s.dedup {
        format!("transforms:\n  - dedup: {{ key: event_id, window: 1h }}\nstate:\n  dir: {}\n", q(e.state_dir))
    } else {
        String::new()
    };
    format!(
        "name: {}\nsource:\n  kafka:\n    brokers: {}\n    topics: [{}]\n    group: {}\n    start: earliest\n\
         format: json\nschema:\n  event_id: {{ type: UUID, required: true }}\n  user_id: UInt64\n  amount: Decimal(12, 2)\n\
         \x20 region: String\n  event_type: \"{}\"\n{decoded_ts}\
         \x20 event_time_text: {{ type: String, from: event_time }}\n{computed_ts}  ingest_time: {{ type: \"DateTime('UTC')\", value: now }}\n\
         \x20 _partition: Int32\n  _offset: Int64\n\
         sink:\n  clickhouse:\n    url: {}\n    database: {}\n    table: transactions\n{batch}\
         freshness:\n  event_time: event_ts\n{transforms}{dedup}",
        q(name),
        q(e.brokers),
        q(e.topic),
        q(e.group),
        super::event_type_enum(),
        q(e.clickhouse),
        q(e.database),
    )
}

/// A `penstock run` child that is killed if the benchmark is dropped mid-run (Ctrl-C,
/// an error), so no pipeline outlives the services it was measuring.
#[derive(Debug)]
pub struct KillOnDrop(pub Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// Starts `penstock run pipeline --http 127.0.0.1:<http_port>`, output to `log`.
pub fn spawn(exe: &Path, pipeline: &Path, http_port: u16, log: &Path) -> std::io::Result<Child> {
    let out = std::fs::File::create(log)?;
    Command::new(exe)
        .arg("run")
        .arg(pipeline)
        .args(["--http", &format!("127.0.0.1:{http_port}"), "--log-level", "warn"])
        .stdin(Stdio::null())
        .stdout(out.try_clone()?)
        .stderr(out)
        .spawn()
}

/// Waits until the process answers `/readyz` with 200 (consuming, ClickHouse reachable).
pub async fn wait_ready(child: &mut Child, http_port: u16, timeout: Duration) -> Result<(), String> {
    let http = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{http_port}/readyz");
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("penstock exited during start-up ({status})"));
        }
        if http.get(&url).send().await.is_ok_and(|r| r.status().is_success()) {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(format!("penstock not ready after {timeout:?}"))
}

/// Stops the process gracefully (SIGTERM: flush and commit), SIGKILL after 30 s.
pub async fn stop(child: &mut Child) {
    let _ = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = child.kill();
    let _ = child.wait();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pipeline_files_are_valid_for_penstock() {
        let e = Endpoints {
            brokers: "127.0.0.1:9092",
            topic: "bench-rate-10000",
            group: "g\"1",
            clickhouse: "http://127.0.0.1:8123",
            database: "bench_penstock_rate_10000",
            state_dir: "/tmp/state",
        };
        for s in [Settings::defaults(), Settings::tuned(), Settings::with_transforms(), Settings::with_dedup()] {
            let yaml = pipeline_yaml("bench", &e, &s);
            let p = penstock_config::parse(&yaml, "bench.yaml", |_| None).unwrap_or_else(|err| panic!("{err}\n{yaml}"));
            assert_eq!(p.source.group, "g\"1");
            let mut columns: Vec<&str> = p.fields.iter().map(|f| f.column.as_str()).collect();
            if s.transforms {
                // event_ts follows the text it is parsed from.
                assert_eq!(columns.remove(6), "event_ts");
                columns.insert(5, "event_ts");
            }
            assert_eq!(
                columns,
                [
                    "event_id",
                    "user_id",
                    "amount",
                    "region",
                    "event_type",
                    "event_ts",
                    "event_time_text",
                    "ingest_time",
                    "_partition",
                    "_offset"
                ]
            );
            assert_eq!(p.sink.batch.max_wait, s.max_wait.unwrap_or(Duration::from_millis(500)));
            let stages = if s.transforms { 2 } else { usize::from(s.dedup) };
            assert_eq!(p.stages.transforms.len() + p.stages.computed.len().min(1), stages);
            assert_eq!(p.state.is_some(), s.dedup);
        }
    }
}
