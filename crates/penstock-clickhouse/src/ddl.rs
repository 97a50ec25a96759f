//! DDL Penstock generates: creating a pipeline's database and table from its schema, and
//! evolving the table when the schema gains columns. Pure functions from a
//! pipeline's schema and `create:` settings to SQL text.
//!
//! Names come from pipeline files and topics, i.e. from outside: every identifier goes
//! through [`ident`] and every literal through [`literal`], so a column called
//! `x; DROP TABLE t` is just an odd column name. Expressions the pipeline author writes
//! on purpose (`PARTITION BY`, `TTL`, an `ORDER BY` item that is not a column name) are
//! SQL by design and passed as written.

use crate::sql::{ident, literal, table_ref};
use penstock_codec::{ColumnType, FieldSpec};
use penstock_config::{SqlTerm, TableCreation};

/// One column of a table to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnDef {
    /// Name.
    pub name: String,
    /// Type.
    pub ty: ColumnType,
    /// Compression codec expression, e.g. `Delta, ZSTD(1)` (without `CODEC(...)`).
    pub codec: Option<String>,
}

/// The columns Penstock creates for a pipeline: one per schema field, with the
/// codecs the schema gives.
pub fn columns_for(fields: &[FieldSpec], creation: &TableCreation) -> Vec<ColumnDef> {
    fields
        .iter()
        .map(|f| ColumnDef {
            name: f.column.clone(),
            ty: f.ty.clone(),
            codec: creation.codecs.iter().find(|(c, _)| *c == f.column).map(|(_, codec)| codec.clone()),
        })
        .collect()
}

fn render(t: &SqlTerm) -> String {
    match t {
        SqlTerm::Column(c) => ident(c),
        SqlTerm::Expr(e) => e.clone(),
    }
}

fn on_cluster(cluster: &Option<String>) -> String {
    cluster.as_ref().map(|c| format!(" ON CLUSTER {}", ident(c))).unwrap_or_default()
}

/// `CREATE DATABASE IF NOT EXISTS`.
pub fn create_database_sql(database: &str, cluster: &Option<String>) -> String {
    format!("CREATE DATABASE IF NOT EXISTS {}{}", ident(database), on_cluster(cluster))
}

/// A setting value as SQL: numbers as they are, anything else as a string literal.
fn setting_value(v: &str) -> String {
    if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        v.to_string()
    } else {
        literal(v)
    }
}

/// `CREATE TABLE IF NOT EXISTS database.table (columns) ENGINE = ...` as `c` says.
pub fn create_table_sql(database: &str, table: &str, columns: &[ColumnDef], c: &TableCreation) -> String {
    let columns: Vec<String> = columns.iter().map(column_sql).collect();
    let list = |terms: &[SqlTerm]| match terms {
        [] => "tuple()".to_string(),
        [one] => render(one),
        many => format!("({})", many.iter().map(render).collect::<Vec<_>>().join(", ")),
    };
    let args: Vec<String> = c.engine_args.iter().map(render).collect();
    let mut sql = format!(
        "CREATE TABLE IF NOT EXISTS {}{}\n(\n{}\n)\nENGINE = {}({})",
        table_ref(database, table),
        on_cluster(&c.on_cluster),
        columns.join(",\n"),
        c.engine,
        args.join(", ")
    );
    if let Some(p) = &c.partition_by {
        sql.push_str(&format!("\nPARTITION BY {p}"));
    }
    sql.push_str(&format!("\nORDER BY {}", list(&c.order_by)));
    if !c.primary_key.is_empty() {
        sql.push_str(&format!("\nPRIMARY KEY {}", list(&c.primary_key)));
    }
    if let Some(t) = &c.ttl {
        sql.push_str(&format!("\nTTL {t}"));
    }
    if !c.settings.is_empty() {
        let s: Vec<String> = c.settings.iter().map(|(k, v)| format!("{} = {}", ident(k), setting_value(v))).collect();
        sql.push_str(&format!("\nSETTINGS {}", s.join(", ")));
    }
    sql
}

fn column_sql(c: &ColumnDef) -> String {
    format!("    {}", column_text(c))
}

fn column_text(c: &ColumnDef) -> String {
    match &c.codec {
        Some(codec) => format!("{} {} CODEC({codec})", ident(&c.name), c.ty),
        None => format!("{} {}", ident(&c.name), c.ty),
    }
}

/// `ALTER TABLE ... ADD COLUMN` (after `after`, to keep the schema's order). Without
/// `IF NOT EXISTS`, which older servers lack: the caller checks what happened.
pub fn add_column_sql(
    database: &str,
    table: &str,
    column: &ColumnDef,
    after: Option<&str>,
    cluster: &Option<String>,
) -> String {
    format!(
        "ALTER TABLE {}{} ADD COLUMN {}{}",
        table_ref(database, table),
        on_cluster(cluster),
        column_text(column),
        after.map(|a| format!(" AFTER {}", ident(a))).unwrap_or_default()
    )
}

/// `ALTER TABLE ... MODIFY COLUMN` to a wider type.
pub fn modify_column_sql(
    database: &str,
    table: &str,
    column: &str,
    ty: &ColumnType,
    cluster: &Option<String>,
) -> String {
    format!("ALTER TABLE {}{} MODIFY COLUMN {} {ty}", table_ref(database, table), on_cluster(cluster), ident(column))
}

/// The lowest server version (major, minor) with each type, for a clear error before a
/// `CREATE` fails. `None`: every supported server has it.
pub fn type_needs(ty: &ColumnType) -> Option<((u32, u32), &'static str)> {
    let mut worst: Option<((u32, u32), &'static str)> = None;
    let mut need = |v: (u32, u32), name: &'static str| {
        if worst.is_none_or(|(w, _)| v > w) {
            worst = Some((v, name));
        }
    };
    visit(ty, &mut |t| match t {
        ColumnType::Bool => need((21, 12), "Bool"),
        ColumnType::Date32 => need((21, 9), "Date32"),
        ColumnType::DateTime64 { .. } => need((20, 1), "DateTime64"),
        ColumnType::Int128 | ColumnType::UInt128 | ColumnType::Int256 | ColumnType::UInt256 => {
            need((20, 8), "Int128/UInt128/Int256/UInt256")
        }
        ColumnType::Decimal { precision, .. } if *precision > 38 => need((20, 8), "Decimal256"),
        ColumnType::Ipv4 | ColumnType::Ipv6 => need((19, 3), "IPv4/IPv6"),
        ColumnType::Map(..) => need((21, 8), "Map"),
        ColumnType::Tuple(items) if items.iter().any(|(n, _)| n.is_some()) => need((21, 1), "named Tuple"),
        _ => {}
    });
    worst
}

fn visit(ty: &ColumnType, f: &mut impl FnMut(&ColumnType)) {
    f(ty);
    match ty {
        ColumnType::Nullable(t) | ColumnType::LowCardinality(t) | ColumnType::Array(t) => visit(t, f),
        ColumnType::Map(k, v) => {
            visit(k, f);
            visit(v, f);
        }
        ColumnType::Tuple(items) => items.iter().for_each(|(_, t)| visit(t, f)),
        _ => {}
    }
}

/// True when `ty` contains `LowCardinality` (experimental before 19.1: creating it
/// needs `allow_experimental_low_cardinality_type`).
pub fn has_low_cardinality(ty: &ColumnType) -> bool {
    let mut found = false;
    visit(ty, &mut |t| found |= matches!(t, ColumnType::LowCardinality(_)));
    found
}

/// Whether changing a column from `old` to `new` keeps every stored value (a widening
/// ClickHouse applies in place): wider integers of the same signedness, unsigned to a
/// wider signed, Float32 to Float64, a Decimal with more integer digits and the same
/// scale, DateTime to DateTime64, T to Nullable(T), and T to LowCardinality(T).
pub fn is_safe_widening(old: &ColumnType, new: &ColumnType) -> bool {
    use ColumnType::*;
    let rank = |t: &ColumnType| -> Option<(bool, u32)> {
        Some(match t {
            UInt8 => (false, 8),
            UInt16 => (false, 16),
            UInt32 => (false, 32),
            UInt64 => (false, 64),
            UInt128 => (false, 128),
            UInt256 => (false, 256),
            Int8 => (true, 8),
            Int16 => (true, 16),
            Int32 => (true, 32),
            Int64 => (true, 64),
            Int128 => (true, 128),
            Int256 => (true, 256),
            _ => return None,
        })
    };
    if old == new {
        return true;
    }
    match (old, new) {
        (_, Nullable(inner)) if !old.is_nullable() => is_safe_widening(old, inner),
        (_, LowCardinality(inner)) => is_safe_widening(old, inner),
        (Nullable(a), Nullable(b)) => is_safe_widening(a, b),
        (Float32, Float64) => true,
        (DateTime { .. }, DateTime64 { .. }) => true,
        (Decimal { precision: p1, scale: s1 }, Decimal { precision: p2, scale: s2 }) => s1 == s2 && p2 >= p1,
        _ => match (rank(old), rank(new)) {
            (Some((s1, w1)), Some((s2, w2))) => (s1 == s2 && w2 > w1) || (!s1 && s2 && w2 > w1),
            _ => false,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ty(s: &str) -> ColumnType {
        ColumnType::parse(s).unwrap()
    }

    fn creation() -> TableCreation {
        TableCreation {
            engine: "ReplacingMergeTree".into(),
            engine_args: vec![SqlTerm::Column("select".into())],
            order_by: vec![SqlTerm::Column("naïve name".into()), SqlTerm::Expr("toStartOfHour(`select`)".into())],
            partition_by: Some("toYYYYMM(`select`)".into()),
            primary_key: vec![SqlTerm::Column("naïve name".into())],
            ttl: Some("`select` + INTERVAL 90 DAY".into()),
            settings: vec![("index_granularity".into(), "8192".into()), ("storage_policy".into(), "it's".into())],
            on_cluster: Some("main".into()),
            codecs: vec![("select".into(), "Delta, ZSTD(1)".into())],
        }
    }

    fn columns() -> Vec<ColumnDef> {
        let c = creation();
        let f = |name: &str, t: &str| FieldSpec::from_key(name, ty(t));
        columns_for(&[f("id", "UUID"), f("select", "DateTime('UTC')"), f("naïve name", "LowCardinality(String)")], &c)
    }

    #[test]
    fn create_table_quotes_every_name() {
        let sql = create_table_sql("an`alytics", "t; DROP TABLE x", &columns(), &creation());
        assert_eq!(
            sql,
            "CREATE TABLE IF NOT EXISTS `an\\`alytics`.`t; DROP TABLE x` ON CLUSTER `main`\n(\n    `id` UUID,\n    \
             `select` DateTime('UTC') CODEC(Delta, ZSTD(1)),\n    `naïve name` LowCardinality(String)\n)\n\
             ENGINE = ReplacingMergeTree(`select`)\nPARTITION BY toYYYYMM(`select`)\n\
             ORDER BY (`naïve name`, toStartOfHour(`select`))\nPRIMARY KEY `naïve name`\nTTL `select` + INTERVAL 90 DAY\n\
             SETTINGS `index_granularity` = 8192, `storage_policy` = 'it\\'s'"
        );
        assert_eq!(create_database_sql("d`b", &None), "CREATE DATABASE IF NOT EXISTS `d\\`b`");
        let plain = TableCreation { engine: "MergeTree".into(), ..creation() };
        let plain = TableCreation { engine_args: vec![], order_by: vec![], primary_key: vec![], ..plain };
        let sql = create_table_sql(
            "d",
            "t",
            &columns()[..1],
            &TableCreation { settings: vec![], ttl: None, partition_by: None, on_cluster: None, ..plain },
        );
        assert_eq!(
            sql,
            "CREATE TABLE IF NOT EXISTS `d`.`t`\n(\n    `id` UUID\n)\nENGINE = MergeTree()\nORDER BY tuple()"
        );
    }

    #[test]
    fn alters() {
        let c = ColumnDef { name: "new col".into(), ty: ty("Nullable(UInt8)"), codec: None };
        assert_eq!(
            add_column_sql("d", "t", &c, Some("id"), &None),
            "ALTER TABLE `d`.`t` ADD COLUMN `new col` Nullable(UInt8) AFTER `id`"
        );
        assert_eq!(
            modify_column_sql("d", "t", "n", &ty("UInt64"), &Some("c".into())),
            "ALTER TABLE `d`.`t` ON CLUSTER `c` MODIFY COLUMN `n` UInt64"
        );
    }

    #[test]
    fn widening_rules() {
        for (a, b) in [
            ("UInt8", "UInt64"),
            ("UInt32", "Int64"),
            ("Int8", "Int16"),
            ("Float32", "Float64"),
            ("UInt16", "Nullable(UInt32)"),
            ("String", "LowCardinality(String)"),
            ("Decimal(9, 2)", "Decimal(18, 2)"),
            ("DateTime", "DateTime64(3)"),
        ] {
            assert!(is_safe_widening(&ty(a), &ty(b)), "{a} -> {b}");
        }
        for (a, b) in [
            ("UInt64", "UInt32"),
            ("Int8", "UInt16"),
            ("UInt64", "Int64"),
            ("String", "UInt8"),
            ("Decimal(9, 2)", "Decimal(18, 3)"),
            ("Nullable(UInt8)", "UInt16"),
            ("Float64", "Float32"),
        ] {
            assert!(!is_safe_widening(&ty(a), &ty(b)), "{a} -> {b}");
        }
    }

    #[test]
    fn type_versions() {
        assert_eq!(type_needs(&ty("Array(Map(String, Bool))")).map(|(v, _)| v), Some((21, 12)));
        assert_eq!(type_needs(&ty("Nullable(String)")), None);
        assert!(has_low_cardinality(&ty("Array(LowCardinality(String))")));
    }
}
