//! The Kafka edge of Penstock, on rdkafka (librdkafka).
//!
//! - [`consumer`]: a group consumer with auto-commit off, rebalances reported to the
//!   pipeline through [`RebalanceHook`], explicit offset lists for commits;
//! - [`metadata`]: topic existence, partitions and watermarks (for `check` and
//!   `--until-caught-up`);
//! - [`producer`]: a counting producer for `penstock gen` and tests.

pub mod consumer;
pub mod error;
pub mod metadata;
pub mod producer;
pub mod sample;

pub use consumer::{committed, offset_list, subscribe, Partition, RebalanceHook, SourceConsumer};
pub use error::{KafkaEdgeError, Result};
pub use metadata::{MetadataClient, TopicInfo};
pub use producer::CountingProducer;
pub use rdkafka;
pub use sample::sample;
