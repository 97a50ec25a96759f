//! ClickHouse → Kafka: `examples/clickhouse-to-kafka.yaml` publishes the `transactions`
//! table to a topic exactly once — through SIGKILLs at random instants and at every
//! failpoint of the Kafka sink, through ClickHouse and broker outages, with rows
//! inserted while it runs — and refuses bad sources and sinks with clear errors.

use crate::harness::*;
use penstock_kafka::rdkafka::config::ClientConfig;
use penstock_kafka::rdkafka::consumer::{BaseConsumer, Consumer};
use penstock_kafka::rdkafka::message::{Headers, Message};
use penstock_kafka::rdkafka::{Offset, TopicPartitionList};
use penstock_protocol::Position;
use penstock_testkit::{unique_name, Services};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Kafka-sink failpoints (each aborts the process like `kill -9`).
const FAILPOINTS: [&str; 4] =
    ["publish_after_recovery", "publish_before_send", "publish_after_send", "publish_after_flush"];

/// Rows inserted straight into the table (TabSeparated), with what the topic must hold.
#[derive(Debug, Default, Clone, Copy)]
struct Filled {
    rows: u64,
    cents: u64,
}

/// Inserts rows `range` of a deterministic `transactions` data set; `ingest_time` is
/// `ingest` (epoch seconds) plus one second per 1,000 rows.
fn fill(s: &Services, db: &str, range: std::ops::Range<u64>, ingest: i64) -> Filled {
    let regions = ["us-east", "us-west", "eu-west", "eu-central", "ap-south", "ap-east", "sa-east"];
    let types = ["purchase", "refund", "view", "add_to_cart", "checkout", "login"];
    let mut body = format!("INSERT INTO `{db}`.transactions FORMAT TabSeparated\n");
    let mut filled = Filled::default();
    for i in range {
        let cents = (i * 7919) % 999_999 + 1;
        let ts = ingest + (i as i64 / 1000);
        body.push_str(&format!(
            "00000000-0000-4000-8000-{i:012}\t{}\t{}.{:02}\t{}\t{}\t{}\t{}\t{}\t{}\n",
            i % 10_000_000 + 1,
            cents / 100,
            cents % 100,
            regions[(i % 7) as usize],
            types[(i % 6) as usize],
            datetime(ts - 5),
            datetime(ts),
            i % 4,
            i / 4,
        ));
        filled.rows += 1;
        filled.cents += cents;
    }
    s.clickhouse.query(&body);
    filled
}

fn datetime(secs: i64) -> String {
    let (y, m, d) = penstock_codec::datetime::civil_from_days(secs.div_euclid(86_400));
    let sod = secs.rem_euclid(86_400);
    format!("{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}", sod / 3600, sod / 60 % 60, sod % 60)
}

/// The shipped example, pointed at this test's services, database and topic.
fn publication(s: &Services, db: &str, topic: &str, settle: &str, batch_rows: usize) -> PathBuf {
    let text = std::fs::read_to_string(repo_root().join("examples/clickhouse-to-kafka.yaml")).expect("example");
    let text = text
        .replace("${PENSTOCK_CLICKHOUSE_URL}", &s.clickhouse.url())
        .replace("${PENSTOCK_DATABASE:-default}", db)
        .replace("${PENSTOCK_KAFKA_BROKERS}", &s.kafka.bootstrap())
        .replace("${PENSTOCK_OUT_TOPIC:-transactions-out}", topic)
        .replace("${PENSTOCK_SETTLE:-2s}", settle)
        .replace("batch_rows: 100000", &format!("batch_rows: {batch_rows}"));
    let path = s.dir().join(format!("{topic}.yaml"));
    std::fs::write(&path, text).expect("write pipeline");
    path
}

/// Turns the writer lease off in a pipeline file written from an example.
pub(crate) fn without_lease(pipeline: &Path) {
    let text = std::fs::read_to_string(pipeline).expect("pipeline");
    assert!(text.contains("    create: { partitions: 4 }\n"), "an example pipeline");
    let text = text.replace("    create: { partitions: 4 }\n", "    create: { partitions: 4 }\n    lease: none\n");
    std::fs::write(pipeline, text).expect("write pipeline");
}

/// One message of the output topic.
pub(crate) struct Out {
    pub(crate) partition: i32,
    pub(crate) key: Vec<u8>,
    pub(crate) payload: String,
    pub(crate) position: Position,
    pub(crate) headers: Vec<(String, Vec<u8>)>,
}

/// Reads every message of `topic` (`partitions` partitions) from the beginning.
pub(crate) fn read_topic(s: &Services, topic: &str, partitions: i32) -> Vec<Out> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", s.kafka.bootstrap())
        .set("group.id", format!("{topic}-reader"))
        .set("enable.auto.commit", "false")
        .set("fetch.wait.max.ms", "10")
        .create()
        .expect("consumer");
    let mut ends = Vec::new();
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        let (_, high) = consumer.fetch_watermarks(topic, p, Duration::from_secs(10)).expect("watermarks");
        ends.push(high);
        tpl.add_partition_offset(topic, p, Offset::Beginning).expect("tpl");
    }
    consumer.assign(&tpl).expect("assign");
    let total: i64 = ends.iter().sum();
    let mut next = vec![0i64; partitions as usize];
    let mut out = Vec::with_capacity(total as usize);
    let deadline = Instant::now() + Duration::from_secs(300);
    while next.iter().zip(&ends).any(|(n, e)| n < e) {
        assert!(Instant::now() < deadline, "reading the output topic timed out at {next:?} of {ends:?}");
        let Some(m) = consumer.poll(Duration::from_millis(200)) else { continue };
        let m = m.expect("consume");
        let p = m.partition();
        next[p as usize] = m.offset() + 1;
        let position = m
            .headers()
            .and_then(|h| h.iter().find(|h| h.key == "penstock-position").and_then(|h| h.value.map(<[u8]>::to_vec)))
            .expect("every message has a position header");
        let headers = m
            .headers()
            .map(|h| h.iter().map(|h| (h.key.to_string(), h.value.unwrap_or_default().to_vec())).collect())
            .unwrap_or_default();
        out.push(Out {
            headers,
            partition: p,
            key: m.key().unwrap_or_default().to_vec(),
            payload: String::from_utf8(m.payload().unwrap_or_default().to_vec()).expect("UTF-8 JSON"),
            position: Position::parse(&position).expect("position header"),
        });
    }
    out
}

/// The text of a top-level JSON field of a message this sink wrote.
pub(crate) fn field<'a>(json: &'a str, name: &str) -> &'a str {
    let key = format!("\"{name}\":");
    let start = json.find(&key).unwrap_or_else(|| panic!("no `{name}` in {json}")) + key.len();
    let rest = &json[start..];
    let end = rest.find([',', '}']).expect("value end");
    rest[..end].trim_matches('"')
}

/// The topic holds each row exactly once, every column under its name, keyed and
/// partitioned by event_id (Java murmur2), each partition in cursor order.
fn assert_published_exactly_once(msgs: &[Out], want: Filled, partitions: i32, log: &Path) {
    let mut ids = HashSet::with_capacity(msgs.len());
    let mut cents = 0u64;
    let mut last: Vec<Option<&Position>> = vec![None; partitions as usize];
    for m in msgs {
        let id = field(&m.payload, "event_id");
        assert!(ids.insert(id.to_string()), "event {id} published twice\n{}", tail_of(log, 40));
        assert_eq!(m.key, id.as_bytes(), "the key is the event_id");
        let expected = penstock_kafka::partition_for_key(&m.key, partitions as u32) as i32;
        assert_eq!(m.partition, expected, "partition = murmur2(key) % partitions");
        cents += cents_of(field(&m.payload, "amount"));
        for col in ["user_id", "region", "event_type", "event_time", "ingest_time", "_partition", "_offset"] {
            field(&m.payload, col);
        }
        let prev = &mut last[m.partition as usize];
        assert!(
            prev.is_none_or(|p| p < &m.position),
            "partition {} out of cursor order at {}",
            m.partition,
            m.position
        );
        *prev = Some(&m.position);
    }
    assert_eq!(msgs.len() as u64, want.rows, "message count\n{}", tail_of(log, 40));
    assert_eq!(ids.len() as u64, want.rows, "distinct event_id");
    assert_eq!(cents, want.cents, "sum of amount");
}

pub(crate) fn cents_of(text: &str) -> u64 {
    let (int, frac) = text.split_once('.').unwrap_or((text, "0"));
    int.parse::<u64>().expect("integer part") * 100 + format!("{frac:0<2}")[..2].parse::<u64>().expect("fraction")
}

#[test]
fn example_publishes_a_table_exactly_once_through_crashes() {
    let s = Services::start().expect("services");
    let db = unique_name("db");
    let topic = unique_name("out");
    create_transactions_table(&s, &db);
    // The example publishes to a topic that already exists.
    s.kafka.create_topic(&topic, 4).expect("topic");
    // Small reads: many cursor queries, so kills land between and inside them.
    let pipeline = publication(&s, &db, &topic, "2s", 2_000);
    // Tansu stalls a group after many SIGKILLed members (SERVICES.md): the crash loop
    // runs without the writer lease (tested on its own in relay.rs).
    without_lease(&pipeline);
    let pipeline = pipeline.to_str().unwrap();
    let mut want = fill(&s, &db, 0..10_000, 1_795_000_000);
    let check = penstock(&["check", pipeline]);
    assert!(check.status.success(), "check:\n{}{}", stdout(&check), stderr(&check));
    assert!(stdout(&check).contains("has 4 partitions"), "{}", stdout(&check));

    // The table grows by 35,000 rows before each run; each run is killed — at a
    // failpoint, or by SIGKILL once a random part of the new rows is in the topic —
    // and the next one recovers from the topic's tails.
    let log = s.dir().join("publish-crash.log");
    let seed: u64 = std::env::var("PENSTOCK_CRASH_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or(11);
    let mut rng = SmallRng::seed_from_u64(seed);
    let fp = |name: &str| Some(name.to_string());
    let plan = [
        fp("publish_after_recovery:1"),
        fp("publish_before_send:5"),
        None,
        fp("publish_after_send:5"),
        None,
        fp("publish_after_flush:1"),
        None,
        fp("publish_before_send:1"),
        None,
        fp("publish_after_send:1"),
        None,
        None,
        None,
        None,
    ];
    let watermarks = Watermarks::new(&s, &topic, 4);
    for f in FAILPOINTS {
        assert!(plan.iter().flatten().any(|p| p.starts_with(f)), "{f} is exercised");
    }
    let (mut crashes, mut mid_stream_kills) = (0, 0);
    for (i, step) in plan.iter().enumerate() {
        let first = 10_000 + i as u64 * 35_000;
        let added = fill(&s, &db, first..first + 35_000, 1_795_000_010 + i as i64 * 35);
        want.rows += added.rows;
        want.cents += added.cents;
        let before = watermarks.size();
        match step {
            Some(failpoint) => {
                let envs = [("PENSTOCK_FAILPOINT", failpoint.clone())];
                let args = ["run", pipeline, "--until-caught-up", "--http", "off"];
                let mut child = spawn_penstock_env(&args, &log, &envs);
                let status = wait_or_kill(&mut child, Duration::from_secs(120));
                assert!(status.is_some_and(|st| !st.success()), "failpoint {failpoint} was not reached");
            }
            None => {
                let mut child = spawn_penstock(&["run", pipeline, "--http", "off"], &log);
                let left = want.rows as i64 - before;
                let target = before + rng.random_range(1..left * 3 / 4);
                let deadline = Instant::now() + Duration::from_secs(60);
                while watermarks.size() < target && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(2));
                }
                let _ = child.kill();
                let _ = child.wait();
                let after = watermarks.size();
                if after < want.rows as i64 {
                    mid_stream_kills += 1;
                } else {
                    eprintln!("kill after the stream had ended ({before} → {after} of {})", want.rows);
                }
            }
        }
        crashes += 1;
    }
    assert!(crashes >= 14 && mid_stream_kills >= 6, "{crashes} crashes, {mid_stream_kills} SIGKILLs mid-stream");
    let mut child = spawn_penstock(&["run", pipeline, "--until-caught-up", "--http", "off"], &log);
    let status = wait_with_limit(&mut child, Duration::from_secs(300), &log);
    assert!(status.success(), "final run failed:\n{}", tail_of(&log, 40));
    let log_text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(log_text.contains("recovered from the output topic's tails"), "recovery ran");
    assert_eq!(want.rows, 500_000);
    assert_published_exactly_once(&read_topic(&s, &topic, 4), want, 4, &log);
}

#[test]
fn rows_inserted_while_publishing_arrive_and_late_rows_are_counted() {
    let s = Services::start().expect("services");
    let db = unique_name("db");
    let topic = unique_name("live");
    create_transactions_table(&s, &db);
    let pipeline = publication(&s, &db, &topic, "2s", 5_000);
    let text = std::fs::read_to_string(&pipeline).unwrap();
    std::fs::write(
        &pipeline,
        text.replace("batch_rows: 5000", "batch_rows: 5000\n    poll_interval: 200ms\n    late_check: 1s"),
    )
    .unwrap();
    let log = s.dir().join("publish-live.log");
    let port = penstock_testkit::free_port();
    let addr = format!("127.0.0.1:{port}");
    let mut child = spawn_penstock(&["run", pipeline.to_str().unwrap(), "--http", &addr], &log);
    // Four inserters, each its own rows, ingest_time = now by the server's clock.
    let mut want = Filled::default();
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..4u64)
            .map(|w| {
                let (s, db) = (&s, &db);
                scope.spawn(move || {
                    let mut f = Filled::default();
                    for round in 0..10u64 {
                        let start = w * 1_000_000 + round * 2_000;
                        let secs: i64 = s.clickhouse.scalar("SELECT toUInt32(now())");
                        // ingest_time = now: one batch per second per worker.
                        let part = fill(s, db, start..start + 1_000, secs - (start as i64 / 1000));
                        f.rows += part.rows;
                        f.cents += part.cents;
                        std::thread::sleep(Duration::from_millis(150));
                    }
                    f
                })
            })
            .collect();
        for h in handles {
            let f = h.join().unwrap();
            want.rows += f.rows;
            want.cents += f.cents;
        }
    });
    // A row with an old cursor value inside the settle window still arrives…
    let secs: i64 = s.clickhouse.scalar("SELECT toUInt32(now())");
    let inside = fill(&s, &db, 9_000_000..9_000_001, secs - 1 - 9_000);
    want.rows += inside.rows;
    want.cents += inside.cents;
    // …one far behind the cursor (an hour old) cannot: the detector counts it.
    std::thread::sleep(Duration::from_secs(4));
    fill(&s, &db, 9_500_000..9_500_001, secs - 3600 - 9_500);
    let deadline = Instant::now() + Duration::from_secs(120);
    let log_text = loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if text.contains("rows appeared behind the cursor") {
            break text;
        }
        assert!(Instant::now() < deadline, "the late row was not detected:\n{}", tail_of(&log, 40));
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(log_text.contains("late=1"), "exactly one late row:\n{}", tail_of(&log, 20));
    let deadline = Instant::now() + Duration::from_secs(60);
    while topic_size(&s, &topic, 4) < want.rows as i64 {
        assert!(Instant::now() < deadline, "not everything arrived:\n{}", tail_of(&log, 30));
        std::thread::sleep(Duration::from_millis(200));
    }
    // What the operator sees: metrics, the API and the dashboard agree with the topic.
    let get = |path: &str| penstock_testkit::http_post(port, path, "").expect("HTTP API");
    let value = |text: &str, name: &str| crate::metrics::metric(text, name).first().map(|(_, v)| *v);
    // The lag is measured every 5 s: wait for the measurement after the last rows.
    let deadline = Instant::now() + Duration::from_secs(30);
    let text = loop {
        let (_, text) = get("/metrics");
        if value(&text, "penstock_source_lag_rows") == Some(0.0)
            && value(&text, "penstock_messages_produced_total") == Some(want.rows as f64)
        {
            break text;
        }
        assert!(Instant::now() < deadline, "lag never reached 0 with every message acknowledged:\n{text}");
        std::thread::sleep(Duration::from_millis(250));
    };
    assert_eq!(value(&text, "penstock_source_late_rows_total"), Some(1.0), "{text}");
    assert!(value(&text, "penstock_source_rows_read_total").is_some_and(|v| v >= want.rows as f64), "{text}");
    let (_, json) = get("/api/pipelines");
    assert!(
        json.contains(&format!("\"messages_produced\":{}", want.rows)) && json.contains("\"late_rows\":1"),
        "{json}"
    );
    let dom = crate::metrics::chromium(&format!("http://{addr}/"), &["--dump-dom"]);
    assert!(dom.contains("id=\"pub_late\">1</div>"), "{dom}");
    assert!(!dom.contains("<div id=\"publish\" hidden"), "the publication panel is shown: {dom}");
    sigterm(&mut child);
    let status = wait_with_limit(&mut child, Duration::from_secs(60), &log);
    assert!(status.success(), "{}", tail_of(&log, 30));
    assert_published_exactly_once(&read_topic(&s, &topic, 4), want, 4, &log);
}

/// Messages in `topic` (sum of high watermarks).
fn topic_size(s: &Services, topic: &str, partitions: i32) -> i64 {
    Watermarks::new(s, topic, partitions).size()
}

/// A client that reads a topic's size again and again.
pub(crate) struct Watermarks {
    consumer: BaseConsumer,
    topic: String,
    partitions: i32,
}

impl Watermarks {
    pub(crate) fn new(s: &Services, topic: &str, partitions: i32) -> Self {
        let consumer = ClientConfig::new().set("bootstrap.servers", s.kafka.bootstrap()).create().expect("consumer");
        Watermarks { consumer, topic: topic.to_string(), partitions }
    }

    /// Sum of the partitions' high watermarks.
    pub(crate) fn size(&self) -> i64 {
        self.highs().iter().sum()
    }

    /// Each partition's high watermark.
    pub(crate) fn highs(&self) -> Vec<i64> {
        (0..self.partitions)
            .map(|p| self.consumer.fetch_watermarks(&self.topic, p, Duration::from_secs(10)).map_or(0, |w| w.1))
            .collect()
    }
}

/// SIGTERM through the `kill` command (the test crate has no signal dependency).
pub(crate) fn sigterm(child: &mut std::process::Child) {
    let status = std::process::Command::new("kill").arg("-TERM").arg(child.id().to_string()).status().expect("kill");
    assert!(status.success());
}

#[test]
fn clickhouse_and_broker_outages_leave_the_topic_exact() {
    let mut s = Services::start().expect("services");
    let db = unique_name("db");
    let topic = unique_name("outage");
    create_transactions_table(&s, &db);
    s.kafka.create_topic(&topic, 4).expect("topic");
    let want = fill(&s, &db, 0..200_000, 1_795_000_000);
    let pipeline = publication(&s, &db, &topic, "0s", 2_000);
    let log = s.dir().join("publish-outage.log");
    let mut child = spawn_penstock(&["run", pipeline.to_str().unwrap(), "--until-caught-up", "--http", "off"], &log);
    let offsets = |s: &Services| topic_size(s, &topic, 4);
    let deadline = Instant::now() + Duration::from_secs(120);
    while offsets(&s) == 0 {
        assert!(Instant::now() < deadline, "nothing published:\n{}", tail_of(&log, 30));
        std::thread::sleep(Duration::from_millis(50));
    }
    s.clickhouse.process().kill();
    std::thread::sleep(Duration::from_secs(20));
    assert!(child.try_wait().unwrap().is_none(), "penstock must wait for ClickHouse:\n{}", tail_of(&log, 30));
    s.clickhouse.restart().expect("restart ClickHouse");
    std::thread::sleep(Duration::from_secs(2));
    let before = offsets(&s);
    assert!(before < want.rows as i64, "the broker outage must land mid-run");
    s.kafka.process().kill();
    std::thread::sleep(Duration::from_secs(20));
    assert!(child.try_wait().unwrap().is_none(), "penstock must wait for the broker:\n{}", tail_of(&log, 30));
    s.kafka.restart().expect("restart the broker");
    let status = wait_with_limit(&mut child, Duration::from_secs(300), &log);
    assert!(status.success(), "{}", tail_of(&log, 40));
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(text.contains("reading the source failed; retrying"), "the ClickHouse outage was seen");
    assert_published_exactly_once(&read_topic(&s, &topic, 4), want, 4, &log);
}

#[test]
fn bad_sources_and_sinks_are_refused_clearly() {
    let s = Services::start().expect("services");
    let db = unique_name("db");
    create_transactions_table(&s, &db);
    s.clickhouse.query(&format!("CREATE TABLE `{db}`.floats (x Float64, t DateTime) ENGINE = MergeTree ORDER BY t"));
    let topic = unique_name("bad");
    s.kafka.create_topic(&topic, 2).expect("topic");
    let base = std::fs::read_to_string(publication(&s, &db, &topic, "2s", 1000)).unwrap();
    let refused = |name: &str, from: &str, to: &str, words: &[&str]| {
        assert!(base.contains(from), "{from}");
        let path = s.dir().join(format!("{name}.yaml"));
        std::fs::write(&path, base.replace(from, to)).unwrap();
        for cmd in ["check", "run"] {
            let o = penstock(&[cmd, path.to_str().unwrap(), "--until-caught-up"][..if cmd == "run" { 3 } else { 2 }]);
            let text = format!("{}{}", stdout(&o), stderr(&o));
            assert_eq!(o.status.code(), Some(1), "{name} {cmd}: {text}");
            for w in words {
                assert!(text.contains(w), "{name} {cmd}: `{w}` missing in:\n{text}");
            }
        }
    };
    refused(
        "failing-query",
        "    table: transactions\n",
        "    query: SELECT nope FROM transactions\n",
        &["cannot read the source", "nope"],
    );
    refused(
        "missing-cursor",
        "columns: [ingest_time, _partition, _offset]",
        "columns: [ingest_time, seq]",
        &["cursor column `seq`", "no such column"],
    );
    refused("float-cursor", "    table: transactions\n", "    table: floats\n", &["cursor column `ingest_time`"]);
    refused(
        "unorderable",
        "    table: transactions\n    user",
        "    query: SELECT x AS ingest_time, 1 AS _partition, 2 AS _offset, '' AS event_id FROM floats\n    user",
        &["cursor column `ingest_time`", "Float64 is not a cursor type"],
    );
    refused(
        "missing-topic",
        &format!("topic: {topic}\n    key: event_id\n    format: json\n    # Created with 4 partitions when it does not exist yet.\n    create: {{ partitions: 4 }}\n"),
        &format!("topic: {topic}-absent\n    key: event_id\n"),
        &["does not exist", "create"],
    );
    refused("missing-key", "key: event_id", "key: [event_id, nope]", &["key column(s) nope"]);
    // `cursor: block` on a table without persisted block numbers (every 18.16 table):
    // refused with the settings to set.
    let cursor_at = base.find("    cursor:\n").expect("cursor section");
    let cursor_end = base[cursor_at..].find("    batch_rows").expect("after the cursor") + cursor_at;
    refused(
        "block-cursor",
        &base[cursor_at..cursor_end],
        "    cursor: block\n",
        &["MODIFY SETTING enable_block_number_column = 1, enable_block_offset_column = 1"],
    );
    let unreachable = format!("brokers: 127.0.0.1:{}", penstock_testkit::free_port());
    refused("no-broker", &format!("brokers: {}", s.kafka.bootstrap()), &unreachable, &["Kafka"]);
}

/// Penstock's partition of a key is the one librdkafka's Java-compatible `murmur2`
/// partitioner (and so the Java client) picks: checked on the real broker.
#[test]
fn partitions_agree_with_librdkafkas_murmur2_partitioner() {
    use penstock_kafka::rdkafka::producer::DefaultProducerContext;
    use penstock_kafka::rdkafka::producer::{BaseRecord, Producer, ThreadedProducer};
    let s = Services::start().expect("services");
    let topic = unique_name("murmur");
    s.kafka.create_topic(&topic, 7).expect("topic");
    let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", s.kafka.bootstrap())
        .set("partitioner", "murmur2")
        .create()
        .expect("producer");
    let keys: Vec<String> = (0..500).map(|i| format!("00000000-0000-4000-8000-{i:012}")).collect();
    for k in &keys {
        producer.send(BaseRecord::<str, str>::to(&topic).key(k).payload(k)).expect("send");
    }
    producer.flush(Duration::from_secs(30)).expect("flush");
    let msgs = read_topic_raw(&s, &topic, 7);
    assert_eq!(msgs.len(), keys.len());
    for (partition, key) in msgs {
        assert_eq!(penstock_kafka::partition_for_key(&key, 7) as i32, partition, "{}", String::from_utf8_lossy(&key));
    }
}

/// (partition, key) of every message of `topic`.
fn read_topic_raw(s: &Services, topic: &str, partitions: i32) -> Vec<(i32, Vec<u8>)> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", s.kafka.bootstrap())
        .set("group.id", format!("{topic}-raw"))
        .set("enable.auto.commit", "false")
        .set("fetch.wait.max.ms", "10")
        .set("enable.partition.eof", "true")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, Offset::Beginning).expect("tpl");
    }
    consumer.assign(&tpl).expect("assign");
    let (mut out, mut eof) = (Vec::new(), HashSet::new());
    let deadline = Instant::now() + Duration::from_secs(60);
    while eof.len() < partitions as usize && Instant::now() < deadline {
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => out.push((m.partition(), m.key().unwrap_or_default().to_vec())),
            Some(Err(penstock_kafka::rdkafka::error::KafkaError::PartitionEOF(p))) => {
                eof.insert(p);
            }
            Some(Err(e)) => panic!("consume: {e}"),
            None => {}
        }
    }
    out
}
