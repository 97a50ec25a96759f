//! The output topic of a Kafka sink: described, or created when missing and allowed.

use crate::error::PipelineError;
use penstock_config::{KafkaSink, TopicCreation};
use penstock_kafka::{KafkaEdgeError, MetadataClient};
use std::time::Duration;

/// Time limit of Kafka tail reads (and topic creation).
pub(crate) const KAFKA_TIMEOUT: Duration = Duration::from_secs(30);
/// Time limit of Kafka metadata requests during start-up (as for Kafka sources).
pub(crate) const METADATA_TIMEOUT: Duration = Duration::from_secs(10);

/// `topic`'s partition count on the sink's brokers; `None` when it is missing and may
/// be created. A missing topic that may not be created is refused with the way out.
pub(crate) async fn describe_topic(
    sink: &KafkaSink,
    topic: &str,
    may_create: bool,
) -> Result<Option<u32>, PipelineError> {
    let (s, t) = (sink.clone(), topic.to_string());
    let found = tokio::task::spawn_blocking(move || {
        MetadataClient::new(&s.brokers, &s.properties, METADATA_TIMEOUT)?.topics(std::slice::from_ref(&t))
    })
    .await
    .map_err(|e| PipelineError::Internal(e.to_string()))?;
    match found {
        Ok(t) => Ok(Some(t[0].partitions.len() as u32)),
        Err(KafkaEdgeError::NoSuchTopic { .. }) if may_create => Ok(None),
        Err(e @ KafkaEdgeError::NoSuchTopic { .. }) => {
            Err(PipelineError::Sink(format!("{e}; add `create: {{ partitions: N }}` to the Kafka sink")))
        }
        Err(e) => Err(e.into()),
    }
}

/// `topic`'s partition count, creating it with `create` when missing.
pub(crate) async fn prepare_topic(
    sink: &KafkaSink,
    topic: &str,
    create: Option<&TopicCreation>,
) -> Result<u32, PipelineError> {
    if let Some(n) = describe_topic(sink, topic, create.is_some()).await? {
        return Ok(n);
    }
    let c = create.expect("describe_topic returns None only when the topic may be created");
    penstock_kafka::create_topic(
        &sink.brokers,
        &sink.properties,
        topic,
        c.partitions,
        c.replication_factor,
        &c.config,
        KAFKA_TIMEOUT,
    )
    .await
    .map_err(|e| PipelineError::Sink(e.to_string()))?;
    // A new topic's metadata can lag its creation by a moment.
    for _ in 0..20 {
        if let Ok(Some(n)) = describe_topic(sink, topic, true).await {
            return Ok(n);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    Err(PipelineError::Sink(format!("topic `{topic}` was created but cannot be described")))
}
