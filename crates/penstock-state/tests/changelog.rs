//! The changelog against a real broker (Tansu on sqlite, started here on loopback):
//! snapshots bound what a restore reads, and a state restored into an empty directory
//! answers as the one it was written from.

use penstock_config::{KafkaSource, StartFrom};
use penstock_stages::dedup::{KeyHash, KeyStore, PartitionDedup, Row, Verdict};
use penstock_state::{Changelog, StateSettings, StateStore};
use penstock_testkit::Broker;

fn key(n: u64) -> KeyHash {
    KeyHash(xxhash_rust::xxh3::xxh3_128(&n.to_le_bytes()).to_le_bytes())
}

/// `n` rows of keys `first..first + n` at offsets from `offset` (time = offset ms).
fn rows(first: u64, n: u64, offset: i64) -> Vec<Row> {
    (0..n).map(|i| Row { key: key(first + i), offset: offset + i as i64, time: offset + i as i64 }).collect()
}

#[test]
fn a_restore_reads_from_the_latest_snapshot_and_answers_as_the_original() {
    let dir = tempfile::tempdir().expect("temp dir");
    let broker = Broker::start_in(&dir.path().join("broker")).expect("tansu");
    broker.create_topic("changelog", 1).expect("changelog topic");
    let source = KafkaSource {
        brokers: broker.bootstrap(),
        topics: vec!["events".into()],
        group: "state-test".into(),
        start: StartFrom::Earliest,
        properties: Vec::new(),
    };
    let changelog = || Changelog::new(&source, "changelog".into()).expect("changelog");
    // Small snapshots' floor, so 40 writes take several.
    let settings =
        |d: &str| StateSettings { snapshot_min_bytes: 64 << 10, ..StateSettings::new(dir.path().join(d), 8 << 20) };
    let hour = 3_600_000;

    // 40 deliveries of 2,000 new keys each, every one applied at once (a flush).
    let (batches, per) = (40u64, 2_000u64);
    {
        let mut store = StateStore::open(&settings("first"), "p", "dedup", Some(changelog())).expect("store");
        let mut part = PartitionDedup::new(store.open("events", 0).expect("partition"), hour);
        let mut verdicts = Vec::new();
        for b in 0..batches {
            let offset = (b * per) as i64;
            part.rows(&rows(b * per, per, offset), &mut verdicts).expect("rows");
            assert!(verdicts.iter().all(|v| matches!(v, Verdict::New(_))));
            part.seal(offset + per as i64);
            assert!(part.delivered(offset + per as i64).expect("delivered"));
            part.flush().expect("flush");
        }
        assert_eq!(part.covers().map(|c| c.next_offset), Some((batches * per) as i64));
    }

    // Another directory, nothing local: restored from the changelog, from a snapshot.
    let end = (batches * per) as i64;
    let mut store = StateStore::open(&settings("second"), "p", "dedup", Some(changelog())).expect("store");
    assert_eq!(store.prepare("events", 0, Some(end)).expect("restore"), Some(end));
    let r = store.restores().pop().expect("a restore was taken");
    let from = r.from_offset.expect("a snapshot to start from");
    assert!(from > 0, "{r:?}");
    // Snapshots come when the writes since the last one outweigh it: the last one here
    // holds 32 of the 40 writes (4 chunks), and the restore reads the newest record (a
    // window of 4) to learn where it starts, then it, the marker written after it and
    // the 8 writes after that: 17 of the changelog's ~65 records (a scan for it would
    // read them all first).
    assert!(r.writes <= 9 && r.records <= 17, "a bounded read of the tail, not the whole log: {r:?}");

    let mut part = PartitionDedup::new(store.open("events", 0).expect("partition"), hour);
    let mut verdicts = Vec::new();
    // Every key seen is a duplicate within the window; new ones are new.
    let again: Vec<Row> = (0..batches * per)
        .step_by(7)
        .enumerate()
        .map(|(i, k)| Row { key: key(k), offset: end + i as i64, time: end + i as i64 })
        .collect();
    part.rows(&again, &mut verdicts).expect("rows");
    assert!(verdicts.iter().all(|v| *v == Verdict::Duplicate), "every restored key is found");
    let next = end + again.len() as i64;
    part.rows(&rows(1 << 40, 500, next), &mut verdicts).expect("rows");
    assert!(verdicts.iter().all(|v| matches!(v, Verdict::New(_))), "no key invented");
}
