//! The broker is killed (SIGKILL) mid-stream and restarted on the same port and
//! storage: Penstock reconnects (or, when the broker's group never assigns it again,
//! is restarted), and every event arrives exactly once.

use crate::harness::*;
use penstock_testkit::{unique_name, Services};
use std::time::Duration;

#[test]
fn exactly_once_survives_a_broker_restart() {
    let mut s = Services::start().expect("services");
    let topic = unique_name("brk");
    let db = unique_name("db");
    s.kafka.create_topic(&topic, 4).expect("topic");
    create_transactions_table(&s, &db);
    let produced = produce(&s, &topic, 200_000, 99);
    let pipeline = example_pipeline(&s, s.dir(), &topic, &db, 5_000);
    add_kafka_properties(&pipeline, &format!("group.instance.id: \"{topic}-member\""));
    let log = s.dir().join("broker-restart.log");
    let mut child = spawn_penstock(&["run", pipeline.to_str().unwrap(), "--until-caught-up"], &log);

    let t = format!("`{db}`.transactions");
    wait_until_mid_stream(&s, &t, produced.count);
    s.kafka.process().kill();
    std::thread::sleep(Duration::from_secs(5));
    s.kafka.restart().expect("restart the broker");

    // After the restart, Tansu 0.6's group coordinator sometimes revokes the rejoined
    // member's partitions and never assigns them again; the process is then killed and
    // started again (one more crash), as in the crash loops.
    let status = match wait_or_kill(&mut child, Duration::from_secs(150)) {
        Some(status) => status,
        None => {
            eprintln!("no progress after the broker restart; restarting penstock:\n{}", tail_of(&log, 5));
            crate::crash_loop::finish(pipeline.to_str().unwrap(), &log)
        }
    };
    let log_text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(status.success(), "penstock failed:\n{log_text}");
    let ch = &s.clickhouse;
    assert_eq!(ch.scalar::<u64>(&format!("SELECT count() FROM {t}")), produced.count, "{log_text}");
    assert_eq!(ch.scalar::<u64>(&format!("SELECT uniqExact(event_id) FROM {t}")), produced.count);
    assert_eq!(cents(&ch.query(&format!("SELECT sum(amount) FROM {t}"))), produced.amount_cents);
}
