//! A producer for `penstock gen` and the tests: librdkafka's threaded producer with
//! delivery tracking.

use crate::error::{KafkaEdgeError, Result};
use rdkafka::config::ClientConfig;
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::ClientContext;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Delivery counters shared with the producer's callback thread.
#[derive(Default, Debug)]
pub struct DeliveryCounts {
    /// Messages the broker acknowledged.
    pub delivered: AtomicU64,
    /// Messages that failed permanently.
    pub failed: AtomicU64,
}

/// Producer context counting deliveries.
pub struct CountingContext {
    counts: Arc<DeliveryCounts>,
}

impl ClientContext for CountingContext {}

impl ProducerContext for CountingContext {
    type DeliveryOpaque = ();
    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Ok(_) => self.counts.delivered.fetch_add(1, Ordering::Relaxed),
            Err((e, _)) => {
                tracing::warn!(error = %e, "message delivery failed");
                self.counts.failed.fetch_add(1, Ordering::Relaxed)
            }
        };
    }
}

/// A threaded producer that counts deliveries.
pub struct CountingProducer {
    inner: ThreadedProducer<CountingContext>,
    counts: Arc<DeliveryCounts>,
}

impl CountingProducer {
    /// A producer to `brokers` with extra librdkafka `properties`.
    pub fn new(brokers: &str, properties: &[(String, String)]) -> Result<Self> {
        let counts = Arc::new(DeliveryCounts::default());
        let mut cfg = ClientConfig::new();
        cfg.set("bootstrap.servers", brokers)
            .set("linger.ms", "5")
            .set("batch.size", "1000000")
            .set("queue.buffering.max.kbytes", "262144")
            .set("enable.idempotence", "true");
        for (k, v) in properties {
            cfg.set(k, v);
        }
        let inner = cfg
            .create_with_context(CountingContext { counts: counts.clone() })
            .map_err(|e| KafkaEdgeError::Config(e.to_string()))?;
        Ok(CountingProducer { inner, counts })
    }

    /// Delivery counters.
    pub fn counts(&self) -> &DeliveryCounts {
        &self.counts
    }

    /// Enqueues one message, waiting while librdkafka's queue is full.
    pub fn send(&self, topic: &str, key: &[u8], payload: &[u8], partition: Option<i32>) -> Result<()> {
        loop {
            let mut record = BaseRecord::to(topic).key(key).payload(payload);
            if let Some(p) = partition {
                record = record.partition(p);
            }
            match self.inner.send(record) {
                Ok(()) => return Ok(()),
                Err((e, _)) if e.rdkafka_error_code() == Some(rdkafka::types::RDKafkaErrorCode::QueueFull) => {
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err((e, _)) => return Err(e.into()),
            }
        }
    }

    /// Waits until every enqueued message is delivered or `timeout` passes.
    pub fn flush(&self, timeout: Duration) -> Result<()> {
        self.inner.flush(timeout)?;
        Ok(())
    }
}
