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

/// Undecodable messages, and rows ClickHouse itself refuses, land in the dead-letter
/// table with their raw bytes, coordinates and reason; the good rows around them are
/// inserted; rows + dead letters = messages; a second run adds nothing.
#[test]
fn bad_messages_and_rejected_rows_are_dead_lettered() {
    let s = Services::start().expect("services");
    let topic = unique_name("bad");
    let db = unique_name("db");
    s.kafka.create_topic(&topic, 1).expect("topic");
    create_transactions_table(&s, &db);
    // The server refuses rows with user_id 42 (a MATERIALIZED throwIf): Penstock must
    // isolate them by splitting the batch and dead-letter them with the server's text.
    s.clickhouse
        .query(&format!("ALTER TABLE `{db}`.transactions ADD COLUMN guard UInt8 MATERIALIZED throwIf(user_id = 42)"));
    let good = |n: u32, user: u32| {
        format!(
            r#"{{"event_id":"3c7d1004-4dce-48d2-9e13-8f3288a{n:05}","user_id":{user},"amount":1.50,"region":"eu-west-1","event_type":"view","event_time":"2026-11-21T05:10:00.123Z"}}"#
        )
        .into_bytes()
    };
    let messages: Vec<Vec<u8>> = vec![
        good(1, 1),
        b"not json".to_vec(),
        b"".to_vec(),
        br#"{"event_id":"nope","user_id":1}"#.to_vec(),
        br#"{"user_id":1}"#.to_vec(),
        good(2, 42),
        br#"{"event_id":"3c7d1004-4dce-48d2-9e13-8f3288aac744","user_id":-1}"#.to_vec(),
        b"\xff\xfe".to_vec(),
        good(3, 3),
        good(4, 42),
        good(5, 5),
    ];
    let payloads: Vec<&[u8]> = messages.iter().map(Vec::as_slice).collect();
    produce_raw(&s, &topic, &payloads);
    let pipeline = example_pipeline(&s, s.dir(), &topic, &db, 1000);
    let out = penstock(&["run", pipeline.to_str().unwrap(), "--until-caught-up"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("11 messages, 3 rows inserted, 8 dead-lettered (6 undecodable)"), "{}", stdout(&out));
    let log = stderr(&out);
    assert!(log.contains("dead-lettering a message that cannot be decoded"), "{log}");
    assert!(log.contains("offset=3") && log.contains("column `event_id`"), "{log}");
    let ch = &s.clickhouse;
    assert_eq!(ch.query(&format!("SELECT _offset FROM `{db}`.transactions ORDER BY _offset")), "0\n8\n10\n");
    let dead = ch.query(&format!(
        "SELECT `offset`, error_kind, error_message, raw, key, pipeline, topic = '{topic}' \
         FROM `{db}`.transactions_dead_letter ORDER BY `offset` FORMAT TabSeparated"
    ));
    let rows: Vec<Vec<&str>> = dead.lines().map(|l| l.split('\t').collect()).collect();
    let offsets: Vec<&str> = rows.iter().map(|r| r[0]).collect();
    assert_eq!(offsets, ["1", "2", "3", "4", "5", "6", "7", "9"], "{dead}");
    let kind = |offset: &str| rows.iter().find(|r| r[0] == offset).map(|r| r[1]).unwrap();
    assert_eq!(kind("1"), "invalid_json");
    assert_eq!(kind("3"), "invalid_value");
    assert_eq!(kind("4"), "missing_field");
    assert_eq!(kind("5"), "rejected_by_clickhouse");
    assert_eq!(kind("7"), "not_utf8");
    let row5 = rows.iter().find(|r| r[0] == "5").unwrap();
    assert!(row5[2].contains("395") && row5[2].contains("throwIf"), "{dead}");
    assert!(row5[3].contains(r#""user_id":42"#), "raw bytes kept: {dead}");
    assert_eq!((row5[4], row5[5], row5[6]), ("k", "transactions", "1"), "{dead}");
    assert!(rows.iter().find(|r| r[0] == "3").unwrap()[2].contains("column `event_id`"), "{dead}");

    let again = penstock(&["run", pipeline.to_str().unwrap(), "--until-caught-up"]);
    assert!(again.status.success(), "{}", stderr(&again));
    assert_eq!(ch.scalar::<u64>(&format!("SELECT count() FROM `{db}`.transactions_dead_letter")), 8);
    assert_eq!(ch.scalar::<u64>(&format!("SELECT count() FROM `{db}`.transactions")), 3);
}

#[test]
fn sigterm_flushes_and_commits_before_exiting() {
    let s = Services::start().expect("services");
    let topic = unique_name("term");
    let db = unique_name("db");
    s.kafka.create_topic(&topic, 2).expect("topic");
    create_transactions_table(&s, &db);
    let produced = produce(&s, &topic, 30_000, 3);
    // Batches far larger than the topic, sealed only by age (10 s): what is open at
    // SIGTERM must be flushed by the shutdown itself.
    let pipeline = example_pipeline(&s, s.dir(), &topic, &db, 1_000_000);
    let text = std::fs::read_to_string(&pipeline).unwrap().replace("max_wait: 500ms", "max_wait: 10s");
    std::fs::write(&pipeline, text).unwrap();
    let log = s.dir().join("term.log");
    let mut child = spawn_penstock(&["run", pipeline.to_str().unwrap()], &log);
    let log_has = |needle: &str| std::fs::read_to_string(&log).unwrap_or_default().contains(needle);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !log_has("partitions assigned") {
        assert!(std::time::Instant::now() < deadline, "never assigned");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    std::thread::sleep(std::time::Duration::from_secs(3));
    let t = format!("`{db}`.transactions");
    assert_eq!(s.clickhouse.scalar::<u64>(&format!("SELECT count() FROM {t}")), 0, "nothing sealed before the signal");
    let _ = std::process::Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    let status = wait_with_limit(&mut child, std::time::Duration::from_secs(60), &log);
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(status.success(), "{text}");
    // Everything the run had read is in the table: its open batches were flushed.
    let counter = |name: &str| -> u64 {
        let summary = text.split("pipeline stopped summary=").nth(1).unwrap_or_else(|| panic!("no summary:\n{text}"));
        summary
            .split(&format!("{name}: "))
            .nth(1)
            .and_then(|r| r.split([',', ' ']).next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in the summary:\n{text}"))
    };
    let read = counter("messages");
    assert!(read > 0, "{text}");
    assert_eq!(counter("rows_inserted"), read, "{text}");
    assert_eq!(s.clickhouse.scalar::<u64>(&format!("SELECT count() FROM {t}")), read, "{text}");
    // The shutdown committed the offsets: a new run inserts only what the first had not
    // read (all of it, when the first had read everything before the signal).
    let again = penstock(&["run", pipeline.to_str().unwrap(), "--until-caught-up"]);
    assert!(stdout(&again).contains(&format!(" {} rows inserted", produced.count - read)), "{}", stdout(&again));
    assert_eq!(s.clickhouse.scalar::<u64>(&format!("SELECT count() FROM {t}")), produced.count);
}

#[test]
fn row_binary_and_uncompressed_bodies_insert_the_same_rows() {
    let s = Services::start().expect("services");
    let topic = unique_name("fmt");
    s.kafka.create_topic(&topic, 2).expect("topic");
    let produced = produce(&s, &topic, 20_000, 11);
    let mut sums = Vec::new();
    for (i, (format, compression)) in
        [("native", "lz4"), ("native", "none"), ("row_binary", "lz4"), ("row_binary", "none")].into_iter().enumerate()
    {
        let db = unique_name(&format!("db{i}"));
        create_transactions_table(&s, &db);
        let pipeline = example_pipeline(&s, s.dir(), &topic, &db, 3_000);
        let text = std::fs::read_to_string(&pipeline).unwrap().replace(
            "    table: transactions\n",
            &format!("    table: transactions\n    format: {format}\n    compression: {compression}\n"),
        );
        let text = text.replace(&format!("group-{topic}"), &format!("group-{topic}-{i}"));
        std::fs::write(&pipeline, text).unwrap();
        let out = penstock(&["run", pipeline.to_str().unwrap(), "--until-caught-up"]);
        assert!(out.status.success(), "{format}/{compression}: {}", stderr(&out));
        let t = format!("`{db}`.transactions");
        let digest = s.clickhouse.query(&format!(
            "SELECT count(), uniqExact(event_id), sum(amount), sum(user_id), uniqExact(region), sum(toUInt32(event_time)), sum(_offset) FROM {t}"
        ));
        assert!(
            digest.starts_with(&format!("{}\t{}\t", produced.count, produced.count)),
            "{format}/{compression}: {digest}"
        );
        sums.push(digest);
    }
    assert!(sums.windows(2).all(|w| w[0] == w[1]), "every format stores the same rows: {sums:#?}");
}
