//! Encoding blocks for their destinations: ClickHouse Native (the insert format, with
//! optional LZ4 block compression), RowBinary, and one JSON object per row (the Kafka
//! sink).

pub(crate) mod columnar;
pub mod json;
pub mod lz4;
pub mod native;
pub mod rowbinary;
