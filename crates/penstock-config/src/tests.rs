use super::*;
use crate::validate::SqlTerm;
use penstock_codec::{ColumnType, OnError, ValueSource};
use std::time::Duration;

const GOOD: &str = r#"
name: transactions
source:
  kafka:
    brokers: ${BROKERS}
    topics: [transactions]
    start: earliest
    properties: { fetch.wait.max.ms: "10" }
schema:
  event_id:   { type: UUID, required: true }
  user_id:    { type: UInt64, on_error: default }
  amount:     "Decimal(12,2)"
  region:     String
  event_time: "DateTime('UTC')"
  maybe:      { type: Nullable(UInt8), on_error: null }
  part:       { type: Int32, from: _partition }
  _offset:    UInt64
  inner:      { type: String, from: payload }
  ingest:     { type: DateTime, value: now }
sink:
  clickhouse:
    url: ${CH_URL:-http://127.0.0.1:8123/}
    database: ${DB:-default}
    table: transactions
    password: ${PASSWORD:-}
    batch: { max_rows: 1000, max_bytes: 8MiB, max_wait: 250ms }
"#;

fn env(name: &str) -> Option<String> {
    (name == "BROKERS").then(|| "127.0.0.1:9092".to_string())
}

fn err(text: &str) -> ConfigError {
    parse(text, "p.yaml", env).unwrap_err()
}

#[test]
fn good_file() {
    let p = parse(GOOD, "p.yaml", env).unwrap();
    assert_eq!(p.name, "transactions");
    assert_eq!(p.source.brokers, "127.0.0.1:9092");
    assert_eq!(p.source.group, "penstock-transactions");
    assert_eq!(p.source.properties, vec![("fetch.wait.max.ms".to_string(), "10".to_string())]);
    assert_eq!(p.sink.url, "http://127.0.0.1:8123");
    assert_eq!((p.sink.database.as_str(), p.sink.table.as_str()), ("default", "transactions"));
    assert_eq!(p.sink.password, None);
    assert_eq!(p.sink.batch.max_wait, Duration::from_millis(250));
    assert_eq!(p.sink.batch.max_bytes, 8 << 20);
    let cols: Vec<_> = p.fields.iter().map(|f| f.column.as_str()).collect();
    assert_eq!(
        cols,
        ["event_id", "user_id", "amount", "region", "event_time", "maybe", "part", "_offset", "inner", "ingest"]
    );
    assert!(p.fields[0].required);
    assert_eq!(p.fields[1].on_error, OnError::Default);
    assert_eq!(p.fields[2].ty, ColumnType::Decimal { precision: 12, scale: 2 });
    assert_eq!(p.fields[6].source, ValueSource::Partition);
    assert_eq!(p.fields[7].source, ValueSource::Offset);
    assert_eq!(p.fields[8].source, ValueSource::Json("payload".into()));
    assert_eq!(p.fields[9].source, ValueSource::Now);
    assert_eq!(p.delivery, Delivery::ExactlyOnce);
    assert_eq!(p.sink.ledger_table, "penstock_ledger");
    let p = parse(&format!("{GOOD}delivery: at_least_once\n"), "p.yaml", env).unwrap();
    assert_eq!(p.delivery, Delivery::AtLeastOnce);
}

#[test]
fn unknown_key_is_located() {
    let e = err(&GOOD.replace("required: true", "requird: true"));
    assert_eq!(e.line, Some(10));
    assert_eq!(e.path, "schema.event_id.requird");
    assert!(e.message.contains("unknown field `requird`"), "{e}");
    let shown = e.to_string();
    assert!(shown.starts_with("p.yaml:10:"), "{shown}");
    assert!(shown.contains("requird: true"), "{shown}");
}

#[test]
fn bad_type_is_located() {
    let e = err(&GOOD.replace("UInt64, on_error", "UInt65, on_error"));
    assert_eq!(e.line, Some(11));
    assert_eq!(e.path, "schema.user_id.type");
    assert!(e.message.contains("`UInt65` is not supported"), "{e}");
}

#[test]
fn bad_duration_and_size() {
    let e = err(&GOOD.replace("max_wait: 250ms", "max_wait: 250"));
    assert_eq!(e.path, "sink.clickhouse.batch.max_wait");
    assert!(e.message.contains("needs a unit"), "{e}");
    let e = err(&GOOD.replace("8MiB", "8 parsecs"));
    assert!(e.message.contains("unknown size unit"), "{e}");
}

#[test]
fn missing_env_var() {
    let e = parse(GOOD, "p.yaml", |_| None).unwrap_err();
    assert_eq!((e.line, e.column), (Some(5), Some(14)));
    assert!(e.message.contains("`BROKERS` is not set"), "{e}");
}

#[test]
fn cross_field_rules() {
    let e = err(&GOOD.replace("{ type: Nullable(UInt8), on_error: null }", "{ type: UInt8, on_error: null }"));
    assert_eq!(e.path, "schema.maybe");
    assert_eq!(e.line, Some(15));
    assert!(e.message.contains("needs a Nullable column"), "{e}");
    let e = err(&GOOD.replace("{ type: Int32, from: _partition }", "{ type: String, from: _partition }"));
    assert_eq!(e.path, "schema.part");
    assert!(e.message.contains("integer"), "{e}");
    let e = err(&GOOD.replace("topics: [transactions]", "topics: []"));
    assert_eq!(e.path, "source.kafka.topics");
    let e = err(&GOOD.replace("fetch.wait.max.ms", "enable.auto.commit"));
    assert!(e.message.contains("managed by Penstock"), "{e}");
    let e = err(&GOOD.replace("max_rows: 1000", "max_rows: 0"));
    assert_eq!(e.path, "sink.clickhouse.batch.max_rows");
    let e = err(&GOOD.replace("${CH_URL:-http://127.0.0.1:8123/}", "127.0.0.1:8123"));
    assert_eq!(e.path, "sink.clickhouse.url");
    let e = err(&GOOD.replace("name: transactions", "name: \"has space\""));
    assert_eq!(e.path, "name");
    let e = err(&GOOD.replace("{ type: DateTime, value: now }", "{ type: DateTime, value: now, from: x }"));
    assert!(e.message.contains("either `from` or `value`"), "{e}");
}

#[test]
fn duplicate_column_and_missing_sections() {
    let e = err(&GOOD.replace("  region:     String\n", "  region:     String\n  region: UInt8\n"));
    assert!(e.message.contains("duplicate") && e.message.contains("region"), "{e}");
    assert_eq!((e.line, e.path.as_str()), (Some(14), "schema"));
    let e = err("name: x\n");
    assert!(e.message.contains("missing field"), "{e}");
    let e = err("name: [x\n");
    assert!(e.line.is_some(), "{e}");
}

#[test]
fn table_with_database_prefix() {
    let p = parse(
        &GOOD.replace("    database: ${DB:-default}\n", "").replace("table: transactions", "table: analytics.tx"),
        "p.yaml",
        env,
    )
    .unwrap();
    assert_eq!((p.sink.database.as_str(), p.sink.table.as_str()), ("analytics", "tx"));
}

#[test]
fn secrets_are_not_shown() {
    let p = parse(GOOD, "p.yaml", |n| match n {
        "BROKERS" => Some("b:1".into()),
        "PASSWORD" => Some("hunter2".into()),
        _ => None,
    })
    .unwrap();
    assert_eq!(p.sink.password.as_ref().map(Secret::expose), Some("hunter2"));
    assert!(!format!("{p:?}").contains("hunter2"));
}

#[test]
fn backoff_doubles_and_caps() {
    let r = RetryPolicy { initial_backoff: Duration::from_millis(100), max_backoff: Duration::from_secs(1) };
    assert_eq!(r.backoff(0), Duration::from_millis(100));
    assert_eq!(r.backoff(2), Duration::from_millis(400));
    assert_eq!(r.backoff(40), Duration::from_secs(1));
}

#[test]
fn dead_letter_table_defaults_beside_the_table_and_can_be_named() {
    let p = parse(GOOD, "p.yaml", env).unwrap();
    assert_eq!(
        (p.sink.dead_letter_database.as_str(), p.sink.dead_letter_table.as_str()),
        ("default", "transactions_dead_letter")
    );
    let named = format!("{GOOD}dead_letter: {{ table: quarantine.bad_rows }}\n");
    let p = parse(&named, "p.yaml", env).unwrap();
    assert_eq!((p.sink.dead_letter_database.as_str(), p.sink.dead_letter_table.as_str()), ("quarantine", "bad_rows"));
    let same = format!("{GOOD}dead_letter:\n  table: transactions\n");
    let e = err(&same);
    assert_eq!((e.path.as_str(), e.line), ("dead_letter.table", Some(28)), "{e}");
    assert!(e.message.contains("must differ"), "{e}");
    let e = err(&format!("{GOOD}dead_letter: {{ tabel: x }}\n"));
    assert!(e.to_string().contains("tabel"), "{e}");
}

#[test]
fn field_options_paths_defaults_units_and_rest() {
    let text = GOOD.replace(
        "  ingest:     { type: DateTime, value: now }\n",
        &[
            "  ingest:     { type: DateTime, value: now }",
            "  city:       { type: String, from: address.city, default: unknown }",
            "  first_tag:  { type: String, from: \"tags[0]\" }",
            "  dotted:     { type: String, from: \"['a.b']\" }",
            "  tags:       { type: \"Array(String)\", default: [x, \"y z\"] }",
            "  attrs:      { type: String, raw_json: true }",
            "  ms:         { type: \"DateTime64(3)\", unit: ms }",
            "  everything_else: { type: String, value: rest }",
            "",
        ]
        .join("\n"),
    );
    let p = parse(&format!("{text}format: json_array\n"), "p.yaml", env).unwrap();
    assert!(p.arrays_as_rows);
    let by = |c: &str| p.fields.iter().find(|f| f.column == c).unwrap().clone();
    assert_eq!(by("city").source, ValueSource::Path(penstock_codec::JsonPath::parse("address.city").unwrap()));
    assert_eq!(by("city").options.default.as_deref(), Some("\"unknown\""));
    assert!(matches!(by("first_tag").source, ValueSource::Path(_)));
    assert_eq!(by("dotted").source, ValueSource::Json("a.b".into()));
    assert_eq!(by("tags").options.default.as_deref(), Some(r#"["x","y z"]"#));
    assert!(by("attrs").options.raw_json);
    assert_eq!(by("ms").options.epoch_unit, penstock_codec::EpochUnit::Millis);
    assert_eq!(by("everything_else").source, ValueSource::Rest);
    assert!(!parse(GOOD, "p.yaml", env).unwrap().arrays_as_rows);

    let bad = |field: &str| err(&GOOD.replace("  region:     String\n", &format!("  region:     {field}\n")));
    let e = bad("{ type: UInt8, default: 300 }");
    assert!(e.message.contains("does not fit UInt8") && e.path == "schema.region", "{e}");
    let e = bad("{ type: UInt8, unit: ms }");
    assert!(e.message.contains("`unit` applies to DateTime"), "{e}");
    let e = bad("{ type: String, from: \"a..b\" }");
    assert!(e.message.contains("invalid JSON path"), "{e}");
    let e = bad("{ type: UInt8, value: rest }");
    assert!(e.message.contains("String column"), "{e}");
    let e = bad("{ type: String, unit: hours }");
    assert!(e.to_string().contains("unit"), "{e}");
}

#[test]
fn create_section_is_validated_and_terms_classified() {
    let with_create = |create: &str| {
        GOOD.replace(
            "    batch: { max_rows: 1000, max_bytes: 8MiB, max_wait: 250ms }\n",
            &format!("    batch: {{ max_rows: 1000, max_bytes: 8MiB, max_wait: 250ms }}\n    create: {create}\n"),
        )
    };
    let p = parse(&with_create("{}"), "p.yaml", env).unwrap();
    let c = p.sink.create.unwrap();
    assert_eq!((c.engine.as_str(), c.order_by.len()), ("MergeTree", 0));
    assert!(p.sink.evolve_add, "create implies evolve: add");
    assert!(!parse(GOOD, "p.yaml", env).unwrap().sink.evolve_add);

    let text = with_create(
        "{ engine: \"ReplicatedReplacingMergeTree('/ch/{shard}/t', '{replica}', event_time)\", \
         order_by: [region, \"toStartOfHour(event_time)\"], primary_key: [region], \
         partition_by: toYYYYMM(event_time), ttl: event_time + INTERVAL 30 DAY, \
         settings: { index_granularity: 1024, storage_policy: hot }, on_cluster: main }",
    )
    .replace("  region:     String\n", "  region:     { type: String, codec: ZSTD(3) }\n");
    let c = parse(&text, "p.yaml", env).unwrap().sink.create.unwrap();
    assert_eq!(c.engine, "ReplicatedReplacingMergeTree");
    assert_eq!(
        c.engine_args,
        [
            SqlTerm::Expr("'/ch/{shard}/t'".into()),
            SqlTerm::Expr("'{replica}'".into()),
            SqlTerm::Column("event_time".into())
        ]
    );
    assert_eq!(c.order_by, [SqlTerm::Column("region".into()), SqlTerm::Expr("toStartOfHour(event_time)".into())]);
    assert_eq!(c.settings, [("index_granularity".into(), "1024".into()), ("storage_policy".into(), "hot".into())]);
    assert_eq!(c.codecs, [("region".into(), "ZSTD(3)".into())]);
    assert_eq!(c.on_cluster.as_deref(), Some("main"));

    let e = err(&with_create("{ engine: Log }"));
    assert!(e.message.contains("not one Penstock creates"), "{e}");
    let e = err(&with_create("{ order_by: [region, user_id], primary_key: [user_id] }"));
    assert!(e.message.contains("prefix of `order_by`"), "{e}");
    let e = err(&with_create("{ engine: MergeTree, sorting: [x] }"));
    assert!(e.to_string().contains("sorting"), "{e}");
}

#[test]
fn freshness_needs_a_time_column() {
    let p = parse(&format!("{GOOD}freshness: {{ event_time: event_time }}\n"), "p.yaml", env).unwrap();
    assert_eq!(p.event_time_column.as_deref(), Some("event_time"));
    let e = err(&format!("{GOOD}freshness: {{ event_time: region }}\n"));
    assert!(e.path == "freshness.event_time" && e.message.contains("not a DateTime"), "{e}");
}

#[test]
fn http_settings_from_the_file() {
    let p =
        parse(&format!("{GOOD}http: {{ address: \"127.0.0.1:9999\", token: \"t0ken-x\" }}\n"), "p.yaml", env).unwrap();
    assert_eq!(p.http_address.as_deref(), Some("127.0.0.1:9999"));
    assert_eq!(p.http_token.as_ref().map(|t| t.expose()), Some("t0ken-x"));
    assert!(!format!("{p:?}").contains("t0ken-x"), "the token is never shown");
    assert_eq!(parse(GOOD, "p.yaml", env).unwrap().http_address, None);
}

/// A ClickHouse → Kafka file, with the environment the shipped example reads.
fn publication(text: &str) -> Result<crate::Publication, ConfigError> {
    let env = |name: &str| match name {
        "PENSTOCK_CLICKHOUSE_URL" => Some("http://127.0.0.1:8123".to_string()),
        "PENSTOCK_KAFKA_BROKERS" => Some("127.0.0.1:9092".to_string()),
        _ => None,
    };
    match parse_job(text, "out.yaml", env)? {
        Job::Publish(p) => Ok(p),
        other => panic!("not a publication: {other:?}"),
    }
}

#[test]
fn shipped_clickhouse_to_kafka_example() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/clickhouse-to-kafka.yaml");
    let p = publication(&std::fs::read_to_string(path).unwrap()).unwrap();
    assert_eq!(p.name, "transactions-out");
    assert_eq!(p.source.relation, crate::Relation::Table("transactions".into()));
    assert_eq!(p.source.database, "default");
    assert_eq!(p.source.cursor, ["ingest_time", "_partition", "_offset"]);
    assert_eq!(p.source.settle, Duration::from_secs(2));
    assert_eq!(p.sink.topic, "transactions-out");
    assert_eq!(p.sink.key, ["event_id"]);
    assert_eq!(p.sink.create.as_ref().map(|c| c.partitions), Some(4));
    // The Kafka → ClickHouse entry point refuses it by name.
    let e = parse(&std::fs::read_to_string(path).unwrap(), "out.yaml", |n| match n {
        "PENSTOCK_CLICKHOUSE_URL" => Some("http://ch:8123".into()),
        "PENSTOCK_KAFKA_BROKERS" => Some("b:1".into()),
        _ => None,
    })
    .unwrap_err();
    assert!(e.message.contains("ClickHouse → Kafka"), "{e}");
}

const PUBLISH: &str = r#"
name: out
source:
  clickhouse:
    url: http://127.0.0.1:8123
    table: db.events
    cursor: { columns: [ts, id] }
sink:
  kafka: { brokers: "127.0.0.1:9092", topic: events-out, key: [region, id] }
"#;

#[test]
fn publication_defaults_and_refusals() {
    let p = publication(PUBLISH).unwrap();
    assert_eq!(p.source.database, "db");
    assert_eq!(p.source.settle, Duration::from_secs(10));
    assert_eq!(p.source.batch_rows, 100_000);
    assert_eq!(p.source.late_check, Some(Duration::from_secs(30)));
    assert_eq!(p.sink.key, ["region", "id"]);
    let refused = |from: &str, to: &str, path: &str, words: &str| {
        let e = publication(&PUBLISH.replace(from, to)).unwrap_err();
        assert_eq!(e.path, path, "{e}");
        assert!(e.message.contains(words), "{e}");
    };
    refused("table: db.events", "table: db.events\n    query: SELECT 1", "source.clickhouse.table", "not both");
    refused("table: db.events", "query: DROP TABLE x", "source.clickhouse.query", "SELECT");
    refused("columns: [ts, id]", "columns: []", "source.clickhouse.cursor.columns", "cursor columns");
    refused("columns: [ts, id]", "columns: [ts, ts]", "source.clickhouse.cursor.columns[1]", "twice");
    refused("key: [region, id]", "key: id, properties: { acks: '1' }", "sink.kafka.properties.acks", "managed");
    refused("topic: events-out", "topic: ''", "sink.kafka.topic", "empty");
    let e = publication(&format!("{PUBLISH}schema: {{ a: UInt8 }}\n")).unwrap_err();
    assert!(e.message.contains("remove `schema`"), "{e}");
    let e = publication(&format!("{PUBLISH}delivery: at_least_once\n")).unwrap_err();
    assert!(e.message.contains("always exactly-once"), "{e}");
    let e = publication(&PUBLISH.replace("kafka: {", "clickhouse: { url: 'http://x', table: t } #")).unwrap_err();
    assert!(e.message.contains("Kafka sink"), "{e}");
}

const RELAY: &str = "name: k\nsource: { kafka: { brokers: b, topics: [t] } }\nschema: { a: UInt8, id: String }\nsink: { kafka: { brokers: b, topic: u, key: id } }\n";

fn relay(text: &str) -> Result<crate::Relay, ConfigError> {
    match parse_job(text, "k.yaml", |_| None)? {
        Job::Relay(r) => Ok(r),
        other => panic!("not a relay: {other:?}"),
    }
}

#[test]
fn kafka_to_kafka_is_a_relay_with_a_dead_letter_topic() {
    let r = relay(RELAY).unwrap();
    assert_eq!((r.sink.topic.as_str(), r.dead_letter_topic.as_str()), ("u", "u-dead-letter"));
    assert_eq!(r.source.group, "penstock-k");
    assert_eq!(r.fields.len(), 2);
    let r = relay(&format!("{RELAY}dead_letter: {{ topic: bad }}\n")).unwrap();
    assert_eq!(r.dead_letter_topic, "bad");
    let e = relay(&RELAY.replace("key: id", "key: nope")).unwrap_err();
    assert!(e.message.contains("key column `nope` is not in the schema (it has: a, id)"), "{e}");
    let e = relay(&RELAY.replace("topic: u", "topic: t")).unwrap_err();
    assert!(e.message.contains("must not be one of the source topics"), "{e}");
    let e = relay(&format!("{RELAY}dead_letter: {{ topic: u }}\n")).unwrap_err();
    assert!(e.message.contains("must differ from the output topic"), "{e}");
    let e = relay(&format!("{RELAY}dead_letter: {{ table: x }}\n")).unwrap_err();
    assert!(e.message.contains("dead-letters into a topic"), "{e}");
    let e = relay(&format!("{RELAY}delivery: at_least_once\n")).unwrap_err();
    assert!(e.message.contains("always exactly-once"), "{e}");
    let e = relay(&format!("{RELAY}unknown_fields: add\n")).unwrap_err();
    assert!(e.message.contains("value: rest"), "{e}");
    let e =
        relay("name: k\nsource: { kafka: { brokers: b, topics: [t] } }\nsink: { kafka: { brokers: b, topic: u } }\n")
            .unwrap_err();
    assert!(e.message.contains("needs a `schema:`"), "{e}");
    let e =
        relay(&RELAY.replace("brokers: b, topic: u", "brokers: b, topic: u, properties: { acks: '1' }")).unwrap_err();
    assert!(e.message.contains("managed by Penstock"), "{e}");
    // A ClickHouse sink refuses a dead-letter topic.
    let e = err("name: k\nsource: { kafka: { brokers: b, topics: [t] } }\nschema: { a: UInt8 }\nsink: { clickhouse: { url: 'http://x', table: t } }\ndead_letter: { topic: d }\n");
    assert!(e.message.contains("dead-letters into a table"), "{e}");
}

#[test]
fn block_cursor_is_the_block_columns_without_settle_and_needs_a_table() {
    let p = publication(&PUBLISH.replace("cursor: { columns: [ts, id] }", "cursor: block")).unwrap();
    assert!(p.source.block);
    assert_eq!(p.source.cursor, ["_block_number", "_block_offset"]);
    assert_eq!(p.source.settle, Duration::ZERO);
    let e = publication(
        &PUBLISH
            .replace("cursor: { columns: [ts, id] }", "cursor: block")
            .replace("table: db.events", "query: SELECT * FROM db.events"),
    )
    .unwrap_err();
    assert!(e.message.contains("`cursor: block` reads a table's block numbers"), "{e}");
    assert!(publication(&PUBLISH.replace("cursor: { columns: [ts, id] }", "cursor: blocks")).is_err());
}

#[test]
fn computed_columns_and_filters_are_checked_where_they_are_written() {
    let with = |schema_extra: &str, transforms: &str| {
        GOOD.replace(
            "  ingest:     { type: DateTime, value: now }\n",
            &format!("  ingest:     {{ type: DateTime, value: now }}\n{schema_extra}"),
        ) + transforms
    };
    let good = with(
        "  cents:      { type: UInt64, expr: \"toUInt64(round(amount * 100))\" }\n  big:        { type: UInt8, expr: \"cents > 1000\" }\n",
        "transforms:\n  - filter: \"region != 'eu-west-1' AND big\"\n",
    );
    let p = parse(&good, "p.yaml", env).unwrap();
    assert_eq!(p.fields[10].source, ValueSource::Computed);
    let computed: Vec<_> = p.stages.computed.iter().map(|(i, n, e)| (*i, n.as_str(), e.ty().to_string())).collect();
    assert_eq!(computed, vec![(10, "cents", "UInt64".to_string()), (11, "big", "UInt8".to_string())]);
    assert_eq!(p.stages.transforms.len(), 1);
    assert_eq!(p.stages.build_stateless().kinds(), vec!["computed columns", "filter"]);

    // A computed column sees only the columns before it.
    let e = err(&with("  a: { type: UInt64, expr: \"b + 1\" }\n  b: UInt64\n", ""));
    assert_eq!((e.line, e.path.as_str()), (Some(20), "schema.a"), "{e}");
    assert!(e.message.contains("unknown column `b`"), "{e}");
    // An unknown function names the ones that exist, and where it is in the expression.
    let e = err(&with("", "transforms:\n  - filter: \"user_id = 1 OR toFoo(region) = 1\"\n"));
    assert_eq!((e.line, e.path.as_str()), (Some(28), "transforms[0].filter"), "{e}");
    assert!(e.message.contains("unknown function toFoo") && e.message.contains("toYYYYMMDD"), "{e}");
    assert!(e.message.contains("column 16 of the expression"), "{e}");
    // Types are checked: a String is not a condition, a String does not go into a UInt64.
    let e = err(&with("", "transforms:\n  - filter: \"region\"\n"));
    assert!(e.message.contains("must be a condition"), "{e}");
    let e = err(&with("  n: { type: UInt64, expr: \"region\" }\n", ""));
    assert!(e.message.contains("does not convert to UInt64"), "{e}");
    // A Nullable expression needs a Nullable column.
    let e = err(&with("  n: { type: UInt8, expr: \"maybe + 1\" }\n", ""));
    assert!(e.message.contains("can be NULL"), "{e}");
    // Syntax errors say so.
    let e = err(&with("", "transforms:\n  - filter: \"user_id >\"\n"));
    assert!(e.message.contains("expression `user_id >`"), "{e}");
    // `expr` excludes the message-field options.
    let e = err(&with("  n: { type: UInt64, expr: \"user_id\", from: x }\n", ""));
    assert!(e.message.contains("one of `from`, `value` and `expr`"), "{e}");
    let e = err(&with("  n: { type: UInt64, expr: \"user_id\", required: true }\n", ""));
    assert!(e.message.contains("not computed columns"), "{e}");
    let e = err(&with("", "transforms:\n  - fliter: \"1\"\n"));
    assert!(e.message.contains("fliter"), "{e}");
}

#[test]
fn dedup_is_checked_where_it_is_written_and_needs_a_state_directory() {
    let with = |transforms: &str, state: &str| format!("{GOOD}transforms:\n{transforms}{state}");
    let state = "state: { dir: /var/lib/penstock }\n";
    let p = parse(&with("  - dedup: { key: event_id, window: 1h }\n", state), "p.yaml", env).unwrap();
    let dedups: Vec<_> = p.stages.dedups().map(|(n, s)| (n.to_string(), s.clone())).collect();
    assert_eq!(dedups.len(), 1);
    assert_eq!(dedups[0].0, "dedup");
    assert_eq!(dedups[0].1.keys, vec![(0, "event_id".to_string())]);
    assert_eq!((dedups[0].1.window_ms, &dedups[0].1.time), (3_600_000, &penstock_stages::dedup::DedupTime::Kafka));
    let cfg = p.state.clone().unwrap();
    assert_eq!((cfg.dir.to_str().unwrap(), cfg.memory, cfg.changelog), ("/var/lib/penstock", 64 << 20, true));
    // Two keys and an event-time column; a second dedup gets its own label.
    let two = "  - dedup: { key: [user_id, region], window: 10m, time: event_time }\n  - dedup: { key: event_id, window: 1d }\n";
    let p = parse(&with(two, state), "p.yaml", env).unwrap();
    let labels: Vec<&str> = p.stages.dedups().map(|(n, _)| n).collect();
    assert_eq!(labels, vec!["dedup", "dedup-2"]);
    assert_eq!(p.stages.dedups().next().unwrap().1.time, penstock_stages::dedup::DedupTime::Seconds(4));

    let e = err(&with("  - dedup: { key: order_id, window: 1h }\n", state));
    assert_eq!((e.line, e.path.as_str()), (Some(28), "transforms[0].dedup"), "{e}");
    assert!(e.message.contains("key `order_id` is not a column") && e.message.contains("`event_id`"), "{e}");
    let e = err(&with("  - dedup: { key: event_id, window: 1h, time: region }\n", state));
    assert!(e.message.contains("must be `_timestamp` or a DateTime/DateTime64 column, but `region` is String"), "{e}");
    let e = err(&with("  - dedup: { key: event_id, window: 1h, time: when }\n", state));
    assert!(e.message.contains("time `when` is not a column"), "{e}");
    let e = err(&with("  - dedup: { key: event_id, window: forever }\n", state));
    assert!(e.message.contains("not a duration"), "{e}");
    let p =
        parse(&with("  - dedup: { key: event_id, window: 1h, repartition: true }\n", state), "p.yaml", env).unwrap();
    assert_eq!(
        p.stages.repartition().map(|(n, d)| (n, d.repartition, d.repartition_lease)),
        Some(("dedup", true, true))
    );
    let unleased = "  - dedup: { key: event_id, window: 1h, repartition: true, repartition_lease: none }\n";
    let p = parse(&with(unleased, state), "p.yaml", env).unwrap();
    assert_eq!(p.stages.repartition().map(|(_, d)| d.repartition_lease), Some(false));
    let e = err(&with("  - dedup: { key: event_id, window: 1h, repartition_lease: none }\n", state));
    assert!(e.message.contains("`repartition_lease` applies only with `repartition: true`"), "{e}");
    let two = "  - dedup: { key: event_id, window: 1h, repartition: true }\n  - dedup: { key: region, window: 1h, repartition: true }\n";
    let e = err(&with(two, state));
    assert!(e.message.contains("only one dedup can repartition"), "{e}");
    let arrays =
        format!("format: json_array\n{}", with("  - dedup: { key: event_id, window: 1h, repartition: true }\n", state));
    let e = err(&arrays);
    assert!(e.path == "format" && e.message.contains("must be one row"), "{e}");
    let e = err(&with("  - dedup: { key: event_id, window: 1h }\n", ""));
    assert_eq!(e.path, "state", "{e}");
    assert!(e.message.contains("add `state: { dir:"), "{e}");
    let e = err(&with("  - dedup: { key: event_id, window: 1h }\n", "state: { dir: /x, memory: 10KiB }\n"));
    assert!(e.message.contains("at least 1MiB"), "{e}");
}
