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
        let same = ColumnType::parse(&sc.ty).is_ok_and(|t| t == f.ty);
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

/// Undoes TabSeparated escaping.
fn unescape_tsv(s: &str) -> String {
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
        Ok(compare(fields, &columns))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use penstock_codec::{OnError, ValueSource};

    fn spec(name: &str, ty: &str) -> FieldSpec {
        FieldSpec {
            column: name.into(),
            ty: ColumnType::parse(ty).unwrap(),
            source: ValueSource::Json(name.into()),
            required: false,
            on_error: OnError::Reject,
            options: Default::default(),
        }
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
        assert_eq!(m.len(), 4, "{m:?}");
        assert_eq!(m[0].to_string(), "column `a`: the pipeline declares UInt64 but the table has UInt32; change the schema's type to UInt32 or alter the table");
        assert!(m[1].to_string().contains("`c` (String) is in the pipeline schema but not in the table"));
        assert!(m[2].to_string().contains("MATERIALIZED"));
        assert!(matches!(&m[3], Mismatch::TypeDiffers { column, .. } if column == "e"));
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
}
