//! Pipeline files: read, interpolate `${VAR}`s, parse, validate — all before anything
//! starts, so a bad file is refused with its file, line, column and key path.
//!
//! Two steps, after the pattern of Vector and ripgrep: [`model`] mirrors the YAML and
//! rejects unknown keys and malformed values while parsing; [`validate`] checks rules
//! that span several keys and produces a [`Pipeline`] whose values are all usable.
//! Nothing here touches the network.
//!
//! ```
//! let yaml = "
//! name: demo
//! source: { kafka: { brokers: 127.0.0.1:9092, topics: [events] } }
//! schema: { id: UInt64 }
//! sink: { clickhouse: { url: 'http://127.0.0.1:8123', table: db.events } }
//! ";
//! let p = penstock_config::parse(yaml, "demo.yaml", |_| None).unwrap();
//! assert_eq!(p.source.group, "penstock-demo");
//! assert_eq!((p.sink.database.as_str(), p.sink.table.as_str()), ("db", "events"));
//! ```

// A configuration error is built at most once per process, before anything starts: its
// size costs nothing, and keeping it flat keeps its fields easy to match in tests.
#![allow(clippy::result_large_err)]

mod error;
pub mod interpolate;
pub mod model;
pub mod publication;
pub mod relay;
pub mod stages;
pub mod units;
pub mod validate;

pub use error::ConfigError;
pub use publication::{ClickHouseSource, KafkaSink, Publication, Relation, SourceStart, TopicCreation};
pub use relay::Relay;
pub use stages::{StageSpecs, Transform};
pub use validate::{
    BatchLimits, ClickHouseSink, Compression, Delivery, InsertFormat, Job, KafkaSource, Pipeline, RetryPolicy, Secret,
    SqlTerm, StartFrom, TableCreation,
};

use error::Locator;
use std::path::Path;

/// Reads and validates a Kafka → ClickHouse pipeline file (see [`load_job`] for any).
pub fn load(path: &Path) -> Result<Pipeline, ConfigError> {
    let file = path.display().to_string();
    ingest_only(load_job(path)?, &file)
}

/// Validates Kafka → ClickHouse pipeline text (see [`parse_job`] for any).
pub fn parse(text: &str, file: &str, env: impl Fn(&str) -> Option<String>) -> Result<Pipeline, ConfigError> {
    ingest_only(parse_job(text, file, env)?, file)
}

fn ingest_only(job: Job, file: &str) -> Result<Pipeline, ConfigError> {
    match job {
        Job::Ingest(p) => Ok(p),
        other => Err(ConfigError {
            file: file.to_string(),
            line: None,
            column: None,
            path: "source".into(),
            message: format!(
                "this is a {} pipeline; a Kafka → ClickHouse one is needed here",
                if matches!(other, Job::Publish(_)) { "ClickHouse → Kafka" } else { "Kafka → Kafka" }
            ),
            source_line: None,
        }),
    }
}

/// Reads and validates the pipeline file at `path`, taking `${VAR}`s from the process
/// environment.
pub fn load_job(path: &Path) -> Result<Job, ConfigError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
        file: file.clone(),
        line: None,
        column: None,
        path: String::new(),
        message: format!("cannot read the pipeline file: {e}"),
        source_line: None,
    })?;
    parse_job(&text, &file, |name| std::env::var(name).ok())
}

/// Validates pipeline text; `file` names it in errors, `env` resolves `${VAR}`s.
pub fn parse_job(text: &str, file: &str, env: impl Fn(&str) -> Option<String>) -> Result<Job, ConfigError> {
    let raw = Locator { file, text };
    let text = interpolate::interpolate(text, env)
        .map_err(|e| raw.at(Some(e.line as u64), Some(e.column as u64), "", e.message))?;
    let loc = Locator { file, text: &text };
    let mut path = String::new();
    let parsed: Result<model::PipelineFile, serde_saphyr::Error> =
        serde_saphyr::with_deserializer_from_str(&text, |de| {
            serde_path_to_error::deserialize(de).map_err(|e| {
                path = e.path().to_string();
                e.into_inner()
            })
        });
    let file_model = parsed.map_err(|e| {
        let (line, column) = e.location().map_or((None, None), |l| (Some(l.line()), Some(l.column())));
        let path = user_path(&path);
        raw_message(&e, &loc, line, column, &path)
    })?;
    validate::validate(file_model, &loc)
}

/// Removes the `value` segments that `Spanned` wrappers add to serde's key paths (at
/// the positions where the model uses `Spanned`, so a column named `value` survives).
fn user_path(path: &str) -> String {
    if path == "." {
        return String::new();
    }
    let mut segs: Vec<&str> = path.split('.').filter(|s| *s != "?").collect();
    let drop_at = |segs: &mut Vec<&str>, i: usize| {
        if segs.get(i) == Some(&"value") {
            segs.remove(i);
        }
    };
    match segs.first().copied() {
        Some("name") => drop_at(&mut segs, 1),
        Some("schema") => {
            drop_at(&mut segs, 1);
            drop_at(&mut segs, 2);
        }
        Some("source" | "sink") => drop_at(&mut segs, 2),
        _ => {}
    }
    segs.join(".")
}

/// serde-saphyr renders `error: line L column C: message` plus a snippet; keep the
/// message and render location and snippet our own way.
fn raw_message(
    e: &serde_saphyr::Error,
    loc: &Locator<'_>,
    line: Option<u64>,
    column: Option<u64>,
    path: &str,
) -> ConfigError {
    let rendered = e.to_string();
    let first = rendered.lines().next().unwrap_or_default();
    let first = first.strip_prefix("error: ").unwrap_or(first);
    let message = match first.find(": ") {
        Some(i) if first.starts_with("line ") => &first[i + 2..],
        _ => first,
    };
    loc.at(line, column, path, message.to_string())
}

#[cfg(test)]
mod tests;
