//! Tables that manage themselves: at start-up, create the destination database and
//! table from the schema when the pipeline says `create`, then bring an existing table
//! in step with the schema — add the columns it gained (`evolve: add`) and apply safe
//! widenings (`widen: true`). The evolution is planned whole first: when anything in
//! it is refused, nothing is changed and the start fails with every reason.

use crate::error::PipelineError;
use penstock_clickhouse::ddl::{
    add_column_sql, columns_for, create_database_sql, create_table_sql, has_low_cardinality, modify_column_sql,
    type_needs, ColumnDef,
};
use penstock_clickhouse::{plan_evolution, ClickHouseClient, ClickHouseError, Evolution};
use penstock_codec::{ColumnType, FieldOptions, FieldSpec, OnError};
use penstock_config::{ClickHouseSink, Pipeline};

/// `(major, minor)` of a version string like `18.16.1` or `26.9.2.1`.
pub fn version_of(version: &str) -> (u32, u32) {
    let mut parts = version.trim().split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    (parts.next().unwrap_or(0), parts.next().unwrap_or(0))
}

/// The first schema type this server version lacks, as an explanation.
pub fn unsupported_type(p: &Pipeline, version: &str) -> Option<String> {
    let have = version_of(version);
    p.fields.iter().find_map(|f| {
        type_needs(&f.ty).filter(|(need, _)| have < *need).map(|((major, minor), name)| {
            format!(
                "column `{}` has type {} and {name} needs ClickHouse {major}.{minor} or newer; this server is {}",
                f.column,
                f.ty,
                version.trim()
            )
        })
    })
}

/// What start-up did to the table, for the log and `penstock check`.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct TableChanges {
    /// The table was created.
    pub created: bool,
    /// Columns added.
    pub added: Vec<String>,
    /// Columns widened.
    pub widened: Vec<String>,
}

fn unavailable(e: ClickHouseError) -> PipelineError {
    PipelineError::ClickHouseUnavailable(e)
}

/// Creates and evolves the destination table as the pipeline allows.
pub async fn prepare(p: &Pipeline, client: &ClickHouseClient) -> Result<TableChanges, PipelineError> {
    let s = &p.sink;
    let mut changes = TableChanges::default();
    let version = client.server_version().await.map_err(unavailable)?;
    let mut existing = client.table_columns(&s.database, &s.table).await.map_err(unavailable)?;
    if existing.is_empty() {
        let Some(creation) = &s.create else {
            return Ok(changes); // the table check reports the missing table
        };
        if let Some(why) = unsupported_type(p, &version) {
            return Err(PipelineError::TableUnsupported(why));
        }
        client.query(&create_database_sql(&s.database, &creation.on_cluster)).await.map_err(unavailable)?;
        let columns = columns_for(&p.fields, creation);
        let sql = create_table_sql(&s.database, &s.table, &columns, creation);
        run_ddl(client, &sql, &columns, &version).await?;
        tracing::info!(table = %format!("{}.{}", s.database, s.table), "created the table from the schema");
        changes.created = true;
        existing = client.table_columns(&s.database, &s.table).await.map_err(unavailable)?;
    }
    let Evolution { add, widen, refused } = plan_evolution(&p.fields, &existing, s.evolve_add, s.widen);
    // The plan is judged whole: one refused difference changes nothing at all, so a
    // refused start never leaves the table half-migrated.
    if !refused.is_empty() {
        return Err(PipelineError::TableMismatch {
            database: s.database.clone(),
            table: s.table.clone(),
            mismatches: refused,
        });
    }
    for (column, _, _) in &add {
        if let Some(why) = unsupported_type(p, &version).filter(|w| w.contains(&format!("`{column}`"))) {
            return Err(PipelineError::TableUnsupported(why));
        }
    }
    let cluster = s.create.as_ref().and_then(|c| c.on_cluster.clone());
    for (column, ty, after) in add {
        let codec = s.create.as_ref().and_then(|c| c.codecs.iter().find(|(n, _)| *n == column)).map(|(_, c)| c.clone());
        let def = ColumnDef { name: column.clone(), ty, codec };
        let sql = add_column_sql(&s.database, &s.table, &def, after.as_deref(), &cluster);
        if let Err(e) = run_ddl(client, &sql, std::slice::from_ref(&def), &version).await {
            // Another process of the pipeline may have added it meanwhile.
            let now = client.table_columns(&s.database, &s.table).await.map_err(unavailable)?;
            if !now.iter().any(|c| c.name == column) {
                return Err(e);
            }
        }
        tracing::info!(column = %column, ty = %def.ty, "added a column the schema gained");
        changes.added.push(column);
    }
    for (column, old, ty) in widen {
        let sql = modify_column_sql(&s.database, &s.table, &column, &ty, &cluster);
        client.query(&sql).await.map_err(unavailable)?;
        tracing::info!(column = %column, from = %old, to = %ty, "widened a column");
        changes.widened.push(column);
    }
    Ok(changes)
}

/// Table recording the columns Penstock added for unknown message fields
/// (`unknown_fields: add`), so a restarted process decodes them again.
pub const SCHEMA_CHANGES_TABLE: &str = "penstock_schema_changes";

fn changes_ref(p: &ClickHouseSink) -> String {
    penstock_clickhouse::sql::table_ref(&p.database, SCHEMA_CHANGES_TABLE)
}

/// Creates the schema-changes table if missing.
pub async fn create_changes_table(client: &ClickHouseClient, s: &ClickHouseSink) -> Result<(), PipelineError> {
    let sql = format!(
        "CREATE TABLE IF NOT EXISTS {} (pipeline String, `table` String, `column` String, type String, \
         raw_json UInt8, added_at DateTime) ENGINE = MergeTree ORDER BY (pipeline, `table`, `column`)",
        changes_ref(s)
    );
    client.query(&sql).await.map(drop).map_err(unavailable)
}

/// The fields added for unknown message fields by earlier runs of this pipeline.
pub async fn added_fields(
    client: &ClickHouseClient,
    s: &ClickHouseSink,
    pipeline: &str,
) -> Result<Vec<FieldSpec>, PipelineError> {
    use penstock_clickhouse::sql::literal;
    let sql = format!(
        "SELECT `column`, any(type), any(raw_json) FROM {} WHERE pipeline = {} AND `table` = {} GROUP BY `column` \
         ORDER BY min(added_at), `column` FORMAT TabSeparated",
        changes_ref(s),
        literal(pipeline),
        literal(&s.table)
    );
    let text = client.query(&sql).await.map_err(unavailable)?;
    let mut out = Vec::new();
    for line in text.lines().filter(|l| !l.is_empty()) {
        let f: Vec<&str> = line.split('\t').collect();
        let (Some(column), Some(ty), Some(raw)) = (f.first(), f.get(1), f.get(2)) else { continue };
        let column = unescape_tsv(column);
        let Ok(ty) = ColumnType::parse(&unescape_tsv(ty)) else { continue };
        out.push(FieldSpec {
            on_error: OnError::Null,
            options: FieldOptions { raw_json: *raw == "1", ..Default::default() },
            ..FieldSpec::from_key(column, ty)
        });
    }
    Ok(out)
}

fn unescape_tsv(s: &str) -> String {
    s.replace("\\t", "\t").replace("\\n", "\n").replace("\\'", "'").replace("\\\\", "\\")
}

/// Adds a column for each new field (after `after`), and records them.
pub async fn add_unknown_columns(
    client: &ClickHouseClient,
    s: &ClickHouseSink,
    pipeline: &str,
    fields: &[FieldSpec],
    after: &str,
) -> Result<(), PipelineError> {
    use penstock_clickhouse::sql::literal;
    let cluster = s.create.as_ref().and_then(|c| c.on_cluster.clone());
    let mut after = after.to_string();
    for f in fields {
        let def = ColumnDef { name: f.column.clone(), ty: f.ty.clone(), codec: None };
        let sql = add_column_sql(&s.database, &s.table, &def, Some(&after), &cluster);
        if let Err(e) = client.query(&sql).await {
            let now = client.table_columns(&s.database, &s.table).await.map_err(unavailable)?;
            if !now.iter().any(|c| c.name == f.column) {
                return Err(unavailable(e));
            }
        }
        let record = format!(
            "INSERT INTO {} (pipeline, `table`, `column`, type, raw_json, added_at) SELECT {}, {}, {}, {}, {}, now()",
            changes_ref(s),
            literal(pipeline),
            literal(&s.table),
            literal(&f.column),
            literal(&f.ty.to_string()),
            u8::from(f.options.raw_json)
        );
        client.query(&record).await.map_err(unavailable)?;
        tracing::info!(column = %f.column, ty = %f.ty, "added a column for a new message field");
        after.clone_from(&f.column);
    }
    Ok(())
}

/// Runs DDL, enabling LowCardinality on servers where it is still experimental.
async fn run_ddl(
    client: &ClickHouseClient,
    sql: &str,
    columns: &[ColumnDef],
    version: &str,
) -> Result<(), PipelineError> {
    let needs_setting = version_of(version) < (19, 1) && columns.iter().any(|c| has_low_cardinality(&c.ty));
    let result = if needs_setting {
        client.query_with(sql, &[("allow_experimental_low_cardinality_type", "1")]).await
    } else {
        client.query(sql).await
    };
    result.map(drop).map_err(unavailable)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions() {
        assert_eq!(version_of("18.16.1"), (18, 16));
        assert_eq!(version_of("26.9.2.1\n"), (26, 9));
        assert!(version_of("18.16.1") < (19, 1));
    }
}
