//! Shared by the fuzz targets: a schema covering every type family the decoder has,
//! and the invariants checked after every message.

use penstock_codec::{
    encode_native, encode_row_binary, Block, ColumnType, DecodeLimits, FieldOptions, FieldSpec, JsonDecoder,
    MessageMeta, OnError, Timestamp, ValueSource,
};

fn field(column: &str, ty: &str, on_error: OnError, required: bool) -> FieldSpec {
    FieldSpec {
        column: column.into(),
        ty: ColumnType::parse(ty).expect("type"),
        source: ValueSource::Json(column.into()),
        required,
        on_error,
        options: Default::default(),
    }
}

/// The decoder under test: small limits, so the fuzzer reaches them.
pub fn decoder() -> JsonDecoder {
    let fields = vec![
        field("id", "UUID", OnError::Reject, true),
        field("u8", "UInt8", OnError::Default, false),
        field("i64", "Int64", OnError::Reject, false),
        field("u64", "UInt64", OnError::Reject, false),
        field("f32", "Float32", OnError::Default, false),
        field("f64", "Nullable(Float64)", OnError::Null, false),
        field("amount", "Decimal(12, 2)", OnError::Reject, false),
        field("big", "Decimal(38, 10)", OnError::Reject, false),
        field("s", "String", OnError::Reject, false),
        field("ns", "Nullable(String)", OnError::Null, false),
        field("d", "Date", OnError::Reject, false),
        field("t", "DateTime('UTC')", OnError::Reject, false),
        field("t64", "DateTime64(6, 'UTC')", OnError::Default, false),
        field("e", "Enum8('a' = 1, 'b' = -2)", OnError::Reject, false),
        field("w", "Int256", OnError::Reject, false),
        field("wd", "Decimal(76, 30)", OnError::Reject, false),
        field("ip", "IPv6", OnError::Default, false),
        field("fs", "FixedString(3)", OnError::Reject, false),
        field("lc", "LowCardinality(Nullable(String))", OnError::Null, false),
        field("arr", "Array(Nullable(Int32))", OnError::Reject, false),
        field("map", "Map(String, Array(UInt8))", OnError::Reject, false),
        field("tup", "Tuple(a String, b Array(Tuple(Int8, String)))", OnError::Reject, false),
        FieldSpec {
            column: "nested".into(),
            ty: ColumnType::parse("Nullable(String)").expect("type"),
            source: ValueSource::Path(penstock_codec::JsonPath::parse("map.k[0]").expect("path")),
            required: false,
            on_error: OnError::Null,
            options: FieldOptions { default: Some("\"d\"".into()), ..Default::default() },
        },
        FieldSpec {
            column: "raw".into(),
            ty: ColumnType::String,
            source: ValueSource::Json("tup".into()),
            required: false,
            on_error: OnError::Reject,
            options: FieldOptions { raw_json: true, ..Default::default() },
        },
        FieldSpec {
            column: "rest".into(),
            ty: ColumnType::String,
            source: ValueSource::Rest,
            required: false,
            on_error: OnError::Reject,
            options: Default::default(),
        },
        FieldSpec {
            column: "offset".into(),
            ty: ColumnType::Int64,
            source: ValueSource::Offset,
            required: false,
            on_error: OnError::Reject,
            options: Default::default(),
        },
    ];
    JsonDecoder::new(fields, DecodeLimits { max_message_bytes: 64 << 10, max_depth: 16 })
        .expect("schema")
        .with_arrays_as_rows(true)
}

/// Decodes `data` and checks the invariants: no panic; a failed message leaves the
/// block as it was; every column holds exactly `rows` values; both encoders accept
/// the block.
pub fn check(decoder: &mut JsonDecoder, block: &mut Block, data: &[u8]) {
    let meta = MessageMeta {
        topic: "fuzz",
        partition: 0,
        offset: block.rows() as i64,
        timestamp_ms: None,
        key: None,
        now: Timestamp { secs: 0, nanos: 0 },
    };
    let before = block.rows();
    match decoder.decode_rows(data, &meta, block) {
        Ok(rows) => assert_eq!(block.rows(), before + rows),
        Err(e) => {
            assert_eq!(block.rows(), before, "a failed message must not add a row");
            assert!(!e.message.is_empty(), "an error must say what is wrong");
        }
    }
    let rows = block.rows();
    for c in block.columns() {
        for r in 0..rows {
            let _ = c.value_bytes(r);
        }
        if let Some(n) = c.nulls() {
            assert_eq!(n.len(), rows);
        }
    }
    // Both encoders take any block the decoder produced.
    let _ = encode_native(block);
    let _ = encode_row_binary(block);
}
