//! Exactly-once under crashes: `penstock` is killed again and again — at every
//! failpoint of the delivery protocol and with SIGKILL at random instants — and
//! restarted each time; at the end every event is in the table exactly once.

use crate::harness::*;
use penstock_testkit::{unique_name, Services};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::time::Duration;

/// A non-empty assignment in the log.
const ASSIGNED: &str = "partitions assigned partitions=[Partition";

pub const FAILPOINTS: [&str; 6] = [
    "before_ledger_pending",
    "after_ledger_pending",
    "after_insert",
    "after_dead_letters",
    "after_ledger_done",
    "after_commit",
];

#[test]
fn a_million_events_exactly_once_through_twenty_crashes() {
    let s = Services::start().expect("services");
    let topic = unique_name("crash");
    let db = unique_name("db");
    s.kafka.create_topic(&topic, 4).expect("topic");
    create_transactions_table(&s, &db);
    // Plus one malformed message after every 997 events: each dead letter must land
    // exactly once too.
    let produced = produce_with_bad(&s, &topic, 1_000_000, 2026, 997);
    // Small batches: many protocol rounds, so crashes land inside the stream.
    let pipeline = example_pipeline(&s, s.dir(), &topic, &db, 10_000);
    // Static membership: the restarted process takes over the killed member's place.
    // (Tansu 0.6 hands a dynamic member that joins while a killed one is still in the
    // group an empty assignment and does not rebalance after evicting the dead one; a
    // real Kafka cluster rebalances by itself.)
    add_kafka_properties(&pipeline, &format!("group.instance.id: \"{topic}-member\""));
    let pipeline = pipeline.to_str().unwrap();
    let seed: u64 = std::env::var("PENSTOCK_CRASH_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or(7);
    let mut rng = SmallRng::seed_from_u64(seed);
    let log = s.dir().join("crash-loop.log");
    let t = format!("`{db}`.transactions");

    // Every failpoint three times (at different hit counts), then SIGKILL at random
    // instants.
    let mut plan: Vec<Option<String>> = Vec::new();
    for round in 0..3 {
        for fp in FAILPOINTS {
            plan.push(Some(format!("{fp}:{}", 1 + round * 2 + rng.random_range(0..2))));
        }
    }
    plan.extend((0..12).map(|_| None));
    let kills = crash_through(&s, pipeline, &t, &log, &plan, &mut rng, 300..2500);
    assert!(kills >= 20, "only {kills} crashes happened; the stream ended too early");

    let status = finish(pipeline, &log);
    let log_text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(status.success(), "final run failed:\n{}", tail_of(&log, 60));
    assert!(log_text.contains("replaying a batch"), "some crash left a pending batch to replay");

    assert_every_event_exactly_once(&s, &db, &produced, &log);
}

/// Runs the pipeline until caught up. A run the broker's group leaves without an
/// assignment (see `crash_through`) is killed and started again — from the second
/// retry on in a fresh consumer group, since Tansu 0.6 can keep a group wedged for
/// good. Switching groups is safe with exactly-once: each partition resumes where the
/// ledger says delivery stopped, whatever the group has committed.
pub fn finish(pipeline: &str, log: &std::path::Path) -> std::process::ExitStatus {
    let original = std::fs::read_to_string(pipeline).expect("pipeline file");
    for attempt in 1..=4 {
        if attempt >= 3 {
            std::fs::write(pipeline, in_fresh_group(&original, attempt)).expect("write pipeline");
        }
        let mut child = spawn_penstock_env(&["run", pipeline, "--until-caught-up"], log, &[]);
        match wait_or_kill(&mut child, Duration::from_secs(150)) {
            Some(status) => return status,
            None => eprintln!("final run, attempt {attempt}: no progress for 150 s; killed:\n{}", tail_of(log, 5)),
        }
    }
    panic!("the pipeline never caught up:\n{}", tail_of(log, 60));
}

/// The pipeline file's text with its consumer group (and static member id, if any)
/// renamed for retry `n`: Tansu 0.6 sometimes keeps a group without assignments for
/// good; a fresh group is safe because the ledger, not the group's committed offsets,
/// decides where each partition resumes.
fn in_fresh_group(original: &str, n: usize) -> String {
    let lines: Vec<String> = original
        .lines()
        .map(|l| match l.strip_prefix("    group: ") {
            Some(group) => format!("    group: retry{n}-{group}"),
            None => l.replace("-member\"", &format!("-member-retry{n}\"")),
        })
        .collect();
    lines.join("\n") + "\n"
}

/// Every produced event is in the transactions table of `db` exactly once (count,
/// distinct ids, distinct offsets, the exact sum), and every malformed message in the
/// dead-letter table once.
pub fn assert_every_event_exactly_once(s: &Services, db: &str, produced: &Produced, log: &std::path::Path) {
    let (ch, t) = (&s.clickhouse, format!("`{db}`.transactions"));
    assert_eq!(ch.scalar::<u64>(&format!("SELECT count() FROM {t}")), produced.count, "{}", tail_of(log, 40));
    assert_eq!(ch.scalar::<u64>(&format!("SELECT uniqExact(event_id) FROM {t}")), produced.count);
    assert_eq!(ch.scalar::<u64>(&format!("SELECT uniqExact(_partition, _offset) FROM {t}")), produced.count);
    assert_eq!(cents(&ch.query(&format!("SELECT sum(amount) FROM {t}"))), produced.amount_cents);
    assert_dead_letters_exactly_once(s, db, produced);
}

/// Every malformed message is in the dead-letter table exactly once, and rows plus
/// dead letters cover every offset.
pub fn assert_dead_letters_exactly_once(s: &Services, db: &str, produced: &Produced) {
    let ch = &s.clickhouse;
    let dl = format!("`{db}`.transactions_dead_letter");
    assert!(produced.bad > 0);
    assert_eq!(ch.scalar::<u64>(&format!("SELECT count() FROM {dl}")), produced.bad);
    assert_eq!(ch.scalar::<u64>(&format!("SELECT uniqExact(`partition`, `offset`) FROM {dl}")), produced.bad);
    let rows_and_dead = ch.scalar::<u64>(&format!(
        "SELECT count() FROM (SELECT _partition AS p, _offset AS o FROM `{db}`.transactions \
         UNION ALL SELECT `partition` AS p, `offset` AS o FROM {dl})"
    ));
    assert_eq!(rows_and_dead, produced.count + produced.bad, "rows + dead letters = messages");
}

/// Runs `penstock run --until-caught-up` once per step of `plan`: a step naming a
/// failpoint (`name:N`) aborts there; an empty step is killed with SIGKILL at a random
/// instant while batches flow. Stops early when a run catches up before its crash.
/// Returns how many runs crashed.
pub fn crash_through(
    s: &Services,
    pipeline: &str,
    table: &str,
    log: &std::path::Path,
    plan: &[Option<String>],
    rng: &mut SmallRng,
    kill_within_ms: std::ops::Range<u64>,
) -> usize {
    let original = std::fs::read_to_string(pipeline).expect("pipeline file");
    let (mut kills, mut stalls) = (0, 0);
    for (run, failpoint) in plan.iter().enumerate() {
        let mut envs: Vec<(&str, String)> = Vec::new();
        if let Some(fp) = failpoint {
            envs.push(("PENSTOCK_FAILPOINT", fp.clone()));
        }
        let assigned_before = count_in(log, ASSIGNED);
        let mut child = spawn_penstock_env(&["run", pipeline, "--until-caught-up"], log, &envs);
        // Tansu 0.6's group coordinator sometimes revokes a restarted member's partitions
        // and never assigns them again (the process then idles): such a run is killed
        // with SIGKILL, one more crash, and the loop goes on in a fresh group.
        let mut stalled = |child: &mut std::process::Child, why: &str| {
            let _ = child.kill();
            let _ = child.wait();
            eprintln!("run {run}: {failpoint:?} {why}; killed, next run in a fresh group:\n{}", tail_of(log, 5));
            stalls += 1;
            std::fs::write(pipeline, in_fresh_group(&original, stalls)).expect("write pipeline");
        };
        let status = match failpoint {
            Some(_) => match wait_or_kill(&mut child, Duration::from_secs(120)) {
                Some(status) => status,
                None => {
                    stalled(&mut child, "stalled without an assignment");
                    kills += 1;
                    continue;
                }
            },
            None => {
                // A random instant while consuming: after this run got its partitions.
                let deadline = std::time::Instant::now() + Duration::from_secs(120);
                while count_in(log, ASSIGNED) == assigned_before && child.try_wait().unwrap().is_none() {
                    if std::time::Instant::now() > deadline {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
                if count_in(log, ASSIGNED) == assigned_before && child.try_wait().unwrap().is_none() {
                    stalled(&mut child, "got no assignment in 120 s");
                    kills += 1;
                    continue;
                }
                // Kill while batches flow: once this run has inserted something (start-up
                // reads catch-up targets for a few seconds, longer in a fresh group on
                // Tansu), at a random instant after.
                let rows_before: u64 = s
                    .clickhouse
                    .try_query(&format!("SELECT count() FROM {table}"))
                    .map_or(0, |v| v.trim().parse().unwrap_or(0));
                let flowing = std::time::Instant::now() + Duration::from_secs(30);
                while std::time::Instant::now() < flowing && child.try_wait().unwrap().is_none() {
                    let now: u64 = s
                        .clickhouse
                        .try_query(&format!("SELECT count() FROM {table}"))
                        .map_or(0, |v| v.trim().parse().unwrap_or(0));
                    if now > rows_before {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
                std::thread::sleep(Duration::from_millis(rng.random_range(kill_within_ms.clone())));
                let _ = child.kill(); // SIGKILL
                child.wait().expect("wait")
            }
        };
        let rows: u64 = s.clickhouse.scalar(&format!("SELECT count() FROM {table}"));
        eprintln!("run {run}: {failpoint:?} -> {status}, {rows} rows so far");
        if status.success() {
            break; // caught up before this crash could happen
        }
        kills += 1;
    }
    kills
}

fn count_in(log: &std::path::Path, needle: &str) -> usize {
    std::fs::read_to_string(log).unwrap_or_default().matches(needle).count()
}

/// A crash after the ledger's `done` entry but before the Kafka commit leaves the ledger
/// ahead of the group's committed offset; `--until-caught-up` must measure progress
/// from where recovery resumed, not from Kafka's committed offset, or it never exits.
#[test]
fn until_caught_up_ends_when_the_ledger_is_ahead_of_kafka() {
    let s = Services::start().expect("services");
    let topic = unique_name("ahead");
    let db = unique_name("db");
    s.kafka.create_topic(&topic, 1).expect("topic");
    create_transactions_table(&s, &db);
    let produced = produce(&s, &topic, 5_000, 17);
    let pipeline = example_pipeline(&s, s.dir(), &topic, &db, 5_000);
    add_kafka_properties(&pipeline, &format!("group.instance.id: \"{topic}-member\""));
    let pipeline = pipeline.to_str().unwrap();
    let log = s.dir().join("ahead.log");

    let envs = [("PENSTOCK_FAILPOINT", "after_ledger_done:1".to_string())];
    let mut crashed = spawn_penstock_env(&["run", pipeline, "--until-caught-up"], &log, &envs);
    let status = wait_with_limit(&mut crashed, Duration::from_secs(120), &log);
    assert!(!status.success(), "the failpoint must abort the first run");

    let mut again = spawn_penstock_env(&["run", pipeline, "--until-caught-up"], &log, &[]);
    let status = wait_with_limit(&mut again, Duration::from_secs(120), &log);
    assert!(status.success(), "{}", tail_of(&log, 30));
    let t = format!("`{db}`.transactions");
    assert_eq!(s.clickhouse.scalar::<u64>(&format!("SELECT count() FROM {t}")), produced.count);
    assert_eq!(s.clickhouse.scalar::<u64>(&format!("SELECT uniqExact(event_id) FROM {t}")), produced.count);
}

#[test]
fn a_fresh_group_renames_the_group_and_the_static_member() {
    let text =
        "source:\n  kafka:\n    group: group-t1\n    properties: { group.instance.id: \"t1-member\" }\nname: x\n";
    let fresh = in_fresh_group(text, 2);
    assert!(fresh.contains("    group: retry2-group-t1\n"), "{fresh}");
    assert!(fresh.contains("\"t1-member-retry2\""), "{fresh}");
    assert!(fresh.ends_with("name: x\n"));
}
