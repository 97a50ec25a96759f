//! ClickHouse over HTTP(S): the sink edge of Penstock.
//!
//! - [`insert`]: a block becomes an [`InsertRequest`] (Native or RowBinary, optionally
//!   in ClickHouse's LZ4 block framing) — pure, so a retry resends identical bytes;
//! - [`client`]: sends queries and inserts; no hidden retries or background tasks;
//! - [`error`]: server exceptions parsed, and [`ClickHouseError::retry_hint`] as the
//!   single place that decides what is worth retrying;
//! - [`table_check`]: compares the pipeline schema with `system.columns`;
//! - [`ddl`]: CREATE/ALTER statements generated from a schema, and which type changes
//!   are safe widenings;
//! - [`cursor`]: the ClickHouse source's cursor queries and row positions (pure);
//! - [`sql`]: identifier and literal quoting for every generated statement.

pub mod client;
pub mod cursor;
pub mod ddl;
pub mod error;
pub mod insert;
pub mod sql;
pub mod table_check;

pub use client::ClickHouseClient;
pub use cursor::{Cursor, CursorError};
pub use error::{ClickHouseError, Result, RetryHint};
pub use insert::{build_insert, InsertRequest};
pub use table_check::{compare, plan_evolution, Evolution, Mismatch, ServerColumn};
