//! `cursor: block` against ClickHouse 26.9's engine in-process (chdb): the cursor
//! queries Penstock generates read every row of a plain MergeTree exactly once, in
//! block order, while rows keep arriving between reads and parts are merged — the
//! prefix property: nothing ever appears behind the cursor. Without the persisted
//! block columns, merges renumber rows and the same reads go wrong, which is why
//! `check_block_table` refuses such tables.
//!
//! What this cannot show here: an insert still in flight while a read runs (one chdb
//! session runs one statement at a time), and the queries over HTTP to a modern server
//! (the server here is 18.16, which has no block columns; chdb has no HTTP interface).

#![allow(missing_docs)]

use penstock_clickhouse::cursor::check_block_table;
use penstock_clickhouse::Cursor;
use penstock_codec::ColumnType;
use penstock_config::{parse_job, ClickHouseSource, Job};
use penstock_protocol::{Position, PositionValue};
use penstock_testkit::Chdb;

const SETTINGS: &str = " SETTINGS enable_block_number_column = 1, enable_block_offset_column = 1";

fn block_source() -> ClickHouseSource {
    let yaml = "name: b\nsource: { clickhouse: { url: 'http://127.0.0.1:8123', table: src.t, cursor: block } }\n\
                sink: { kafka: { brokers: b, topic: o } }\n";
    match parse_job(yaml, "b.yaml", |_| None).expect("valid") {
        Job::Publish(p) => p.source,
        other => panic!("{other:?}"),
    }
}

/// Inserts rows `first..first+n` in an order unlike the sort key, so block order and
/// `ORDER BY` differ.
fn insert(first: u64, n: u64) -> String {
    format!("INSERT INTO src.t SELECT {first} + (number * 7919) % {n}, toString(number) FROM numbers({n})")
}

/// Reads with the cursor between inserts and merges; returns the ids in read order.
fn follow(chdb: &Chdb, source: &ClickHouseSource) -> Vec<u64> {
    let columns = vec![("id".to_string(), ColumnType::UInt64), ("v".to_string(), ColumnType::String)];
    let cursor = Cursor::new(source, &columns).expect("block cursor");
    let mut after: Option<Position> = None;
    let mut ids = Vec::new();
    let mut next_id = 0u64;
    for step in 0..40u64 {
        let mut statements = Vec::new();
        if step < 24 {
            let n = 13 + step * 5 % 23;
            statements.push(insert(next_id, n));
            next_id += n;
            if step % 5 == 4 {
                statements.push("OPTIMIZE TABLE src.t FINAL".into());
            }
        }
        statements.push(cursor.next_batch_sql(source, after.as_ref(), 41).replace("FORMAT Native", "FORMAT TSV"));
        let results = chdb.run(&statements).expect("chdb");
        let rows = results.last().expect("read").clone().expect("cursor query");
        for line in rows.lines().filter(|l| !l.is_empty()) {
            let f: Vec<&str> = line.split('\t').collect();
            let position = Position(vec![
                PositionValue::Int(f[2].parse().expect("block number")),
                PositionValue::Int(f[3].parse().expect("block offset")),
            ]);
            assert!(
                after.as_ref().is_none_or(|a| &position > a),
                "rows come in cursor order: {position} after {after:?}"
            );
            after = Some(position);
            ids.push(f[0].parse().expect("id"));
        }
    }
    ids
}

fn exactly_once(mut ids: Vec<u64>, total: u64) -> bool {
    ids.sort_unstable();
    ids == (0..total).collect::<Vec<_>>()
}

/// Rows inserted by `follow` in all.
fn total() -> u64 {
    (0..24u64).map(|step| 13 + step * 5 % 23).sum()
}

#[test]
fn block_cursor_reads_every_row_once_while_rows_arrive_and_parts_merge() {
    let chdb = Chdb::new().expect("chdb session");
    chdb.query("CREATE DATABASE src");
    chdb.query(&format!("CREATE TABLE src.t (id UInt64, v String) ENGINE = MergeTree ORDER BY id{SETTINGS}"));
    let create = chdb.query("SHOW CREATE TABLE src.t FORMAT TabSeparated");
    assert_eq!(check_block_table("src.t", &create), Ok(()), "{create}");
    let ids = follow(&chdb, &block_source());
    assert!(exactly_once(ids.clone(), total()), "{} rows read of {}: {ids:?}", ids.len(), total());
}

#[test]
fn without_persisted_block_numbers_the_table_is_refused() {
    let chdb = Chdb::new().expect("chdb session");
    chdb.query("CREATE DATABASE src");
    chdb.query("CREATE TABLE src.t (id UInt64, v String) ENGINE = MergeTree ORDER BY id");
    let create = chdb.query("SHOW CREATE TABLE src.t FORMAT TabSeparated");
    let e = check_block_table("src.t", &create).unwrap_err();
    assert!(e.contains("MODIFY SETTING enable_block_number_column = 1, enable_block_offset_column = 1"), "{e}");
    // And for good reason: the same reads on it do not see every row exactly once.
    // (Out of order, or not each row once.)
    match std::panic::catch_unwind(|| follow(&chdb, &block_source())) {
        Err(_) => {}
        Ok(ids) => assert!(!exactly_once(ids.clone(), total()), "read exactly once anyway: {ids:?}"),
    }
}
