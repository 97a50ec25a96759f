//! Shared test helpers: producing seeded `transactions` events, writing pipeline files,
//! running the `penstock` binary.

use penstock_bench::gen::TransactionGenerator;
use penstock_codec::Timestamp;
use penstock_kafka::CountingProducer;
use penstock_testkit::Services;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// The table `examples/transactions.yaml` creates, in database `db` (created ahead of
/// the run, for tests that alter it or change its engine).
pub fn create_transactions_table(s: &Services, db: &str) {
    create_transactions_table_with_engine(s, db, "MergeTree()");
}

/// The table `examples/transactions.yaml` creates, in database `db`, with another
/// engine clause (e.g. `ReplicatedMergeTree(...)`): the DDL is Penstock's own.
pub fn create_transactions_table_with_engine(s: &Services, db: &str, engine: &str) {
    use penstock_clickhouse::ddl::{columns_for, create_table_sql};
    s.clickhouse.query(&format!("CREATE DATABASE IF NOT EXISTS `{db}`"));
    let env = |name: &str| {
        Some(match name {
            "PENSTOCK_KAFKA_BROKERS" => s.kafka.bootstrap(),
            "PENSTOCK_CLICKHOUSE_URL" => s.clickhouse.url(),
            _ => return None,
        })
    };
    let text = std::fs::read_to_string(repo_root().join("examples/transactions.yaml")).expect("example pipeline");
    let p = penstock_config::parse(&text, "examples/transactions.yaml", env).expect("example pipeline parses");
    let creation = p.sink.create.as_ref().expect("the example creates its table");
    let ddl = create_table_sql(db, &p.sink.table, &columns_for(&p.fields, creation), creation);
    assert!(ddl.contains("ENGINE = MergeTree()\n"), "the example's engine changed:\n{ddl}");
    s.clickhouse.query(&ddl.replace("ENGINE = MergeTree()\n", &format!("ENGINE = {engine}\n")));
}

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// What was produced, for comparing with ClickHouse.
#[derive(Debug, Default, Clone, Copy)]
pub struct Produced {
    /// Good events (rows expected in the table).
    pub count: u64,
    /// Sum of the good events' amounts.
    pub amount_cents: u64,
    /// Malformed messages (dead letters expected).
    pub bad: u64,
}

/// Produces `count` seeded events to `topic`, waiting for every delivery.
pub fn produce(s: &Services, topic: &str, count: u64, seed: u64) -> Produced {
    produce_with_bad(s, topic, count, seed, 0)
}

/// Like [`produce`], plus (when `bad_every` is not 0) one malformed message — an event
/// cut in half, invalid JSON that must be dead-lettered — after every `bad_every` events.
pub fn produce_with_bad(s: &Services, topic: &str, count: u64, seed: u64, bad_every: u64) -> Produced {
    let producer = CountingProducer::new(&s.kafka.bootstrap(), &[]).expect("producer");
    let mut gen = TransactionGenerator::new(seed);
    let (mut json, mut key) = (String::new(), String::new());
    let mut out = Produced::default();
    let now = Timestamp { secs: 1_795_000_000, nanos: 123_000_000 };
    for i in 0..count {
        let facts = gen.next_into(Timestamp { secs: now.secs + (i as i64 % 3600), ..now }, &mut json, &mut key);
        producer.send(topic, key.as_bytes(), json.as_bytes(), None).expect("send");
        out.count += 1;
        out.amount_cents += facts.amount_cents;
        if bad_every > 0 && i % bad_every == bad_every - 1 {
            producer.send(topic, key.as_bytes(), &json.as_bytes()[..json.len() / 2], None).expect("send");
            out.bad += 1;
        }
    }
    producer.flush(Duration::from_secs(300)).expect("flush");
    assert_eq!(producer.counts().delivered.load(Ordering::Relaxed), out.count + out.bad, "every message delivered");
    out
}

/// Sends raw payloads (for bad-message tests).
pub fn produce_raw(s: &Services, topic: &str, payloads: &[&[u8]]) {
    let producer = CountingProducer::new(&s.kafka.bootstrap(), &[]).expect("producer");
    for p in payloads {
        producer.send(topic, b"k", p, Some(0)).expect("send");
    }
    producer.flush(Duration::from_secs(60)).expect("flush");
}

/// Writes the example pipeline, pointed at this test's services, topic and database.
pub fn example_pipeline(s: &Services, dir: &Path, topic: &str, db: &str, max_rows: usize) -> PathBuf {
    let text = std::fs::read_to_string(repo_root().join("examples/transactions.yaml")).expect("example pipeline");
    let text = text
        .replace("${PENSTOCK_KAFKA_BROKERS}", &s.kafka.bootstrap())
        .replace("${PENSTOCK_TOPIC:-transactions}", topic)
        .replace("${PENSTOCK_GROUP:-penstock-transactions}", &format!("group-{topic}"))
        .replace("${PENSTOCK_CLICKHOUSE_URL}", &s.clickhouse.url())
        .replace("${PENSTOCK_DATABASE:-default}", db)
        .replace("max_rows: 200000", &format!("max_rows: {max_rows}"));
    let path = dir.join(format!("{topic}.yaml"));
    std::fs::write(&path, text).expect("write pipeline");
    path
}

/// Adds librdkafka `properties` (YAML flow-map body, e.g. `group.instance.id: "x"`)
/// to a pipeline file written by [`example_pipeline`].
pub fn add_kafka_properties(pipeline: &Path, properties: &str) {
    let text = std::fs::read_to_string(pipeline).expect("pipeline file");
    assert!(text.contains("    start: earliest\n"), "not an example pipeline");
    let text =
        text.replace("    start: earliest\n", &format!("    start: earliest\n    properties: {{ {properties} }}\n"));
    std::fs::write(pipeline, text).expect("write pipeline");
}

/// Waits until `table` has rows but fewer than `total`: a fault injected now lands in
/// the middle of the stream.
pub fn wait_until_mid_stream(s: &Services, table: &str, total: u64) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let n: u64 = s
            .clickhouse
            .try_query(&format!("SELECT count() FROM {table}"))
            .map_or(0, |v| v.trim().parse().unwrap_or(0));
        if n > 0 {
            assert!(n < total, "the fault must land mid-stream (already {n} rows)");
            return;
        }
        assert!(Instant::now() < deadline, "no rows arrived");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `penstock ARGS`, waiting for it to finish.
pub fn penstock(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_penstock")).args(args).env("RUST_LOG", "info").output().expect("run penstock")
}

/// `penstock ARGS` with stderr appended to `log`, killed and failed with the log's tail
/// if it has not finished within `limit`; returns its exit status and stdout.
pub fn penstock_within(args: &[&str], limit: Duration, log: &Path) -> (std::process::ExitStatus, String) {
    let err = std::fs::OpenOptions::new().create(true).append(true).open(log).expect("log file");
    let mut child = Command::new(env!("CARGO_BIN_EXE_penstock"))
        .args(args)
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(err)
        .spawn()
        .expect("spawn penstock");
    let status = wait_with_limit(&mut child, limit, log);
    let mut out = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take().expect("stdout"), &mut out).expect("stdout");
    (status, out)
}

/// `penstock ARGS` in the background, stderr to `log`.
pub fn spawn_penstock(args: &[&str], log: &Path) -> Child {
    spawn_penstock_env(args, log, &[])
}

/// `penstock ARGS` in the background with extra environment, stderr appended to `log`.
pub fn spawn_penstock_env(args: &[&str], log: &Path, envs: &[(&str, String)]) -> Child {
    let log = std::fs::OpenOptions::new().create(true).append(true).open(log).expect("log file");
    Command::new(env!("CARGO_BIN_EXE_penstock"))
        .args(args)
        .env("RUST_LOG", "info")
        .envs(envs.iter().map(|(k, v)| (*k, v.as_str())))
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("spawn penstock")
}

/// Waits for `child` up to `limit`; on timeout kills it and fails with the end of
/// its `log`.
pub fn wait_with_limit(child: &mut Child, limit: Duration, log: &Path) -> std::process::ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("penstock did not finish within {limit:?}; log tail:\n{}", tail_of(log, 60));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits for `child` up to `limit`; past it, kills it (SIGKILL) and returns `None`.
pub fn wait_or_kill(child: &mut Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The last `lines` lines of a log file.
pub fn tail_of(log: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Parses a Decimal(…, 2) sum printed by ClickHouse into cents.
pub fn cents(text: &str) -> u64 {
    let t = text.trim();
    let (int, frac) = t.split_once('.').unwrap_or((t, "00"));
    int.parse::<u64>().expect("integer part") * 100 + format!("{frac:0<2}")[..2].parse::<u64>().expect("fraction")
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}
