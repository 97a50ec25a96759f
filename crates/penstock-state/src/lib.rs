//! Stage state on local disk, with a changelog in Kafka (see `docs/state.md`).
//!
//! - [`store`]: the embedded store of one stage (one fjall database under the
//!   pipeline's `state.dir`), one time bucket per keyspace so expired buckets are
//!   dropped whole; what each partition's state covers is written in the same atomic,
//!   synced batch as its entries.
//! - [`changelog`]: every write also goes, first, to a Kafka topic, so a process that
//!   gets a partition without local state (another machine, a wiped disk) restores it.
//! - [`record`]: the byte layouts of entries, covers and changelog records (pure).
//!
//! The store is chosen by measurement and compile cost (DESIGN.md "Transforms and
//! state"): fjall is pure Rust, builds in ~40 s here, and its block cache bounds the
//! memory whatever the key count.

pub mod changelog;
pub mod record;
pub mod store;

pub use changelog::Changelog;
pub use store::{StateSettings, StateStore};

/// Why state cannot be opened, written or restored.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// The state directory cannot be created, locked or written.
    #[error("state directory `{dir}`: {message}")]
    Directory {
        /// The directory.
        dir: String,
        /// What failed.
        message: String,
    },
    /// The store failed.
    #[error("state store: {0}")]
    Store(String),
    /// The changelog topic cannot be written or read.
    #[error("changelog `{topic}`: {message}")]
    Changelog {
        /// The topic.
        topic: String,
        /// What failed.
        message: String,
    },
}
