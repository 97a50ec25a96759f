//! Penstock's codecs: pure functions from message bytes to ClickHouse column buffers,
//! and from column buffers to the bytes ClickHouse ingests. No I/O, no async.
//!
//! The hot path is: [`JsonDecoder::decode`] scans a message once and writes each
//! wanted value straight into its column's Native layout; a full [`Block`] is emitted
//! as Native by [`emit_native`] (borrowing the buffers), optionally through
//! [`Lz4BlockWriter`] for ClickHouse's block compression. No step allocates per event.
//!
//! ```
//! use penstock_codec::*;
//! let fields = vec![
//!     FieldSpec { column: "id".into(), ty: ColumnType::parse("UInt64").unwrap(),
//!                 source: ValueSource::Json("id".into()), required: true, on_error: OnError::Reject,
//!                 options: Default::default() },
//!     FieldSpec { column: "part".into(), ty: ColumnType::Int32,
//!                 source: ValueSource::Partition, required: false, on_error: OnError::Reject,
//!                 options: Default::default() },
//! ];
//! let mut decoder = JsonDecoder::new(fields, DecodeLimits::default()).unwrap();
//! let mut block = decoder.new_block();
//! let meta = MessageMeta { topic: "t", partition: 3, offset: 0, timestamp_ms: None, key: None,
//!                          now: Timestamp { secs: 0, nanos: 0 } };
//! decoder.decode(br#"{"id": 42}"#, &meta, &mut block).unwrap();
//! assert!(decoder.decode(br#"{"id": -1}"#, &meta, &mut block).is_err());
//! assert_eq!(block.rows(), 1);
//! let native = encode_native(&block);
//! assert_eq!(&native[..2], &[2, 1]); // 2 columns, 1 row
//! ```

pub mod column;
pub mod datetime;
pub mod decode;
pub mod encode;
pub mod error;
pub mod scalar;
pub mod types;
mod wide;

pub use column::{Block, Column};
pub use datetime::Timestamp;
pub use decode::json::path::{JsonPath, PathStep};
pub use decode::json::JsonDecoder;
pub use decode::native::{decode_native, NativeDecodeError};
pub use decode::{DecodeLimits, EpochUnit, FieldOptions, FieldSpec, MessageMeta, OnError, ValueSource};
pub use encode::json::{JsonEncodeError, JsonRowEncoder};
pub use encode::lz4::{decompress, Lz4BlockWriter};
pub use encode::native::{emit_native, encode_native};
pub use encode::rowbinary::encode_row_binary;
pub use error::{DecodeError, DecodeErrorKind, SchemaError};
pub use types::ColumnType;
