//! Does the destination table fit the pipeline schema? A pure comparison of the
//! pipeline's columns with what `system.columns` reports, plus the query that reads it.

use crate::client::ClickHouseClient;
use crate::error::Result;
use crate::sql::literal;
use penstock_codec::{ColumnType, FieldSpec};

/// A column as the server describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerColumn {
    /// Name.
    pub name: String,
    /// Type as the server spells it.
    pub ty: String,
    /// `DEFAULT`, `MATERIALIZED`, `ALIAS` or empty.
    pub default_kind: String,
}

/// One reason the table and the schema disagree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mismatch {
    /// The database does not exist.
    NoDatabase {
        /// Database.
        database: String,
    },
    /// The table does not exist.
    NoTable {
        /// Database.
        database: String,
        /// Table.
        table: String,
    },
    /// A pipeline column is absent from the table.
    MissingColumn {
        /// Column.
        column: String,
        /// Pipeline type.
        pipeline_type: String,
    },
    /// Types differ.
    TypeDiffers {
        /// Column.
        column: String,
        /// Pipeline type.
        pipeline_type: String,
        /// Table type.
        table_type: String,
    },
    /// The schema changed a column's type and the change was not applied.
    TypeChange {
        /// Column.
        column: String,
        /// Pipeline type.
        pipeline_type: String,
        /// Table type.
        table_type: String,
        /// True when the change keeps every value (allowed with `widen: true`).
        safe: bool,
    },
    /// The column cannot be inserted into (MATERIALIZED or ALIAS).
    NotInsertable {
        /// Column.
        column: String,
        /// Its default kind.
        kind: String,
    },
}

impl std::fmt::Display for Mismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Mismatch::NoDatabase { database } => write!(f, "database `{database}` does not exist"),
            Mismatch::NoTable { database, table } => write!(f, "table `{database}`.`{table}` does not exist"),
            Mismatch::MissingColumn { column, pipeline_type } => {
                write!(f, "column `{column}` ({pipeline_type}) is in the pipeline schema but not in the table")
            }
            Mismatch::TypeDiffers { column, pipeline_type, table_type } => write!(
                f,
                "column `{column}`: the pipeline declares {pipeline_type} but the table has {table_type}; \
                 change the schema's type to {table_type} or alter the table"
            ),
            Mismatch::TypeChange { column, pipeline_type, table_type, safe: true } => write!(
                f,
                "column `{column}`: the pipeline declares {pipeline_type} but the table has {table_type}; this \
                 widening keeps every stored value — set `widen: true` in the sink to let Penstock apply it, or \
                 alter the table"
            ),
            Mismatch::TypeChange { column, pipeline_type, table_type, safe: false } => write!(
                f,
                "column `{column}`: the pipeline declares {pipeline_type} but the table has {table_type}; changing \
                 the column could lose or corrupt stored values, so Penstock refuses — declare {table_type} in the \
                 schema, or migrate the table by hand (e.g. into a new column)"
            ),
            Mismatch::NotInsertable { column, kind } => {
                write!(
                    f,
                    "column `{column}` is {kind} in the table and cannot be inserted into; remove it from the schema"
                )
            }
        }
    }
}

/// Compares the pipeline's columns with the table's. Table columns the pipeline does
/// not fill are fine: ClickHouse stores their defaults.
pub fn compare(fields: &[FieldSpec], table: &[ServerColumn]) -> Vec<Mismatch> {
    let mut out = Vec::new();
    for f in fields {
        let Some(sc) = table.iter().find(|c| c.name == f.column) else {
            out.push(Mismatch::MissingColumn { column: f.column.clone(), pipeline_type: f.ty.to_string() });
            continue;
        };
        if matches!(sc.default_kind.as_str(), "MATERIALIZED" | "ALIAS") {
            out.push(Mismatch::NotInsertable { column: f.column.clone(), kind: sc.default_kind.clone() });
            continue;
        }
        // `DateTime` vs `DateTime('UTC')` stores the same numbers: only metadata differs.
        let same = ColumnType::parse(&sc.ty).is_ok_and(|t| t.stores_same_values(&f.ty));
        if !same {
            out.push(Mismatch::TypeDiffers {
                column: f.column.clone(),
                pipeline_type: f.ty.to_string(),
                table_type: sc.ty.clone(),
            });
        }
    }
    out
}

/// What to change so an existing table takes the pipeline's rows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Evolution {
    /// Columns to add: (column, type, the column to put it after).
    pub add: Vec<(String, ColumnType, Option<String>)>,
    /// Columns to widen: (column, table type, new type).
    pub widen: Vec<(String, String, ColumnType)>,
    /// Differences that stay refused.
    pub refused: Vec<Mismatch>,
}

/// Plans the schema evolution: columns the table lacks are added when `add` allows
/// it; a type change is applied when `widen` allows it and it keeps every stored value
/// ([`crate::ddl::is_safe_widening`]); everything else is refused with the reason.
pub fn plan_evolution(fields: &[FieldSpec], table: &[ServerColumn], add: bool, widen: bool) -> Evolution {
    let mut plan = Evolution::default();
    let mut previous: Option<String> = None;
    for f in fields {
        let mismatch = compare(std::slice::from_ref(f), table).pop();
        match mismatch {
            Some(Mismatch::MissingColumn { .. }) if add => {
                plan.add.push((f.column.clone(), f.ty.clone(), previous.clone()));
            }
            Some(Mismatch::TypeDiffers { column, pipeline_type, table_type }) => {
                let old = ColumnType::parse(&table_type);
                let safe = old.as_ref().is_ok_and(|old| crate::ddl::is_safe_widening(old, &f.ty));
                if safe && widen {
                    plan.widen.push((column, table_type, f.ty.clone()));
                } else {
                    plan.refused.push(Mismatch::TypeChange { column, pipeline_type, table_type, safe });
                }
            }
            Some(m) => plan.refused.push(m),
            None => {}
        }
        previous = Some(f.column.clone());
    }
    plan
}

/// Undoes TabSeparated escaping.
pub fn unescape_tsv(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('0') => out.push('\0'),
            Some('b') => out.push('\u{8}'),
            Some('f') => out.push('\u{c}'),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

impl ClickHouseClient {
    /// True when the database exists.
    pub async fn database_exists(&self, database: &str) -> Result<bool> {
        let sql =
            format!("SELECT count() FROM system.databases WHERE name = {} FORMAT TabSeparated", literal(database));
        Ok(self.query(&sql).await?.trim() != "0")
    }

    /// The table's columns in order (empty when the table does not exist).
    pub async fn table_columns(&self, database: &str, table: &str) -> Result<Vec<ServerColumn>> {
        let sql = format!(
            "SELECT name, type, default_kind FROM system.columns WHERE database = {} AND table = {} FORMAT TabSeparated",
            literal(database),
            literal(table)
        );
        let text = self.query(&sql).await?;
        Ok(text
            .lines()
            .filter(|l| !l.is_empty())
            .map(|line| {
                let mut parts = line.split('\t').map(unescape_tsv);
                ServerColumn {
                    name: parts.next().unwrap_or_default(),
                    ty: parts.next().unwrap_or_default(),
                    default_kind: parts.next().unwrap_or_default(),
                }
            })
            .collect())
    }

    /// Checks the table against the pipeline's columns and returns every mismatch.
    pub async fn check_table(&self, database: &str, table: &str, fields: &[FieldSpec]) -> Result<Vec<Mismatch>> {
        if !self.database_exists(database).await? {
            return Ok(vec![Mismatch::NoDatabase { database: database.into() }]);
        }
        let columns = self.table_columns(database, table).await?;
        if columns.is_empty() {
            return Ok(vec![Mismatch::NoTable { database: database.into(), table: table.into() }]);
        }
        Ok(plan_evolution(fields, &columns, false, false).refused)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(name: &str, ty: &str) -> FieldSpec {
        FieldSpec::from_key(name, ColumnType::parse(ty).unwrap())
    }

    fn col(name: &str, ty: &str, kind: &str) -> ServerColumn {
        ServerColumn { name: name.into(), ty: ty.into(), default_kind: kind.into() }
    }

    #[test]
    fn finds_every_mismatch() {
        let fields = [
            spec("a", "UInt64"),
            spec("b", "Decimal(12,2)"),
            spec("c", "String"),
            spec("d", "UInt8"),
            spec("e", "DateTime('UTC')"),
        ];
        let table = [
            col("a", "UInt32", ""),
            col("b", "Decimal(12, 2)", ""),
            col("d", "UInt8", "MATERIALIZED"),
            col("e", "DateTime", ""),
            col("extra", "String", ""),
        ];
        let m = compare(&fields, &table);
        // `e` differs only in its time zone: the same stored numbers, no mismatch.
        assert_eq!(m.len(), 3, "{m:?}");
        assert_eq!(m[0].to_string(), "column `a`: the pipeline declares UInt64 but the table has UInt32; change the schema's type to UInt32 or alter the table");
        assert!(m[1].to_string().contains("`c` (String) is in the pipeline schema but not in the table"));
        assert!(m[2].to_string().contains("MATERIALIZED"));
        let nested =
            compare(&[spec("n", "Array(Nullable(DateTime('UTC')))")], &[col("n", "Array(Nullable(DateTime))", "")]);
        assert!(nested.is_empty(), "{nested:?}");
        let tz64 = compare(&[spec("t", "DateTime64(3, 'UTC')")], &[col("t", "DateTime64(6)", "")]);
        assert_eq!(tz64.len(), 1, "a different precision stores different numbers");
    }

    #[test]
    fn unsupported_server_types_are_mismatches() {
        let m = compare(&[spec("a", "String")], &[col("a", "LowCardinality(String)", "")]);
        assert_eq!(m.len(), 1);
    }

    #[test]
    fn tsv_unescape() {
        assert_eq!(unescape_tsv(r"a\tb\\c\n"), "a\tb\\c\n");
    }

    #[test]
    fn evolution_adds_widens_and_refuses() {
        let fields =
            [spec("a", "UInt32"), spec("new", "String"), spec("b", "UInt64"), spec("c", "String"), spec("d", "Int8")];
        let table = [col("a", "UInt32", ""), col("b", "UInt16", ""), col("c", "UInt8", ""), col("d", "Int8", "")];
        let plan = plan_evolution(&fields, &table, true, true);
        assert_eq!(plan.add, [("new".to_string(), ColumnType::String, Some("a".to_string()))]);
        assert_eq!(plan.widen, [("b".to_string(), "UInt16".to_string(), ColumnType::UInt64)]);
        assert_eq!(plan.refused.len(), 1);
        let why = plan.refused[0].to_string();
        assert!(
            why.contains("`c`") && why.contains("UInt8") && why.contains("String") && why.contains("refuses"),
            "{why}"
        );

        let strict = plan_evolution(&fields, &table, false, false);
        assert!(strict.add.is_empty() && strict.widen.is_empty());
        let text: Vec<String> = strict.refused.iter().map(ToString::to_string).collect();
        assert!(text[0].contains("`new`") && text[0].contains("not in the table"), "{text:?}");
        assert!(text[1].contains("`widen: true`"), "{text:?}");
        assert_eq!(text.len(), 3);
    }
}
