//! 200,000 events on a 4-partition topic into ClickHouse, then a second run that must
//! insert nothing because the offsets were committed.

use crate::harness::*;
use penstock_testkit::{unique_name, Services};

#[test]
fn transactions_arrive_complete_and_offsets_are_committed() {
    let s = Services::start().expect("services");
    let topic = unique_name("tx");
    let db = unique_name("db");
    s.kafka.create_topic(&topic, 4).expect("topic");
    create_transactions_table(&s, &db);
    let produced = produce(&s, &topic, 200_000, 42);
    let pipeline = example_pipeline(&s, s.dir(), &topic, &db, 20_000);
    let pipeline = pipeline.to_str().unwrap();

    let check = penstock(&["check", pipeline]);
    assert!(check.status.success(), "check failed:\n{}\n{}", stdout(&check), stderr(&check));

    let out = penstock(&["run", pipeline, "--until-caught-up"]);
    assert!(out.status.success(), "run failed:\n{}", stderr(&out));
    assert!(stdout(&out).contains("200000 rows inserted"), "{}", stdout(&out));

    let ch = &s.clickhouse;
    let t = format!("`{db}`.transactions");
    assert_eq!(ch.scalar::<u64>(&format!("SELECT count() FROM {t}")), 200_000);
    assert_eq!(ch.scalar::<u64>(&format!("SELECT uniqExact(event_id) FROM {t}")), 200_000);
    assert_eq!(cents(&ch.query(&format!("SELECT sum(amount) FROM {t}"))), produced.amount_cents);
    assert_eq!(ch.scalar::<u64>(&format!("SELECT uniqExact(_partition) FROM {t}")), 4);
    // Every (partition, offset) exactly once, and offsets contiguous from 0.
    assert_eq!(ch.scalar::<u64>(&format!("SELECT uniqExact(_partition, _offset) FROM {t}")), 200_000);
    let per_partition = ch.query(&format!(
        "SELECT _partition, min(_offset), max(_offset), count() FROM {t} GROUP BY _partition ORDER BY _partition FORMAT TabSeparated"
    ));
    for line in per_partition.lines() {
        let f: Vec<i64> = line.split('\t').map(|x| x.parse().unwrap()).collect();
        assert_eq!((f[1], f[2] + 1), (0, f[3]), "partition {} offsets contiguous", f[0]);
    }

    let again = penstock(&["run", pipeline, "--until-caught-up"]);
    assert!(again.status.success(), "second run failed:\n{}", stderr(&again));
    assert!(stdout(&again).contains(" 0 rows inserted"), "{}", stdout(&again));
    assert_eq!(ch.scalar::<u64>(&format!("SELECT count() FROM {t}")), 200_000);
}

#[test]
fn undecodable_messages_are_skipped_without_stalling() {
    let s = Services::start().expect("services");
    let topic = unique_name("bad");
    let db = unique_name("db");
    s.kafka.create_topic(&topic, 1).expect("topic");
    create_transactions_table(&s, &db);
    let good = br#"{"event_id":"3c7d1004-4dce-48d2-9e13-8f3288aac743","user_id":1,"amount":1.50,"region":"eu-west-1","event_type":"view","event_time":"2026-11-21T05:10:00.123Z"}"#;
    produce_raw(
        &s,
        &topic,
        &[
            good,
            b"not json",
            b"",
            br#"{"event_id":"nope","user_id":1}"#,
            br#"{"user_id":1}"#,
            br#"{"event_id":"3c7d1004-4dce-48d2-9e13-8f3288aac744","user_id":-1}"#,
            b"\xff\xfe",
            good,
        ],
    );
    let pipeline = example_pipeline(&s, s.dir(), &topic, &db, 1000);
    let out = penstock(&["run", pipeline.to_str().unwrap(), "--until-caught-up"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("8 messages, 2 rows inserted, 6 skipped"), "{}", stdout(&out));
    let log = stderr(&out);
    assert!(log.contains("skipping a message that cannot be decoded"), "{log}");
    assert!(log.contains("offset=3") && log.contains("column `event_id`"), "{log}");
    assert_eq!(s.clickhouse.scalar::<u64>(&format!("SELECT count() FROM `{db}`.transactions")), 2);
}
