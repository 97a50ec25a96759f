//! One writer per pipeline into Kafka, without transactions: a **writer lease** held by
//! membership of a control consumer group.
//!
//! Every process of a pipeline joins the group `penstock-<pipeline>-writer`, subscribed
//! to the output topic; the member the group assigns **partition 0** is the writer. The
//! others wait; when the writer leaves (stopped) or is evicted (killed: after the
//! group's 10 s session timeout, on brokers that evict — Tansu keeps killed members'
//! partitions) another member gets partition 0 and takes over.
//! Assigned partitions are paused at once: the lease never reads the topic.
//!
//! Membership is dynamic. Static membership (`group.instance.id`) would let a process
//! restarted after `kill -9` take its own place at once, but Tansu, the broker here,
//! revokes static members' assignments in a loop (seen 2026-12-01), so it is not used.
//!
//! The hole (docs/exactly-once.md): a writer that stalls longer than the session timeout
//! loses the lease without knowing it until it is polled again; messages it had already
//! handed to librdkafka may still land after the next writer recovered.

use crate::error::{KafkaEdgeError, Result};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance};
use rdkafka::{ClientContext, TopicPartitionList};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Debug, Default)]
struct LeaseState {
    held: AtomicBool,
    /// Assignments and revocations seen (for "is the group settling at all").
    rebalances: AtomicU64,
}

struct LeaseContext {
    state: Arc<LeaseState>,
    topic: String,
}

impl ClientContext for LeaseContext {}

fn holds_zero(tpl: &TopicPartitionList, topic: &str) -> bool {
    tpl.elements().iter().any(|e| e.topic() == topic && e.partition() == 0)
}

impl ConsumerContext for LeaseContext {
    fn pre_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        // Give the lease up before the partition goes, never after.
        if let Rebalance::Revoke(tpl) = rebalance {
            if holds_zero(tpl, &self.topic) {
                self.state.held.store(false, Ordering::SeqCst);
            }
        }
        if let Rebalance::Error(_) = rebalance {
            self.state.held.store(false, Ordering::SeqCst);
        }
    }

    fn post_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        self.state.rebalances.fetch_add(1, Ordering::Relaxed);
        if let Rebalance::Assign(tpl) = rebalance {
            let _ = consumer.pause(tpl);
            if holds_zero(tpl, &self.topic) {
                self.state.held.store(true, Ordering::SeqCst);
            }
        }
    }
}

/// Membership of the writer group.
pub struct WriterLease {
    consumer: BaseConsumer<LeaseContext>,
    state: Arc<LeaseState>,
    group: String,
    instance: String,
}

impl WriterLease {
    /// Joins the writer group of `pipeline` as `instance`, on `topic` (the output topic)
    /// of `brokers`, with the sink's `properties` that apply to consumers (security).
    pub fn join(
        brokers: &str,
        properties: &[(String, String)],
        pipeline: &str,
        instance: &str,
        topic: &str,
    ) -> Result<Self> {
        let mut cfg = ClientConfig::new();
        for (k, v) in properties {
            if k.starts_with("security.") || k.starts_with("sasl.") || k.starts_with("ssl.") {
                cfg.set(k, v);
            }
        }
        let group = format!("penstock-{pipeline}-writer");
        cfg.set("bootstrap.servers", brokers)
            .set("group.id", &group)
            .set("client.id", format!("penstock-{pipeline}-lease-{instance}"))
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("session.timeout.ms", "10000")
            .set("heartbeat.interval.ms", "1000")
            .set("fetch.wait.max.ms", "10");
        let state = Arc::new(LeaseState::default());
        let consumer: BaseConsumer<LeaseContext> = cfg
            .create_with_context(LeaseContext { state: state.clone(), topic: topic.to_string() })
            .map_err(|e| KafkaEdgeError::Config(e.to_string()))?;
        consumer.subscribe(&[topic])?;
        Ok(WriterLease { consumer, state, group, instance: instance.to_string() })
    }

    /// Serves the group's protocol (heartbeats run by themselves; rebalances need this).
    /// Call often: at least every few seconds.
    pub fn poll(&self) {
        // Paused partitions deliver nothing; an error here is a group event, seen in
        // `held` through the rebalance callbacks.
        let _ = self.consumer.poll(Duration::ZERO);
    }

    /// True while this process is the writer.
    pub fn held(&self) -> bool {
        self.state.held.load(Ordering::SeqCst)
    }

    /// Polls until the lease is held, `timeout` passes, or `stop()` says so.
    pub fn wait(&self, timeout: Duration, stop: impl Fn() -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        while !self.held() && Instant::now() < deadline && !stop() {
            let _ = self.consumer.poll(Duration::from_millis(50));
        }
        self.held()
    }

    /// Rebalances seen so far.
    pub fn rebalances(&self) -> u64 {
        self.state.rebalances.load(Ordering::Relaxed)
    }

    /// The group.
    pub fn group(&self) -> &str {
        &self.group
    }

    /// This member's instance name.
    pub fn instance(&self) -> &str {
        &self.instance
    }
}

/// This process's instance name for `pipeline` (in logs and the lease's client id):
/// `$PENSTOCK_INSTANCE` when set, else `<host>-<pid>`.
pub fn default_instance() -> String {
    if let Ok(i) = std::env::var("PENSTOCK_INSTANCE") {
        if !i.trim().is_empty() {
            return i.trim().to_string();
        }
    }
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into());
    format!("{host}-{}", std::process::id())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lease_is_partition_zero_of_the_output_topic() {
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition("out", 1);
        tpl.add_partition("other", 0);
        assert!(!holds_zero(&tpl, "out"));
        tpl.add_partition("out", 0);
        assert!(holds_zero(&tpl, "out"));
    }

    #[test]
    fn the_instance_name_comes_from_the_environment_or_the_host_and_pid() {
        let name = default_instance();
        assert!(!name.is_empty());
        if std::env::var("PENSTOCK_INSTANCE").is_err() {
            assert!(name.ends_with(&format!("-{}", std::process::id())), "{name}");
        }
    }
}
