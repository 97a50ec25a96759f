//! The ClickHouse source's cursor: which rows come next, as SQL, and where a row sits.
//!
//! A cursor is a tuple of columns `(c1, c2, ...)`: `c1` monotone (a time, usually),
//! the rest making the tuple unique. The next batch is
//!
//! ```sql
//! SELECT <every column> FROM <table | (query)>
//! WHERE c1 >= v1 AND (c1, c2, ...) > (v1, v2, ...)      -- after the last row published
//!   AND c1 <= now() - <settle>                          -- settled, by the server's clock
//! ORDER BY c1, c2, ... LIMIT <batch_rows> FORMAT Native
//! ```
//!
//! with the tuple comparison spelled out (`c1 > v1 OR (c1 = v1 AND (...))`, which every
//! server version reads) and `c1 >= v1` in front so the primary key prunes granules.
//! Everything here is pure: SQL text in, positions out.

use crate::sql::{ident, literal, table_ref};
use penstock_codec::{Block, ColumnType};
use penstock_config::{ClickHouseSource, Relation};
use penstock_protocol::{Position, PositionValue};

/// Why a column cannot be a cursor column, or a value cannot be a position.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cursor column `{column}`: {reason}")]
pub struct CursorError {
    /// Column.
    pub column: String,
    /// What is wrong.
    pub reason: String,
}

/// The typed cursor of one source: column names with their server types.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    columns: Vec<(String, ColumnType)>,
    settle_secs: u64,
    /// Every column of the relation; `LowCardinality` ones cast to their plain type
    /// (ClickHouse 18.16 sends the dictionary encoding in Native whatever the settings).
    select: String,
}

/// True for the types a cursor can order by, with the reason when not.
fn check_orderable(ty: &ColumnType) -> Result<(), String> {
    match ty {
        t if t.is_integer() && t.fixed_width().is_some_and(|w| w <= 8) => Ok(()),
        ColumnType::Date
        | ColumnType::Date32
        | ColumnType::DateTime { .. }
        | ColumnType::DateTime64 { .. }
        | ColumnType::String => Ok(()),
        ColumnType::Nullable(_) => {
            Err(format!("{ty} can be NULL, and NULL rows would never be published: use a non-nullable column"))
        }
        other => Err(format!(
            "{other} is not a cursor type (use an integer up to 64 bits, Date, DateTime, DateTime64 or String column)"
        )),
    }
}

fn is_time(ty: &ColumnType) -> bool {
    matches!(ty, ColumnType::Date | ColumnType::Date32 | ColumnType::DateTime { .. } | ColumnType::DateTime64 { .. })
}

impl Cursor {
    /// The cursor of `source`, given the relation's columns (name, type) as the server
    /// reports them. Refuses missing or unorderable columns, and a settle delay on a
    /// cursor whose first column is not a time.
    pub fn new(source: &ClickHouseSource, relation_columns: &[(String, ColumnType)]) -> Result<Cursor, CursorError> {
        if source.block {
            return Ok(Self::block(relation_columns));
        }
        let mut columns = Vec::new();
        for name in &source.cursor {
            let Some((_, ty)) = relation_columns.iter().find(|(n, _)| n == name) else {
                let known: Vec<&str> = relation_columns.iter().map(|(n, _)| n.as_str()).collect();
                return Err(CursorError {
                    column: name.clone(),
                    reason: format!("no such column (the source has: {})", known.join(", ")),
                });
            };
            check_orderable(ty.storage()).map_err(|reason| CursorError { column: name.clone(), reason })?;
            columns.push((name.clone(), ty.storage().clone()));
        }
        if !source.settle.is_zero() && !is_time(&columns[0].1) {
            return Err(CursorError {
                column: columns[0].0.clone(),
                reason: format!(
                    "is {}, but a settle delay needs a Date, DateTime or DateTime64 first column (or `settle: 0s`)",
                    columns[0].1
                ),
            });
        }
        let select = select_list(relation_columns.iter());
        let settle_secs = source.settle.as_secs().max(u64::from(!source.settle.is_zero()));
        Ok(Cursor { columns, settle_secs, select })
    }

    /// `cursor: block`: the virtual columns `_block_number, _block_offset` (persisted
    /// by the table settings [`check_block_table`] asks for), selected after the
    /// relation's own columns; no settle delay.
    fn block(relation_columns: &[(String, ColumnType)]) -> Cursor {
        let columns: Vec<(String, ColumnType)> =
            BLOCK_COLUMNS.iter().map(|c| (c.to_string(), ColumnType::UInt64)).collect();
        let mut select = select_list(relation_columns.iter().filter(|(n, _)| !BLOCK_COLUMNS.contains(&n.as_str())));
        for (c, _) in &columns {
            select.push_str(", ");
            select.push_str(&ident(c));
        }
        Cursor { columns, settle_secs: 0, select }
    }

    /// The cursor columns and types.
    pub fn columns(&self) -> &[(String, ColumnType)] {
        &self.columns
    }

    /// The `FROM` part: the table, or the query as a subquery.
    pub fn from_sql(source: &ClickHouseSource) -> String {
        match &source.relation {
            Relation::Table(t) => table_ref(&source.database, t),
            Relation::Query(q) => format!("({q})"),
        }
    }

    /// A literal comparable with column `i`.
    fn literal(&self, i: usize, v: &PositionValue) -> String {
        let (_, ty) = &self.columns[i];
        match (ty, v) {
            (ColumnType::DateTime { .. }, PositionValue::Int(n)) => format!("toDateTime({n})"),
            (ColumnType::Date, PositionValue::Int(n)) => format!("toDate({n})"),
            (ColumnType::Date32, PositionValue::Int(n)) => format!("toDate32({n})"),
            (ColumnType::DateTime64 { precision, .. }, PositionValue::Int(n)) => {
                let scale = 10u128.pow(u32::from(*precision));
                let (sign, a) = (if *n < 0 { "-" } else { "" }, n.unsigned_abs());
                let (secs, frac) = (a / scale, a % scale);
                let p = usize::from(*precision);
                let text = if p == 0 { format!("{sign}{secs}") } else { format!("{sign}{secs}.{frac:0p$}") };
                format!("toDateTime64({}, {precision})", literal(&text))
            }
            (_, PositionValue::Int(n)) => n.to_string(),
            (_, PositionValue::Text(s)) => literal(s),
        }
    }

    /// `(c1, ...) > (v1, ...)` spelled out, with `c1 >= v1` in front for the primary key.
    fn after_sql(&self, after: &Position) -> String {
        let mut cond = String::new();
        for i in (0..self.columns.len()).rev() {
            let c = ident(&self.columns[i].0);
            let v = self.literal(i, &after.0[i]);
            cond =
                if cond.is_empty() { format!("{c} > {v}") } else { format!("{c} > {v} OR ({c} = {v} AND ({cond}))") };
        }
        format!("{} >= {} AND ({cond})", ident(&self.columns[0].0), self.literal(0, &after.0[0]))
    }

    /// The condition "settled by the server's clock", or `None` without a settle delay.
    fn settled_sql(&self) -> Option<String> {
        (self.settle_secs > 0).then(|| {
            let (c, ty) = &self.columns[0];
            let bound = format!("now() - {}", self.settle_secs);
            match ty {
                ColumnType::Date | ColumnType::Date32 => format!("{} <= toDate({bound})", ident(c)),
                _ => format!("{} <= {bound}", ident(c)),
            }
        })
    }

    /// The next batch: rows after `after` (all from the start when `None`), settled,
    /// in cursor order, at most `limit`.
    pub fn next_batch_sql(&self, source: &ClickHouseSource, after: Option<&Position>, limit: usize) -> String {
        let mut conds: Vec<String> = after.map(|a| self.after_sql(a)).into_iter().collect();
        conds.extend(self.settled_sql());
        let order: Vec<String> = self.columns.iter().map(|(c, _)| ident(c)).collect();
        format!(
            "SELECT {} FROM {}{} ORDER BY {} LIMIT {limit} FORMAT Native",
            self.select,
            Self::from_sql(source),
            if conds.is_empty() { String::new() } else { format!(" WHERE {}", conds.join(" AND ")) },
            order.join(", ")
        )
    }

    /// Counts the rows in `(after, upto]` (for the late-row detector: a closed range
    /// counted again).
    pub fn count_range_sql(&self, source: &ClickHouseSource, after: Option<&Position>, upto: &Position) -> String {
        let mut conds: Vec<String> = after.map(|a| self.after_sql(a)).into_iter().collect();
        // NOT (tuple > upto) == tuple <= upto.
        conds.push(format!("NOT ({})", self.after_sql(upto)));
        format!("SELECT count() FROM {} WHERE {} FORMAT TSV", Self::from_sql(source), conds.join(" AND "))
    }

    /// The position of the newest settled row — the source's end for `--until-caught-up`
    /// and lag — as a query returning one Native row of cursor values (no row when the
    /// source is empty).
    pub fn end_sql(&self, source: &ClickHouseSource) -> String {
        let cols: Vec<String> = self.columns.iter().map(|(c, _)| ident(c)).collect();
        let desc: Vec<String> = cols.iter().map(|c| format!("{c} DESC")).collect();
        format!(
            "SELECT {} FROM {}{} ORDER BY {} LIMIT 1 FORMAT Native",
            cols.join(", "),
            Self::from_sql(source),
            self.settled_sql().map(|s| format!(" WHERE {s}")).unwrap_or_default(),
            desc.join(", ")
        )
    }

    /// The position of row `row` of a block that holds the cursor columns.
    pub fn position_of(&self, block: &Block, indexes: &[usize], row: usize) -> Result<Position, CursorError> {
        let mut values = Vec::with_capacity(indexes.len());
        for (&i, (name, ty)) in indexes.iter().zip(&self.columns) {
            let bytes = block.columns()[i].value_bytes(row);
            values.push(value_of(ty, bytes).map_err(|reason| CursorError { column: name.clone(), reason })?);
        }
        Ok(Position(values))
    }

    /// The indexes in `block` of the cursor columns, in cursor order.
    pub fn indexes_in(&self, block: &Block) -> Result<Vec<usize>, CursorError> {
        self.columns
            .iter()
            .map(|(name, ty)| {
                let i = block.columns().iter().position(|c| c.name() == name).ok_or_else(|| CursorError {
                    column: name.clone(),
                    reason: "missing from the rows the source returned".into(),
                })?;
                if !block.columns()[i].column_type().storage().stores_same_values(ty) {
                    return Err(CursorError {
                        column: name.clone(),
                        reason: format!("returned as {}, expected {ty}", block.columns()[i].column_type()),
                    });
                }
                Ok(i)
            })
            .collect()
    }
}

/// The select list of `columns`, `LowCardinality` ones cast to their plain type.
fn select_list<'a>(columns: impl Iterator<Item = &'a (String, ColumnType)>) -> String {
    columns
        .map(|(name, ty)| match ty {
            ColumnType::LowCardinality(inner) => format!("CAST({} AS {inner}) AS {}", ident(name), ident(name)),
            _ => ident(name),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The cursor columns of `cursor: block`.
pub const BLOCK_COLUMNS: [&str; 2] = ["_block_number", "_block_offset"];

/// Whether a table can be read with `cursor: block`, from its `SHOW CREATE TABLE`
/// text: a plain MergeTree (block numbers are given out at commit, under the table's
/// lock, so they follow commit order; Replicated tables allocate them before the
/// insert commits) persisting both block columns. The error says what to change.
pub fn check_block_table(table: &str, create: &str) -> Result<(), String> {
    let create = create.replace("\\n", " ").replace("\\'", "'");
    let squeezed: String = create.split_whitespace().collect::<Vec<_>>().join(" ");
    let engine = squeezed.split("ENGINE = ").nth(1).and_then(|e| e.split(['(', ' ']).next()).unwrap_or("");
    if engine != "MergeTree" {
        return Err(format!(
            "`cursor: block` needs a plain MergeTree table ({table} is {}): block numbers follow commit order \
             only there; use `cursor: {{ columns: [...], settle: 10s }}`",
            if engine.is_empty() { "not a MergeTree table" } else { engine }
        ));
    }
    let missing: Vec<&str> = ["enable_block_number_column", "enable_block_offset_column"]
        .into_iter()
        .filter(|s| !(squeezed.contains(&format!("{s} = 1")) || squeezed.contains(&format!("{s} = true"))))
        .collect();
    if !missing.is_empty() {
        return Err(format!(
            "`cursor: block` needs the table to persist its block numbers: \
             ALTER TABLE {table} MODIFY SETTING {} (ClickHouse 24.4 or later; \
             parts written before keep no block numbers until merged — or use `cursor: {{ columns, settle }}`)",
            missing.iter().map(|s| format!("{s} = 1")).collect::<Vec<_>>().join(", ")
        ));
    }
    Ok(())
}

/// A position value from a column value's Native bytes.
fn value_of(ty: &ColumnType, b: &[u8]) -> Result<PositionValue, String> {
    let int = |v: i128| Ok(PositionValue::Int(v));
    let le = |n: usize| -> Result<[u8; 8], String> {
        let mut out = [0u8; 8];
        out[..n].copy_from_slice(b.get(..n).ok_or("value too short")?);
        Ok(out)
    };
    match ty {
        ColumnType::UInt8 | ColumnType::UInt16 | ColumnType::UInt32 | ColumnType::UInt64 => {
            int(i128::from(u64::from_le_bytes(le(ty.fixed_width().expect("fixed"))?)))
        }
        ColumnType::Date => int(i128::from(u64::from_le_bytes(le(2)?))),
        ColumnType::DateTime { .. } => int(i128::from(u64::from_le_bytes(le(4)?))),
        ColumnType::Int8 => int(i128::from(i8::from_le_bytes([b[0]]))),
        ColumnType::Int16 => int(i128::from(i16::from_le_bytes(le(2)?[..2].try_into().expect("2")))),
        ColumnType::Int32 | ColumnType::Date32 => {
            int(i128::from(i32::from_le_bytes(le(4)?[..4].try_into().expect("4"))))
        }
        ColumnType::Int64 | ColumnType::DateTime64 { .. } => int(i128::from(i64::from_le_bytes(le(8)?))),
        ColumnType::String => {
            let mut rest = b;
            let mut len = 0usize;
            let mut shift = 0;
            loop {
                let (&byte, r) = rest.split_first().ok_or("truncated string")?;
                rest = r;
                len |= usize::from(byte & 0x7f) << shift;
                shift += 7;
                if byte & 0x80 == 0 {
                    break;
                }
            }
            let s = std::str::from_utf8(rest.get(..len).ok_or("truncated string")?)
                .map_err(|_| "a String cursor value is not UTF-8".to_string())?;
            Ok(PositionValue::Text(s.to_string()))
        }
        other => Err(format!("{other} is not a cursor type")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use penstock_codec::Column;
    use std::time::Duration;

    fn source(settle: u64) -> ClickHouseSource {
        ClickHouseSource {
            url: "http://x".into(),
            database: "db".into(),
            relation: Relation::Table("t".into()),
            user: "default".into(),
            password: None,
            cursor: vec!["ts".into(), "p".into(), "o".into()],
            block: false,
            settle: Duration::from_secs(settle),
            start: penstock_config::SourceStart::Beginning,
            poll_interval: Duration::from_secs(1),
            batch_rows: 10,
            late_check: None,
            timeout: Duration::from_secs(1),
        }
    }

    fn columns() -> Vec<(String, ColumnType)> {
        vec![
            ("id".into(), ColumnType::Uuid),
            ("ts".into(), ColumnType::parse("DateTime('UTC')").unwrap()),
            ("p".into(), ColumnType::Int32),
            ("o".into(), ColumnType::Int64),
            ("f".into(), ColumnType::Float64),
            ("n".into(), ColumnType::parse("Nullable(UInt64)").unwrap()),
            ("lc".into(), ColumnType::parse("LowCardinality(String)").unwrap()),
        ]
    }

    #[test]
    fn next_batch_sql_spells_out_the_tuple() {
        let s = source(10);
        let c = Cursor::new(&s, &columns()).unwrap();
        assert_eq!(
            c.next_batch_sql(&s, None, 10),
            "SELECT `id`, `ts`, `p`, `o`, `f`, `n`, CAST(`lc` AS String) AS `lc` FROM `db`.`t` WHERE `ts` <= now() - 10 ORDER BY `ts`, `p`, `o` LIMIT 10 FORMAT Native"
        );
        let after = Position(vec![PositionValue::Int(100), PositionValue::Int(3), PositionValue::Int(7)]);
        assert_eq!(
            c.next_batch_sql(&s, Some(&after), 5),
            "SELECT `id`, `ts`, `p`, `o`, `f`, `n`, CAST(`lc` AS String) AS `lc` FROM `db`.`t` WHERE `ts` >= toDateTime(100) AND (`ts` > toDateTime(100) OR (`ts` = toDateTime(100) \
             AND (`p` > 3 OR (`p` = 3 AND (`o` > 7))))) AND `ts` <= now() - 10 ORDER BY `ts`, `p`, `o` LIMIT 5 FORMAT Native"
        );
        assert!(c.count_range_sql(&s, Some(&after), &after).contains("NOT (`ts` >= toDateTime(100)"));
        assert!(c.end_sql(&s).ends_with("ORDER BY `ts` DESC, `p` DESC, `o` DESC LIMIT 1 FORMAT Native"));
    }

    #[test]
    fn refuses_what_cannot_be_a_cursor() {
        let mut s = source(10);
        s.cursor = vec!["nope".into()];
        assert!(Cursor::new(&s, &columns()).unwrap_err().reason.contains("no such column"));
        s.cursor = vec!["ts".into(), "f".into()];
        assert!(Cursor::new(&s, &columns()).unwrap_err().reason.contains("not a cursor type"));
        s.cursor = vec!["ts".into(), "n".into()];
        assert!(Cursor::new(&s, &columns()).unwrap_err().reason.contains("NULL"));
        s.cursor = vec!["o".into()];
        assert!(Cursor::new(&s, &columns()).unwrap_err().reason.contains("settle"));
        s.settle = Duration::ZERO;
        assert!(Cursor::new(&s, &columns()).is_ok());
    }

    #[test]
    fn positions_from_rows() {
        let s = source(0);
        let c = Cursor::new(&s, &columns()).unwrap();
        let mut b = Block::new(vec![
            Column::new("o", ColumnType::Int64),
            // 18.16 sends DateTime('UTC') columns as plain DateTime in Native.
            Column::new("ts", ColumnType::parse("DateTime").unwrap()),
            Column::new("p", ColumnType::Int32),
        ]);
        b.columns_mut()[0].push_fixed(&(-5i64).to_le_bytes());
        b.columns_mut()[1].push_fixed(&1_764_583_872u32.to_le_bytes());
        b.columns_mut()[2].push_fixed(&3i32.to_le_bytes());
        b.commit_row();
        let idx = c.indexes_in(&b).unwrap();
        assert_eq!(idx, vec![1, 2, 0]);
        assert_eq!(c.position_of(&b, &idx, 0).unwrap().to_header(), "[1764583872,3,-5]");
    }

    #[test]
    fn block_cursor_selects_the_virtual_columns_without_settle() {
        let mut s = source(0);
        s.block = true;
        s.cursor = BLOCK_COLUMNS.iter().map(|c| c.to_string()).collect();
        let c = Cursor::new(&s, &columns()).unwrap();
        let after = Position(vec![PositionValue::Int(4), PositionValue::Int(9)]);
        assert_eq!(
            c.next_batch_sql(&s, Some(&after), 100),
            "SELECT `id`, `ts`, `p`, `o`, `f`, `n`, CAST(`lc` AS String) AS `lc`, `_block_number`, `_block_offset` \
             FROM `db`.`t` WHERE `_block_number` >= 4 AND (`_block_number` > 4 OR (`_block_number` = 4 AND (`_block_offset` > 9))) \
             ORDER BY `_block_number`, `_block_offset` LIMIT 100 FORMAT Native"
        );
    }

    #[test]
    fn block_tables_must_be_plain_merge_trees_persisting_block_numbers() {
        let good = "CREATE TABLE db.t\\n(\\n    `id` UInt64\\n)\\nENGINE = MergeTree\\nORDER BY id\\nSETTINGS enable_block_number_column = 1, enable_block_offset_column = 1, index_granularity = 8192";
        assert_eq!(check_block_table("db.t", good), Ok(()));
        let e = check_block_table(
            "db.t",
            &good.replace("enable_block_offset_column = 1", "enable_block_offset_column = 0"),
        )
        .unwrap_err();
        assert!(e.contains("ALTER TABLE db.t MODIFY SETTING enable_block_offset_column = 1 ("), "{e}");
        let e =
            check_block_table("db.t", "CREATE TABLE db.t (`id` UInt64) ENGINE = MergeTree(d, id, 8192)").unwrap_err();
        assert!(e.contains("enable_block_number_column = 1, enable_block_offset_column = 1"), "{e}");
        let e = check_block_table("db.t", &good.replace("MergeTree", "ReplicatedMergeTree('/p', 'r')")).unwrap_err();
        assert!(e.contains("is ReplicatedMergeTree"), "{e}");
    }

    #[test]
    fn date_time64_literals_are_exact() {
        let mut s = source(0);
        s.cursor = vec!["t".into()];
        let c = Cursor::new(&s, &[("t".into(), ColumnType::parse("DateTime64(3)").unwrap())]).unwrap();
        assert_eq!(c.literal(0, &PositionValue::Int(1_764_583_872_005)), "toDateTime64('1764583872.005', 3)");
        assert_eq!(c.literal(0, &PositionValue::Int(-1)), "toDateTime64('-0.001', 3)");
    }
}
