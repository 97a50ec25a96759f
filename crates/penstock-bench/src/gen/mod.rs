//! `penstock gen`: the seed benchmark's `transactions` events, produced to Kafka at a
//! target rate, with duplicates, malformed messages and late events mixed in on
//! request, reproducibly from a seed.
//!
//! Several producer threads share one librdkafka producer (its own I/O thread batches
//! for all of them); each thread generates into reusable buffers, so producing costs
//! no allocation per event beyond librdkafka's copy of the message.

mod event;
mod pace;

pub use event::{Malformation, TransactionGenerator, EVENT_TYPES, REGIONS};
pub use pace::Pacer;

use penstock_codec::Timestamp;
use penstock_kafka::CountingProducer;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How much to produce.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Limit {
    /// This many messages in total (well-formed, duplicate and malformed alike).
    Count(u64),
    /// For this long; with a target rate, exactly `rate × duration` messages.
    Duration(Duration),
}

/// What is mixed into the stream, as fractions of all messages.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Mix {
    /// The previous event sent again, same bytes and `event_id`.
    pub duplicates: f64,
    /// Messages broken in one of the [`Malformation`] ways.
    pub malformed: f64,
    /// Events whose `event_time` lies in the past, by up to `late_by` (out of order).
    pub late: f64,
    /// How late a late event is at most (at least one second).
    pub late_by: Duration,
}

impl Default for Mix {
    fn default() -> Self {
        Mix { duplicates: 0.0, malformed: 0.0, late: 0.0, late_by: Duration::from_secs(300) }
    }
}

impl Mix {
    /// Refuses ratios outside 0..=1 or summing over 1, naming the option.
    pub fn validate(&self) -> Result<(), String> {
        for (name, v) in [("--duplicates", self.duplicates), ("--malformed", self.malformed), ("--late", self.late)] {
            if !(0.0..=1.0).contains(&v) {
                return Err(format!("{name} {v}: a ratio must be between 0 and 1"));
            }
        }
        if self.duplicates + self.malformed > 1.0 {
            return Err(format!(
                "--duplicates {} + --malformed {} exceed 1: no room left for events",
                self.duplicates, self.malformed
            ));
        }
        if self.late > 0.0 && self.late_by < Duration::from_secs(1) {
            return Err(format!("--late-by {:?}: late events need at least 1s", self.late_by));
        }
        Ok(())
    }
}

/// One `penstock gen` run.
#[derive(Debug, Clone)]
pub struct GenPlan {
    /// Destination topic.
    pub topic: String,
    /// Count or duration.
    pub limit: Limit,
    /// Target messages per second over all threads; 0 = as fast as possible.
    pub rate: u64,
    /// Producer threads (at least 1).
    pub threads: usize,
    /// Seed: the same seed and thread count produce the same messages.
    pub seed: u64,
    /// Injected duplicates, malformed and late events.
    pub mix: Mix,
}

/// Live counters, readable while producing.
#[derive(Debug, Default)]
pub struct GenCounters {
    /// Messages handed to the producer.
    pub sent: AtomicU64,
    /// Of those, re-sent duplicates.
    pub duplicates: AtomicU64,
    /// Of those, malformed messages.
    pub malformed: AtomicU64,
    /// Of those, well-formed messages (duplicates included) whose `event_time` is late.
    pub late: AtomicU64,
}

/// What a run produced.
#[derive(Debug, Clone, PartialEq)]
pub struct GenReport {
    /// Messages handed to the producer.
    pub sent: u64,
    /// Messages the broker acknowledged.
    pub delivered: u64,
    /// Messages that failed permanently.
    pub failed: u64,
    /// Duplicates among `sent`.
    pub duplicates: u64,
    /// Malformed messages among `sent`.
    pub malformed: u64,
    /// Well-formed messages among `sent` (duplicates included) with a late `event_time`.
    pub late: u64,
    /// From the first send to the last one handed to the producer.
    pub send_time: Duration,
    /// From the first send until the broker acknowledged the last message.
    pub total_time: Duration,
    /// The target rate (0 = unlimited).
    pub target_rate: u64,
}

impl GenReport {
    /// Messages per second while sending.
    pub fn send_rate(&self) -> f64 {
        self.sent as f64 / self.send_time.as_secs_f64().max(1e-9)
    }

    /// Messages acknowledged per second, flush included.
    pub fn delivered_rate(&self) -> f64 {
        self.delivered as f64 / self.total_time.as_secs_f64().max(1e-9)
    }

    /// The send rate's deviation from the target, in percent (`None` when unlimited).
    pub fn rate_error_percent(&self) -> Option<f64> {
        (self.target_rate > 0).then(|| (self.send_rate() / self.target_rate as f64 - 1.0) * 100.0)
    }
}

/// A snapshot for a progress display.
#[derive(Debug, Clone, Copy)]
pub struct GenProgress {
    /// Messages sent so far.
    pub sent: u64,
    /// Messages acknowledged so far.
    pub delivered: u64,
    /// Since the start.
    pub elapsed: Duration,
    /// Messages planned in total, when known.
    pub planned: Option<u64>,
    /// Run length, when limited by time.
    pub duration: Option<Duration>,
}

/// Producer settings `penstock gen` exposes as flags, turned into librdkafka properties.
#[derive(Debug, Clone, Default)]
pub struct ProducerSettings {
    /// `all`, `1` or `0`.
    pub acks: Option<String>,
    /// `none`, `gzip`, `snappy` or `lz4`.
    pub compression: Option<String>,
    /// librdkafka `linger.ms`.
    pub linger: Option<Duration>,
    /// librdkafka `batch.size` in bytes.
    pub batch_size: Option<u64>,
    /// Anything else, `key=value`.
    pub properties: Vec<(String, String)>,
}

impl ProducerSettings {
    /// The librdkafka properties, or an error naming a value this build cannot use.
    pub fn properties(&self) -> Result<Vec<(String, String)>, String> {
        let mut out = Vec::new();
        if let Some(acks) = &self.acks {
            let acks = match acks.as_str() {
                "all" | "-1" => "all",
                "1" => "1",
                "0" => "0",
                other => return Err(format!("--acks {other}: expected all, 1 or 0")),
            };
            out.push(("acks".to_string(), acks.to_string()));
            if acks != "all" {
                // The idempotent producer needs acks=all.
                out.push(("enable.idempotence".to_string(), "false".to_string()));
            }
        }
        if let Some(c) = &self.compression {
            match c.as_str() {
                "none" | "gzip" | "snappy" | "lz4" => out.push(("compression.type".to_string(), c.clone())),
                "zstd" => return Err("--compression zstd: this build's librdkafka has no zstd; use lz4".into()),
                other => return Err(format!("--compression {other}: expected none, gzip, snappy or lz4")),
            }
        }
        if let Some(l) = self.linger {
            out.push(("linger.ms".to_string(), format!("{}", l.as_secs_f64() * 1000.0)));
        }
        if let Some(b) = self.batch_size {
            out.push(("batch.size".to_string(), b.to_string()));
        }
        out.extend(self.properties.iter().cloned());
        Ok(out)
    }
}

/// Messages thread `t` of `threads` produces out of `total`.
pub fn thread_quota(total: u64, threads: usize, t: usize) -> u64 {
    let n = threads as u64;
    total / n + u64::from((t as u64) < total % n)
}

/// The seed of thread `t`: thread 0 uses the run's seed itself.
fn thread_seed(seed: u64, t: usize) -> u64 {
    seed.wrapping_add((t as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

/// Produces `plan` through `producer`, calling `progress` about four times a second,
/// until the limit is reached or `stop` is set; then waits for every acknowledgement.
pub fn produce(
    producer: &CountingProducer,
    plan: &GenPlan,
    stop: &AtomicBool,
    mut progress: impl FnMut(&GenProgress),
) -> penstock_kafka::Result<GenReport> {
    let threads = plan.threads.max(1);
    let counters = GenCounters::default();
    let start = Instant::now();
    let (total, deadline) = match plan.limit {
        Limit::Count(n) => (Some(n), None),
        Limit::Duration(d) if plan.rate > 0 => (Some((plan.rate as f64 * d.as_secs_f64()).round() as u64), None),
        Limit::Duration(d) => (None, Some(start + d)),
    };
    let per_thread_rate = plan.rate as f64 / threads as f64;
    let finished = AtomicU64::new(0);
    let result = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                let worker = Worker {
                    producer,
                    plan,
                    counters: &counters,
                    stop,
                    quota: total.map(|n| thread_quota(n, threads, t)),
                    deadline,
                    pacer: Pacer::new(start, per_thread_rate),
                    seed: thread_seed(plan.seed, t),
                };
                let finished = &finished;
                scope.spawn(move || {
                    let r = worker.run();
                    finished.fetch_add(1, Ordering::Release);
                    r
                })
            })
            .collect();
        while finished.load(Ordering::Acquire) < threads as u64 {
            std::thread::sleep(Duration::from_millis(50));
            progress(&GenProgress {
                sent: counters.sent.load(Ordering::Relaxed),
                delivered: producer.counts().delivered.load(Ordering::Relaxed),
                elapsed: start.elapsed(),
                planned: total,
                duration: match plan.limit {
                    Limit::Duration(d) => Some(d),
                    Limit::Count(_) => None,
                },
            });
        }
        workers.into_iter().try_for_each(|w| w.join().expect("a producer thread panicked"))
    });
    let send_time = start.elapsed();
    // Flush even after an error, so what was sent is acknowledged or counted failed.
    let flushed = producer.flush(Duration::from_secs(300));
    result?;
    flushed?;
    let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
    Ok(GenReport {
        sent: load(&counters.sent),
        delivered: load(&producer.counts().delivered),
        failed: load(&producer.counts().failed),
        duplicates: load(&counters.duplicates),
        malformed: load(&counters.malformed),
        late: load(&counters.late),
        send_time,
        total_time: start.elapsed(),
        target_rate: plan.rate,
    })
}

/// One producer thread.
struct Worker<'a> {
    producer: &'a CountingProducer,
    plan: &'a GenPlan,
    counters: &'a GenCounters,
    stop: &'a AtomicBool,
    quota: Option<u64>,
    deadline: Option<Instant>,
    pacer: Pacer,
    seed: u64,
}

impl Worker<'_> {
    fn run(&self) -> penstock_kafka::Result<()> {
        let mix = &self.plan.mix;
        let mut events = TransactionGenerator::new(self.seed);
        let mut dice = SmallRng::seed_from_u64(self.seed ^ 0xD1CE_D1CE_D1CE_D1CE);
        let (mut json, mut key) = (String::with_capacity(256), String::with_capacity(16));
        let (mut previous_is_event, mut previous_is_late) = (false, false);
        let paced = self.plan.rate > 0;
        let mut i = 0u64;
        // Counted per thread and added up at the end (only `sent` is read while running).
        let (mut duplicates, mut malformed, mut late) = (0u64, 0u64, 0u64);
        loop {
            if self.quota.is_some_and(|q| i >= q) {
                break;
            }
            if i.is_multiple_of(64)
                && (self.stop.load(Ordering::Relaxed) || self.deadline.is_some_and(|d| Instant::now() >= d))
            {
                break;
            }
            if paced {
                if let Some(wait) = self.pacer.wait_before(i, Instant::now()) {
                    std::thread::sleep(wait);
                }
            }
            let roll: f64 = if mix.duplicates + mix.malformed > 0.0 { dice.random() } else { 1.0 };
            if previous_is_event && roll < mix.duplicates {
                duplicates += 1;
                if previous_is_late {
                    late += 1;
                }
            } else {
                let broken = roll < mix.duplicates + mix.malformed;
                let mut now = wall_clock();
                previous_is_late = mix.late > 0.0 && dice.random::<f64>() < mix.late;
                if previous_is_late {
                    let max_ms = mix.late_by.as_millis().max(1000) as i64;
                    now = now.minus_millis(dice.random_range(1000..=max_ms));
                }
                events.next_into(now, &mut json, &mut key);
                previous_is_event = !broken;
                if broken {
                    Malformation::ALL[dice.random_range(0..Malformation::ALL.len())].apply(&mut json);
                    malformed += 1;
                } else if previous_is_late {
                    late += 1;
                }
            }
            self.producer.send(&self.plan.topic, key.as_bytes(), json.as_bytes(), None)?;
            i += 1;
            // Published in steps for the progress display: one shared counter bumped per
            // event by every thread would bounce its cache line between cores.
            if i.is_multiple_of(64) {
                self.counters.sent.fetch_add(64, Ordering::Relaxed);
            }
        }
        self.counters.sent.fetch_add(i % 64, Ordering::Relaxed);
        self.counters.duplicates.fetch_add(duplicates, Ordering::Relaxed);
        self.counters.malformed.fetch_add(malformed, Ordering::Relaxed);
        self.counters.late.fetch_add(late, Ordering::Relaxed);
        Ok(())
    }
}

fn wall_clock() -> Timestamp {
    let wall = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    Timestamp { secs: wall.as_secs() as i64, nanos: wall.subsec_nanos() }
}

trait MinusMillis {
    fn minus_millis(self, ms: i64) -> Self;
}

impl MinusMillis for Timestamp {
    fn minus_millis(self, ms: i64) -> Self {
        let total_ns = self.secs as i128 * 1_000_000_000 + self.nanos as i128 - ms as i128 * 1_000_000;
        Timestamp { secs: total_ns.div_euclid(1_000_000_000) as i64, nanos: total_ns.rem_euclid(1_000_000_000) as u32 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotas_split_the_total_exactly() {
        for (total, threads) in [(10, 3), (1_000_000, 2), (1, 4), (0, 2)] {
            let q: Vec<u64> = (0..threads).map(|t| thread_quota(total, threads, t)).collect();
            assert_eq!(q.iter().sum::<u64>(), total);
            assert!(q.iter().max().unwrap() - q.iter().min().unwrap() <= 1, "{q:?}");
        }
    }

    #[test]
    fn ratios_are_checked() {
        assert!(Mix::default().validate().is_ok());
        let bad = Mix { duplicates: 1.5, ..Mix::default() };
        assert!(bad.validate().unwrap_err().contains("--duplicates 1.5"));
        let bad = Mix { duplicates: 0.6, malformed: 0.6, ..Mix::default() };
        assert!(bad.validate().unwrap_err().contains("exceed 1"));
        let bad = Mix { late: 0.1, late_by: Duration::from_millis(10), ..Mix::default() };
        assert!(bad.validate().unwrap_err().contains("--late-by"));
    }

    #[test]
    fn producer_flags_become_librdkafka_properties() {
        let s = ProducerSettings {
            acks: Some("1".into()),
            compression: Some("lz4".into()),
            linger: Some(Duration::from_millis(20)),
            batch_size: Some(1 << 20),
            properties: vec![("client.id".into(), "x".into())],
        };
        let p = s.properties().unwrap();
        let get = |k: &str| p.iter().find(|(key, _)| key == k).map(|(_, v)| v.as_str());
        assert_eq!(get("acks"), Some("1"));
        assert_eq!(get("enable.idempotence"), Some("false"));
        assert_eq!(get("compression.type"), Some("lz4"));
        assert_eq!(get("linger.ms"), Some("20"));
        assert_eq!(get("batch.size"), Some("1048576"));
        assert_eq!(get("client.id"), Some("x"));
        assert!(ProducerSettings { acks: Some("2".into()), ..Default::default() }.properties().is_err());
        let zstd = ProducerSettings { compression: Some("zstd".into()), ..Default::default() }.properties();
        assert!(zstd.unwrap_err().contains("lz4"));
    }

    #[test]
    fn rate_error_is_relative_to_the_target() {
        let r = GenReport {
            sent: 1_020_000,
            delivered: 1_020_000,
            failed: 0,
            duplicates: 0,
            malformed: 0,
            late: 0,
            send_time: Duration::from_secs(102),
            total_time: Duration::from_secs(103),
            target_rate: 10_000,
        };
        assert!((r.send_rate() - 10_000.0).abs() < 1e-6);
        assert!(r.rate_error_percent().unwrap().abs() < 1e-9);
        assert_eq!(GenReport { target_rate: 0, ..r }.rate_error_percent(), None);
    }

    #[test]
    fn late_events_move_back_in_time() {
        let t = Timestamp { secs: 100, nanos: 500_000_000 };
        assert_eq!(t.minus_millis(1_600), Timestamp { secs: 98, nanos: 900_000_000 });
    }
}
