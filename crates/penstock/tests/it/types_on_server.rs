//! Types on the ClickHouse server here (18.16): Penstock's Native inserts of every type
//! this server has must store what the server's own JSON parser stores for the same
//! messages. (Types newer than 18.16 are checked against ClickHouse 26.9 in the codec's
//! conformance test.)

use crate::harness::*;
use penstock_testkit::{unique_name, Services};

const COLUMNS: &str = "k UInt32, s String, fs FixedString(3), i8 Int8, u64 UInt64, f32 Float32, f64 Float64, \
    d Decimal(9, 2), d128 Decimal(38, 10), dt Date, t DateTime('UTC'), id UUID, e16 Enum16('x' = 1000, 'y' = -1000), \
    n Nullable(Int32), lc LowCardinality(String), arr Array(Int32), arrn Array(Nullable(String)), \
    arr2 Array(Array(UInt8)), tup Tuple(UInt8, String), _partition Int32, _offset Int64";

const SCHEMA: &str = r#"
  k: { type: UInt32, required: true }
  s: String
  fs: FixedString(3)
  i8: Int8
  u64: UInt64
  f32: Float32
  f64: Float64
  d: Decimal(9, 2)
  d128: Decimal(38, 10)
  dt: Date
  t: DateTime('UTC')
  id: UUID
  e16: "Enum16('x' = 1000, 'y' = -1000)"
  n: Nullable(Int32)
  lc: LowCardinality(String)
  arr: Array(Int32)
  arrn: Array(Nullable(String))
  arr2: Array(Array(UInt8))
  tup: Tuple(UInt8, String)
  _partition: Int32
  _offset: Int64
"#;

/// 18.16's calendar ends in 2105: the largest dates here stay inside it.
const MESSAGES: &[&str] = &[
    r#"{"k":1,"s":"héllo\t\"x\"","fs":"ab","i8":-128,"u64":18446744073709551615,"f32":0.1,"f64":-1.7976931348623157e308,"d":-9999999.99,"d128":-1234567890123456789012345678.0123456789,"dt":"2105-12-31","t":"2105-12-31 23:59:59","id":"3c7d1004-4dce-48d2-9e13-8f3288aac743","e16":"y","n":-5,"lc":"eu","arr":[1,-2,3],"arrn":["a",null,""],"arr2":[[1,2],[],[255]],"tup":[7,"seven"]}"#,
    r#"{"k":2,"s":"","fs":"abc","i8":127,"u64":0,"f32":3.4028235e38,"f64":5e-324,"d":0.01,"d128":0,"dt":"1970-01-01","t":"1970-01-01 00:00:00","id":"00000000-0000-0000-0000-000000000000","e16":"x","n":null,"lc":"eu","arr":[],"arrn":[],"arr2":[],"tup":[0,""]}"#,
    r#"{"k":3,"s":"z","fs":"","i8":0,"u64":1,"f32":-0.0,"f64":0.30000000000000004,"d":1.5,"d128":3.25,"dt":"2026-11-21","t":"2026-11-21 05:10:00","id":"ffffffff-ffff-ffff-ffff-ffffffffffff","e16":"x","n":2147483647,"lc":"","arr":[2147483647],"arrn":[null],"arr2":[[]],"tup":[255,"z"]}"#,
];

#[test]
fn every_type_of_this_server_stores_what_its_own_json_parser_stores() {
    let s = Services::start().expect("services");
    let topic = unique_name("types");
    let db = unique_name("db");
    s.kafka.create_topic(&topic, 1).expect("topic");
    let ch = &s.clickhouse;
    ch.query(&format!("CREATE DATABASE `{db}`"));
    // LowCardinality is experimental on 18.16: creating such a table needs a setting.
    for table in ["typed", "oracle"] {
        let sql = format!("CREATE TABLE `{db}`.{table} ({COLUMNS}) ENGINE = MergeTree ORDER BY k");
        let (status, body) =
            penstock_testkit::http_post(ch.http_port, "/?allow_experimental_low_cardinality_type=1", &sql)
                .expect("create");
        assert_eq!(status, 200, "{body}");
    }
    let payloads: Vec<&[u8]> = MESSAGES.iter().map(|m| m.as_bytes()).collect();
    produce_raw(&s, &topic, &payloads);
    // The oracle: the same messages through the server's JSONEachRow parser.
    let lines: String = MESSAGES
        .iter()
        .enumerate()
        .map(|(i, m)| format!("{},\"_partition\":0,\"_offset\":{i}}}\n", m.trim_end_matches('}')))
        .collect();
    let (status, body) = penstock_testkit::http_post(
        ch.http_port,
        &format!("/?query=INSERT%20INTO%20`{db}`.oracle%20FORMAT%20JSONEachRow"),
        &lines,
    )
    .expect("oracle insert");
    assert_eq!(status, 200, "{body}");

    let pipeline = s.dir().join("types.yaml");
    std::fs::write(
        &pipeline,
        format!(
            "name: types\nsource:\n  kafka:\n    brokers: {}\n    topics: [{topic}]\n    start: earliest\n\
             schema:{SCHEMA}sink:\n  clickhouse:\n    url: {}\n    table: {db}.typed\n",
            s.kafka.bootstrap(),
            ch.url()
        ),
    )
    .expect("pipeline file");
    let out = penstock(&["run", pipeline.to_str().unwrap(), "--until-caught-up"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("3 rows inserted, 0 dead-lettered"), "{}", stdout(&out));

    let typed = ch.query(&format!("SELECT * FROM `{db}`.typed ORDER BY k"));
    let oracle = ch.query(&format!("SELECT * FROM `{db}`.oracle ORDER BY k"));
    assert_eq!(typed.lines().count(), 3, "{typed}");
    // Column names: the identifier after each top-level comma.
    let names: Vec<&str> = SCHEMA.lines().filter_map(|l| l.trim().split_once(':').map(|(n, _)| n)).collect();
    for (((got, want), row), message) in typed.lines().zip(oracle.lines()).zip(1..).zip(MESSAGES) {
        for ((g, w), name) in got.split('\t').zip(want.split('\t')).zip(&names) {
            match *name {
                // 18.16's own text float parser is not correctly rounded (SERVICES.md):
                // floats are checked bit for bit against Rust's parse of the message.
                "f32" | "f64" => {
                    let text = number_in(message, name);
                    if *name == "f32" {
                        let (a, b) = (g.parse::<f32>().unwrap(), text.parse::<f32>().unwrap());
                        assert_eq!(a.to_bits(), b.to_bits(), "row {row}, column {name}: {g} vs {text}");
                    } else {
                        let (a, b) = (g.parse::<f64>().unwrap(), text.parse::<f64>().unwrap());
                        assert_eq!(a.to_bits(), b.to_bits(), "row {row}, column {name}: {g} vs {text}");
                    }
                }
                _ => assert_eq!(g, w, "row {row}, column {name}"),
            }
        }
    }
}

/// The text of the number given for `key` in a flat JSON message.
fn number_in<'m>(message: &'m str, key: &str) -> &'m str {
    let start = message.find(&format!("\"{key}\":")).expect("key") + key.len() + 3;
    let rest = &message[start..];
    &rest[..rest.find([',', '}']).expect("end of number")]
}
