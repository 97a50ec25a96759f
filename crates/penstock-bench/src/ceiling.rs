//! The broker's raw rates, measured in the same run as everything else: what a bare
//! producer sending prepared messages achieves, and what a bare consumer (no group,
//! no processing) fetches. Every end-to-end figure is read against these.

use crate::gen::TransactionGenerator;
use crate::measure::procfs;
use penstock_codec::Timestamp;
use penstock_kafka::rdkafka::config::ClientConfig;
use penstock_kafka::rdkafka::consumer::{BaseConsumer, Consumer};
use penstock_kafka::rdkafka::{Message, Offset, TopicPartitionList};
use penstock_kafka::{CountingProducer, KafkaEdgeError, MetadataClient};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// A measured rate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    /// Messages moved.
    pub messages: u64,
    /// Seconds it took.
    pub seconds: f64,
    /// Mean message size, bytes.
    pub mean_bytes: f64,
    /// CPU-seconds of this process per million messages (consumer only).
    pub cpu_per_million: Option<f64>,
}

impl Rate {
    /// Messages per second.
    pub fn per_second(&self) -> f64 {
        self.messages as f64 / self.seconds.max(1e-9)
    }
}

/// Sends `messages` prepared `transactions` events to `topic` from `threads` threads
/// as fast as the producer goes, and waits for every acknowledgement.
pub fn raw_produce(
    producer: &CountingProducer,
    topic: &str,
    messages: u64,
    threads: usize,
) -> penstock_kafka::Result<Rate> {
    let mut generator = TransactionGenerator::new(0x5EED);
    let now = Timestamp { secs: 1_790_000_000, nanos: 0 };
    let pool: Vec<(String, String)> = (0..4096)
        .map(|_| {
            let (mut json, mut key) = (String::new(), String::new());
            generator.next_into(now, &mut json, &mut key);
            (json, key)
        })
        .collect();
    let mean_bytes = pool.iter().map(|(j, _)| j.len()).sum::<usize>() as f64 / pool.len() as f64;
    let before = producer.counts().delivered.load(Ordering::Relaxed);
    let threads = threads.max(1);
    let start = Instant::now();
    std::thread::scope(|scope| {
        let senders: Vec<_> = (0..threads)
            .map(|t| {
                let pool = &pool;
                scope.spawn(move || -> penstock_kafka::Result<()> {
                    for i in 0..crate::gen::thread_quota(messages, threads, t) {
                        let (json, key) = &pool[((i as usize) * threads + t) % pool.len()];
                        producer.send(topic, key.as_bytes(), json.as_bytes(), None)?;
                    }
                    Ok(())
                })
            })
            .collect();
        senders.into_iter().try_for_each(|s| s.join().expect("a producer thread panicked"))
    })?;
    producer.flush(Duration::from_secs(300))?;
    let seconds = start.elapsed().as_secs_f64();
    let delivered = producer.counts().delivered.load(Ordering::Relaxed) - before;
    Ok(Rate { messages: delivered, seconds, mean_bytes, cpu_per_million: None })
}

/// Fetches `expected` messages from the beginning of every partition of `topic` with a
/// bare consumer (assigned, no group), doing nothing with them.
pub fn raw_consume(brokers: &str, topic: &str, expected: u64, timeout: Duration) -> penstock_kafka::Result<Rate> {
    let meta = MetadataClient::new(brokers, &[], Duration::from_secs(10))?;
    let partitions = meta.topics(&[topic.to_string()])?.remove(0).partitions;
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "penstock-bench-raw")
        .set("enable.auto.commit", "false")
        // Penstock's own fetch settings, so the ceiling is the one Penstock could reach.
        .set("fetch.wait.max.ms", "10")
        .set("queued.max.messages.kbytes", "32768")
        .set("fetch.max.bytes", "16777216")
        .create()
        .map_err(|e| KafkaEdgeError::Config(e.to_string()))?;
    let mut list = TopicPartitionList::new();
    for p in partitions {
        list.add_partition_offset(topic, p, Offset::Beginning)?;
    }
    consumer.assign(&list)?;
    let me = std::process::id();
    let cpu_before = procfs::read(me);
    let start = Instant::now();
    let (mut seen, mut bytes) = (0u64, 0u64);
    while seen < expected && start.elapsed() < timeout {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                seen += 1;
                bytes += m.payload().map_or(0, <[u8]>::len) as u64;
            }
            Some(Err(e)) => tracing::warn!(error = %e, "raw consume"),
            None => {}
        }
    }
    let seconds = start.elapsed().as_secs_f64();
    let ticks = procfs::ticks_per_second();
    let cpu = cpu_before.zip(procfs::read(me)).map(|(a, b)| b.cpu_seconds(ticks) - a.cpu_seconds(ticks));
    Ok(Rate {
        messages: seen,
        seconds,
        mean_bytes: bytes as f64 / seen.max(1) as f64,
        cpu_per_million: cpu.map(|c| c / (seen.max(1) as f64 / 1e6)),
    })
}
