//! Decode + Native encode throughput for the seed benchmark's `transactions` event, and
//! for a wide event (24 columns across every type family: integers of several widths,
//! floats, decimals, booleans, dates and times, UUID, IPs, enums, LowCardinality,
//! Nullable, arrays, maps, tuples, JSON paths).
//!
//! Run: `cargo bench -p penstock-codec --bench decode_encode`
//! One iteration decodes a batch of 10,000 distinct events into column buffers and
//! encodes the block as Native (and, for `transactions`, LZ4-compressed Native), so
//! the element rate is events per second on one core; the `-bytes` groups report JSON
//! bytes per second, the measure for comparing events of different sizes.

#![allow(missing_docs)] // criterion_group! generates undocumented items

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use penstock_codec::*;
use std::hint::black_box;

const REGIONS: [&str; 7] =
    ["us-east-1", "us-west-2", "eu-west-1", "eu-central-1", "ap-southeast-1", "ap-northeast-1", "sa-east-1"];
const TYPES: [&str; 6] = ["purchase", "refund", "view", "add_to_cart", "checkout", "login"];

fn events(n: usize) -> Vec<Vec<u8>> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    (0..n)
        .map(|i| {
            let (a, b) = (next(), next());
            format!(
                r#"{{"event_id":"{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}","user_id":{},"amount":{}.{:02},"region":"{}","event_type":"{}","event_time":"2026-11-21T05:{:02}:{:02}.{:03}Z"}}"#,
                a >> 32, (a >> 16) & 0xffff, a & 0xfff, (b >> 48) & 0x3fff | 0x8000, b & 0xffff_ffff_ffff,
                next() % 10_000_000 + 1, next() % 10_000, next() % 100,
                REGIONS[i % 7], TYPES[i % 6], (i / 60) % 60, i % 60, i % 1000
            )
            .into_bytes()
        })
        .collect()
}

fn schema() -> Vec<FieldSpec> {
    let f = |name: &str, ty: &str| FieldSpec::from_key(name, ColumnType::parse(ty).unwrap());
    vec![
        f("event_id", "UUID"),
        f("user_id", "UInt64"),
        f("amount", "Decimal(12,2)"),
        f("region", "String"),
        f("event_type", "Enum8('purchase'=1,'refund'=2,'view'=3,'add_to_cart'=4,'checkout'=5,'login'=6)"),
        f("event_time", "DateTime('UTC')"),
    ]
}

fn wide_events(n: usize) -> Vec<Vec<u8>> {
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    (0..n)
        .map(|i| {
            let (a, b, c) = (next(), next(), next());
            format!(
                concat!(
                    r#"{{"id":"{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}","seq":{},"small":{},"mid":{},"neg":{},"#,
                    r#""ratio":{}.{:03},"score":{}.{:06},"price":"{}.{:02}","big":"{}","ok":{},"#,
                    r#""day":"2026-11-{:02}","at":"2026-11-21T05:{:02}:{:02}.{:03}Z","at64":"2026-11-21 05:10:{:02}.{:06}","#,
                    r#""ip":"10.{}.{}.{}","ip6":"2001:db8::{:x}","kind":"{}","region":"{}","code":"{}","#,
                    r#""note":{},"tags":["{}","{}"],"attrs":{{"a":{},"b":{}}},"pair":[{},"{}"],"user":{{"id":{},"name":"user-{}"}}}}"#
                ),
                a >> 32, (a >> 16) & 0xffff, a & 0xfff, (b >> 48) & 0x3fff | 0x8000, b & 0xffff_ffff_ffff,
                i, c % 256, c % 65_536, -((c % 1_000_000) as i64),
                c % 100, c % 1000, c % 10_000, c % 1_000_000, c % 100_000, c % 100, c,
                i % 2 == 0,
                i % 28 + 1, (i / 60) % 60, i % 60, i % 1000, i % 60, c % 1_000_000,
                c % 256, (c >> 8) % 256, (c >> 16) % 256, c % 65_536,
                TYPES[i % 6], REGIONS[i % 7], &REGIONS[i % 7][..3],
                if i % 3 == 0 { "null".to_string() } else { format!(r#""note {i}""#) },
                TYPES[i % 6], REGIONS[(i + 1) % 7], c % 1000, i % 7, i % 100, REGIONS[i % 7],
                c % 10_000_000, i,
            )
            .into_bytes()
        })
        .collect()
}

fn wide_schema() -> Vec<FieldSpec> {
    let f = |name: &str, ty: &str, from: &str| FieldSpec {
        source: if from.contains('.') {
            ValueSource::Path(JsonPath::parse(from).unwrap())
        } else {
            ValueSource::Json(from.into())
        },
        ..FieldSpec::from_key(name, ColumnType::parse(ty).unwrap())
    };
    vec![
        f("id", "UUID", "id"),
        f("seq", "UInt64", "seq"),
        f("small", "UInt8", "small"),
        f("mid", "Int32", "mid"),
        f("neg", "Int64", "neg"),
        f("ratio", "Float32", "ratio"),
        f("score", "Float64", "score"),
        f("price", "Decimal(18, 2)", "price"),
        f("big", "UInt256", "big"),
        f("ok", "Bool", "ok"),
        f("day", "Date", "day"),
        f("at", "DateTime('UTC')", "at"),
        f("at64", "DateTime64(6, 'UTC')", "at64"),
        f("ip", "IPv4", "ip"),
        f("ip6", "IPv6", "ip6"),
        f("kind", "Enum8('purchase'=1,'refund'=2,'view'=3,'add_to_cart'=4,'checkout'=5,'login'=6)", "kind"),
        f("region", "LowCardinality(String)", "region"),
        f("code", "FixedString(3)", "code"),
        f("note", "Nullable(String)", "note"),
        f("tags", "Array(String)", "tags"),
        f("attrs", "Map(String, UInt32)", "attrs"),
        f("pair", "Tuple(UInt16, String)", "pair"),
        f("user_id", "UInt64", "user.id"),
        f("user_name", "String", "user.name"),
    ]
}

fn meta() -> MessageMeta<'static> {
    MessageMeta::outside_kafka()
}

/// Decode + Native, reported per event and per JSON byte.
fn run_group(c: &mut Criterion, name: &str, msgs: &[Vec<u8>], fields: Vec<FieldSpec>) {
    let bytes: usize = msgs.iter().map(Vec::len).sum();
    let mut decoder = JsonDecoder::new(fields, DecodeLimits::default()).unwrap();
    let mut block = decoder.new_block();
    let meta = meta();
    for (label, throughput) in [
        (name.to_string(), Throughput::Elements(msgs.len() as u64)),
        (format!("{name}-bytes"), Throughput::Bytes(bytes as u64)),
    ] {
        let mut g = c.benchmark_group(label);
        g.throughput(throughput);
        g.bench_function("decode+native", |b| {
            b.iter(|| {
                block.clear();
                for m in msgs {
                    decoder.decode(m, &meta, &mut block).unwrap();
                }
                let mut n = 0;
                emit_native(&block, |p| n += p.len());
                black_box(n)
            })
        });
        g.finish();
    }
}

fn bench(c: &mut Criterion) {
    let msgs = events(10_000);
    run_group(c, "transactions", &msgs, schema());
    // With ClickHouse LZ4 block compression of the Native body, as inserts are sent.
    let mut decoder = JsonDecoder::new(schema(), DecodeLimits::default()).unwrap();
    let mut block = decoder.new_block();
    let meta = meta();
    let mut g = c.benchmark_group("transactions");
    g.throughput(Throughput::Elements(msgs.len() as u64));
    g.bench_function("decode+native+lz4", |b| {
        b.iter(|| {
            block.clear();
            for m in &msgs {
                decoder.decode(m, &meta, &mut block).unwrap();
            }
            let mut w = Lz4BlockWriter::new();
            emit_native(&block, |p| w.write(p));
            black_box(w.finish().len())
        })
    });
    g.finish();
}

fn wide(c: &mut Criterion) {
    run_group(c, "wide", &wide_events(10_000), wide_schema());
}

criterion_group!(benches, bench, wide);
criterion_main!(benches);
