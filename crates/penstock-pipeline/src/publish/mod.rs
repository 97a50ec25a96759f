//! ClickHouse → Kafka: rows of a ClickHouse table (or query) published to a Kafka topic
//! in cursor order, exactly once, without Kafka transactions.
//!
//! ```text
//!  reader (ClickHouse, Native)        session (idempotent, gap-less producer)
//!  SELECT … WHERE cursor > last  ──►  row → JSON, key, murmur2 partition,
//!  settled by the server's clock      headers: pipeline, position, floor
//!        ▲                                   │ delivery reports → AckWindow (floor)
//!        └──── resume after the plan ◄── recovery: tails of every output partition
//! ```
//!
//! Progress belongs to the sink: nothing is stored besides the output topic itself.
//! The decision (what landed, where to resume) is `penstock_protocol::kafka_sink`; this
//! module carries it out.
//!
//! - [`reader`]: cursor queries against ClickHouse, late-row detection;
//! - [`driver`]: the worker thread, the session loop and the shutdown, shared too;
//! - [`outbox`]: the producing half of a session, shared with Kafka → Kafka;
//! - [`session`]: one producer session — send, track acknowledgements, end on error;
//! - [`run`]: preflight checks, recovery, the loop, shutdown.

pub mod driver;
pub mod outbox;
pub mod reader;
pub mod run;
pub mod session;
pub mod stats;
pub mod topic;

pub use run::{check, run_publication, PublicationCheck};
pub use stats::{PublishSnapshot, PublishStats};
