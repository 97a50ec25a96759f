//! Exactly-once delivery into ClickHouse: a ledger of batch ranges in ClickHouse
//! itself, a pure recovery decision, and server-side deduplication chosen by what the
//! server and table can do. See `docs/exactly-once.md` for the state machine and why
//! every crash point is safe.

/// The recovery decision is pure and lives with the other exactly-once decisions.
pub use penstock_protocol::ledger as decision;
pub mod ledger;
pub mod mode;
pub mod recovery;
