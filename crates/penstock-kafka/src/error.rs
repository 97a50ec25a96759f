//! Errors at the Kafka edge.

/// Result alias for this crate.
pub type Result<T, E = KafkaEdgeError> = std::result::Result<T, E>;

/// A Kafka operation that failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KafkaEdgeError {
    /// No broker answered.
    #[error("cannot reach the Kafka brokers at {brokers}: {detail}")]
    Unreachable {
        /// Bootstrap servers.
        brokers: String,
        /// librdkafka's description.
        detail: String,
    },
    /// A topic does not exist on the cluster.
    #[error("topic `{topic}` does not exist on {brokers}{}", if .known.is_empty() { String::new() } else { format!(" (existing topics: {})", .known.join(", ")) })]
    NoSuchTopic {
        /// Topic.
        topic: String,
        /// Bootstrap servers.
        brokers: String,
        /// Topics the cluster has (at most a few, for the message).
        known: Vec<String>,
    },
    /// The client could not be configured (bad property name or value).
    #[error("invalid Kafka client setting: {0}")]
    Config(String),
    /// Any other client error.
    #[error("Kafka error: {0}")]
    Client(#[from] rdkafka::error::KafkaError),
}
