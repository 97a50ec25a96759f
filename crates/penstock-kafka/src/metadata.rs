//! Topic metadata and watermarks: does a topic exist, how many partitions, where are
//! its ends.

use crate::error::{KafkaEdgeError, Result};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;
use std::time::Duration;

/// A topic and its partition count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicInfo {
    /// Name.
    pub name: String,
    /// Partition ids.
    pub partitions: Vec<i32>,
}

/// A short-lived metadata client (a consumer that never subscribes).
pub struct MetadataClient {
    consumer: BaseConsumer,
    brokers: String,
    timeout: Duration,
}

impl MetadataClient {
    /// Connects lazily to `brokers` with extra librdkafka `properties`.
    pub fn new(brokers: &str, properties: &[(String, String)], timeout: Duration) -> Result<Self> {
        let mut cfg = ClientConfig::new();
        cfg.set("bootstrap.servers", brokers).set("client.id", "penstock-metadata");
        for (k, v) in properties {
            cfg.set(k, v);
        }
        let consumer = cfg.create().map_err(|e| KafkaEdgeError::Config(e.to_string()))?;
        Ok(MetadataClient { consumer, brokers: brokers.to_string(), timeout })
    }

    fn map_err(&self, e: KafkaError) -> KafkaEdgeError {
        match e.rdkafka_error_code() {
            Some(
                RDKafkaErrorCode::BrokerTransportFailure
                | RDKafkaErrorCode::AllBrokersDown
                | RDKafkaErrorCode::OperationTimedOut
                | RDKafkaErrorCode::Resolve,
            ) => KafkaEdgeError::Unreachable { brokers: self.brokers.clone(), detail: e.to_string() },
            _ => KafkaEdgeError::Client(e),
        }
    }

    /// Describes `topics`, failing on the first that does not exist.
    pub fn topics(&self, topics: &[String]) -> Result<Vec<TopicInfo>> {
        let md = self.consumer.fetch_metadata(None, self.timeout).map_err(|e| self.map_err(e))?;
        let known: Vec<&str> = md.topics().iter().map(|t| t.name()).collect();
        let mut out = Vec::new();
        for name in topics {
            match md.topics().iter().find(|t| t.name() == name) {
                Some(t) if t.error().is_none() && !t.partitions().is_empty() => out.push(TopicInfo {
                    name: name.clone(),
                    partitions: t.partitions().iter().map(|p| p.id()).collect(),
                }),
                _ => {
                    return Err(KafkaEdgeError::NoSuchTopic {
                        topic: name.clone(),
                        brokers: self.brokers.clone(),
                        known: known.iter().filter(|k| !k.starts_with("__")).take(10).map(|k| k.to_string()).collect(),
                    })
                }
            }
        }
        Ok(out)
    }

    /// Low and high watermark of one partition.
    pub fn watermarks(&self, topic: &str, partition: i32) -> Result<(i64, i64)> {
        self.consumer.fetch_watermarks(topic, partition, self.timeout).map_err(|e| self.map_err(e))
    }
}

/// Creates `topic` with `partitions` partitions unless it exists.
pub async fn ensure_topic(brokers: &str, topic: &str, partitions: i32, timeout: Duration) -> Result<()> {
    use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
    use rdkafka::client::DefaultClientContext;
    let mut cfg = ClientConfig::new();
    cfg.set("bootstrap.servers", brokers);
    let admin: AdminClient<DefaultClientContext> = cfg.create().map_err(|e| KafkaEdgeError::Config(e.to_string()))?;
    let opts = AdminOptions::new().operation_timeout(Some(timeout)).request_timeout(Some(timeout));
    let results = admin.create_topics(&[NewTopic::new(topic, partitions, TopicReplication::Fixed(1))], &opts).await?;
    for r in results {
        match r {
            Ok(_) => tracing::info!(topic, partitions, "topic created"),
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((t, code)) => return Err(KafkaEdgeError::Config(format!("cannot create topic {t}: {code}"))),
        }
    }
    Ok(())
}

/// Creates `topic` (`partitions`, `replication_factor`, topic `config`) with the
/// client `properties` of the pipeline; an existing topic is left as it is. A refusal
/// comes back with the broker's reason.
pub async fn create_topic(
    brokers: &str,
    properties: &[(String, String)],
    topic: &str,
    partitions: i32,
    replication_factor: i32,
    config: &[(String, String)],
    timeout: Duration,
) -> Result<()> {
    use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
    use rdkafka::client::DefaultClientContext;
    let mut cfg = ClientConfig::new();
    for (k, v) in properties {
        cfg.set(k, v);
    }
    cfg.set("bootstrap.servers", brokers);
    let admin: AdminClient<DefaultClientContext> = cfg.create().map_err(|e| KafkaEdgeError::Config(e.to_string()))?;
    let opts = AdminOptions::new().operation_timeout(Some(timeout)).request_timeout(Some(timeout));
    let mut new = NewTopic::new(topic, partitions, TopicReplication::Fixed(replication_factor));
    for (k, v) in config {
        new = new.set(k, v);
    }
    let results = admin
        .create_topics(&[new], &opts)
        .await
        .map_err(|e| KafkaEdgeError::Config(format!("cannot create topic `{topic}` on {brokers}: {e}")))?;
    for r in results {
        match r {
            Ok(_) => tracing::info!(topic, partitions, replication_factor, "topic created"),
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((t, code)) => {
                return Err(KafkaEdgeError::Config(format!(
                    "the broker refused to create topic `{t}` ({partitions} partitions, replication factor \
                     {replication_factor}): {code}"
                )))
            }
        }
    }
    Ok(())
}
