//! The DDL Penstock generates, run by a modern ClickHouse engine (26.9, in-process via
//! chdb): every engine family, modern-only types (Bool, Map, Int256, DateTime64,
//! LowCardinality, named Tuple, IPv6), codecs, TTL, SETTINGS and hostile names are
//! accepted, and the table the engine reports is the one asked for. (The 18.16 server
//! here runs the same DDL in the pipeline's integration tests.)

#![allow(missing_docs)]

use penstock_clickhouse::ddl::{add_column_sql, columns_for, create_database_sql, create_table_sql, ColumnDef};
use penstock_codec::{ColumnType, FieldSpec};
use penstock_config::{SqlTerm, TableCreation};
use penstock_testkit::Chdb;

fn field(name: &str, ty: &str) -> FieldSpec {
    FieldSpec::from_key(name, ColumnType::parse(ty).unwrap())
}

fn creation(engine: &str, args: Vec<SqlTerm>) -> TableCreation {
    TableCreation {
        engine: engine.into(),
        engine_args: args,
        order_by: vec![SqlTerm::Column("ré gion".into()), SqlTerm::Column("select".into())],
        partition_by: Some("toYYYYMM(`select`)".into()),
        primary_key: vec![SqlTerm::Column("ré gion".into())],
        ttl: Some("toDateTime(`select`) + INTERVAL 30 DAY".into()),
        settings: vec![("index_granularity".into(), "1024".into())],
        on_cluster: None,
        codecs: vec![("amount".into(), "ZSTD(3)".into()), ("select".into(), "Delta, LZ4".into())],
    }
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('\'', "\\'")
}

#[test]
fn generated_ddl_is_accepted_by_a_modern_engine() {
    let fields = [
        field("ré gion", "LowCardinality(String)"),
        field("select", "DateTime64(3, 'UTC')"),
        field("amount", "Decimal(38, 4)"),
        field("qty", "UInt64"),
        field("ok", "Bool"),
        field("attrs", "Map(String, Array(Nullable(Int256)))"),
        field("who", "Tuple(name String, ip IPv6)"),
        field("x'; DROP TABLE victim; --", "Nullable(String)"),
    ];
    let chdb = Chdb::new().expect("chdb");
    let db = "d`b \"q\"";
    let engines = [
        ("MergeTree", vec![]),
        ("ReplacingMergeTree", vec![SqlTerm::Column("qty".into())]),
        ("SummingMergeTree", vec![]),
        ("AggregatingMergeTree", vec![]),
    ];
    let mut statements =
        vec!["CREATE TABLE victim (x UInt8) ENGINE = Memory".to_string(), create_database_sql(db, &None)];
    for (i, (engine, args)) in engines.iter().enumerate() {
        let c = creation(engine, args.clone());
        statements.push(create_table_sql(db, &format!("t{i}; DROP TABLE victim"), &columns_for(&fields, &c), &c));
    }
    let added = ColumnDef { name: "new col".into(), ty: ColumnType::parse("Array(IPv4)").unwrap(), codec: None };
    statements.push(add_column_sql(db, "t0; DROP TABLE victim", &added, Some("qty"), &None));
    statements.push(format!(
        "SELECT name, engine, sorting_key, primary_key, partition_key FROM system.tables WHERE database = '{}' \
         ORDER BY name FORMAT TabSeparated",
        escape(db)
    ));
    statements.push(format!(
        "SELECT name, type, compression_codec FROM system.columns WHERE database = '{}' \
         AND table = 't0; DROP TABLE victim' ORDER BY position FORMAT TabSeparated",
        escape(db)
    ));
    statements.push("SELECT count() FROM system.tables WHERE name = 'victim' FORMAT TabSeparated".into());
    let results = chdb.run(&statements).expect("chdb");
    for (sql, r) in statements.iter().zip(&results) {
        assert!(r.is_ok(), "`{sql}` failed: {r:?}");
    }
    let tables = results[results.len() - 3].as_ref().unwrap();
    let lines: Vec<&str> = tables.lines().collect();
    assert_eq!(lines.len(), 4, "{tables}");
    for (line, (engine, _)) in lines.iter().zip(engines) {
        let cols: Vec<&str> = line.split('\t').collect();
        assert_eq!(cols[1], engine, "{line}");
        assert_eq!(cols[2], "`ré gion`, `select`", "{line}");
        assert_eq!(cols[3], "`ré gion`", "{line}");
        assert_eq!(cols[4], "toYYYYMM(`select`)", "{line}");
    }
    let columns = results[results.len() - 2].as_ref().unwrap();
    assert!(columns.contains("amount\tDecimal(38, 4)\tCODEC(ZSTD(3))"), "{columns}");
    assert!(columns.contains("qty\tUInt64\t\nnew col\tArray(IPv4)"), "added after `qty`: {columns}");
    assert!(columns.contains("x\\'; DROP TABLE victim; --\tNullable(String)"), "{columns}");
    assert_eq!(results.last().unwrap().as_ref().unwrap().trim(), "1", "nothing else touched");
}
