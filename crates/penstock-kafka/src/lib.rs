//! The Kafka edge of Penstock, on rdkafka (librdkafka).
//!
//! - [`batch_producer`]: a producer without a polling thread, for writers that send
//!   in rounds and flush (stage state's changelog);
//! - [`assigned`]: a consumer of an explicit assignment, for pipelines whose progress
//!   the sink owns (Kafka → Kafka);
//! - [`consumer`]: a group consumer with auto-commit off, rebalances reported to the
//!   pipeline through [`RebalanceHook`], explicit offsets for commits;
//! - [`lease`]: the writer lease of a Kafka sink (membership of a control group);
//! - [`metadata`]: topic existence, partitions and watermarks (for `check` and
//!   `--until-caught-up`);
//! - [`producer`]: a counting producer for `penstock gen` and tests;
//! - [`publish`]: the Kafka sink's idempotent, gap-less producer and tail reader;
//! - [`partitioner`]: the Java client's murmur2 partition of a key.

pub mod assigned;
pub mod batch_producer;
pub mod consumer;
pub mod error;
pub mod lease;
pub mod metadata;
pub mod partitioner;
pub mod producer;
pub mod publish;
pub mod sample;

pub use assigned::{AssignedConsumer, RawMessage, StartAt};
pub use batch_producer::BatchProducer;
pub use consumer::{subscribe, Commit, GroupConsumer, Partition, RebalanceHook};
pub use error::{KafkaEdgeError, Result};
pub use lease::{default_instance, WriterLease};
pub use metadata::{create_topic, MetadataClient, TopicInfo};
pub use partitioner::{murmur2, partition_for_key};
pub use producer::CountingProducer;
pub use publish::{read_recent, read_tails, Delivery, Publisher, QueueFull, Stamp, TailMessage};
/// For the tests and the bench's raw broker ceiling, which measure librdkafka itself;
/// the pipeline reaches Kafka only through this crate's types.
pub use rdkafka;
pub use sample::sample;
