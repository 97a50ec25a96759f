//! Decode + Native encode throughput for the seed benchmark's `transactions` event.
//!
//! Run: `cargo bench -p penstock-codec --bench decode_encode`
//! One iteration decodes a batch of 10,000 distinct events into column buffers and
//! encodes the block as Native (and, separately, LZ4-compressed Native), so the
//! reported element rate is events per second on one core.

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
    let f = |name: &str, ty: &str| FieldSpec {
        column: name.into(),
        ty: ColumnType::parse(ty).unwrap(),
        source: ValueSource::Json(name.into()),
        required: false,
        on_error: OnError::Reject,
        options: Default::default(),
    };
    vec![
        f("event_id", "UUID"),
        f("user_id", "UInt64"),
        f("amount", "Decimal(12,2)"),
        f("region", "String"),
        f("event_type", "Enum8('purchase'=1,'refund'=2,'view'=3,'add_to_cart'=4,'checkout'=5,'login'=6)"),
        f("event_time", "DateTime('UTC')"),
    ]
}

fn bench(c: &mut Criterion) {
    let msgs = events(10_000);
    let bytes: usize = msgs.iter().map(Vec::len).sum();
    let mut decoder = JsonDecoder::new(schema(), DecodeLimits::default()).unwrap();
    let mut block = decoder.new_block();
    let meta = MessageMeta {
        topic: "transactions",
        partition: 0,
        offset: 0,
        timestamp_ms: None,
        key: None,
        now: Timestamp { secs: 0, nanos: 0 },
    };
    let mut g = c.benchmark_group("transactions");
    g.throughput(Throughput::Elements(msgs.len() as u64));
    g.bench_function("decode+native", |b| {
        b.iter(|| {
            block.clear();
            for m in &msgs {
                decoder.decode(m, &meta, &mut block).unwrap();
            }
            let mut n = 0;
            emit_native(&block, |p| n += p.len());
            black_box(n)
        })
    });
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
    let mut g = c.benchmark_group("transactions-bytes");
    g.throughput(Throughput::Bytes(bytes as u64));
    g.bench_function("decode", |b| {
        b.iter(|| {
            block.clear();
            for m in &msgs {
                decoder.decode(m, &meta, &mut block).unwrap();
            }
            black_box(block.rows())
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
