//! Measurement primitives: percentiles, process CPU and memory from `/proc`.

mod percentiles;
pub mod procfs;

pub use percentiles::{median, percentile, summarize, Summary};
pub use procfs::{ProcessMeter, ProcessReading};
