//! Kafka → Kafka: messages decoded with the schema (types checked, undecodable ones to a
//! dead-letter topic), re-encoded as JSON, written to the output topic exactly once,
//! without Kafka transactions.
//!
//! ```text
//!  source partitions (one stream each)        session (idempotent, gap-less producer)
//!  assigned from the recovered positions ──►  decode → block → JSON, murmur2 partition
//!                                             headers: pipeline, position, checkpoint
//!        ▲                                           │
//!        └── resume per stream ◄── recovery: each output/dead-letter partition read
//!                                  back to its newest checkpoint
//! ```
//!
//! The protocol is `penstock_protocol::streams` (the ClickHouse → Kafka rule applied to
//! each source partition alone); the producing half is shared with [`crate::publish`].
//! The source group receives the floors as commits, for lag tools only: progress is
//! the output topics.
//!
//! - [`session`]: streams, destinations, and one producer session;
//! - [`run`]: preflight, recovery, the loop, shutdown.

pub mod run;
pub mod session;

pub use run::{check, run_relay, RelayCheck};
