//! Pipeline wiring: Kafka → decode → per-partition batches → ClickHouse → commit.
//!
//! ```text
//!  poll thread (source)                         tokio task (sink)
//!  ┌──────────────────────────────┐  bounded   ┌───────────────────────────────┐
//!  │ poll → decode into partition │  queue of  │ encode Native (+LZ4) → insert │
//!  │ batch → seal (rows/bytes/age)│──batches──►│ retry with capped backoff     │
//!  │ commit acknowledged offsets  │◄──acks─────│ acknowledge (epoch-checked)   │
//!  └──────────────────────────────┘  (shared)  └───────────────────────────────┘
//! ```
//!
//! Invariants: a batch is a contiguous offset range of one partition; offsets are
//! committed only after ClickHouse acknowledged every batch before them; nothing read
//! under an old ownership epoch is committed after a rebalance; when the queue is full,
//! consumption pauses (memory is bounded by configuration, not by backlog).
//! With `delivery: exactly_once` (the default), each batch is recorded in a ledger
//! table before it is inserted and deduplicated on replay (see [`exactly_once`]).

pub mod batch;
pub mod batcher;
pub mod catch_up;
pub mod dead_letter;
pub mod error;
pub mod evolve;
pub mod exactly_once;
pub use penstock_protocol::failpoint;
pub mod origins;
pub mod ownership;
pub mod publish;
pub mod rebalance;
pub mod relay;
pub mod repartition;
pub mod retry;
pub mod runner;
pub mod shared;
pub mod sink;
pub mod source;
pub mod staging;
pub mod stats;
pub mod stop;
pub mod table;
pub mod telemetry;

pub use error::PipelineError;
pub use runner::{preflight, run, RunOptions, RunSummary};
pub use stats::StatsSnapshot;
pub use stop::{Stop, StopReason};
