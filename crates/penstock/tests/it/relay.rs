//! Kafka → Kafka: `examples/kafka-to-kafka.yaml` relays a 4-partition topic with 1 %
//! malformed messages exactly once — valid events to the output topic, malformed ones
//! to the dead-letter topic — through SIGKILLs at random instants and at every
//! failpoint of the Kafka sink, and refuses bad set-ups with clear errors.

use crate::harness::*;
use crate::publish::{cents_of, field, read_topic, without_lease, Out, Watermarks};
use penstock_protocol::{Position, PositionValue};
use penstock_testkit::{unique_name, Services};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The shipped example, pointed at this test's services and topics.
fn relay_pipeline(s: &Services, source: &str, out: &str, dead: &str) -> PathBuf {
    let text = std::fs::read_to_string(repo_root().join("examples/kafka-to-kafka.yaml")).expect("example");
    let text = text
        .replace("${PENSTOCK_KAFKA_BROKERS}", &s.kafka.bootstrap())
        .replace("${PENSTOCK_TOPIC:-transactions}", source)
        .replace("${PENSTOCK_GROUP:-penstock-transactions-relay}", &format!("group-{source}"))
        .replace("${PENSTOCK_OUT_TOPIC:-transactions-checked}", out)
        .replace("${PENSTOCK_DEAD_LETTER_TOPIC:-transactions-checked-dead-letter}", dead);
    let path = s.dir().join(format!("{out}.yaml"));
    std::fs::write(&path, text).expect("write pipeline");
    path
}

fn header<'a>(m: &'a Out, name: &str) -> Option<&'a [u8]> {
    m.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_slice())
}

/// (stream, offset, row) of a relayed message's position.
fn coordinates(p: &Position) -> (String, i64, i64) {
    match p.0.as_slice() {
        [PositionValue::Text(s), PositionValue::Int(o), PositionValue::Int(r)] => (s.clone(), *o as i64, *r as i64),
        other => panic!("not a relay position: {other:?}"),
    }
}

/// Each valid event once, typed (every column, amount exact), keyed and partitioned by
/// event_id, each partition in source order per stream; each malformed message once in
/// the dead-letter topic with its reason and source coordinates.
fn assert_relayed_exactly_once(out: &[Out], dead: &[Out], want: Produced, log: &Path) {
    let mut ids = HashSet::with_capacity(out.len());
    let mut cents = 0u64;
    let mut last: HashMap<(i32, String), (i64, i64)> = HashMap::new();
    for m in out {
        let id = field(&m.payload, "event_id");
        assert!(ids.insert(id.to_string()), "event {id} relayed twice\n{}", tail_of(log, 40));
        assert_eq!(m.key, id.as_bytes(), "the key is the event_id");
        assert_eq!(m.partition, penstock_kafka::partition_for_key(&m.key, 4) as i32, "murmur2 partition");
        cents += cents_of(field(&m.payload, "amount"));
        for col in ["user_id", "region", "event_type", "event_time", "_partition", "_offset"] {
            field(&m.payload, col);
        }
        let (stream, offset, row) = coordinates(&m.position);
        assert_eq!(
            format!("{}", field(&m.payload, "_offset")),
            offset.to_string(),
            "the position is the source offset"
        );
        let prev = last.insert((m.partition, stream.clone()), (offset, row));
        assert!(
            prev.is_none_or(|p| p < (offset, row)),
            "partition {} out of order for {stream} at {offset}",
            m.partition
        );
    }
    assert_eq!(out.len() as u64, want.count, "relayed count\n{}", tail_of(log, 40));
    assert_eq!(cents, want.amount_cents, "sum of amount");
    let mut sources = HashSet::new();
    for m in dead {
        let source = String::from_utf8(header(m, "penstock-source").expect("source header").to_vec()).unwrap();
        assert!(sources.insert(source.clone()), "{source} dead-lettered twice");
        let why = String::from_utf8_lossy(header(m, "penstock-error").expect("error header")).to_string();
        assert!(!why.is_empty(), "a reason");
        assert!(header(m, "penstock-error-kind").is_some(), "an error kind");
        // The raw message itself: the first half of an event.
        assert!(m.payload.starts_with("{\"event_id\""), "raw bytes kept: {}", m.payload);
    }
    assert_eq!(dead.len() as u64, want.bad, "dead letters");
}

#[test]
fn example_relays_exactly_once_with_dead_letters_through_crashes() {
    let s = Services::start().expect("services");
    let (source, out, dead) = (unique_name("in"), unique_name("checked"), unique_name("dead"));
    s.kafka.create_topic(&source, 4).expect("source topic");
    // One malformed message after every 99 good ones: 1 % of the messages.
    let want = produce_with_bad(&s, &source, 495_000, 5, 99);
    assert_eq!(want.count + want.bad, 500_000);
    let pipeline = relay_pipeline(&s, &source, &out, &dead);
    // Tansu stalls a group after many SIGKILLed members: no writer lease in the crash
    // loop (the lease has its own test below).
    without_lease(&pipeline);
    let pipeline = pipeline.to_str().unwrap();
    let check = penstock(&["check", pipeline]);
    assert!(check.status.success(), "check:\n{}{}", stdout(&check), stderr(&check));
    assert!(stdout(&check).contains("will be created with 4 partitions"), "{}", stdout(&check));

    let log = s.dir().join("relay-crash.log");
    let seed: u64 = std::env::var("PENSTOCK_CRASH_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or(5);
    let mut rng = SmallRng::seed_from_u64(seed);
    let fp = |name: &str| Some(name.to_string());
    let plan = [
        None,
        fp("publish_after_recovery:1"),
        fp("publish_before_send:20000"),
        None,
        fp("publish_after_send:30000"),
        None,
        None,
        fp("publish_before_send:1"),
        None,
        None,
        None,
        None,
        fp("publish_after_flush:1"),
    ];
    let mut crashes = 0;
    let mut mid_stream_kills = 0;
    for step in &plan {
        // The output topic exists from the first run on (created with 4 partitions).
        let size = || Watermarks::new(&s, &out, 4).size();
        match step {
            Some(failpoint) => {
                let envs = [("PENSTOCK_FAILPOINT", failpoint.clone())];
                let args = ["run", pipeline, "--until-caught-up", "--http", "off"];
                let mut child = spawn_penstock_env(&args, &log, &envs);
                let status = wait_or_kill(&mut child, Duration::from_secs(300));
                assert!(status.is_some_and(|st| !st.success()), "failpoint {failpoint} was not reached");
            }
            None => {
                let before = size();
                let mut child = spawn_penstock(&["run", pipeline, "--http", "off"], &log);
                let left = (want.count as i64 - before).max(2);
                let target = before + rng.random_range(1..left / 6 + 2);
                let deadline = Instant::now() + Duration::from_secs(90);
                while size() < target && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(2));
                }
                let _ = child.kill();
                let _ = child.wait();
                if size() < want.count as i64 {
                    mid_stream_kills += 1;
                }
            }
        }
        crashes += 1;
    }
    assert!(crashes >= 13 && mid_stream_kills >= 6, "{crashes} crashes, {mid_stream_kills} SIGKILLs mid-stream");
    let mut child = spawn_penstock(&["run", pipeline, "--until-caught-up", "--http", "off"], &log);
    let status = wait_with_limit(&mut child, Duration::from_secs(600), &log);
    assert!(status.success(), "final run failed:\n{}", tail_of(&log, 40));
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(text.contains("recovered from the output topics' checkpoints"), "recovery ran");
    let out_msgs = read_topic(&s, &out, 4);
    let dead_msgs = read_topic(&s, &dead, 4);
    assert_relayed_exactly_once(&out_msgs, &dead_msgs, want, &log);
    // Progress is committed to the group for lag tools.
    assert!(text.contains("caught up: every message present at start is relayed"), "{}", tail_of(&log, 10));
}

#[test]
fn relay_refuses_bad_setups_clearly() {
    let s = Services::start().expect("services");
    let (source, out, dead) = (unique_name("in"), unique_name("checked"), unique_name("dead"));
    // The source topic is missing.
    let pipeline = relay_pipeline(&s, &source, &out, &dead);
    let o = penstock(&["run", pipeline.to_str().unwrap(), "--until-caught-up", "--http", "off"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains(&format!("topic `{source}` does not exist")), "{}", stderr(&o));
    // An output topic that may not be created.
    s.kafka.create_topic(&source, 2).expect("source topic");
    let text = std::fs::read_to_string(&pipeline).unwrap().replace("    create: { partitions: 4 }\n", "");
    std::fs::write(&pipeline, text).unwrap();
    let o = penstock(&["check", pipeline.to_str().unwrap()]);
    assert!(!o.status.success());
    assert!(stdout(&o).contains("add `create: { partitions: N }`"), "{}", stdout(&o));
    // A key that is not a column: refused before anything starts, with file and line.
    let text = std::fs::read_to_string(&pipeline).unwrap().replace("key: event_id", "key: order_id");
    std::fs::write(&pipeline, text).unwrap();
    let o = penstock(&["check", pipeline.to_str().unwrap()]);
    assert!(!o.status.success());
    let e = format!("{}{}", stdout(&o), stderr(&o));
    assert!(e.contains("key column `order_id` is not in the schema") && e.contains(".yaml:"), "{e}");
    // A broker that refuses the producer's settings: a clear error, not a hang.
    let text = std::fs::read_to_string(&pipeline).unwrap().replace(
        "key: order_id",
        "key: event_id\n    create: { partitions: 2 }\n    properties: { compression.type: nonsense }",
    );
    std::fs::write(&pipeline, text).unwrap();
    produce(&s, &source, 10, 1);
    let o = penstock(&["run", pipeline.to_str().unwrap(), "--until-caught-up", "--http", "off"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("compression.type"), "{}", stderr(&o));
}

#[test]
fn a_broker_outage_mid_relay_leaves_both_topics_exact() {
    let mut s = Services::start().expect("services");
    let (source, out, dead) = (unique_name("in"), unique_name("checked"), unique_name("dead"));
    s.kafka.create_topic(&source, 4).expect("source topic");
    let want = produce_with_bad(&s, &source, 99_000, 9, 99);
    let pipeline = relay_pipeline(&s, &source, &out, &dead);
    let port = penstock_testkit::free_port();
    let addr = format!("127.0.0.1:{port}");
    let log = s.dir().join("relay-outage.log");
    let mut child = spawn_penstock(&["run", pipeline.to_str().unwrap(), "--until-caught-up", "--http", &addr], &log);
    let size = |s: &Services| Watermarks::new(s, &out, 4).size();
    let deadline = Instant::now() + Duration::from_secs(120);
    while size(&s) == 0 {
        assert!(Instant::now() < deadline, "nothing relayed:\n{}", tail_of(&log, 30));
        std::thread::sleep(Duration::from_millis(20));
    }
    // The HTTP API reports the relay's counters while it runs.
    let (status, metrics) = penstock_testkit::http_post(port, "/metrics", "").expect("metrics");
    assert_eq!(status, 200);
    for name in
        ["penstock_messages_produced_total", "penstock_messages_dead_lettered_total", "penstock_source_lag_rows"]
    {
        assert!(metrics.contains(name), "{name} missing:\n{metrics}");
    }
    let (_, api) = penstock_testkit::http_post(port, "/api/pipelines", "").expect("api");
    assert!(api.contains("\"publish\":{") && api.contains("\"dead_letters\":"), "{api}");
    assert!(size(&s) < want.count as i64, "the outage must land mid-run");
    s.kafka.process().kill();
    std::thread::sleep(Duration::from_secs(20));
    assert!(child.try_wait().unwrap().is_none(), "penstock must wait for the broker:\n{}", tail_of(&log, 30));
    s.kafka.restart().expect("restart the broker");
    let status = wait_with_limit(&mut child, Duration::from_secs(300), &log);
    assert!(status.success(), "{}", tail_of(&log, 40));
    assert_relayed_exactly_once(&read_topic(&s, &out, 4), &read_topic(&s, &dead, 4), want, &log);
}

/// Waits until `log` contains `text`.
fn wait_for_log(log: &Path, text: &str, limit: Duration) {
    let deadline = Instant::now() + limit;
    while !std::fs::read_to_string(log).unwrap_or_default().contains(text) {
        assert!(Instant::now() < deadline, "`{text}` never appeared in {}:\n{}", log.display(), tail_of(log, 30));
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The newest line about the writer lease in `log`, if any.
fn lease_state(log: &Path) -> Option<&'static str> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    text.lines().rev().find_map(|l| {
        if l.contains("holding the writer lease") {
            Some("holding")
        } else if l.contains("waiting for the writer lease") || l.contains("writer lease was lost") {
            Some("waiting")
        } else {
            None
        }
    })
}

#[test]
fn one_writer_at_a_time_and_a_handover_when_it_stops() {
    let s = Services::start().expect("services");
    let (source, out, dead) = (unique_name("in"), unique_name("checked"), unique_name("dead"));
    s.kafka.create_topic(&source, 4).expect("source topic");
    // Half the messages are there from the start; the other half arrive while the
    // writer changes (so the handover always lands mid-stream, however fast A is).
    let first = produce_with_bad(&s, &source, 29_700, 3, 99);
    let pipeline = relay_pipeline(&s, &source, &out, &dead);
    let pipeline = pipeline.to_str().unwrap();
    let (log_a, log_b) = (s.dir().join("lease-a.log"), s.dir().join("lease-b.log"));
    let run = ["run", pipeline, "--http", "off"];
    let mut a = spawn_penstock_env(&run, &log_a, &[("PENSTOCK_INSTANCE", "a".to_string())]);
    wait_for_log(&log_a, "holding the writer lease", Duration::from_secs(60));
    let mut b = spawn_penstock_env(&run, &log_b, &[("PENSTOCK_INSTANCE", "b".to_string())]);
    // B joins the writer group: it waits while A holds partition 0 of the output topic
    // (or, if the group's new assignment gives partition 0 to B, A gives the lease up
    // first). Never both at once.
    let deadline = Instant::now() + Duration::from_secs(60);
    while lease_state(&log_b).is_none() {
        assert!(Instant::now() < deadline, "B never joined:\n{}", tail_of(&log_b, 20));
        std::thread::sleep(Duration::from_millis(100));
    }
    let size = |s: &Services| Watermarks::new(s, &out, 4).size() + Watermarks::new(s, &dead, 4).size();
    let deadline = Instant::now() + Duration::from_secs(120);
    while size(&s) < 1_000 {
        assert!(Instant::now() < deadline, "nothing written:\n{}\n{}", tail_of(&log_a, 20), tail_of(&log_b, 20));
        let (sa, sb) = (lease_state(&log_a), lease_state(&log_b));
        assert!(!(sa == Some("holding") && sb == Some("holding")), "two writers at once");
        std::thread::sleep(Duration::from_millis(20));
    }
    let want = std::thread::scope(|scope| {
        let second = scope.spawn(|| produce_with_bad(&s, &source, 29_700, 4, 99));
        // A stops while the second half is arriving (SIGTERM: it flushes and leaves the
        // group); B holds the lease and finishes.
        std::thread::sleep(Duration::from_millis(500));
        crate::publish::sigterm(&mut a);
        let status = wait_with_limit(&mut a, Duration::from_secs(60), &log_a);
        assert!(status.success(), "{}", tail_of(&log_a, 30));
        let deadline = Instant::now() + Duration::from_secs(90);
        while lease_state(&log_b) != Some("holding") {
            assert!(Instant::now() < deadline, "B never took over:\n{}", tail_of(&log_b, 30));
            std::thread::sleep(Duration::from_millis(100));
        }
        let second = second.join().expect("second half produced");
        crate::harness::Produced {
            count: first.count + second.count,
            amount_cents: first.amount_cents + second.amount_cents,
            bad: first.bad + second.bad,
        }
    });
    let total = (want.count + want.bad) as i64;
    let deadline = Instant::now() + Duration::from_secs(300);
    while size(&s) < total {
        assert!(Instant::now() < deadline, "B did not finish ({} of {total}):\n{}", size(&s), tail_of(&log_b, 30));
        std::thread::sleep(Duration::from_millis(100));
    }
    crate::publish::sigterm(&mut b);
    let status = wait_with_limit(&mut b, Duration::from_secs(60), &log_b);
    assert!(status.success(), "{}", tail_of(&log_b, 30));
    assert_relayed_exactly_once(&read_topic(&s, &out, 4), &read_topic(&s, &dead, 4), want, &log_b);
}
