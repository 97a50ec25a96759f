//! The messy-input corpus on the real broker and server: every message lands either as
//! a row (with the value checked) or as a dead letter (with the reason checked), and
//! rows + dead letters = messages, exactly.

use crate::harness::*;
use penstock_testkit::{unique_name, Services};

/// Where a message must end up.
enum Expect {
    /// A row whose `probe` expression (see the query below) reads this text.
    Row(&'static str),
    /// A dead letter of this kind.
    Dead(&'static str),
}
use Expect::{Dead, Row};

const TABLE: &str = "(id UInt32, i8 Int8, i16 Int16, i32 Int32, i64 Int64, u8 UInt8, u16 UInt16, u32 UInt32, \
    u64 UInt64, f64 Float64, dec Decimal(9, 2), s String, t DateTime('UTC'), note Nullable(String), _partition Int32, _offset Int64) \
    ENGINE = MergeTree ORDER BY _offset";

const SCHEMA: &str = r#"
  id:    { type: UInt32, required: true }
  i8:    Int8
  i16:   Int16
  i32:   Int32
  i64:   Int64
  u8:    UInt8
  u16:   UInt16
  u32:   UInt32
  u64:   UInt64
  f64:   Float64
  dec:   Decimal(9, 2)
  s:     String
  t:     DateTime('UTC')
  note:  { type: Nullable(String), on_error: null }
  _partition: Int32
  _offset: Int64
"#;

/// What a row's probe shows: every column, in one line.
const PROBE: &str = "concat(toString(id), '|', toString(i8), '|', toString(i16), '|', toString(i32), '|', \
    toString(i64), '|', toString(u8), '|', toString(u16), '|', toString(u32), '|', toString(u64), '|', \
    toString(f64), '|', toString(dec), '|', s, '|', toString(toUnixTimestamp(t)), '|', ifNull(note, 'NULL'))";

fn corpus() -> Vec<(Vec<u8>, Expect)> {
    let big = format!(r#"{{"id":1,"s":"{}"}}"#, "a".repeat(5000));
    let deep = format!(r#"{{"id":1,"x":{}1{}}}"#, "[".repeat(20), "]".repeat(20));
    let m = |s: &str| s.as_bytes().to_vec();
    vec![
        // Not an object at all.
        (m(""), Dead("invalid_json")),
        (m("null"), Dead("invalid_json")),
        (m("[1,2]"), Dead("invalid_json")),
        (m("42"), Dead("invalid_json")),
        (m(r#""a string""#), Dead("invalid_json")),
        (m("{not json}"), Dead("invalid_json")),
        (m(r#"{"id":1,"s":"truncat"#), Dead("invalid_json")),
        (b"{\"id\":1,\"s\":\"\xff\xfe\"}".to_vec(), Dead("not_utf8")),
        (m(r#"{"id":1,"s":"\ud800"}"#), Dead("invalid_json")),
        (m(r#"{"id":1,"s":"\udc00\ud800"}"#), Dead("invalid_json")),
        (m(&deep), Dead("too_deep")),
        (m(&big), Dead("too_large")),
        (m(r#"{"id":1,"f64":NaN}"#), Dead("invalid_json")),
        (m(r#"{"id":1,"f64":Infinity}"#), Dead("invalid_json")),
        (m(r#"{"id":1,"dec":"NaN"}"#), Dead("wrong_type")),
        (m(r#"{"id":1,"i64":"inf"}"#), Dead("wrong_type")),
        // Accepted forms.
        (b"\xef\xbb\xbf{\"id\":2}".to_vec(), Row("2|0|0|0|0|0|0|0|0|0|0.00||0|NULL")),
        (m(r#"{"id":3,"id":4}"#), Row("4|0|0|0|0|0|0|0|0|0|0.00||0|NULL")),
        (m(r#"{"id":5,"extra":{"deep":[1,2,{"x":null}]},"more":true}"#), Row("5|0|0|0|0|0|0|0|0|0|0.00||0|NULL")),
        (
            m(r#"{"id":"6","i8":"-128","u64":"18446744073709551615","f64":"2.5","dec":"1234567.89","s":"h\u00e9\n"}"#),
            Row("6|-128|0|0|0|0|0|0|18446744073709551615|2.5|1234567.89|hé\n|0|NULL"),
        ),
        (
            m(
                r#"{"id":7,"i8":127,"i16":-32768,"i32":2147483647,"i64":-9223372036854775808,"u8":255,"u16":65535,"u32":4294967295,"u64":18446744073709551615}"#,
            ),
            Row(
                "7|127|-32768|2147483647|-9223372036854775808|255|65535|4294967295|18446744073709551615|0|0.00||0|NULL",
            ),
        ),
        (m(r#"{"id":8,"dec":12.345e1,"f64":-1.5e-3}"#), Row("8|0|0|0|0|0|0|0|0|-0.0015|123.45||0|NULL")),
        // A String column keeps a non-string value as its JSON text; booleans are 1/0;
        // extra decimal digits are cut as ClickHouse's own parser cuts them.
        (m(r#"{"id":9,"note":[1]}"#), Row("9|0|0|0|0|0|0|0|0|0|0.00||0|[1]")),
        (m(r#"{"id":17,"s":{"a":1}}"#), Row(r#"17|0|0|0|0|0|0|0|0|0|0.00|{"a":1}|0|NULL"#)),
        (m(r#"{"id":18,"u8":true}"#), Row("18|0|0|0|0|1|0|0|0|0|0.00||0|NULL")),
        (m(r#"{"id":19,"dec":1.005}"#), Row("19|0|0|0|0|0|0|0|0|0|1.00||0|NULL")),
        // Every integer width overflowed by one.
        (m(r#"{"id":1,"i8":128}"#), Dead("out_of_range")),
        (m(r#"{"id":1,"i8":-129}"#), Dead("out_of_range")),
        (m(r#"{"id":1,"i16":32768}"#), Dead("out_of_range")),
        (m(r#"{"id":1,"i32":-2147483649}"#), Dead("out_of_range")),
        (m(r#"{"id":1,"i64":9223372036854775808}"#), Dead("out_of_range")),
        (m(r#"{"id":1,"u8":256}"#), Dead("out_of_range")),
        (m(r#"{"id":1,"u8":-1}"#), Dead("out_of_range")),
        (m(r#"{"id":1,"u16":65536}"#), Dead("out_of_range")),
        (m(r#"{"id":1,"u32":4294967296}"#), Dead("out_of_range")),
        (m(r#"{"id":1,"u64":18446744073709551616}"#), Dead("out_of_range")),
        (m(r#"{"id":4294967296}"#), Dead("out_of_range")),
        (m(r#"{"id":1,"dec":10000000.00}"#), Dead("out_of_range")),
        // Wrong types and missing values.
        (m(r#"{"id":1,"u8":"abc"}"#), Dead("wrong_type")),
        (m(r#"{"id":1,"u8":[1]}"#), Dead("wrong_type")),
        (m(r#"{"id":1,"i32":{"a":1}}"#), Dead("wrong_type")),
        (m(r#"{"id":1.5}"#), Dead("wrong_type")),
        (m(r#"{"u8":1}"#), Dead("missing_field")),
        (m(r#"{"id":null}"#), Dead("null_value")),
        // Timestamps in every supported form, and invalid ones.
        (m(r#"{"id":10,"t":"2026-11-21T05:10:00Z"}"#), Row("10|0|0|0|0|0|0|0|0|0|0.00||1795237800|NULL")),
        (m(r#"{"id":11,"t":"2026-11-21T05:10:00.123456789Z"}"#), Row("11|0|0|0|0|0|0|0|0|0|0.00||1795237800|NULL")),
        (m(r#"{"id":12,"t":"2026-11-21T10:40:00+05:30"}"#), Row("12|0|0|0|0|0|0|0|0|0|0.00||1795237800|NULL")),
        (m(r#"{"id":13,"t":"2026-11-21 05:10:00"}"#), Row("13|0|0|0|0|0|0|0|0|0|0.00||1795237800|NULL")),
        (m(r#"{"id":14,"t":"2026-11-21 05:10:00.250"}"#), Row("14|0|0|0|0|0|0|0|0|0|0.00||1795237800|NULL")),
        (m(r#"{"id":15,"t":1795237800}"#), Row("15|0|0|0|0|0|0|0|0|0|0.00||1795237800|NULL")),
        (m(r#"{"id":16,"t":"2026-11-21T00:10:00-05:00"}"#), Row("16|0|0|0|0|0|0|0|0|0|0.00||1795237800|NULL")),
        (m(r#"{"id":1,"t":"2026-13-01T00:00:00Z"}"#), Dead("invalid_value")),
        (m(r#"{"id":1,"t":"2026-02-30 00:00:00"}"#), Dead("invalid_value")),
        (m(r#"{"id":1,"t":"yesterday"}"#), Dead("invalid_value")),
        (m(r#"{"id":1,"t":"2026-11-21T05:10:00+25:00"}"#), Dead("invalid_value")),
        (m(r#"{"id":1,"t":true}"#), Dead("wrong_type")),
    ]
}

#[test]
fn messy_messages_land_as_rows_or_dead_letters_with_the_right_reason() {
    let s = Services::start().expect("services");
    let topic = unique_name("corpus");
    let db = unique_name("db");
    s.kafka.create_topic(&topic, 1).expect("topic");
    let ch = &s.clickhouse;
    ch.query(&format!("CREATE DATABASE `{db}`"));
    ch.query(&format!("CREATE TABLE `{db}`.corpus {TABLE}"));
    let cases = corpus();
    let payloads: Vec<&[u8]> = cases.iter().map(|(p, _)| p.as_slice()).collect();
    produce_raw(&s, &topic, &payloads);

    let pipeline = s.dir().join("corpus.yaml");
    std::fs::write(
        &pipeline,
        format!(
            "name: corpus\nsource:\n  kafka:\n    brokers: {}\n    topics: [{topic}]\n    start: earliest\n\
             limits: {{ max_message_bytes: 4KiB, max_depth: 8 }}\nschema:{SCHEMA}sink:\n  clickhouse:\n    url: {}\n\
             \x20   table: {db}.corpus\n",
            s.kafka.bootstrap(),
            ch.url()
        ),
    )
    .expect("pipeline file");
    let out = penstock(&["run", pipeline.to_str().unwrap(), "--until-caught-up"]);
    assert!(out.status.success(), "{}", stderr(&out));

    let rows = ch.query(&format!("SELECT _offset, {PROBE} FROM `{db}`.corpus ORDER BY _offset FORMAT TabSeparated"));
    let dead = ch.query(&format!(
        "SELECT `offset`, error_kind, error_message, length(raw) FROM `{db}`.corpus_dead_letter ORDER BY `offset` \
         FORMAT TabSeparated"
    ));
    let row_at = |offset: usize| {
        rows.lines().find_map(|l| l.split_once('\t').filter(|(o, _)| o.parse() == Ok(offset)).map(|(_, v)| v))
    };
    let dead_at =
        |offset: usize| dead.lines().map(|l| l.split('\t').collect::<Vec<_>>()).find(|f| f[0].parse() == Ok(offset));
    let mut wrong = Vec::new();
    for (offset, (payload, expect)) in cases.iter().enumerate() {
        let shown = String::from_utf8_lossy(&payload[..payload.len().min(80)]).into_owned();
        match (expect, row_at(offset), dead_at(offset)) {
            (Row(want), Some(got), None) if got.replace("\\n", "\n") == *want => {}
            (Dead(kind), None, Some(d)) if d[1] == *kind && !d[2].is_empty() && d[3] == payload.len().to_string() => {}
            (_, row, d) => wrong.push(format!("offset {offset} `{shown}`: row {row:?}, dead letter {d:?}")),
        }
    }
    assert!(wrong.is_empty(), "{} messages landed wrongly:\n{}", wrong.len(), wrong.join("\n"));
    let total: u64 = ch.scalar(&format!(
        "SELECT (SELECT count() FROM `{db}`.corpus) + (SELECT count() FROM `{db}`.corpus_dead_letter)"
    ));
    assert_eq!(total, cases.len() as u64, "rows + dead letters = messages");
}
