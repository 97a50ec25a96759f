//! ClickHouse is killed (SIGKILL: it stops serving at once, where SIGTERM lets open
//! keep-alive connections finish their work) and stays down for 20 s in the middle of
//! a run: Penstock waits, resumes, and every event arrives exactly once (the default
//! delivery); in at-least-once mode, every event arrives at least once.

use crate::harness::*;
use penstock_testkit::{unique_name, Services};
use std::time::Duration;

#[test]
fn exactly_once_survives_a_clickhouse_outage() {
    outage(true);
}

#[test]
fn at_least_once_survives_a_clickhouse_outage() {
    outage(false);
}

fn outage(exactly_once: bool) {
    let mut s = Services::start().expect("services");
    let topic = unique_name("outage");
    let db = unique_name("db");
    s.kafka.create_topic(&topic, 4).expect("topic");
    create_transactions_table(&s, &db);
    let produced = produce(&s, &topic, 200_000, 7);
    let pipeline = example_pipeline(&s, s.dir(), &topic, &db, 5_000);
    if !exactly_once {
        let text = std::fs::read_to_string(&pipeline).unwrap();
        std::fs::write(&pipeline, format!("{text}delivery: at_least_once\n")).unwrap();
    }
    let log = s.dir().join("penstock-outage.log");
    let mut child = spawn_penstock(&["run", pipeline.to_str().unwrap(), "--until-caught-up"], &log);

    let t = format!("`{db}`.transactions");
    wait_until_mid_stream(&s, &t, produced.count);
    s.clickhouse.process().kill();
    std::thread::sleep(Duration::from_secs(20));
    if let Some(status) = child.try_wait().unwrap() {
        panic!(
            "penstock must wait for ClickHouse, not exit ({status}):\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
    }
    s.clickhouse.restart().expect("restart ClickHouse");

    let status = wait_with_limit(&mut child, Duration::from_secs(300), &log);
    let log_text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(status.success(), "penstock failed:\n{log_text}");
    assert!(log_text.contains("failed; retrying"), "the outage was seen:\n{log_text}");
    let ch = &s.clickhouse;
    assert_eq!(ch.scalar::<u64>(&format!("SELECT uniqExact(event_id) FROM {t}")), produced.count, "no event lost");
    let count = ch.scalar::<u64>(&format!("SELECT count() FROM {t}"));
    if exactly_once {
        assert_eq!(count, produced.count, "exactly once: no duplicates either");
    } else {
        assert!(count >= produced.count);
    }
    assert_eq!(
        cents(&ch.query(&format!("SELECT sum(amount) FROM (SELECT any(amount) AS amount FROM {t} GROUP BY event_id)"))),
        produced.amount_cents
    );
}
