//! Stage state on local disk, with a changelog in Kafka (see `docs/state.md`).
//!
//! - [`store`]: the store of one stage under the pipeline's `state.dir`, one
//!   directory per source partition, locked by one process;
//! - [`writer`]: the store's writer thread, the one owner of its partitions' runs:
//!   writes handed over by the source thread, coalesced, applied off it;
//! - [`view`]: what lookups read — an immutable picture of a partition's filters and
//!   runs, published by the writer after each write;
//! - [`runs`]: a partition's state on disk — sorted immutable runs per time bucket,
//!   a manifest replaced atomically with what the state covers, Bloom filters in
//!   memory; expired buckets dropped whole.
//! - [`restore`]: bringing a partition's state back from its changelog.
//! - [`changelog`]: every write also goes, first, to a Kafka topic, so a process that
//!   gets a partition without local state (another machine, a wiped disk) restores it.
//! - [`record`]: the byte layouts of entries, covers and changelog records (pure).
//!
//! Why not an embedded key-value engine: fjall (the candidate DESIGN.md measured) cost
//! ≈ 5.7 CPU-s per million rows here (2.4 µs a lookup and 2.4 µs a write through its
//! journal and memtable, plus compaction) against a bar of 0.3; dedup's state is
//! write-once sets expiring by time bucket, which sorted runs and a filter serve at a
//! fraction of that (BENCHMARKS.md "Dedup state").

pub mod changelog;
pub mod record;
pub mod restore;
pub mod runs;
pub mod store;
pub mod view;
pub mod writer;

pub use changelog::Changelog;
pub use restore::Restore;
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
