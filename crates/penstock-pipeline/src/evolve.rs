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

use crate::batch::Buffers;
use crate::origins::RowOrigins;
use crate::source::{Intake, LoopState};
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

impl Intake {
    /// Adds columns for the unknown fields of `payload`, if any (see the module docs).
    pub(crate) fn adopt_unknown_fields(&mut self, payload: &[u8], st: &mut LoopState) {
        let Some(ev) = &mut self.evolver else { return };
        if !self.replays.is_empty() {
            return;
        }
        let mut new = self.decoder.unknown_fields(payload);
        new.retain(|f| !ev.failed.contains(&f.column));
        if new.is_empty() {
            return;
        }
        self.batcher.seal_all(&mut st.sealed);
        let after = ev.fields.last().map(|f| f.column.clone()).unwrap_or_default();
        let added =
            ev.runtime.block_on(crate::table::add_unknown_columns(&ev.client, &ev.sink, &ev.pipeline, &new, &after));
        let mut fields = ev.fields.clone();
        fields.extend(new.iter().cloned());
        let decoder = added
            .map_err(|e| e.to_string())
            .and_then(|()| JsonDecoder::new(fields.clone(), ev.limits).map_err(|e| e.to_string()));
        match decoder {
            Ok(d) => {
                self.decoder = d.with_arrays_as_rows(ev.arrays_as_rows);
                ev.fields = fields;
                let dead = self.batcher.template().dead.empty_like();
                self.batcher.set_template(Buffers {
                    block: self.decoder.new_block(),
                    origins: RowOrigins::default(),
                    dead,
                });
            }
            Err(e) => {
                let names: Vec<&str> = new.iter().map(|f| f.column.as_str()).collect();
                tracing::error!(fields = ?names, error = %e, "cannot add columns for new message fields; they are dropped");
                ev.failed.extend(new.into_iter().map(|f| f.column));
            }
        }
    }
}
