//! Stage cost per row: a filter and computed columns over the seed benchmark's
//! `transactions` batch (10,000 distinct events decoded into a block), on one core.
//!
//! Run: `cargo bench -p penstock-stages --bench stages`
//! The element rate is rows per second; CPU-seconds per million rows = 1e6 / rate.
//! Each iteration runs the stage over a fresh copy of the decoded block (the copy is
//! measured separately as `copy`, to subtract).

#![allow(missing_docs)] // criterion_group! generates undocumented items

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use penstock_codec::*;
use penstock_stages::expr::Expr;
use penstock_stages::{Compute, Filter, Stage, Stages};
use std::hint::black_box;

const REGIONS: [&str; 7] =
    ["us-east-1", "us-west-2", "eu-west-1", "eu-central-1", "ap-southeast-1", "ap-northeast-1", "sa-east-1"];
const TYPES: [&str; 6] = ["purchase", "refund", "view", "add_to_cart", "checkout", "login"];

const ROWS: usize = 10_000;

fn schema() -> Vec<(String, ColumnType)> {
    [
        ("event_id", "UUID"),
        ("user_id", "UInt64"),
        ("amount", "Decimal(12,2)"),
        ("region", "String"),
        ("event_type", "Enum8('purchase'=1,'refund'=2,'view'=3,'add_to_cart'=4,'checkout'=5,'login'=6)"),
        ("event_time", "DateTime('UTC')"),
        ("amount_cents", "UInt64"),
        ("hour", "DateTime('UTC')"),
    ]
    .iter()
    .map(|(n, t)| (n.to_string(), ColumnType::parse(t).unwrap()))
    .collect()
}

fn block() -> Block {
    let fields: Vec<FieldSpec> = schema()
        .into_iter()
        .map(|(n, t)| {
            let computed = n == "amount_cents" || n == "hour";
            FieldSpec {
                source: if computed { ValueSource::Computed } else { ValueSource::Json(n.clone()) },
                ..FieldSpec::from_key(n, t)
            }
        })
        .collect();
    let mut d = JsonDecoder::new(fields, DecodeLimits::default()).unwrap();
    let mut b = d.new_block();
    let meta = MessageMeta::outside_kafka();
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for i in 0..ROWS {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let msg = format!(
            r#"{{"event_id":"{:08x}-0000-4000-8000-{:012x}","user_id":{},"amount":{}.{:02},"region":"{}","event_type":"{}","event_time":"2026-11-21T05:{:02}:{:02}Z"}}"#,
            x >> 32,
            x & 0xffff_ffff_ffff,
            x % 10_000_000,
            x % 10_000,
            x % 100,
            REGIONS[i % 7],
            TYPES[i % 6],
            (i / 60) % 60,
            i % 60
        );
        d.decode(msg.as_bytes(), &meta, &mut b).unwrap();
    }
    b
}

fn run(c: &mut Criterion, name: &str, stages: impl Fn() -> Vec<Box<dyn Stage>>) {
    let base = block();
    let mut g = c.benchmark_group(name);
    g.throughput(Throughput::Elements(ROWS as u64));
    let mut s = Stages::new(stages());
    g.bench_function("rows", |bch| {
        bch.iter(|| {
            let mut b = base.clone();
            let o =
                s.run(&mut b, Timestamp { secs: 1_795_000_000, nanos: 0 }, &[], &penstock_stages::RowNumbers).unwrap();
            black_box(o.dropped);
        })
    });
    g.finish();
}

fn benches(c: &mut Criterion) {
    let cols = schema();
    let base = block();
    let mut g = c.benchmark_group("copy");
    g.throughput(Throughput::Elements(ROWS as u64));
    g.bench_function("rows", |b| b.iter(|| black_box(base.clone())));
    g.finish();
    let filter = |text: &str| {
        let e = Expr::compile(text, &cols).unwrap();
        move || vec![Box::new(Filter::new(e.clone())) as Box<dyn Stage>]
    };
    run(c, "filter-enum", filter("event_type != 'view'"));
    run(c, "filter-and", filter("event_type IN ('purchase', 'refund') AND amount > 10 AND region LIKE 'eu-%'"));
    let computed = |col: usize, text: &str| {
        let e = Expr::compile(text, &cols[..col]).unwrap().converted_to(&cols[col].1).unwrap();
        (col, cols[col].0.clone(), e)
    };
    let cents = computed(6, "toUInt64(round(amount * 100))");
    let hour = computed(7, "toStartOfHour(event_time)");
    run(c, "compute-cents", {
        let cents = cents.clone();
        move || vec![Box::new(Compute::new(vec![cents.clone()])) as Box<dyn Stage>]
    });
    run(c, "compute-hour", {
        let hour = hour.clone();
        move || vec![Box::new(Compute::new(vec![hour.clone()])) as Box<dyn Stage>]
    });
}

criterion_group!(stage_benches, benches);
criterion_main!(stage_benches);
