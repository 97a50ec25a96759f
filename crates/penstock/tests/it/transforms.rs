//! Transforms on the real broker and server: filters and computed columns between
//! decode and sink, their results checked by ClickHouse itself, rows that cannot be
//! computed dead-lettered, and a second run adding nothing.

use crate::harness::*;
use penstock_testkit::{unique_name, Services};
use std::collections::HashSet;

const TYPES: [&str; 3] = ["view", "purchase", "refund"];

/// Event `i`: user_id i, amount (i·37 mod 100000) cents, region r{i mod 4}, type by i mod 3.
fn event(i: u64) -> String {
    let cents = i * 37 % 100_000;
    format!(
        r#"{{"event_id":"{i:08x}-0000-4000-8000-{i:012x}","user_id":{i},"amount":{}.{:02},"region":"r{}","event_type":"{}","event_time":"2026-11-21T05:10:00Z"}}"#,
        cents / 100,
        cents % 100,
        i % 4,
        TYPES[(i % 3) as usize]
    )
}

#[test]
fn filters_and_computed_columns_land_exactly_once_checked_by_clickhouse() {
    let s = Services::start().expect("services");
    let (topic, db) = (unique_name("tf"), unique_name("db"));
    s.kafka.create_topic(&topic, 1).expect("topic");
    s.clickhouse.query(&format!("CREATE DATABASE `{db}`"));
    let n = 3_000u64;
    let mut messages: Vec<Vec<u8>> = (0..n).map(|i| event(i).into_bytes()).collect();
    messages.push(b"not json".to_vec());
    let payloads: Vec<&[u8]> = messages.iter().map(Vec::as_slice).collect();
    produce_raw(&s, &topic, &payloads);
    // Rows whose user_id is a multiple of 5 cannot be computed (intDiv by zero): dead
    // letters, whatever the filter; of the others, views are filtered out.
    let failed = (0..n).filter(|i| i % 5 == 0).count() as u64;
    let filtered = (0..n).filter(|i| i % 5 != 0 && i % 3 == 0).count() as u64;
    let kept: Vec<u64> = (0..n).filter(|i| i % 5 != 0 && i % 3 != 0).collect();
    let want_cents: u64 = kept.iter().map(|i| i * 37 % 100_000).sum();
    let pipeline = s.dir().join(format!("{topic}.yaml"));
    std::fs::write(
        &pipeline,
        format!(
            r#"name: tf-{topic}
source:
  kafka: {{ brokers: "{brokers}", topics: ["{topic}"], group: "g-{topic}", start: earliest }}
schema:
  event_id:     {{ type: UUID, required: true }}
  user_id:      UInt64
  amount:       Decimal(12, 2)
  region:       String
  event_type:   String
  event_time:   DateTime('UTC')
  _partition:   Int32
  _offset:      Int64
  amount_cents: {{ type: UInt64, expr: "toUInt64(round(amount * 100))" }}
  per_five:     {{ type: UInt64, expr: "intDiv(1000, user_id % 5)" }}
  label:        {{ type: String, expr: "concat(upper(event_type), '-', region, '-', toString(toYYYYMMDD(event_time)))" }}
  big:          {{ type: UInt8, expr: "amount_cents > 50000" }}
transforms:
  - filter: "event_type != 'view'"
sink:
  clickhouse:
    url: {url}
    table: {db}.t
    create: {{ engine: MergeTree, order_by: [event_id] }}
    batch: {{ max_rows: 400, max_wait: 200ms }}
"#,
            brokers = s.kafka.bootstrap(),
            url = s.clickhouse.url()
        ),
    )
    .expect("pipeline");
    let path = pipeline.to_str().unwrap();
    let check = penstock(&["check", path]);
    assert!(
        stdout(&check).contains("ok   computed column `amount_cents` = toUInt64(round(amount * 100)) (UInt64)"),
        "{}",
        stdout(&check)
    );
    assert!(stdout(&check).contains("ok   transforms[0]: filter `event_type != 'view'`"), "{}", stdout(&check));

    let out = penstock(&["run", path, "--until-caught-up", "--http", "off"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let summary = stdout(&out);
    assert!(summary.contains(&format!("{} messages, {} rows inserted", n + 1, kept.len())), "{summary}");
    assert!(
        summary.contains(&format!("{} dead-lettered (1 undecodable), {filtered} filtered", failed + 1)),
        "{summary}"
    );
    let ch = &s.clickhouse;
    let q = |sql: &str| ch.query(&sql.replace("FROM T", &format!("FROM `{db}`.t")));
    assert_eq!(q("SELECT count(), sum(amount_cents) FROM T"), format!("{}\t{want_cents}\n", kept.len()));
    // ClickHouse recomputes every computed column from the stored inputs.
    assert_eq!(
        q("SELECT countIf(amount_cents != toUInt64(round(amount * 100))), countIf(per_five != intDiv(1000, user_id % 5)), \
           countIf(label != concat(upper(event_type), '-', region, '-', toString(toYYYYMMDD(event_time)))), \
           countIf(big != (amount_cents > 50000)), countIf(event_type = 'view') FROM T"),
        "0\t0\t0\t0\t0\n"
    );
    let ids: HashSet<u64> = q("SELECT user_id FROM T").lines().map(|l| l.parse().expect("user_id")).collect();
    assert_eq!(ids, kept.iter().copied().collect::<HashSet<u64>>());
    let dead = ch.query(&format!(
        "SELECT error_kind, count(), any(error_message) FROM `{db}`.t_dead_letter GROUP BY error_kind ORDER BY error_kind FORMAT TabSeparated"
    ));
    let lines: Vec<&str> = dead.lines().collect();
    assert_eq!(lines.len(), 2, "{dead}");
    assert!(lines[0].starts_with("invalid_json\t1\t"), "{dead}");
    assert!(lines[1].starts_with(&format!("transform_failed\t{failed}\t")), "{dead}");
    assert!(lines[1].contains("column `per_five` = intDiv(1000, user_id % 5): division by zero in intDiv"), "{dead}");

    // Again: everything is delivered already; nothing is added.
    let again = penstock(&["run", path, "--until-caught-up", "--http", "off"]);
    assert!(again.status.success(), "{}", stderr(&again));
    assert_eq!(q("SELECT count(), sum(amount_cents) FROM T"), format!("{}\t{want_cents}\n", kept.len()));
    assert_eq!(ch.scalar::<u64>(&format!("SELECT count() FROM `{db}`.t_dead_letter")), failed + 1);
}

#[test]
fn a_relay_filters_and_computes_and_dead_letters_what_it_cannot_compute() {
    let s = Services::start().expect("services");
    let (source, out, dead) = (unique_name("rin"), unique_name("rout"), unique_name("rdead"));
    s.kafka.create_topic(&source, 1).expect("topic");
    let n = 1_200u64;
    let messages: Vec<Vec<u8>> = (0..n).map(|i| event(i).into_bytes()).collect();
    let payloads: Vec<&[u8]> = messages.iter().map(Vec::as_slice).collect();
    produce_raw(&s, &source, &payloads);
    let text = std::fs::read_to_string(repo_root().join("examples/kafka-to-kafka.yaml")).expect("example");
    let text = text
        .replace("${PENSTOCK_KAFKA_BROKERS}", &s.kafka.bootstrap())
        .replace("${PENSTOCK_TOPIC:-transactions}", &source)
        .replace("${PENSTOCK_GROUP:-penstock-transactions-relay}", &format!("group-{source}"))
        .replace("${PENSTOCK_OUT_TOPIC:-transactions-checked}", &out)
        .replace("${PENSTOCK_DEAD_LETTER_TOPIC:-transactions-checked-dead-letter}", &dead)
        .replace(
            "  _offset:     Int64\n",
            "  _offset:     Int64\n  ratio:       { type: UInt64, expr: \"intDiv(1000, user_id % 7)\" }\n",
        )
        + "transforms:\n  - filter: \"event_type = 'purchase' OR user_id % 7 = 0\"\n";
    let pipeline = s.dir().join(format!("{out}.yaml"));
    std::fs::write(&pipeline, text).expect("pipeline");
    let run = penstock(&["run", pipeline.to_str().unwrap(), "--until-caught-up", "--http", "off"]);
    assert!(run.status.success(), "{}", stderr(&run));
    let failed: Vec<u64> = (0..n).filter(|i| i % 7 == 0).collect();
    let sent: Vec<u64> = (0..n).filter(|i| i % 7 != 0 && i % 3 == 1).collect();
    let filtered = n - failed.len() as u64 - sent.len() as u64;
    assert!(
        stdout(&run).contains(&format!(
            "{} messages produced ({} dead letters), {filtered} filtered",
            sent.len() + failed.len(),
            failed.len()
        )),
        "{}",
        stdout(&run)
    );
    let rows = crate::publish::read_topic(&s, &out, 4);
    let mut got: Vec<u64> = rows
        .iter()
        .map(|m| {
            let user =
                m.payload.split("\"user_id\":").nth(1).and_then(|r| r.split([',', '}']).next()).expect("user_id");
            let user: u64 = user.trim_matches('"').parse().expect("a number");
            assert!(m.payload.contains(&format!("\"ratio\":{}", 1000 / (user % 7))), "{}", m.payload);
            assert!(m.payload.contains("\"event_type\":\"purchase\""), "{}", m.payload);
            user
        })
        .collect();
    got.sort_unstable();
    assert_eq!(got, sent);
    let dead_rows = crate::publish::read_topic(&s, &dead, 1);
    assert_eq!(dead_rows.len(), failed.len());
    assert!(dead_rows
        .iter()
        .all(|m| m.headers.iter().any(|(k, v)| k == "penstock-error-kind" && v == b"transform_failed")));
}

/// Through crashes at every failpoint and at random instants, a filter and computed
/// columns stay exactly once: the table holds exactly the messages the filter keeps
/// (every offset either a row, a dead letter, or filtered out — none twice), and every
/// computed value is what ClickHouse computes from the stored inputs.
#[test]
fn transforms_stay_exactly_once_through_crashes() {
    use crate::crash_loop::{crash_through, finish, FAILPOINTS};
    use rand::{rngs::SmallRng, SeedableRng};
    let s = Services::start().expect("services");
    let (topic, db) = (unique_name("tfcrash"), unique_name("db"));
    s.kafka.create_topic(&topic, 4).expect("topic");
    s.clickhouse.query(&format!("CREATE DATABASE `{db}`"));
    let produced = produce_with_bad(&s, &topic, 60_000, 77, 997);
    let pipeline = example_pipeline(&s, s.dir(), &topic, &db, 3_000);
    let text = std::fs::read_to_string(&pipeline).expect("pipeline");
    let text = text.replacen(
        "  _offset:     Int64\n",
        "  _offset:     Int64\n  amount_cents: { type: UInt64, expr: \"toUInt64(round(amount * 100))\" }\n  \
         day:          { type: UInt32, expr: \"toYYYYMMDD(event_time)\" }\n",
        1,
    ) + "transforms:\n  - filter: \"_offset % 3 != 0\"\n";
    std::fs::write(&pipeline, text).expect("pipeline");
    add_kafka_properties(&pipeline, &format!("group.instance.id: \"{topic}-member\""));
    let path = pipeline.to_str().unwrap();
    let log = s.dir().join("transforms-crash.log");
    let t = format!("`{db}`.transactions");
    let mut rng = SmallRng::seed_from_u64(13);
    let mut plan: Vec<Option<String>> = FAILPOINTS.iter().map(|fp| Some(format!("{fp}:2"))).collect();
    plan.extend((0..4).map(|_| None));
    let kills = crash_through(&s, path, &t, &log, &plan, &mut rng, 300..2500);
    assert!(kills >= 6, "only {kills} crashes happened");
    assert!(finish(path, &log).success(), "final run failed:\n{}", tail_of(&log, 60));

    let ch = &s.clickhouse;
    let highs = crate::publish::Watermarks::new(&s, &topic, 4).highs();
    let dl = format!("`{db}`.transactions_dead_letter");
    for (p, high) in highs.iter().enumerate() {
        // Offsets the filter keeps in this partition, less the malformed ones (dead letters).
        let kept_offsets = (0..*high).filter(|o| o % 3 != 0).count() as u64;
        let dead_kept: u64 =
            ch.scalar(&format!("SELECT count() FROM {dl} WHERE `partition` = {p} AND `offset` % 3 != 0"));
        let rows: u64 = ch.scalar(&format!("SELECT count() FROM {t} WHERE _partition = {p}"));
        let distinct: u64 = ch.scalar(&format!("SELECT uniqExact(_offset) FROM {t} WHERE _partition = {p}"));
        assert_eq!((rows, distinct), (kept_offsets - dead_kept, rows), "partition {p}:\n{}", tail_of(&log, 30));
    }
    assert_eq!(ch.scalar::<u64>(&format!("SELECT countIf(_offset % 3 = 0) FROM {t}")), 0);
    assert_eq!(
        ch.query(&format!(
            "SELECT countIf(amount_cents != toUInt64(round(amount * 100))), countIf(day != toYYYYMMDD(event_time)) FROM {t}"
        )),
        "0\t0\n"
    );
    // Every malformed message once, filtered or not (decoding comes before the filter).
    assert_eq!(ch.scalar::<u64>(&format!("SELECT count() FROM {dl}")), produced.bad);
    assert_eq!(ch.scalar::<u64>(&format!("SELECT uniqExact(`partition`, `offset`) FROM {dl}")), produced.bad);
}
