//! Exactly-once on a modern ClickHouse, checked against its engine in-process (chdb,
//! ClickHouse 26.9) because the only server on these machines is 18.16, which has no
//! `insert_deduplication_token`: capability detection picks token mode from the real
//! answers of a modern engine, and a replayed batch carrying its token is stored once
//! while a different range with identical bytes is stored again.
//!
//! What this cannot show here: the token travelling as an HTTP URL parameter to a
//! modern server (chdb has no HTTP interface); the statement below passes it as a
//! query-level setting, which is what the URL parameter becomes inside the server.

#![allow(missing_docs)]

use penstock_clickhouse::build_insert;
use penstock_codec::{ColumnType, DecodeLimits, FieldSpec, JsonDecoder, MessageMeta, Timestamp, ValueSource};
use penstock_config::{Compression, InsertFormat};
use penstock_pipeline::exactly_once::ledger::{capability_queries, parse_capabilities};
use penstock_pipeline::exactly_once::mode::{choose, dedup_token, DedupMode};
use penstock_testkit::Chdb;

const DDL: &str = "CREATE TABLE events.t (id UInt64, name String, _partition Int32, _offset Int64) \
                   ENGINE = MergeTree ORDER BY id";

fn field(column: &str, ty: ColumnType, source: ValueSource) -> FieldSpec {
    FieldSpec { source, required: true, ..FieldSpec::from_key(column, ty) }
}

fn fields() -> Vec<FieldSpec> {
    vec![
        field("id", ColumnType::UInt64, ValueSource::Json("id".into())),
        field("name", ColumnType::String, ValueSource::Json("name".into())),
        field("_partition", ColumnType::Int32, ValueSource::Partition),
        field("_offset", ColumnType::Int64, ValueSource::Offset),
    ]
}

/// Capability answers of the chdb engine for `events.t`, as Penstock would ask them.
fn detect(chdb: &Chdb) -> penstock_pipeline::exactly_once::mode::Capabilities {
    let queries = capability_queries("events", "t");
    let answers: Vec<String> =
        chdb.run(&queries).expect("chdb").into_iter().map(|r| r.expect("capability query")).collect();
    parse_capabilities(&answers[0], &answers[1], &answers[2])
}

#[test]
fn modern_server_detection_chooses_token_mode_only_with_a_dedup_window() {
    let chdb = Chdb::new().expect("chdb session");
    chdb.query("CREATE DATABASE events");
    chdb.query(DDL);
    let caps = detect(&chdb);
    assert!(caps.version.starts_with("26."), "{caps:?}");
    assert!(caps.dedup_token && !caps.non_replicated_window, "{caps:?}");
    // Plain MergeTree without a window: a repeated token would be stored twice, so token
    // mode is not chosen; the table's _partition/_offset columns still allow exactly-once.
    assert!(matches!(choose(&caps, &fields(), 1), Ok(DedupMode::LandedOffsets { .. })));
    let why = choose(&caps, &fields()[..2], 1).unwrap_err();
    assert!(why.contains("non_replicated_deduplication_window"), "{why}");

    chdb.query("DROP TABLE events.t");
    chdb.query(&format!("{DDL} SETTINGS non_replicated_deduplication_window = 100"));
    let caps = detect(&chdb);
    assert!(caps.non_replicated_window, "{caps:?}");
    assert_eq!(choose(&caps, &fields()[..2], 1), Ok(DedupMode::Token));
}

#[test]
fn modern_server_stores_a_replayed_token_once() {
    let chdb = Chdb::new().expect("chdb session");
    chdb.query("CREATE DATABASE events");
    chdb.query(&format!("{DDL} SETTINGS non_replicated_deduplication_window = 100"));

    // One batch of the pipeline: offsets 100..110 of partition 3, decoded and encoded
    // exactly as the sink does.
    let mut decoder = JsonDecoder::new(fields(), DecodeLimits::default()).expect("schema");
    let mut block = decoder.new_block();
    for offset in 100..110 {
        let json = format!(r#"{{"id": {offset}, "name": "n{offset}"}}"#);
        let meta = MessageMeta {
            topic: "events",
            partition: 3,
            offset,
            timestamp_ms: None,
            key: None,
            now: Timestamp { secs: 0, nanos: 0 },
        };
        decoder.decode(json.as_bytes(), &meta, &mut block).expect("decode");
    }
    let req = build_insert("events", "t", &block, InsertFormat::Native, Compression::None);
    let body = chdb.files().join("batch.native");
    std::fs::write(&body, &req.body).expect("write batch");
    let insert = |token: &str| {
        let sql = req.sql.strip_suffix(" FORMAT Native").expect("a Native insert");
        format!(
            "{sql} SELECT * FROM file('{}', 'Native') SETTINGS insert_deduplication_token = '{token}'",
            body.display()
        )
    };
    let token = dedup_token("p", "events", 3, 100, 110);
    let other_range = dedup_token("p", "events", 3, 110, 120);
    let results = chdb
        .run(&[
            insert(&token),
            insert(&token), // the replay after a crash between insert and ledger `done`
            "SELECT count(), uniqExact(_offset) FROM events.t FORMAT TabSeparated".into(),
            insert(&other_range), // same bytes, another batch: must not be dropped
            "SELECT count() FROM events.t FORMAT TabSeparated".into(),
        ])
        .expect("chdb");
    let results: Vec<String> = results.into_iter().map(|r| r.expect("statement")).collect();
    assert_eq!(results[2].trim(), "10\t10", "the replay was stored again");
    assert_eq!(results[4].trim(), "20", "a different token must be stored");
}

#[test]
fn tokens_identify_the_range_and_pipeline() {
    let t = dedup_token("orders", "topic", 0, 5, 10);
    assert_eq!(t, dedup_token("orders", "topic", 0, 5, 10));
    for other in [
        dedup_token("other", "topic", 0, 5, 10),
        dedup_token("orders", "topic2", 0, 5, 10),
        dedup_token("orders", "topic", 1, 5, 10),
        dedup_token("orders", "topic", 0, 5, 11),
    ] {
        assert_ne!(t, other);
    }
}
