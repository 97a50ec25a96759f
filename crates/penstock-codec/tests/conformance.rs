//! Conformance of Penstock's encoders with a modern ClickHouse (26.9, in-process via
//! chdb): for every type, the same JSON messages are decoded by Penstock and written as
//! Native and as RowBinary, and read back by ClickHouse; the values must equal what
//! ClickHouse itself makes of the same JSON (its own JSONEachRow parser is the
//! oracle). Floats compare bit-exactly (TabSeparated prints the shortest text that
//! round-trips). The 18.16 server's share is checked by the pipeline's integration
//! tests, which insert Native blocks into it.

use penstock_codec::{
    encode_native, encode_row_binary, ColumnType, DecodeLimits, FieldSpec, JsonDecoder, MessageMeta, Timestamp,
};
use penstock_testkit::Chdb;

/// Every column type, by name.
const COLUMNS: &[(&str, &str)] = &[
    ("s", "String"),
    ("fs", "FixedString(4)"),
    ("i8", "Int8"),
    ("i16", "Int16"),
    ("i32", "Int32"),
    ("i64", "Int64"),
    ("u8", "UInt8"),
    ("u16", "UInt16"),
    ("u32", "UInt32"),
    ("u64", "UInt64"),
    ("i128", "Int128"),
    ("u128", "UInt128"),
    ("i256", "Int256"),
    ("u256", "UInt256"),
    ("f32", "Float32"),
    ("f64", "Float64"),
    ("d32", "Decimal(9, 2)"),
    ("d64", "Decimal(18, 4)"),
    ("d128", "Decimal(38, 10)"),
    ("d256", "Decimal(76, 20)"),
    ("b", "Bool"),
    ("dt", "Date"),
    ("dt32", "Date32"),
    ("t", "DateTime('UTC')"),
    ("t64", "DateTime64(3, 'UTC')"),
    ("id", "UUID"),
    ("ip4", "IPv4"),
    ("ip6", "IPv6"),
    ("e8", "Enum8('a' = 1, 'b' = -2)"),
    ("e16", "Enum16('x' = 1000, 'y' = -1000)"),
    ("lc", "LowCardinality(String)"),
    ("lcn", "LowCardinality(Nullable(String))"),
    ("lcu", "LowCardinality(UInt32)"),
    ("n", "Nullable(Int32)"),
    ("ns", "Nullable(String)"),
    ("arr", "Array(Int32)"),
    ("arrn", "Array(Nullable(String))"),
    ("arr2", "Array(Array(UInt8))"),
    ("arrlc", "Array(LowCardinality(String))"),
    ("m", "Map(String, UInt64)"),
    ("mi", "Map(UInt16, Array(String))"),
    ("tup", "Tuple(a String, b Float64)"),
    ("tup2", "Tuple(UInt8, Array(Nullable(Int64)))"),
    ("arrtup", "Array(Tuple(x Int8, y String))"),
];

/// Messages in the subset of JSON that both Penstock and ClickHouse's JSONEachRow read
/// the same way.
const MESSAGES: &[&str] = &[
    r#"{"s":"héllo \"quoted\"\n","fs":"ab","i8":-128,"i16":32767,"i32":-2147483648,"i64":9223372036854775807,
       "u8":255,"u16":65535,"u32":4294967295,"u64":18446744073709551615,
       "i128":"-170141183460469231731687303715884105728","u128":"340282366920938463463374607431768211455",
       "i256":"-57896044618658097711785492504343953926634992332820282019728792003956564819968",
       "u256":"115792089237316195423570985008687907853269984665640564039457584007913129639935",
       "f32":0.1,"f64":-1.7976931348623157e308,"d32":"-9999999.99","d64":"12345678901234.5678",
       "d128":"-1234567890123456789012345678.0123456789","d256":"12345678901234567890123456789012345678901234567890123456.12345678901234567890",
       "b":true,"dt":"2149-06-06","dt32":"1900-01-01","t":"2106-02-07 06:28:15","t64":"2026-11-21 05:10:00.123",
       "id":"3c7d1004-4dce-48d2-9e13-8f3288aac743","ip4":"192.0.2.255","ip6":"2001:db8::ff00:42:8329",
       "e8":"b","e16":"y","lc":"eu-west-1","lcn":"x","lcu":7,"n":-5,"ns":"v",
       "arr":[1,-2,3],"arrn":["a",null,""],"arr2":[[1,2],[],[255]],"arrlc":["p","q","p"],
       "m":{"k1":1,"k2":18446744073709551615},"mi":{"7":["a","b"],"65535":[]},
       "tup":{"a":"x","b":1.5},"tup2":[9,[1,null,-3]],"arrtup":[{"x":1,"y":"one"},{"x":-128,"y":""}]}"#,
    r#"{"s":"","fs":"abcd","i8":0,"i16":-32768,"i32":0,"i64":-9223372036854775808,"u8":0,"u16":0,"u32":0,"u64":0,
       "i128":"0","u128":"0","i256":"1","u256":"0","f32":3.4028235e38,"f64":5e-324,"d32":"0.01","d64":"-0.0001",
       "d128":"0","d256":"-0.00000000000000000001","b":false,"dt":"1970-01-01","dt32":"2299-12-31",
       "t":"1970-01-01 00:00:00","t64":"1900-01-01 00:00:00.001","id":"00000000-0000-0000-0000-000000000000",
       "ip4":"0.0.0.0","ip6":"::","e8":"a","e16":"x","lc":"eu-west-1","lcn":null,"lcu":4294967295,"n":null,"ns":null,
       "arr":[],"arrn":[],"arr2":[],"arrlc":[],"m":{},"mi":{},"tup":{"a":"","b":-0.5},"tup2":[0,[]],"arrtup":[]}"#,
    r#"{"s":"z","fs":"","i8":1,"i16":1,"i32":1,"i64":1,"u8":1,"u16":1,"u32":1,"u64":1,"i128":"1","u128":"1",
       "i256":"-1","u256":"1","f32":-0.0,"f64":0.30000000000000004,"d32":"1.5","d64":"2","d128":"3.25","d256":"4",
       "b":false,"dt":"2026-11-21","dt32":"2026-11-21","t":"2026-11-21 05:10:00","t64":"2026-11-21 05:10:00.999",
       "id":"ffffffff-ffff-ffff-ffff-ffffffffffff","ip4":"255.255.255.255","ip6":"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
       "e8":"b","e16":"x","lc":"","lcn":"","lcu":0,"n":2147483647,"ns":"",
       "arr":[2147483647],"arrn":[null],"arr2":[[]],"arrlc":[""],"m":{"":0},"mi":{"0":[""]},
       "tup":{"a":"t","b":0},"tup2":[255,[null]],"arrtup":[{"x":127,"y":"z"}]}"#,
];

const SETTINGS: &str = "SETTINGS session_timezone = 'UTC', output_format_decimal_trailing_zeros = 1, \
    date_time_input_format = 'best_effort', input_format_json_read_numbers_as_strings = 1, \
    allow_suspicious_low_cardinality_types = 1";

fn structure() -> String {
    COLUMNS.iter().map(|(n, t)| format!("{n} {t}")).collect::<Vec<_>>().join(", ")
}

#[test]
fn every_type_reads_back_in_modern_clickhouse_as_it_parses_the_json_itself() {
    let fields: Vec<FieldSpec> = COLUMNS
        .iter()
        .map(|(name, ty)| FieldSpec::from_key(*name, ColumnType::parse(ty).unwrap_or_else(|e| panic!("{e}"))))
        .collect();
    let mut decoder = JsonDecoder::new(fields, DecodeLimits::default()).expect("schema");
    let mut block = decoder.new_block();
    for (i, m) in MESSAGES.iter().enumerate() {
        let meta = MessageMeta {
            topic: "t",
            partition: 0,
            offset: i as i64,
            timestamp_ms: None,
            key: None,
            now: Timestamp { secs: 0, nanos: 0 },
        };
        decoder.decode(m.as_bytes(), &meta, &mut block).unwrap_or_else(|e| panic!("message {i}: {e}"));
    }

    let chdb = Chdb::new().expect("chdb session");
    let native = chdb.files().join("block.native");
    let row_binary = chdb.files().join("block.rowbinary");
    std::fs::create_dir_all(chdb.files()).unwrap();
    std::fs::write(&native, encode_native(&block)).unwrap();
    std::fs::write(&row_binary, encode_row_binary(&block)).unwrap();
    let json: String = MESSAGES.iter().map(|m| m.replace('\n', " ") + "\n").collect();
    let json_file = chdb.files().join("messages.json");
    std::fs::write(&json_file, json).unwrap();

    let structure = structure().replace('\'', "\\'");
    let statements = [
        format!(
            "SELECT * FROM file('{}', 'JSONEachRow', '{structure}') FORMAT TabSeparated {SETTINGS}",
            json_file.display()
        ),
        format!("SELECT * FROM file('{}', 'Native') FORMAT TabSeparated {SETTINGS}", native.display()),
        format!(
            "SELECT * FROM file('{}', 'RowBinary', '{structure}') FORMAT TabSeparated {SETTINGS}",
            row_binary.display()
        ),
        format!("DESCRIBE file('{}', 'Native') FORMAT TabSeparated {SETTINGS}", native.display()),
    ];
    let results = chdb.run(&statements).expect("chdb");
    let [oracle, from_native, from_row_binary, described] = <[_; 4]>::try_from(results).expect("four results");
    let oracle = oracle.expect("ClickHouse parses the JSON");
    let from_native = from_native.expect("ClickHouse reads Penstock's Native block");
    let from_row_binary = from_row_binary.expect("ClickHouse reads Penstock's RowBinary");
    assert_eq!(oracle.lines().count(), MESSAGES.len(), "{oracle}");
    for (name, got) in [("Native", &from_native), ("RowBinary", &from_row_binary)] {
        for ((want, got), row) in oracle.lines().zip(got.lines()).zip(0..) {
            for ((w, g), (col, ty)) in want.split('\t').zip(got.split('\t')).zip(COLUMNS) {
                assert_eq!(g, w, "{name}, row {row}, column {col} {ty}");
            }
        }
        assert_eq!(got.lines().count(), MESSAGES.len(), "{name}: {got}");
    }
    // The Native header carries each type exactly as declared.
    let described = described.expect("describe");
    for ((col, ty), line) in COLUMNS.iter().zip(described.lines()) {
        let mut parts = line.split('\t');
        assert_eq!(parts.next(), Some(*col));
        let server_type = ColumnType::parse(&parts.next().unwrap().replace("\\'", "'").replace("\\n", "\n"))
            .expect("server type parses");
        assert_eq!(server_type, ColumnType::parse(ty).unwrap(), "{col}");
    }
}
