use super::*;
use crate::decode::json::path::JsonPath;
use crate::decode::EpochUnit;
use crate::encode::native::encode_native;

fn field(name: &str, ty: &str) -> FieldSpec {
    FieldSpec::from_key(name, ColumnType::parse(ty).unwrap())
}

fn meta() -> MessageMeta<'static> {
    MessageMeta {
        topic: "tx",
        partition: 2,
        offset: 41,
        timestamp_ms: Some(1_700_000_000_123),
        key: Some(b"k1"),
        now: Timestamp { secs: 1_800_000_000, nanos: 5_000_000 },
    }
}

fn decoder(fields: Vec<FieldSpec>) -> JsonDecoder {
    JsonDecoder::new(fields, DecodeLimits::default()).unwrap()
}

fn one(ty: &str, json_value: &str) -> Result<Vec<u8>, DecodeError> {
    let mut d = decoder(vec![field("v", ty)]);
    let mut b = d.new_block();
    d.decode(format!("{{\"v\": {json_value}}}").as_bytes(), &meta(), &mut b)?;
    let c = &b.columns()[0];
    let mut out = c.nulls().map(<[u8]>::to_vec).unwrap_or_default();
    out.extend_from_slice(c.data());
    Ok(out)
}

#[test]
fn transactions_event() {
    let mut d = decoder(vec![
        field("event_id", "UUID"),
        field("user_id", "UInt64"),
        field("amount", "Decimal(12,2)"),
        field("region", "String"),
        field("event_type", "Enum8('purchase'=1,'refund'=2,'view'=3)"),
        field("event_time", "DateTime('UTC')"),
    ]);
    let mut b = d.new_block();
    let msg = br#"{"event_id":"3c7d1004-4dce-48d2-9e13-8f3288aac743","user_id":9329005,"amount":5299.10,"region":"ap-northeast-1","event_type":"refund","event_time":"2026-05-25T15:35:55.092Z"}"#;
    d.decode(msg, &meta(), &mut b).unwrap();
    assert_eq!(b.rows(), 1);
    let c = b.columns();
    assert_eq!(c[1].data(), 9_329_005u64.to_le_bytes());
    assert_eq!(c[2].data(), 529_910i64.to_le_bytes());
    assert_eq!(c[3].data(), b"\x0eap-northeast-1");
    assert_eq!(c[4].data(), [2]);
    assert_eq!(c[5].data(), 1_779_723_355u32.to_le_bytes());
}

#[test]
fn every_basic_type() {
    assert_eq!(one("Int8", "-128").unwrap(), [0x80]);
    assert_eq!(one("Int16", "\"-2\"").unwrap(), (-2i16).to_le_bytes());
    assert_eq!(one("Int32", "7").unwrap(), 7i32.to_le_bytes());
    assert_eq!(one("Int64", "-9223372036854775808").unwrap(), i64::MIN.to_le_bytes());
    assert_eq!(one("UInt8", "true").unwrap(), [1]);
    assert_eq!(one("UInt16", "65535").unwrap(), [255, 255]);
    assert_eq!(one("UInt32", "4294967295").unwrap(), u32::MAX.to_le_bytes());
    assert_eq!(one("UInt64", "18446744073709551615").unwrap(), u64::MAX.to_le_bytes());
    assert_eq!(one("Float32", "0.1").unwrap(), 0.1f32.to_le_bytes());
    assert_eq!(one("Float64", "1e-7").unwrap(), 1e-7f64.to_le_bytes());
    assert_eq!(one("Float64", "\"2.5\"").unwrap(), 2.5f64.to_le_bytes());
    assert_eq!(one("String", r#""a\nb""#).unwrap(), b"\x03a\nb");
    assert_eq!(one("String", "12.50").unwrap(), b"\x0512.50");
    assert_eq!(one("String", r#"{"x": [1]}"#).unwrap(), b"\x0a{\"x\": [1]}");
    assert_eq!(one("Date", "\"2026-11-21\"").unwrap(), 20_778u16.to_le_bytes());
    assert_eq!(one("Date", "20778").unwrap(), 20_778u16.to_le_bytes());
    assert_eq!(one("DateTime", "\"1970-01-01 00:01:40\"").unwrap(), 100u32.to_le_bytes());
    assert_eq!(one("DateTime", "100").unwrap(), 100u32.to_le_bytes());
    assert_eq!(one("DateTime", "100.9").unwrap(), 100u32.to_le_bytes());
    assert_eq!(one("DateTime64(3)", "\"1970-01-01T00:00:01.5+00:00\"").unwrap(), 1500i64.to_le_bytes());
    assert_eq!(one("DateTime64(3)", "1.5").unwrap(), 1500i64.to_le_bytes());
    assert_eq!(one("Decimal(9,3)", "\"-1.5\"").unwrap(), (-1500i32).to_le_bytes());
    assert_eq!(one("Decimal(38,0)", "12").unwrap(), 12i128.to_le_bytes());
    assert_eq!(one("Enum16('a'=-300,'b'=2)", "\"a\"").unwrap(), (-300i16).to_le_bytes());
    assert_eq!(one("Enum8('a'=1,'b'=2)", "2").unwrap(), [2]);
    assert_eq!(one("Nullable(UInt8)", "null").unwrap(), [1, 0]);
    assert_eq!(one("Nullable(UInt8)", "3").unwrap(), [0, 3]);
}

#[test]
fn bad_values_name_the_column_and_reason() {
    for (ty, v, kind) in [
        ("Int8", "128", DecodeErrorKind::OutOfRange),
        ("UInt8", "-1", DecodeErrorKind::OutOfRange),
        ("UInt64", "18446744073709551616", DecodeErrorKind::OutOfRange),
        ("Int32", "1.5", DecodeErrorKind::WrongType),
        ("Int32", "\"x\"", DecodeErrorKind::WrongType),
        ("Int32", "[1]", DecodeErrorKind::WrongType),
        ("Float64", "\"NaN\"", DecodeErrorKind::OutOfRange),
        ("Float64", "1e400", DecodeErrorKind::OutOfRange),
        ("Float32", "\"abc\"", DecodeErrorKind::WrongType),
        ("Date", "\"2026-02-30\"", DecodeErrorKind::InvalidValue),
        ("Date", "70000", DecodeErrorKind::OutOfRange),
        ("DateTime", "\"yesterday\"", DecodeErrorKind::InvalidValue),
        ("DateTime", "-1", DecodeErrorKind::OutOfRange),
        ("DateTime", "true", DecodeErrorKind::WrongType),
        ("UUID", "\"not-a-uuid\"", DecodeErrorKind::InvalidValue),
        ("UUID", "5", DecodeErrorKind::WrongType),
        ("Decimal(4,2)", "100", DecodeErrorKind::OutOfRange),
        ("Decimal(4,2)", "\"1,5\"", DecodeErrorKind::WrongType),
        ("Enum8('a'=1)", "\"b\"", DecodeErrorKind::InvalidValue),
        ("Enum8('a'=1)", "2", DecodeErrorKind::InvalidValue),
    ] {
        let e = one(ty, v).unwrap_err();
        assert_eq!(e.kind, kind, "{ty} {v}: {e}");
        assert_eq!(e.column.as_deref(), Some("v"));
        assert!(e.to_string().contains(ty.split('(').next().unwrap()), "{e}");
    }
}

#[test]
fn message_level_errors() {
    let mut d =
        JsonDecoder::new(vec![field("a", "UInt8")], DecodeLimits { max_message_bytes: 64, max_depth: 3 }).unwrap();
    let mut b = d.new_block();
    let m = meta();
    let kind = |d: &mut JsonDecoder, b: &mut Block, msg: &[u8]| d.decode(msg, &m, b).unwrap_err().kind;
    assert_eq!(kind(&mut d, &mut b, b""), DecodeErrorKind::InvalidJson);
    assert_eq!(kind(&mut d, &mut b, b"null"), DecodeErrorKind::InvalidJson);
    assert_eq!(kind(&mut d, &mut b, b"{\"a\":1"), DecodeErrorKind::InvalidJson);
    assert_eq!(kind(&mut d, &mut b, b"{\"a\":\"\xff\"}"), DecodeErrorKind::NotUtf8);
    assert_eq!(kind(&mut d, &mut b, &[b' '; 65]), DecodeErrorKind::TooLarge);
    assert_eq!(kind(&mut d, &mut b, b"{\"x\":[[[1]]]}"), DecodeErrorKind::TooDeep);
    assert_eq!(kind(&mut d, &mut b, b"\xef\xbb{\"a\":1}"), DecodeErrorKind::NotUtf8, "half a BOM");
    assert!(b.is_empty());
    d.decode(b"{\"x\":[[1]]}", &m, &mut b).unwrap();
    assert_eq!(b.rows(), 1);
    // A byte order mark before the object is skipped, not rejected.
    d.decode(b"\xef\xbb\xbf{\"a\":7}", &m, &mut b).unwrap();
    assert_eq!(b.columns()[0].value_bytes(1), [7]);
}

#[test]
fn failed_row_leaves_no_trace() {
    let mut d = decoder(vec![field("s", "String"), field("n", "Nullable(String)"), field("i", "UInt8")]);
    let mut b = d.new_block();
    d.decode(br#"{"s":"ok","n":"x","i":1}"#, &meta(), &mut b).unwrap();
    let before = encode_native(&b);
    assert!(d.decode(br#"{"s":"long string","n":null,"i":300}"#, &meta(), &mut b).is_err());
    assert_eq!(encode_native(&b), before);
}

#[test]
fn missing_required_and_policies() {
    let mut req = field("a", "UInt8");
    req.required = true;
    let mut to_null = field("b", "Nullable(UInt8)");
    to_null.on_error = OnError::Null;
    let mut to_default = field("c", "UInt8");
    to_default.on_error = OnError::Default;
    let mut d = decoder(vec![req, to_null, to_default, field("d", "String"), field("e", "Nullable(Int8)")]);
    let mut b = d.new_block();
    let e = d.decode(br#"{"b":1}"#, &meta(), &mut b).unwrap_err();
    assert_eq!((e.kind, e.column.as_deref()), (DecodeErrorKind::MissingField, Some("a")));
    let e = d.decode(br#"{"a":null}"#, &meta(), &mut b).unwrap_err();
    assert_eq!(e.kind, DecodeErrorKind::NullValue);
    d.decode(br#"{"a":1,"b":"bad","c":"bad"}"#, &meta(), &mut b).unwrap();
    let c = b.columns();
    assert!(c[1].is_null(0));
    assert_eq!(c[2].data(), [0]);
    assert_eq!(c[3].data(), [0]); // missing String -> ''
    assert!(c[4].is_null(0)); // missing Nullable -> NULL
}

#[test]
fn virtual_columns() {
    let v = |name: &str, ty: &str, source| FieldSpec { source, ..field(name, ty) };
    let mut d = decoder(vec![
        v("_topic", "String", ValueSource::Topic),
        v("_partition", "Int32", ValueSource::Partition),
        v("_offset", "UInt64", ValueSource::Offset),
        v("_timestamp", "DateTime64(3)", ValueSource::Timestamp),
        v("_ts_ms", "Int64", ValueSource::Timestamp),
        v("_key", "Nullable(String)", ValueSource::Key),
        v("ingest", "DateTime", ValueSource::Now),
    ]);
    let mut b = d.new_block();
    d.decode(b"{}", &meta(), &mut b).unwrap();
    let mut m = meta();
    m.key = None;
    d.decode(b"{}", &m, &mut b).unwrap();
    let c = b.columns();
    assert_eq!(c[0].value_bytes(0), b"\x02tx");
    assert_eq!(c[1].value_bytes(0), 2i32.to_le_bytes());
    assert_eq!(c[2].value_bytes(0), 41u64.to_le_bytes());
    assert_eq!(c[3].value_bytes(0), 1_700_000_000_123i64.to_le_bytes());
    assert_eq!(c[4].value_bytes(0), 1_700_000_000_123i64.to_le_bytes());
    assert_eq!(c[5].value_bytes(0), b"\x02k1");
    assert!(c[5].is_null(1));
    assert_eq!(c[6].value_bytes(0), 1_800_000_000u32.to_le_bytes());
}

#[test]
fn schema_errors() {
    let bad = FieldSpec {
        column: "_topic".into(),
        ty: ColumnType::UInt8,
        source: ValueSource::Topic,
        required: false,
        on_error: OnError::Reject,
        options: Default::default(),
    };
    let e = JsonDecoder::new(vec![bad], DecodeLimits::default()).unwrap_err();
    assert!(e.to_string().contains("needs a column of String"), "{e}");
    let mut n = field("x", "UInt8");
    n.on_error = OnError::Null;
    let e = JsonDecoder::new(vec![n], DecodeLimits::default()).unwrap_err();
    assert!(e.to_string().contains("needs a Nullable column"), "{e}");
}

#[test]
fn two_columns_from_one_key() {
    let mut a = field("raw", "String");
    a.source = ValueSource::Json("x".into());
    let mut b2 = field("num", "UInt8");
    b2.source = ValueSource::Json("x".into());
    let mut d = decoder(vec![a, b2]);
    let mut b = d.new_block();
    d.decode(br#"{"x": 5}"#, &meta(), &mut b).unwrap();
    assert_eq!(b.columns()[0].data(), b"\x015");
    assert_eq!(b.columns()[1].data(), [5]);
}

#[test]
fn wider_scalar_types_golden_bytes_and_errors() {
    let kind = |ty: &str, v: &str| one(ty, v).unwrap_err().kind;
    // Bool: JSON booleans, 1/0, and their spellings as strings.
    assert_eq!(one("Bool", "true").unwrap(), [1]);
    assert_eq!(one("Bool", "0").unwrap(), [0]);
    assert_eq!(one("Bool", r#""false""#).unwrap(), [0]);
    assert_eq!(kind("Bool", "2"), DecodeErrorKind::InvalidValue);
    assert_eq!(kind("Bool", "[true]"), DecodeErrorKind::WrongType);
    // FixedString pads with zero bytes and refuses longer values.
    assert_eq!(one("FixedString(4)", r#""ab""#).unwrap(), [b'a', b'b', 0, 0]);
    assert_eq!(kind("FixedString(2)", r#""abc""#), DecodeErrorKind::OutOfRange);
    // Date32 is Int32 days, from 1900 to 2299.
    assert_eq!(one("Date32", r#""1969-12-31""#).unwrap(), (-1i32).to_le_bytes());
    assert_eq!(kind("Date32", r#""1899-12-31""#), DecodeErrorKind::OutOfRange);
    // IPv4 as UInt32 (1.2.3.4 = 0x01020304), IPv6 in network order, IPv4 mapped.
    assert_eq!(one("IPv4", r#""1.2.3.4""#).unwrap(), 0x0102_0304u32.to_le_bytes());
    assert_eq!(kind("IPv4", r#""1.2.3.256""#), DecodeErrorKind::InvalidValue);
    let mapped = one("IPv6", r#""1.2.3.4""#).unwrap();
    assert_eq!(mapped, [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF, 1, 2, 3, 4]);
    assert_eq!(one("IPv6", r#""::1""#).unwrap()[15], 1);
    // Wide integers from numbers or strings, range-checked exactly.
    assert_eq!(one("Int128", "-2").unwrap(), (-2i128).to_le_bytes());
    assert_eq!(one("UInt256", r#""1""#).unwrap()[..2], [1, 0]);
    assert_eq!(one("UInt256", r#""1""#).unwrap().len(), 32);
    assert_eq!(kind("UInt128", "-1"), DecodeErrorKind::OutOfRange);
    assert_eq!(kind("Int256", "1.5"), DecodeErrorKind::WrongType);
    // Decimal256: 32 bytes, exact.
    assert_eq!(one("Decimal(40, 2)", r#""-0.01""#).unwrap(), [0xFF; 32], "-1 in two's complement");
    assert_eq!(kind("Decimal(40, 2)", &"9".repeat(39)), DecodeErrorKind::OutOfRange);
    // LowCardinality stores plain values of its inner type.
    assert_eq!(one("LowCardinality(String)", r#""x""#).unwrap(), b"\x01x");
    assert_eq!(one("LowCardinality(Nullable(String))", "null").unwrap(), [1, 0]);
}

#[test]
fn composite_values_are_stored_as_row_binary() {
    assert_eq!(one("Array(Int16)", "[1, -1]").unwrap(), [2, 1, 0, 0xFF, 0xFF]);
    assert_eq!(one("Array(Nullable(UInt8))", "[null, 7]").unwrap(), [2, 1, 0, 7]);
    assert_eq!(one("Array(String)", "null").unwrap(), [0], "null is an empty array");
    assert_eq!(one("Map(String, UInt8)", r#"{"a": 1, "b\u0021": 2}"#).unwrap(), [2, 1, b'a', 1, 2, b'b', b'!', 2]);
    assert_eq!(one("Map(UInt16, String)", r#"{"7": "x"}"#).unwrap(), [1, 7, 0, 1, b'x']);
    // Tuples from arrays (by position) or objects (by name); missing elements default.
    assert_eq!(one("Tuple(UInt8, String)", r#"[1, "x"]"#).unwrap(), [1, 1, b'x']);
    assert_eq!(one("Tuple(a UInt8, b Nullable(String))", r#"{"a": 3}"#).unwrap(), [3, 1]);
    assert_eq!(one("Tuple(UInt8)", "[]").unwrap(), [0]);
    let kind = |ty: &str, v: &str| one(ty, v).unwrap_err().kind;
    assert_eq!(kind("Array(UInt8)", "[256]"), DecodeErrorKind::OutOfRange);
    assert_eq!(kind("Array(UInt8)", r#"{"a": 1}"#), DecodeErrorKind::WrongType);
    assert_eq!(kind("Map(UInt8, UInt8)", r#"{"x": 1}"#), DecodeErrorKind::WrongType);
    assert_eq!(kind("Tuple(UInt8)", "[1, 2]"), DecodeErrorKind::InvalidValue);
    assert_eq!(kind("Tuple(UInt8)", r#"{"a": 1}"#), DecodeErrorKind::WrongType);
    // A missing composite field stores the type's default: empty, or defaults inside.
    let mut d = decoder(vec![field("t", "Tuple(UInt16, Array(UInt8), Nullable(Int8))"), field("a", "Array(UInt8)")]);
    let mut b = d.new_block();
    d.decode(b"{}", &meta(), &mut b).unwrap();
    assert_eq!(b.columns()[0].value_bytes(0), [0, 0, 0, 1]);
    assert_eq!(b.columns()[1].value_bytes(0), [0]);
}

fn with(ty: &str, source: ValueSource, options: FieldOptions) -> FieldSpec {
    FieldSpec { source, options, ..field("c", ty) }
}

fn row(d: &mut JsonDecoder, msg: &str) -> Result<Vec<Vec<u8>>, DecodeError> {
    let mut b = d.new_block();
    d.decode(msg.as_bytes(), &meta(), &mut b)?;
    Ok(b.columns().iter().map(|c| c.value_bytes(0).to_vec()).collect())
}

#[test]
fn json_paths_reach_nested_values() {
    let path = |p: &str| ValueSource::Path(JsonPath::parse(p).unwrap());
    let mut d = decoder(vec![
        with("UInt8", path("a.b[1].c"), FieldOptions::default()),
        with("String", path("a['x.y']"), FieldOptions::default()),
        with("Nullable(UInt8)", path("a.missing[0]"), FieldOptions::default()),
        with("UInt8", ValueSource::Json("a".into()), FieldOptions { raw_json: false, ..Default::default() }),
    ]);
    // The fourth column reads `a` itself, an object, into UInt8: the message is refused.
    let e = row(&mut d, r#"{"a": {"b": [{}, {"c": 7}], "x.y": "v"}}"#).unwrap_err();
    assert_eq!(e.kind, DecodeErrorKind::WrongType);
    d = decoder(vec![
        with("UInt8", path("a.b[1].c"), FieldOptions::default()),
        with("String", path("a['x.y']"), FieldOptions::default()),
        with("Nullable(UInt8)", path("a.missing[0]"), FieldOptions::default()),
    ]);
    let r = row(&mut d, r#"{"a": {"b": [{}, {"c": 7}], "x.y": "v"}}"#).unwrap();
    assert_eq!(r, [vec![7], b"\x01v".to_vec(), vec![0]]);
    let mut b = d.new_block();
    d.decode(br#"{"a": {"b": [{}, {"c": 7}], "x.y": "v"}}"#, &meta(), &mut b).unwrap();
    assert!(b.columns()[2].is_null(0), "a missing path step is a missing field");
}

#[test]
fn defaults_raw_json_and_rest() {
    let opts = |default: Option<&str>, raw_json: bool| FieldOptions {
        default: default.map(str::to_string),
        raw_json,
        ..Default::default()
    };
    let mut d = decoder(vec![
        FieldSpec {
            column: "region".into(),
            ..with("String", ValueSource::Json("region".into()), opts(Some(r#""n/a""#), false))
        },
        FieldSpec {
            column: "qty".into(),
            ..with("Nullable(UInt16)", ValueSource::Json("qty".into()), opts(Some("1"), false))
        },
        FieldSpec { column: "doc".into(), ..with("String", ValueSource::Json("doc".into()), opts(None, true)) },
        FieldSpec { column: "rest".into(), ..with("String", ValueSource::Rest, FieldOptions::default()) },
    ]);
    let r = row(&mut d, r#"{"doc": {"k": [1, "x"]}, "extra": 1, "more": "y", "region": null}"#).unwrap();
    assert_eq!(r[0], b"\x03n/a", "null takes the default");
    assert_eq!(r[1], 1u16.to_le_bytes(), "missing takes the default, not NULL");
    assert_eq!(&r[2][1..], br#"{"k": [1, "x"]}"#, "raw JSON text");
    assert_eq!(&r[3][1..], br#"{"extra":1,"more":"y"}"#, "unknown fields kept");
    let r = row(&mut d, r#"{"doc": "s", "region": "eu", "qty": 3}"#).unwrap();
    assert_eq!((&r[0][1..], &r[2][1..], &r[3][1..]), (&b"eu"[..], &br#""s""#[..], &b"{}"[..]));
    // A default that does not fit the type is a schema error, found before any message.
    let bad = FieldSpec { options: opts(Some("300"), false), ..field("x", "UInt8") };
    let e = JsonDecoder::new(vec![bad], DecodeLimits::default()).unwrap_err();
    assert!(e.reason.contains("does not fit UInt8"), "{e}");
    let bad = FieldSpec { options: opts(None, true), ..field("x", "UInt8") };
    assert!(JsonDecoder::new(vec![bad], DecodeLimits::default()).unwrap_err().reason.contains("String column"));
    // on_error: default uses the custom default too.
    let f = FieldSpec { on_error: OnError::Default, options: opts(Some("9"), false), ..field("n", "UInt8") };
    assert_eq!(row(&mut decoder(vec![f]), r#"{"n": "x"}"#).unwrap()[0], [9]);
}

#[test]
fn epoch_numbers_in_the_fields_unit() {
    let t = |unit: EpochUnit, v: &str| {
        let f = FieldSpec {
            options: FieldOptions { epoch_unit: unit, ..Default::default() },
            ..field("t", "DateTime64(6)")
        };
        let r = row(&mut decoder(vec![f]), &format!(r#"{{"t": {v}}}"#)).unwrap();
        i64::from_le_bytes(r[0].clone().try_into().unwrap())
    };
    assert_eq!(t(EpochUnit::Seconds, "1795237800.5"), 1_795_237_800_500_000);
    assert_eq!(t(EpochUnit::Millis, "1795237800123"), 1_795_237_800_123_000);
    assert_eq!(t(EpochUnit::Micros, "1795237800123456"), 1_795_237_800_123_456);
    assert_eq!(t(EpochUnit::Nanos, "1795237800123456789"), 1_795_237_800_123_456);
}

#[test]
fn arrays_of_objects_become_rows_all_or_nothing() {
    let mut d = decoder(vec![field("a", "UInt8"), FieldSpec { source: ValueSource::Offset, ..field("o", "Int64") }])
        .with_arrays_as_rows(true);
    let mut b = d.new_block();
    assert_eq!(d.decode_rows(br#"[{"a": 1}, {"a": 2}]"#, &meta(), &mut b).unwrap(), 2);
    assert_eq!(d.decode_rows(br#"{"a": 3}"#, &meta(), &mut b).unwrap(), 1);
    assert_eq!(d.decode_rows(b"[]", &meta(), &mut b).unwrap(), 0);
    assert_eq!(b.rows(), 3);
    assert_eq!(b.columns()[1].value_bytes(1), 41i64.to_le_bytes(), "every row carries the message's offset");
    let e = d.decode_rows(br#"[{"a": 4}, {"a": 256}]"#, &meta(), &mut b).unwrap_err();
    assert!(e.message.starts_with("array element 1:"), "{e}");
    assert_eq!(e.kind, DecodeErrorKind::OutOfRange);
    let e = d.decode_rows(br#"[{"a": 4}, 5]"#, &meta(), &mut b).unwrap_err();
    assert!(e.message.contains("element 1: not a JSON object"), "{e}");
    assert_eq!(d.decode_rows(br#"[{"a": 4},"#, &meta(), &mut b).unwrap_err().kind, DecodeErrorKind::InvalidJson);
    assert_eq!(b.rows(), 3, "a failed message leaves none of its rows");
    // Without the option an array is not an object.
    let mut plain = decoder(vec![field("a", "UInt8")]);
    assert!(plain.decode_rows(br#"[{"a": 1}]"#, &meta(), &mut plain.new_block()).is_err());
}

#[test]
fn unknown_fields_come_with_inferred_nullable_types() {
    let mut d = decoder(vec![field("a", "UInt8")]);
    let f = d.unknown_fields(br#"{"a":1,"n":5,"x":1.5,"s":"t","b":true,"o":{"k":1},"z":null,"n":6}"#);
    let got: Vec<(String, String, bool)> =
        f.iter().map(|f| (f.column.clone(), f.ty.to_string(), f.options.raw_json)).collect();
    assert_eq!(
        got,
        [
            ("n".into(), "Nullable(Int64)".into(), false),
            ("x".into(), "Nullable(Float64)".into(), false),
            ("s".into(), "Nullable(String)".into(), false),
            ("b".into(), "Nullable(UInt8)".into(), false),
            ("o".into(), "Nullable(String)".into(), true),
        ]
    );
    assert!(d.unknown_fields(br#"{"a":2}"#).is_empty());
    assert!(d.unknown_fields(b"[1]").is_empty() && d.unknown_fields(b"{bad").is_empty());
    // Every inferred spec compiles.
    JsonDecoder::new(f, DecodeLimits::default()).unwrap();
}
