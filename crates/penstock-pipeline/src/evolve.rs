//! `unknown_fields: add`: when a message carries a top-level field the schema does not
//! know, add a column for it while running, so nothing the producer sends is lost.
//!
//! Before the message joins a batch, its unknown fields are found (a second scan of
//! the message, paid only in this mode). For new ones: every open batch is sealed (a
//! batch never mixes column sets; inserts name their columns, so batches sealed
//! before the change still insert), the columns are added and recorded in
//! `penstock_schema_changes`, and the decoder and batch buffers are rebuilt with them.
//! A restarted process reads the record, so replays rebuild batches with the same
//! columns. Not while a pending batch is being replayed: it must be rebuilt exactly as
//! it was, so its unknown fields stay unknown until the replay is done.
//!
//! One limit: a batch sealed *before* a column was added, whose insert a crash left
//! pending, is replayed with the new column (NULL). Token mode (the token names the
//! offset range) and LandedOffsets mode (offsets are checked) still deliver it once;
//! ReplicatedBlocks mode, which compares block contents, could store it twice.

use penstock_clickhouse::ClickHouseClient;
use penstock_codec::{DecodeLimits, FieldSpec, JsonDecoder};
use penstock_config::ClickHouseSink;
use std::collections::HashSet;

/// What adding columns at run time needs.
#[derive(Debug)]
pub struct Evolver {
    pub(crate) client: ClickHouseClient,
    pub(crate) sink: ClickHouseSink,
    pub(crate) pipeline: String,
    /// The decoder's current fields.
    pub(crate) fields: Vec<FieldSpec>,
    pub(crate) limits: DecodeLimits,
    pub(crate) arrays_as_rows: bool,
    pub(crate) runtime: tokio::runtime::Handle,
    /// Fields whose column could not be added (not retried on every message).
    pub(crate) failed: HashSet<String>,
}

impl Evolver {
    /// The fields of `payload` that neither `decoder` nor a failed attempt knows.
    pub(crate) fn new_fields(&self, decoder: &mut JsonDecoder, payload: &[u8]) -> Vec<FieldSpec> {
        let mut new = decoder.unknown_fields(payload);
        new.retain(|f| !self.failed.contains(&f.column));
        new
    }

    /// Adds columns for `new` (after the last known one) and records the change; returns
    /// the decoder of the grown schema. On failure the error is logged and the fields
    /// are dropped from then on (`None`). The caller seals its open batches first: a
    /// batch never mixes column sets.
    pub(crate) fn add(&mut self, new: Vec<FieldSpec>) -> Option<JsonDecoder> {
        let after = self.fields.last().map(|f| f.column.clone()).unwrap_or_default();
        let added = self.runtime.block_on(crate::table::add_unknown_columns(
            &self.client,
            &self.sink,
            &self.pipeline,
            &new,
            &after,
        ));
        let mut fields = self.fields.clone();
        fields.extend(new.iter().cloned());
        let decoder = added
            .map_err(|e| e.to_string())
            .and_then(|()| JsonDecoder::new(fields.clone(), self.limits).map_err(|e| e.to_string()));
        match decoder {
            Ok(d) => {
                self.fields = fields;
                Some(d.with_arrays_as_rows(self.arrays_as_rows))
            }
            Err(e) => {
                let names: Vec<&str> = new.iter().map(|f| f.column.as_str()).collect();
                tracing::error!(fields = ?names, error = %e, "cannot add columns for new message fields; they are dropped");
                self.failed.extend(new.into_iter().map(|f| f.column));
                None
            }
        }
    }
}
