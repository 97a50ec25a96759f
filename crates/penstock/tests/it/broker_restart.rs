//! The broker is killed (SIGKILL) mid-stream and restarted on the same port and
//! storage: Penstock reconnects, and every event arrives exactly once.

use crate::harness::*;
use penstock_testkit::{unique_name, Services};
use std::time::{Duration, Instant};

#[test]
fn exactly_once_survives_a_broker_restart() {
    let mut s = Services::start().expect("services");
    let topic = unique_name("brk");
    let db = unique_name("db");
    s.kafka.create_topic(&topic, 4).expect("topic");
    create_transactions_table(&s, &db);
    let produced = produce(&s, &topic, 200_000, 99);
    let pipeline = example_pipeline(&s, s.dir(), &topic, &db, 5_000);
    let text = std::fs::read_to_string(&pipeline).unwrap().replace(
        "    start: earliest\n",
        &format!("    start: earliest\n    properties: {{ group.instance.id: \"{topic}-member\" }}\n"),
    );
    std::fs::write(&pipeline, text).unwrap();
    let log = s.dir().join("broker-restart.log");
    let mut child = spawn_penstock(&["run", pipeline.to_str().unwrap(), "--until-caught-up"], &log);

    let t = format!("`{db}`.transactions");
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let n: u64 = s.clickhouse.scalar(&format!("SELECT count() FROM {t}"));
        if n > 0 {
            assert!(n < produced.count, "the restart must happen mid-stream (already {n} rows)");
            break;
        }
        assert!(Instant::now() < deadline, "no rows arrived");
        std::thread::sleep(Duration::from_millis(20));
    }
    s.kafka.process().kill();
    std::thread::sleep(Duration::from_secs(5));
    s.kafka.restart().expect("restart the broker");

    let status = wait_with_limit(&mut child, Duration::from_secs(300));
    let log_text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(status.success(), "penstock failed:\n{log_text}");
    let ch = &s.clickhouse;
    assert_eq!(ch.scalar::<u64>(&format!("SELECT count() FROM {t}")), produced.count, "{log_text}");
    assert_eq!(ch.scalar::<u64>(&format!("SELECT uniqExact(event_id) FROM {t}")), produced.count);
    assert_eq!(cents(&ch.query(&format!("SELECT sum(amount) FROM {t}"))), produced.amount_cents);
}
