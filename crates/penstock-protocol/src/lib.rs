//! Pure exactly-once decisions shared by Penstock's sources and sinks. No I/O: every
//! function here takes what the edges read (tails of output partitions, positions) and
//! returns what to do, so each decision is tested against a crash model without a server.
//!
//! - [`position`]: a row's place in its source's total order, and its header text;
//! - [`kafka_sink`]: exactly-once into Kafka without transactions — the recovery plan
//!   from the tails of the output partitions, and the acknowledged-prefix floor;
//! - [`streams`]: the same over several interleaved source streams (Kafka → Kafka), with
//!   the checkpoint header that bounds recovery's scan;
//! - [`ledger`]: exactly-once into ClickHouse — what to do with a partition given the
//!   ledger's last entry and the group's committed offset (the ledger's I/O is in
//!   `penstock-pipeline`'s `exactly_once` module);
//! - [`failpoint`]: the crash points fault tests abort the process at, one per step of
//!   these protocols (the only part that reads the environment).

pub mod failpoint;
pub mod kafka_sink;
pub mod ledger;
pub mod position;
pub mod streams;

pub use kafka_sink::{plan, AckWindow, ResumePlan, Tail};
pub use position::{Position, PositionParseError, PositionValue};
pub use streams::{
    destination_tails, plan_streams, Checkpoint, Decision, Recovered, StreamAckWindow, StreamMark, StreamSender,
};
