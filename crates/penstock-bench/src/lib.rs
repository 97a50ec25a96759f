//! Load generation and benchmarking for Penstock.
//!
//! - [`gen`]: the seed benchmark's `transactions` events produced to Kafka at a target
//!   rate (`penstock gen`), with duplicates, malformed and late events on request.
//! - [`run`]: `penstock bench` — ClickHouse's Kafka engine and Penstock side by side
//!   on the same broker, topics and data: freshness over time at fixed rates, a
//!   backlog drain, CPU per million events of every process, peak memory, the seed's
//!   query latencies, and the broker's raw ceilings measured in the same run.
//! - [`measure`] (percentiles, `/proc` CPU and memory) and [`report`] (Markdown, CSV,
//!   SVG) are pure and tested without services; [`patterns`] sets each pattern up.

pub mod ceiling;
pub mod environment;
pub mod gen;
pub mod measure;
pub mod patterns;
pub mod report;
pub mod run;
