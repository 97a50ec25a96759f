//! Reading a sample of a topic without joining a consumer group or committing anything
//! (for `penstock schema infer`): every partition from its oldest message, up to a
//! number of messages in total.

use crate::error::{KafkaEdgeError, Result};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use std::time::{Duration, Instant};

/// Reads up to `max` message payloads of `topic`, spread over its partitions from the
/// start, calling `progress(read)` as it goes; stops early when every partition is
/// exhausted or `timeout` passes without a message.
pub fn sample(
    brokers: &str,
    properties: &[(String, String)],
    topic: &str,
    partitions: usize,
    max: usize,
    timeout: Duration,
    mut progress: impl FnMut(usize),
) -> Result<Vec<Vec<u8>>> {
    let mut cfg = ClientConfig::new();
    cfg.set("bootstrap.servers", brokers)
        .set("group.id", "penstock-schema-infer")
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("fetch.wait.max.ms", "50")
        .set("enable.partition.eof", "true");
    for (k, v) in properties {
        cfg.set(k, v);
    }
    let consumer: BaseConsumer = cfg.create().map_err(KafkaEdgeError::Client)?;
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p as i32, Offset::Beginning).map_err(KafkaEdgeError::Client)?;
    }
    consumer.assign(&tpl).map_err(KafkaEdgeError::Client)?;
    let per_partition = max.div_ceil(partitions.max(1));
    let mut taken = vec![0usize; partitions];
    let mut done = vec![false; partitions];
    let mut out = Vec::with_capacity(max.min(100_000));
    let mut last = Instant::now();
    while out.len() < max && done.iter().any(|d| !d) && last.elapsed() < timeout {
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => {
                last = Instant::now();
                let p = m.partition() as usize;
                if p < partitions && !done[p] {
                    out.push(m.payload().unwrap_or_default().to_vec());
                    taken[p] += 1;
                    done[p] = taken[p] >= per_partition;
                    progress(out.len());
                }
            }
            Some(Err(rdkafka::error::KafkaError::PartitionEOF(p))) => {
                if let Some(d) = done.get_mut(p as usize) {
                    *d = true;
                }
            }
            Some(Err(e)) => return Err(KafkaEdgeError::Client(e)),
            None => {}
        }
    }
    Ok(out)
}
