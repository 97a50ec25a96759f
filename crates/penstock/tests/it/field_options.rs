//! Per-field options on the real services: JSON paths, defaults, raw JSON text, epoch
//! units, a "rest" column keeping unknown fields, and `format: json_array` turning an
//! array of objects into several rows.

use crate::harness::*;
use penstock_testkit::{unique_name, Services};

#[test]
fn paths_defaults_raw_json_units_rest_and_arrays() {
    let s = Services::start().expect("services");
    let topic = unique_name("options");
    let db = unique_name("db");
    s.kafka.create_topic(&topic, 1).expect("topic");
    let ch = &s.clickhouse;
    ch.query(&format!("CREATE DATABASE `{db}`"));
    ch.query(&format!(
        "CREATE TABLE `{db}`.events (id UInt32, city String, first_tag String, attrs String, \
         at DateTime('UTC'), rest String, _partition Int32, _offset Int64) ENGINE = MergeTree ORDER BY id"
    ));
    produce_raw(
        &s,
        &topic,
        &[
            br#"{"id":1,"address":{"city":"Lyon"},"tags":["a","b"],"attrs":{"k":[1,2]},"at":1795237800123,"x":1}"#,
            br#"[{"id":2,"tags":[],"attrs":"s","at":0},{"id":3,"address":{"city":null},"attrs":7,"at":1000,"y":[true]}]"#,
            br#"[{"id":4},{"id":"bad"}]"#,
            b"[]",
        ],
    );
    let pipeline = s.dir().join("options.yaml");
    std::fs::write(
        &pipeline,
        format!(
            "name: options\nsource:\n  kafka:\n    brokers: {}\n    topics: [{topic}]\n    start: earliest\n\
             format: json_array\nschema:\n\
             \x20 id: {{ type: UInt32, required: true }}\n\
             \x20 city: {{ type: String, from: address.city, default: unknown }}\n\
             \x20 first_tag: {{ type: String, from: \"tags[0]\", default: none }}\n\
             \x20 attrs: {{ type: String, raw_json: true }}\n\
             \x20 at: {{ type: \"DateTime('UTC')\", unit: ms }}\n\
             \x20 rest: {{ type: String, value: rest }}\n\
             \x20 _partition: Int32\n\x20 _offset: Int64\n\
             sink:\n  clickhouse:\n    url: {}\n    table: {db}.events\n",
            s.kafka.bootstrap(),
            ch.url()
        ),
    )
    .expect("pipeline file");
    let out = penstock(&["run", pipeline.to_str().unwrap(), "--until-caught-up"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("4 messages, 3 rows inserted, 1 dead-lettered"), "{}", stdout(&out));
    let rows = ch.query(&format!(
        "SELECT id, city, first_tag, attrs, toUnixTimestamp(at), rest, _offset FROM `{db}`.events ORDER BY id"
    ));
    // `rest` keeps top-level fields no column reads (`address` and `tags` are read by paths).
    assert_eq!(
        rows,
        "1\tLyon\ta\t{\"k\":[1,2]}\t1795237800\t{\"x\":1}\t0\n\
         2\tunknown\tnone\t\"s\"\t0\t{}\t1\n\
         3\tunknown\tnone\t7\t1\t{\"y\":[true]}\t1\n"
    );
    let dead = ch.query(&format!("SELECT `offset`, error_kind, error_message FROM `{db}`.events_dead_letter"));
    assert!(dead.starts_with("2\twrong_type\tcolumn `id`: array element 1: expected an integer"), "{dead}");
    assert_eq!(dead.lines().count(), 1, "{dead}");
}
