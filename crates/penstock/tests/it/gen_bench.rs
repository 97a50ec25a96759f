//! `penstock gen` and `penstock bench` as a user runs them, on real services.
//!
//! gen: the injected duplicates, malformed messages and late events land as the
//! pipeline must land them (rows, the same event_id twice, dead letters of every
//! malformation, event times in the past), and the same seed injects the same mix.
//! bench: a short run of both patterns — the Kafka engine inside ClickHouse (with its
//! preloaded librdkafka) and a `penstock run` process — writes a report whose counts,
//! freshness, CPU and query figures are all there, every event stored exactly once by
//! Penstock. Nothing here asserts on speed: the numbers are the benchmark's business.

use crate::harness::*;
use penstock_testkit::{unique_name, Services};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// `(sent, duplicates, malformed, late)` from `penstock gen`'s output.
pub fn gen_counts(out: &str) -> (u64, u64, u64, u64) {
    let num_before = |line: &str, word: &str| -> u64 {
        let head = &line[..line.find(word).unwrap_or_else(|| panic!("no `{word}` in {line}"))];
        head.split_whitespace().last().unwrap().parse().unwrap()
    };
    let delivered = out.lines().find(|l| l.contains("messages delivered")).expect("summary line");
    let mix = out.lines().find(|l| l.contains("of which")).expect("mix line");
    (
        num_before(delivered, " messages delivered"),
        num_before(mix, " duplicates"),
        num_before(mix, " malformed"),
        num_before(mix, " late events"),
    )
}

#[test]
fn gen_injects_duplicates_malformed_and_late_events_reproducibly() {
    let s = Services::start().expect("services");
    let (topic, again, db) = (unique_name("gen"), unique_name("gen2"), unique_name("db"));
    s.kafka.create_topic(&topic, 2).expect("topic");
    s.kafka.create_topic(&again, 2).expect("topic");
    let started = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
    let brokers = s.kafka.bootstrap();
    let args = |t: &str| {
        vec![
            "gen",
            "--brokers",
            &brokers,
            "--topic",
            t,
            "--count",
            "4000",
            "--rate",
            "4000",
            "--threads",
            "1",
            "--duplicates",
            "0.05",
            "--malformed",
            "0.02",
            "--late",
            "0.1",
            "--late-by",
            "10m",
            "--seed",
            "7",
        ]
        .into_iter()
        .map(String::from)
        .collect::<Vec<_>>()
    };
    let run_gen = |t: &str| {
        let a = args(t);
        let out = penstock(&a.iter().map(String::as_str).collect::<Vec<_>>());
        assert!(out.status.success(), "gen failed:\n{}\n{}", stdout(&out), stderr(&out));
        gen_counts(&stdout(&out))
    };
    let missing = penstock(&["gen", "--brokers", &brokers, "--topic", "no-such-topic", "--count", "10"]);
    assert_eq!(missing.status.code(), Some(2), "a missing topic is refused before producing");
    assert!(stderr(&missing).contains("`no-such-topic` does not exist"), "{}", stderr(&missing));
    let (sent, dups, bad, late) = run_gen(&topic);
    assert_eq!(sent, 4000);
    assert!(dups > 100 && bad > 40 && late > 250, "mix far from 5 % / 2 % / 10 %: {dups} {bad} {late}");
    assert_eq!(run_gen(&again), (sent, dups, bad, late), "the same seed injects the same mix");

    let pipeline = example_pipeline(&s, s.dir(), &topic, &db, 100_000);
    let out = penstock(&["run", pipeline.to_str().unwrap(), "--until-caught-up"]);
    assert!(out.status.success(), "run failed:\n{}", stderr(&out));
    let ch = &s.clickhouse;
    let t = format!("`{db}`.transactions");
    let rows: u64 = ch.scalar(&format!("SELECT count() FROM {t}"));
    assert_eq!(rows, sent - bad, "every well-formed message is a row");
    assert_eq!(
        ch.scalar::<u64>(&format!("SELECT uniqExact(event_id) FROM {t}")),
        rows - dups,
        "duplicates share an event_id"
    );
    let dead: u64 = ch.scalar(&format!("SELECT count() FROM `{db}`.transactions_dead_letter"));
    assert_eq!(dead, bad, "every malformed message is a dead letter");
    let kinds =
        ch.query(&format!("SELECT DISTINCT error_kind FROM `{db}`.transactions_dead_letter ORDER BY error_kind"));
    assert!(
        kinds.lines().count() >= 3,
        "truncated/not-JSON, wrong type and missing event_id each have a kind: {kinds}"
    );
    // Non-late events carry the time they were made (after `started`); a late one is
    // at least a second older than that. Lateness is uniform in 1 s..10 min, so only
    // the few late by less than the run's own length can hide among the punctual ones.
    let past: u64 = ch.scalar(&format!("SELECT countIf(toUInt32(event_time) < {}) FROM {t}", started - 1));
    assert!(past <= late && past * 100 >= late * 97, "{past} rows in the past, {late} late events sent");
}

#[test]
fn bench_runs_both_patterns_side_by_side_and_writes_its_report() {
    let dir = tempfile::tempdir().unwrap();
    let results = dir.path().join("results");
    let log = dir.path().join("bench.log");
    let mut child = spawn_penstock(
        &[
            "bench",
            "--results",
            results.to_str().unwrap(),
            "--rates",
            "2000",
            "--duration",
            "6s",
            "--drain",
            "20000",
            "--patterns",
            "kafka-engine,penstock",
            "--warmup",
            "1s",
            "--query-runs",
            "2",
        ],
        &log,
    );
    let status = wait_with_limit(&mut child, Duration::from_secs(600), &log);
    assert!(status.success(), "bench failed:\n{}", tail_of(&log, 80));

    for f in ["report.md", "runs.csv", "samples.csv", "freshness-rate-2000.svg", "throughput-cpu.svg"] {
        assert!(results.join(f).exists(), "{f} missing");
    }
    let runs = std::fs::read_to_string(results.join("runs.csv")).unwrap();
    let header: Vec<&str> = runs.lines().next().unwrap().split(',').collect();
    let col = |row: &[&str], name: &str| -> String {
        row[header.iter().position(|h| *h == name).unwrap_or_else(|| panic!("no column {name}"))].to_string()
    };
    let rows: Vec<Vec<&str>> = runs.lines().skip(1).map(|l| l.split(',').collect()).collect();
    let scenarios: Vec<(String, String)> = rows.iter().map(|r| (col(r, "scenario"), col(r, "pattern"))).collect();
    assert_eq!(
        scenarios,
        [
            ("rate-2000", "kafka-engine"),
            ("rate-2000", "penstock"),
            ("drain-20000", "kafka-engine"),
            ("drain-20000", "penstock")
        ]
        .map(|(a, b)| (a.to_string(), b.to_string()))
    );
    for r in &rows {
        let produced: u64 = col(r, "produced").parse().unwrap();
        let (stored, distinct): (u64, u64) = (col(r, "stored").parse().unwrap(), col(r, "distinct").parse().unwrap());
        assert!(produced > 0);
        assert_eq!(distinct, produced, "every event visible: {r:?}");
        if col(r, "pattern") == "penstock" {
            assert_eq!(stored, produced, "Penstock stores every event exactly once: {r:?}");
            assert!(!col(r, "penstock_cpu_s_per_m").is_empty() && !col(r, "penstock_peak_rss_mib").is_empty());
        } else {
            assert!(stored >= produced, "{r:?}");
            assert!(col(r, "penstock_cpu_s_per_m").is_empty(), "no Penstock process in the Kafka engine's run");
        }
        assert!(!col(r, "clickhouse_cpu_s_per_m").is_empty() && !col(r, "broker_cpu_s_per_m").is_empty());
        if col(r, "scenario").starts_with("rate") {
            let gen_rate: f64 = col(r, "gen_rate").parse().unwrap();
            assert!(gen_rate > 0.0);
            let p99: f64 = col(r, "freshness_p99_ms").parse().unwrap();
            assert!(p99 > 0.0, "freshness measured: {r:?}");
        }
    }
    let report = std::fs::read_to_string(results.join("report.md")).unwrap();
    for needle in [
        "## DESIGN.md bars",
        "## Broker ceilings",
        "## 2,000 events/s",
        "## Backlog drain: 20,000 events",
        "| Q1 |",
        "| Q3 |",
        "storage: memory",
    ] {
        assert!(report.contains(needle), "report lacks {needle:?}:\n{report}");
    }
    let samples = std::fs::read_to_string(results.join("samples.csv")).unwrap();
    assert!(samples.lines().filter(|l| l.starts_with("rate-2000,penstock,")).count() >= 10, "sampled every 500 ms");
    assert!(std::fs::read_to_string(results.join("throughput-cpu.svg")).unwrap().starts_with("<svg"));
}
