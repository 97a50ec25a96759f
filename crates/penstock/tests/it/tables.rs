//! Tables that manage themselves, on the real server: created from the schema on the
//! first run (database, table, dead-letter table), untouched by a second run, evolved
//! when the schema gains a column, widened when allowed, and an incompatible change
//! refused with the column, old type and new type named.

use crate::harness::*;
use penstock_testkit::{unique_name, Services};

fn edit(path: &std::path::Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(path).expect("pipeline");
    assert!(text.contains(from), "`{from}` not in the pipeline");
    std::fs::write(path, text.replace(from, to)).expect("write pipeline");
}

#[test]
fn created_on_first_run_evolved_later_and_incompatible_changes_refused() {
    let s = Services::start().expect("services");
    let topic = unique_name("tables");
    let db = unique_name("fresh");
    s.kafka.create_topic(&topic, 2).expect("topic");
    let first = produce(&s, &topic, 2_000, 3);
    let pipeline = example_pipeline(&s, s.dir(), &topic, &db, 10_000);
    let path = pipeline.to_str().unwrap();
    let ch = &s.clickhouse;
    assert_eq!(ch.scalar::<u64>(&format!("SELECT count() FROM system.databases WHERE name = '{db}'")), 0);

    let check = penstock(&["check", path]);
    assert!(stdout(&check).contains("will be created from the schema"), "{}", stdout(&check));
    assert!(check.status.success(), "{}", stdout(&check));

    let out = penstock(&["run", path, "--until-caught-up"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("created the table from the schema"), "{}", stderr(&out));
    let t = format!("`{db}`.transactions");
    assert_eq!(ch.scalar::<u64>(&format!("SELECT count() FROM {t}")), first.count);
    let engine = ch.query(&format!(
        "SELECT engine, partition_key, sorting_key FROM system.tables WHERE database = '{db}' AND name = 'transactions'"
    ));
    assert_eq!(engine.trim(), "MergeTree\ttoYYYYMMDD(event_time)\tregion, event_time, event_id");
    for table in ["transactions_dead_letter", "penstock_ledger"] {
        assert_eq!(ch.scalar::<u64>(&format!("EXISTS TABLE `{db}`.{table}")), 1, "{table}");
    }

    // A second run changes nothing.
    let again = penstock(&["run", path, "--until-caught-up"]);
    assert!(again.status.success(), "{}", stderr(&again));
    assert!(!stderr(&again).contains("created the table") && !stderr(&again).contains("added a column"));

    // The schema gains a column: it is added; new rows carry it, old rows read the default.
    edit(&pipeline, "  _partition:  Int32\n", "  _partition:  Int32\n  channel:     { type: String, default: web }\n");
    let check = penstock(&["check", path]);
    assert!(stdout(&check).contains("column `channel` String is new in the schema"), "{}", stdout(&check));
    let second = produce(&s, &topic, 1_000, 4);
    let out = penstock(&["run", path, "--until-caught-up"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("added a column the schema gained"), "{}", stderr(&out));
    let by_channel = ch.query(&format!("SELECT channel, count() FROM {t} GROUP BY channel ORDER BY channel"));
    assert_eq!(by_channel, format!("\t{}\nweb\t{}\n", first.count, second.count));
    let columns =
        ch.query(&format!("SELECT name FROM system.columns WHERE database = '{db}' AND table = 'transactions'"));
    assert!(columns.contains("_partition\nchannel\n_offset"), "added after its schema neighbour: {columns}");

    // A safe widening is applied only when allowed.
    edit(&pipeline, "  _partition:  Int32\n", "  _partition:  Int64\n");
    let out = penstock(&["run", path, "--until-caught-up"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("`widen: true`"), "{}", stderr(&out));
    edit(&pipeline, "    create:\n", "    widen: true\n    create:\n");
    let out = penstock(&["run", path, "--until-caught-up"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("widened a column"), "{}", stderr(&out));
    let ty = ch.query(&format!(
        "SELECT type FROM system.columns WHERE database = '{db}' AND table = 'transactions' AND name = '_partition'"
    ));
    assert_eq!(ty.trim(), "Int64");

    // An incompatible change is refused, naming the column and both types — and the
    // column the same edit adds is not added: a refused start changes nothing.
    let columns_before =
        ch.query(&format!("SELECT name, type FROM system.columns WHERE database = '{db}' AND table = 'transactions'"));
    edit(&pipeline, "  user_id:     UInt64\n", "  user_id:     String\n  coupon:      String\n");
    let out = penstock(&["run", path, "--until-caught-up"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let e = stderr(&out);
    assert!(e.contains("column `user_id`") && e.contains("UInt64") && e.contains("String"), "{e}");
    assert!(e.contains("refuses"), "{e}");
    let columns_after =
        ch.query(&format!("SELECT name, type FROM system.columns WHERE database = '{db}' AND table = 'transactions'"));
    assert_eq!(columns_after, columns_before, "the refused start left the table as it was");
    assert_eq!(ch.scalar::<u64>(&format!("SELECT count() FROM {t}")), first.count + second.count);
}

/// Names from outside — database, table and column names with quotes, backticks,
/// spaces, dots, unicode, keywords and `; DROP TABLE` — are quoted everywhere: the
/// DDL and inserts work, and nothing else is touched.
#[test]
fn hostile_names_are_quoted_everywhere() {
    let s = Services::start().expect("services");
    let topic = unique_name("hostile");
    s.kafka.create_topic(&topic, 1).expect("topic");
    let ch = &s.clickhouse;
    ch.query("CREATE TABLE default.victim (x UInt8) ENGINE = TinyLog");
    ch.query("INSERT INTO default.victim VALUES (1)");
    let db = format!("we\"ird`db {}", unique_name("d"));
    let table = "t'; DROP TABLE default.victim; --";
    produce_raw(
        &s,
        &topic,
        &[br#"{"it's":1,"back`tick":"b","with space":"s","dot.ted":2,"\u00fcn\u00efc\u00f6d\u00e9":"u","select":3,"x; DROP TABLE victim":4}"#],
    );
    let pipeline = s.dir().join("hostile.yaml");
    let yaml = format!(
        "name: hostile\nsource:\n  kafka:\n    brokers: {}\n    topics: [{topic}]\n    start: earliest\nschema:\n\
         \x20 \"it's\": UInt8\n\x20 \"back`tick\": String\n\x20 \"with space\": String\n\x20 \"dot.ted\": UInt8\n\
         \x20 \"ünïcödé\": String\n\x20 \"select\": UInt8\n\x20 \"x; DROP TABLE victim\": UInt8\n\
         \x20 _partition: Int32\n\x20 _offset: Int64\n\
         sink:\n  clickhouse:\n    url: {}\n    database: {}\n    table: {}\n    create:\n      order_by: [\"select\", \"it's\"]\n",
        s.kafka.bootstrap(),
        ch.url(),
        serde_quote(&db),
        serde_quote(table),
    );
    std::fs::write(&pipeline, yaml).expect("pipeline file");
    let out = penstock(&["run", pipeline.to_str().unwrap(), "--until-caught-up"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("1 rows inserted, 0 dead-lettered"), "{}", stdout(&out));
    let q = |name: &str| name.replace('\\', "\\\\").replace('`', "\\`");
    let row = ch.query(&format!(
        "SELECT `it's`, `{}`, `with space`, `dot.ted`, `ünïcödé`, `select`, `x; DROP TABLE victim` FROM `{}`.`{}`",
        q("back`tick"),
        q(&db),
        q(table)
    ));
    assert_eq!(row, "1\tb\ts\t2\tu\t3\t4\n");
    assert_eq!(ch.scalar::<u64>("SELECT count() FROM default.victim"), 1, "nothing else touched");
    let tables = ch
        .query(&format!("SELECT name FROM system.tables WHERE database = '{}' ORDER BY name", db.replace('\'', "\\'")));
    assert_eq!(tables, format!("penstock_ledger\n{table}\n{table}_dead_letter\n").replace('\'', "\\'"));
}

/// A YAML double-quoted string.
fn serde_quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\"").replace('$', "$$"))
}

/// `penstock schema infer` on the seed's `transactions` topic writes a pipeline that
/// `penstock check` accepts and that ingests the topic with no dead letters; on a topic
/// of mixed shapes it says what it chose and why.
#[test]
fn schema_infer_writes_a_pipeline_that_ingests_the_topic() {
    let s = Services::start().expect("services");
    let topic = unique_name("infer");
    let db = unique_name("inferred");
    s.kafka.create_topic(&topic, 2).expect("topic");
    let produced = produce(&s, &topic, 3_000, 8);
    let file = s.dir().join("inferred.yaml");
    let out = penstock(&[
        "schema",
        "infer",
        "--brokers",
        &s.kafka.bootstrap(),
        "--topic",
        &topic,
        "--samples",
        "500",
        "--clickhouse",
        &s.clickhouse.url(),
        "--database",
        &db,
        "--out",
        file.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("sampled 500 messages"), "{}", stderr(&out));
    let text = std::fs::read_to_string(&file).expect("inferred pipeline");
    for expected in [
        r#""event_id": { type: "UUID", required: true }"#,
        r#""amount": { type: "Decimal(9, 2)", required: true }"#,
        r#""event_time": { type: "DateTime('UTC')", required: true }"#,
        "timestamps with fractions of a second: DateTime (seconds) — this server has no DateTime64",
        "LowCardinality(String) on ClickHouse 19.1+",
    ] {
        assert!(text.contains(expected), "missing `{expected}` in:\n{text}");
    }
    let check = penstock(&["check", file.to_str().unwrap()]);
    assert!(check.status.success(), "{}\n{text}", stdout(&check));
    let run = penstock(&["run", file.to_str().unwrap(), "--until-caught-up"]);
    assert!(run.status.success(), "{}", stderr(&run));
    assert!(
        stdout(&run).contains(&format!("{} rows inserted, 0 dead-lettered", produced.count)),
        "{}\n{text}",
        stdout(&run)
    );

    // Mixed shapes: the choice is explained.
    let mixed = unique_name("mixed");
    s.kafka.create_topic(&mixed, 1).expect("topic");
    produce_raw(&s, &mixed, &[br#"{"v":1,"n":null}"#, br#"{"v":"one"}"#, br#"{"v":{"x":[1]},"n":2}"#, b"[1,2]"]);
    let out = penstock(&["schema", "infer", "--brokers", &s.kafka.bootstrap(), "--topic", &mixed]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("v: mixed shapes (1 numbers, 1 strings, 1 objects)"), "{text}");
    assert!(text.contains(r#""v": { type: "String", required: true, raw_json: true }"#), "{text}");
    assert!(!text.contains("v_x"), "an object seen where a value was is kept whole: {text}");
    assert!(text.contains("n: integers 2..2") && text.contains("missing or null in 2 of 3 messages"), "{text}");
    assert!(text.contains("1 sampled messages were not JSON objects"), "{text}");
}

/// `unknown_fields: add`: fields the schema does not list become Nullable columns while
/// the pipeline runs — earlier rows read NULL — and a restarted process keeps decoding
/// them.
#[test]
fn unknown_fields_become_columns_while_running() {
    let s = Services::start().expect("services");
    let topic = unique_name("unknown");
    let db = unique_name("grow");
    s.kafka.create_topic(&topic, 1).expect("topic");
    let event = |n: u32, extra: &str| {
        format!(
            r#"{{"event_id":"3c7d1004-4dce-48d2-9e13-8f3288a{n:05}","user_id":{n},"amount":1.50,"region":"eu-west-1","event_type":"view","event_time":"2026-11-21T05:10:00.123Z"{extra}}}"#
        )
        .into_bytes()
    };
    let first = [event(1, ""), event(2, r#","coupon":"X1","score":0.5"#), event(3, r#","coupon":null"#)];
    produce_raw(&s, &topic, &first.iter().map(Vec::as_slice).collect::<Vec<_>>());
    let pipeline = example_pipeline(&s, s.dir(), &topic, &db, 1000);
    let text = std::fs::read_to_string(&pipeline).unwrap() + "unknown_fields: add\n";
    std::fs::write(&pipeline, text).unwrap();
    let path = pipeline.to_str().unwrap();
    let out = penstock(&["run", path, "--until-caught-up"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("3 rows inserted, 0 dead-lettered"), "{}", stdout(&out));
    let t = format!("`{db}`.transactions");
    let ch = &s.clickhouse;
    let rows = ch.query(&format!("SELECT user_id, coupon, score FROM {t} ORDER BY user_id"));
    assert_eq!(rows, "1\t\\N\t\\N\n2\tX1\t0.5\n3\t\\N\t\\N\n");

    let second = [event(4, r#","coupon":"Y","flags":{"vip":true}"#), event(5, r#","n":7"#)];
    produce_raw(&s, &topic, &second.iter().map(Vec::as_slice).collect::<Vec<_>>());
    let out = penstock(&["run", path, "--until-caught-up"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let rows = ch.query(&format!("SELECT user_id, coupon, flags, n FROM {t} WHERE user_id >= 4 ORDER BY user_id"));
    assert_eq!(rows, "4\tY\t{\"vip\":true}\t\\N\n5\t\\N\t\\N\t7\n");
    let types = ch.query(&format!(
        "SELECT name, type FROM system.columns WHERE database = '{db}' AND table = 'transactions' \
         AND name IN ('coupon', 'score', 'flags', 'n') ORDER BY name"
    ));
    assert_eq!(
        types,
        "coupon\tNullable(String)\nflags\tNullable(String)\nn\tNullable(Int64)\nscore\tNullable(Float64)\n"
    );
    assert_eq!(ch.scalar::<u64>(&format!("SELECT count() FROM `{db}`.penstock_schema_changes")), 4);
}
