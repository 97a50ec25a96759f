//! How the dedup state behaves at scale: `KEYS` distinct keys (plus `--repeats` of
//! them again) through one partition's [`PartitionDedup`] and the on-disk store, as
//! the pipeline runs them: a batch's rows decided at once, each batch delivered and
//! handed to the store's writer thread, which coalesces and writes them. Prints CPU per million rows, RSS (now and peak) against the configured
//! memory, the store's size on disk and — with `--brokers` — the changelog's size and
//! the time a fresh directory takes to restore from it.
//!
//! ```text
//! cargo run --release -p penstock-state --example scale -- --keys 10000000 --window-days 7 \
//!     [--memory-mib 64] [--batch 100000] [--repeats 0.2] [--brokers 127.0.0.1:9092]
//! ```

use penstock_stages::dedup::{KeyHash, KeyStore, PartitionDedup, Row, Verdict};
use penstock_state::{Changelog, StateSettings, StateStore};
use std::time::Instant;

struct Args {
    keys: u64,
    window_days: u64,
    memory_mib: u64,
    batch: u64,
    repeats: f64,
    brokers: Option<String>,
}

fn args() -> Args {
    let mut a = Args { keys: 10_000_000, window_days: 7, memory_mib: 64, batch: 100_000, repeats: 0.2, brokers: None };
    let argv: Vec<String> = std::env::args().skip(1).collect();
    for pair in argv.chunks(2) {
        let v = pair.get(1).cloned().unwrap_or_default();
        match pair[0].as_str() {
            "--keys" => a.keys = v.parse().expect("--keys"),
            "--window-days" => a.window_days = v.parse().expect("--window-days"),
            "--memory-mib" => a.memory_mib = v.parse().expect("--memory-mib"),
            "--batch" => a.batch = v.parse().expect("--batch"),
            "--repeats" => a.repeats = v.parse().expect("--repeats"),
            "--brokers" => a.brokers = Some(v),
            other => panic!("unknown argument {other}"),
        }
    }
    a
}

/// (user + system CPU seconds, RSS bytes, peak RSS bytes) of this process.
fn usage() -> (f64, u64, u64) {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat.rsplit(')').next().unwrap_or("").split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    let cpu = (ticks(11) + ticks(12)) / 100.0;
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kib = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
            .unwrap_or(0)
            * 1024
    };
    (cpu, kib("VmRSS:"), kib("VmHWM:"))
}

fn dir_bytes(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| match e.metadata() {
                    Ok(m) if m.is_dir() => dir_bytes(&e.path()),
                    Ok(m) => m.len(),
                    Err(_) => 0,
                })
                .sum()
        })
        .unwrap_or(0)
}

fn key(n: u64) -> KeyHash {
    KeyHash(xxhash_rust::xxh3::xxh3_128(&n.to_le_bytes()).to_le_bytes())
}

fn main() {
    let a = args();
    let tmp = tempfile::tempdir().expect("temp dir");
    let settings = StateSettings::new(tmp.path().join("state"), a.memory_mib << 20);
    let topic = format!("scale-{}", std::process::id());
    let changelog_topic = format!("penstock-scale-{}-dedup-changelog", std::process::id());
    let source = a.brokers.as_ref().map(|b| penstock_config::KafkaSource {
        brokers: b.clone(),
        topics: vec![topic.clone()],
        group: format!("scale-{}", std::process::id()),
        start: penstock_config::StartFrom::Earliest,
        properties: Vec::new(),
    });
    if let Some(s) = &source {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        rt.block_on(penstock_kafka::create_topic(
            &s.brokers,
            &[],
            &changelog_topic,
            1,
            1,
            &[],
            std::time::Duration::from_secs(10),
        ))
        .expect("changelog topic");
    }
    let changelog = source.as_ref().map(|s| Changelog::new(s, changelog_topic.clone()).expect("changelog"));
    let mut store = StateStore::open(&settings, "scale", "dedup", changelog).expect("store");
    let window = (a.window_days * 86_400_000) as i64;
    let mut part = PartitionDedup::new(store.open(&topic, 0).expect("partition"), window);
    // Times spread the keys evenly over the window, so none expires: the whole key set
    // is live at the end.
    let step = (window / a.keys.max(1) as i64).max(1);
    let (cpu0, _, _) = usage();
    let started = Instant::now();
    let (mut offset, mut fresh, mut dropped, mut rng) = (0i64, 0u64, 0u64, 0x9e37_79b9_7f4a_7c15u64);
    let (mut deciding, mut writing) = (0f64, 0f64);
    let (mut rows, mut repeats, mut verdicts) = (Vec::new(), Vec::new(), Vec::new());
    while fresh < a.keys {
        let end = offset + a.batch as i64;
        let t = Instant::now();
        rows.clear();
        repeats.clear();
        let mut next = fresh;
        while offset < end && next < a.keys {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            let repeat = next > 0 && (rng % 10_000) as f64 / 10_000.0 < a.repeats;
            // A repeat: a key seen recently (the last ~100k), as producer re-sends are.
            let n = if repeat { next - 1 - (rng >> 20) % next.min(100_000) } else { next };
            rows.push(Row { key: key(n), offset, time: offset * step });
            repeats.push(repeat);
            if !repeat {
                next += 1;
            }
            offset += 1;
        }
        // Decided as the stage decides a stream's rows: all at once.
        part.rows(&rows, &mut verdicts).expect("rows");
        for (v, repeat) in verdicts.iter().zip(&repeats) {
            match v {
                Verdict::Duplicate => dropped += 1,
                _ if !repeat => fresh += 1,
                _ => panic!("a repeat was not recognised"),
            }
        }
        part.seal(offset);
        deciding += t.elapsed().as_secs_f64();
        let t = Instant::now();
        // Handed to the store's writer, as a delivery is.
        part.delivered(offset).expect("write");
        writing += t.elapsed().as_secs_f64();
        if fresh % (a.keys / 10).max(1) < a.batch {
            let (_, rss, peak) = usage();
            eprintln!("{fresh} keys: rss {} MiB, peak {} MiB", rss >> 20, peak >> 20);
        }
    }
    let t = Instant::now();
    part.flush().expect("flush");
    writing += t.elapsed().as_secs_f64();
    let took = started.elapsed().as_secs_f64();
    let (cpu1, rss, peak) = usage();
    let rows = offset as f64;
    println!(
        "{} keys + {dropped} duplicates in {} rows, batches of {}: {:.1} s, {:.2} CPU-s per million rows ({:.0} rows/s)",
        fresh, offset, a.batch, took, (cpu1 - cpu0) / rows * 1e6, rows / took
    );
    println!(
        "wall time on the source thread: deciding {deciding:.1} s, handing over and the final flush {writing:.1} s"
    );
    println!(
        "memory: state.memory {} MiB; RSS {} MiB now, {} MiB peak; store on disk {} MiB ({} keys reported)",
        a.memory_mib,
        rss >> 20,
        peak >> 20,
        dir_bytes(&settings.dir) >> 20,
        part.size().keys
    );
    drop(part);
    if let Some(s) = &source {
        let restored_dir = tmp.path().join("restored");
        let settings = StateSettings::new(restored_dir.clone(), a.memory_mib << 20);
        let changelog = Changelog::new(s, changelog_topic.clone()).expect("changelog");
        let fresh_store = StateStore::open(&settings, "scale", "dedup", Some(changelog)).expect("store");
        let t = Instant::now();
        let covers = fresh_store.prepare(&topic, 0, None).expect("restore");
        let r = fresh_store.restores();
        println!(
            "restore from the changelog into an empty directory: {:.1} s, {} records, {} writes, covers {:?}, restored store {} MiB",
            t.elapsed().as_secs_f64(),
            r.first().map_or(0, |r| r.records),
            r.first().map_or(0, |r| r.writes),
            covers,
            dir_bytes(&restored_dir) >> 20
        );
    }
}
