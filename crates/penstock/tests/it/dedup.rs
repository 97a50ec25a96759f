//! Dedup on the real broker and server: duplicates within the window dropped before
//! ClickHouse and one outside it kept; a second run adds nothing; a wiped state
//! directory is restored from the changelog topic; and the example under a SIGKILL
//! crash loop — with the state directory deleted between two restarts — lands every
//! distinct event exactly once.

use crate::crash_loop::{crash_through, finish};
use crate::harness::*;
use penstock_testkit::{unique_name, Services};
use rand::rngs::SmallRng;
use rand::SeedableRng;

/// Event `id` at `secs` after 2026-11-21 05:00:00 UTC.
fn event(id: u64, secs: u64) -> String {
    format!(
        r#"{{"event_id":"{id:08x}-0000-4000-8000-{id:012x}","user_id":{id},"amount":1.00,"region":"r","event_type":"view","event_time":"{}"}}"#,
        time_text(secs)
    )
}

fn time_text(secs: u64) -> String {
    let (h, m, s) = (5 + secs / 3600, secs / 60 % 60, secs % 60);
    format!("2026-11-21T{h:02}:{m:02}:{s:02}Z")
}

/// `examples/dedup.yaml`, pointed at this test's services, with `time` and batch size.
fn dedup_pipeline(
    s: &Services,
    topic: &str,
    db: &str,
    state: &std::path::Path,
    transform: &str,
    max_rows: usize,
) -> std::path::PathBuf {
    let text = std::fs::read_to_string(repo_root().join("examples/dedup.yaml")).expect("example");
    let text = text
        .replace("${PENSTOCK_KAFKA_BROKERS}", &s.kafka.bootstrap())
        .replace("${PENSTOCK_TOPIC:-transactions}", topic)
        .replace("${PENSTOCK_GROUP:-penstock-transactions-dedup}", &format!("group-{topic}"))
        .replace("${PENSTOCK_CLICKHOUSE_URL}", &s.clickhouse.url())
        .replace("${PENSTOCK_DATABASE:-default}", db)
        .replace("${PENSTOCK_STATE_DIR:-./penstock-state}", state.to_str().unwrap())
        .replace("  - dedup: { key: event_id, window: 1h }", transform)
        .replace("max_rows: 200000", &format!("max_rows: {max_rows}"));
    assert!(text.contains(transform), "the example's transform line moved");
    let path = s.dir().join(format!("{topic}.yaml"));
    std::fs::write(&path, text).expect("write pipeline");
    path
}

#[test]
fn duplicates_within_the_window_are_dropped_and_a_wiped_state_is_restored_from_the_changelog() {
    let s = Services::start().expect("services");
    let (topic, db) = (unique_name("dd"), unique_name("db"));
    s.kafka.create_topic(&topic, 1).expect("topic");
    s.clickhouse.query(&format!("CREATE DATABASE `{db}`"));
    let state = s.dir().join("state");
    // Event i at i s; again 30 min later (i % 3 == 0: duplicates); again 2 h later
    // (i % 5 == 0: outside the window of the first, kept).
    let n = 1_000u64;
    let mut messages: Vec<String> = (0..n).map(|i| event(i, i)).collect();
    messages.extend((0..n).filter(|i| i % 3 == 0).map(|i| event(i, i + 1800)));
    messages.extend((0..n).filter(|i| i % 5 == 0).map(|i| event(i, i + 7200)));
    let payloads: Vec<&[u8]> = messages.iter().map(|m| m.as_bytes()).collect();
    produce_raw(&s, &topic, &payloads);
    let (dups, late) = ((0..n).filter(|i| i % 3 == 0).count() as u64, (0..n).filter(|i| i % 5 == 0).count() as u64);
    let pipeline =
        dedup_pipeline(&s, &topic, &db, &state, "  - dedup: { key: event_id, window: 1h, time: event_time }", 300);
    let path = pipeline.to_str().unwrap();

    let check = penstock(&["check", path]);
    let text = stdout(&check);
    assert!(text.contains("ok   transforms[0]: dedup (dedup) by event_id within 3600000 ms of event_time"), "{text}");
    assert!(text.contains("warn transforms[0]: the dedup key is not the message key"), "{text}");
    assert!(text.contains("ok   state of dedup:"), "{text}");

    // A state directory that cannot be written stops the run before anything starts:
    // no table is created.
    let blocked = s.dir().join("not-a-directory");
    std::fs::write(&blocked, b"a file").expect("file");
    let refused_file = s.dir().join("refused.yaml");
    let text = std::fs::read_to_string(&pipeline).unwrap().replace(state.to_str().unwrap(), blocked.to_str().unwrap());
    std::fs::write(&refused_file, text).unwrap();
    let refused = penstock(&["run", refused_file.to_str().unwrap(), "--until-caught-up", "--http", "off"]);
    assert!(!refused.status.success());
    assert!(
        stderr(&refused).contains("not-a-directory") && stderr(&refused).contains("cannot create"),
        "{}",
        stderr(&refused)
    );
    let tables = s.clickhouse.query(&format!("SELECT count() FROM system.tables WHERE database = '{db}'"));
    assert_eq!(tables.trim(), "0", "nothing was created");
    let check = penstock(&["check", refused_file.to_str().unwrap()]);
    assert!(stdout(&check).contains("FAIL state of dedup"), "{}", stdout(&check));

    let out = penstock(&["run", path, "--until-caught-up", "--http", "off"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let summary = stdout(&out);
    assert!(summary.contains(&format!("{} rows inserted", n + late)), "{summary}");
    assert!(summary.contains(&format!("{dups} duplicates dropped")), "{summary}");
    let ch = &s.clickhouse;
    let t = format!("`{db}`.transactions_dedup");
    let count = |sql: &str| ch.scalar::<u64>(&sql.replace("FROM T", &format!("FROM {t}")));
    assert_eq!(count("SELECT count() FROM T"), n + late);
    assert_eq!(count("SELECT uniqExact(event_id) FROM T"), n);
    assert_eq!(count("SELECT countIf(toMinute(event_time) = 30 OR (toHour(event_time) = 5 AND toMinute(event_time) >= 30)) FROM T"), 0, "no 30-minute re-send landed");
    assert_eq!(count("SELECT count() FROM T WHERE toHour(event_time) >= 7"), late, "the re-sends 2 h later are kept");

    // Again: nothing new, nothing added.
    let again = penstock(&["run", path, "--until-caught-up", "--http", "off"]);
    assert!(again.status.success(), "{}", stderr(&again));
    assert_eq!(count("SELECT count() FROM T"), n + late);

    // The state directory is lost; more re-sends arrive (of events 1 s to 999 s old,
    // measured on the newest event time: within the window). The state comes back from
    // the changelog, and the re-sends are dropped.
    std::fs::remove_dir_all(&state).expect("wipe state");
    let more: Vec<String> = (0..n).filter(|i| i % 7 == 0).map(|i| event(i, i + 7300)).collect();
    let payloads: Vec<&[u8]> = more.iter().map(|m| m.as_bytes()).collect();
    produce_raw(&s, &topic, &payloads);
    let restored = penstock(&["run", path, "--until-caught-up", "--http", "off"]);
    assert!(restored.status.success(), "{}", stderr(&restored));
    assert!(stderr(&restored).contains("state restored from the changelog"), "{}", stderr(&restored));
    // Those of them within an hour of a kept 2-h re-send (i % 5 == 0 too) are
    // duplicates; the others are more than an hour after their last kept occurrence.
    let kept_again = (0..n).filter(|i| i % 7 == 0 && i % 5 != 0).count() as u64;
    assert!(stdout(&restored).contains(&format!("{} rows inserted", kept_again)), "{}", stdout(&restored));
    assert_eq!(count("SELECT count() FROM T"), n + late + kept_again);
    // The restoring process continues the changelog with a snapshot of its own.
    assert!(stderr(&restored).contains("state snapshot written to the changelog"), "{}", stderr(&restored));

    // Lost again; the same re-sends arrive once more. This restore starts at that
    // snapshot (not at the changelog's first record), and every re-send is dropped.
    std::fs::remove_dir_all(&state).expect("wipe state");
    produce_raw(&s, &topic, &payloads);
    let again = penstock(&["run", path, "--until-caught-up", "--http", "off"]);
    assert!(again.status.success(), "{}", stderr(&again));
    let log = stderr(&again);
    let line = log.lines().find(|l| l.contains("state restored from the changelog")).unwrap_or_else(|| panic!("{log}"));
    let from: i64 = line
        .split("from_offset=")
        .nth(1)
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no snapshot offset in: {line}"));
    assert!(from > 0, "{line}");
    assert!(stdout(&again).contains("0 rows inserted"), "{}", stdout(&again));
    assert_eq!(count("SELECT count() FROM T"), n + late + kept_again);
}

#[test]
fn a_million_generated_events_with_duplicates_land_once_each_through_crashes_and_a_wiped_state() {
    let s = Services::start().expect("services");
    let (topic, db) = (unique_name("ddcrash"), unique_name("db"));
    s.kafka.create_topic(&topic, 4).expect("topic");
    s.clickhouse.query(&format!("CREATE DATABASE `{db}`"));
    let brokers = s.kafka.bootstrap();
    let gen = penstock(&[
        "gen",
        "--brokers",
        &brokers,
        "--topic",
        &topic,
        "--count",
        "1000000",
        "--duplicates",
        "0.1",
        "--seed",
        "13",
    ]);
    assert!(gen.status.success(), "gen failed:\n{}\n{}", stdout(&gen), stderr(&gen));
    let state = s.dir().join("state");
    let pipeline = dedup_pipeline(&s, &topic, &db, &state, "  - dedup: { key: event_id, window: 1h }", 10_000);
    add_kafka_properties(&pipeline, &format!("group.instance.id: \"{topic}-member\""));
    let pipeline = pipeline.to_str().unwrap();
    let log = s.dir().join("dedup-crash.log");
    let t = format!("`{db}`.transactions_dedup");
    let mut rng = SmallRng::seed_from_u64(21);

    // The state protocol's failpoints, then the delivery protocol's, then SIGKILL at
    // random instants; the state directory is wiped half-way (restored from the
    // changelog, after which the restoring process writes a snapshot). (The state's writer
    // coalesces writes for up to 2 s, so its failpoints are hit early in a run: `:1`
    // and `:2`; kills come soon after rows flow, or the stream ends before 20 crashes.)
    let mut plan: Vec<Option<String>> = Vec::new();
    for fp in ["after_changelog_write:1", "after_state_write:2", "after_state_write:1", "after_changelog_write:2"] {
        plan.push(Some(fp.to_string()));
    }
    for fp in ["after_insert:2", "after_ledger_done:3", "after_commit:2", "after_ledger_pending:4"] {
        plan.push(Some(fp.to_string()));
    }
    plan.extend((0..3).map(|_| None));
    let mut kills = crash_through(&s, pipeline, &t, &log, &plan, &mut rng, 100..900);
    std::fs::remove_dir_all(&state).expect("wipe state");
    // A restore, then the restoring process's own snapshot: both cut short once.
    let mut plan = vec![Some("during_restore:1".to_string()), Some("after_snapshot:1".to_string())];
    plan.extend((0..10).map(|_| None));
    kills += crash_through(&s, pipeline, &t, &log, &plan, &mut rng, 100..900);
    assert!(kills >= 20, "only {kills} crashes happened; the stream ended too early");

    let status = finish(pipeline, &log);
    assert!(status.success(), "final run failed:\n{}", tail_of(&log, 60));
    let log_text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(log_text.contains("state restored from the changelog"), "the wiped state was restored");
    assert!(log_text.contains("state snapshot written to the changelog"), "the restoring process snapshotted");
    assert!(log_text.contains("re-reading delivered messages to bring stage state forward"), "some restart caught up");

    let (sent, dups, _, _) = crate::gen_bench::gen_counts(&stdout(&gen));
    let ch = &s.clickhouse;
    let rows: u64 = ch.scalar(&format!("SELECT count() FROM {t}"));
    assert_eq!(ch.scalar::<u64>(&format!("SELECT uniqExact(event_id) FROM {t}")), sent - dups, "{}", tail_of(&log, 40));
    assert_eq!(rows, sent - dups, "rows = distinct event ids: every duplicate dropped, nothing lost");
}

/// Duplicates sent with other message keys land on other partitions: a dedup keeping
/// state per source partition misses them; `repartition: true` routes every message by
/// the dedup key through an internal topic and catches every one — through a crash of
/// the forwarder, a crash of the pipeline after an insert, and a SIGKILL while both run.
#[test]
fn duplicates_on_other_partitions_are_caught_when_repartitioned_through_crashes() {
    let s = Services::start().expect("services");
    let topic = unique_name("ddrp");
    s.kafka.create_topic(&topic, 4).expect("topic");
    // Event i on partition i % 4; a third of them again a minute later, with another
    // key, on the next partition. All within one window: the forwarder interleaves the
    // source partitions as it reads them, so which copy comes first on the internal
    // partition is not the older one, and the newest time seen may run ahead.
    let n = 4_000u64;
    let producer = penstock_kafka::CountingProducer::new(&s.kafka.bootstrap(), &[]).expect("producer");
    for i in 0..n {
        producer
            .send(&topic, format!("k{i}").as_bytes(), event(i, i / 4).as_bytes(), Some((i % 4) as i32))
            .expect("send");
        if i % 3 == 0 {
            let again = event(i, i / 4 + 60);
            producer
                .send(&topic, format!("r{i}").as_bytes(), again.as_bytes(), Some(((i + 1) % 4) as i32))
                .expect("send");
        }
    }
    producer.flush(std::time::Duration::from_secs(60)).expect("flush");
    let time = "  - dedup: { key: event_id, window: 1h, time: event_time }";
    let count = |db: &str, sql: &str| {
        s.clickhouse.scalar::<u64>(&sql.replace("FROM T", &format!("FROM `{db}`.transactions_dedup")))
    };

    // Per source partition: the re-sends on other partitions pass.
    let plain_db = unique_name("db");
    s.clickhouse.query(&format!("CREATE DATABASE `{plain_db}`"));
    let plain = dedup_pipeline(&s, &topic, &plain_db, &s.dir().join("plain-state"), time, 500);
    let out = penstock(&["run", plain.to_str().unwrap(), "--until-caught-up", "--http", "off"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(count(&plain_db, "SELECT count() FROM T"), n + n.div_ceil(3), "every re-send passed");

    // Repartitioned: its own name (internal topic, changelog, group) and database.
    let db = unique_name("db");
    s.clickhouse.query(&format!("CREATE DATABASE `{db}`"));
    // No writer lease for the forwarder: Tansu keeps killed members in the writer group,
    // so after a crash the next process would wait for the lease (tested on its own in
    // relay.rs) past this test's limits.
    let repartitioned =
        "  - dedup: { key: event_id, window: 1h, time: event_time, repartition: true, repartition_lease: none }";
    let path = dedup_pipeline(&s, &topic, &db, &s.dir().join("rp-state"), repartitioned, 500);
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace("name: transactions-dedup\n", "name: transactions-dedup-rp\n")
        .replace(&format!("group-{topic}"), &format!("rp-{topic}"));
    std::fs::write(&path, text).unwrap();
    // The pipeline's consumer is a static member, so a process restarted after the
    // SIGKILL takes its place in the group at once (Tansu keeps killed members).
    add_kafka_properties(&path, &format!("group.instance.id: \"{topic}-member\""));
    let path = path.to_str().unwrap();
    let check = penstock(&["check", path]);
    assert!(
        stdout(&check)
            .contains("repartitioned: every message goes through topic penstock-transactions-dedup-rp-repartition"),
        "{}",
        stdout(&check)
    );
    let log = s.dir().join("rp.log");

    // The forwarder dies after 50 messages; the pipeline after its first insert.
    for fp in ["publish_after_send:50", "after_insert:1"] {
        let mut child = spawn_penstock_env(
            &["run", path, "--until-caught-up", "--http", "off"],
            &log,
            &[("PENSTOCK_FAILPOINT", fp.to_string())],
        );
        let status = wait_with_limit(&mut child, std::time::Duration::from_secs(120), &log);
        assert!(!status.success(), "{fp} must abort the run:\n{}", tail_of(&log, 30));
    }
    // Both running side by side, killed once rows flow.
    let mut child = spawn_penstock_env(&["run", path, "--http", "off"], &log, &[]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let before = count(&db, "SELECT count() FROM T");
    while count(&db, "SELECT count() FROM T") == before && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
    let limit = std::time::Duration::from_secs(120);
    let (status, out) = penstock_within(&["run", path, "--until-caught-up", "--http", "off"], limit, &log);
    assert!(status.success(), "{}", tail_of(&log, 40));
    assert!(out.contains("duplicates dropped"), "{out}");
    assert_eq!(count(&db, "SELECT uniqExact(event_id) FROM T"), n);
    assert_eq!(count(&db, "SELECT count() FROM T"), n, "every re-send on another partition dropped, nothing lost");
}
