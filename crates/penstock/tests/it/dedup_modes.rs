//! The server situations of exactly-once delivery other than plain MergeTree on 18.16
//! (which the crash-loop test covers): a Replicated*MergeTree table, where the server
//! drops a replayed identical block.

use crate::crash_loop::{assert_every_event_exactly_once, crash_through, finish, FAILPOINTS};
use crate::harness::*;
use penstock_testkit::{unique_name, Services};
use rand::rngs::SmallRng;
use rand::SeedableRng;

/// ReplicatedMergeTree on 18.16 with ZooKeeper: Penstock detects it, chooses block
/// deduplication (no offset check), and a crash at every failpoint — including after
/// the insert, before the ledger says done — still leaves every event exactly once.
#[test]
fn replicated_table_drops_replayed_blocks_through_crashes() {
    let s = Services::start_replicated().expect("services with ZooKeeper");
    let topic = unique_name("replicated");
    let db = unique_name("db");
    s.kafka.create_topic(&topic, 4).expect("topic");
    let zk_path = format!("/clickhouse/tables/{{shard}}/{db}/transactions");
    create_transactions_table_with_engine(&s, &db, &format!("ReplicatedMergeTree('{zk_path}', '{{replica}}')"));
    let produced = produce_with_bad(&s, &topic, 200_000, 31, 501);
    let pipeline = example_pipeline(&s, s.dir(), &topic, &db, 5_000);
    add_kafka_properties(&pipeline, &format!("group.instance.id: \"{topic}-member\""));
    let pipeline = pipeline.to_str().unwrap();

    let check = penstock(&["check", pipeline]);
    assert!(
        stdout(&check).contains("the replicated table drops a replayed batch as an identical block"),
        "{}{}",
        stdout(&check),
        stderr(&check)
    );

    let log = s.dir().join("replicated.log");
    let t = format!("`{db}`.transactions");
    let mut plan: Vec<Option<String>> = FAILPOINTS.iter().map(|fp| Some(format!("{fp}:3"))).collect();
    plan.extend([None, None]);
    let mut rng = SmallRng::seed_from_u64(5);
    let kills = crash_through(&s, pipeline, &t, &log, &plan, &mut rng, 300..2500);
    assert!(kills >= 5, "only {kills} crashes happened; the stream ended too early");

    let status = finish(pipeline, &log);
    assert!(status.success(), "final run failed:\n{}", tail_of(&log, 60));
    let log_text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(log_text.contains("identical block"), "mode not logged:\n{}", tail_of(&log, 40));
    assert!(log_text.contains("replaying a batch"), "some crash left a pending batch to replay");

    assert_every_event_exactly_once(&s, &db, &produced, &log);
}
