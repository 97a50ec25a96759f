//! `penstock schema infer` (a pipeline file from a sample of a topic) and
//! `penstock schema ddl` (the DDL a pipeline runs when it creates its tables).

use penstock::infer::{infer, Inferred, Target};
use penstock_clickhouse::ddl::{columns_for, create_database_sql, create_table_sql};
use penstock_clickhouse::sql::ident;
use penstock_clickhouse::ClickHouseClient;
use penstock_codec::ColumnType;
use penstock_kafka::MetadataClient;
use penstock_pipeline::dead_letter::{DeadLetterTable, KafkaTimestamp};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// `penstock schema ...`
#[derive(Debug, clap::Args)]
pub(crate) struct SchemaArgs {
    #[command(subcommand)]
    command: SchemaCommand,
}

#[derive(Debug, clap::Subcommand)]
enum SchemaCommand {
    /// Read a sample of a topic (committing nothing) and print a ready pipeline file
    /// with the DDL it would run; each type comes with the reason it was chosen.
    Infer(InferArgs),
    /// Print the DDL a pipeline runs when its tables are missing.
    Ddl {
        /// Pipeline file.
        pipeline: PathBuf,
    },
}

#[derive(Debug, clap::Args)]
struct InferArgs {
    /// Kafka bootstrap servers.
    #[arg(long, env = "PENSTOCK_KAFKA_BROKERS")]
    brokers: String,
    /// Topic to sample.
    #[arg(long)]
    topic: String,
    /// Messages to read (spread over the partitions, from the oldest).
    #[arg(long, default_value_t = 1000)]
    samples: usize,
    /// ClickHouse to target: its version decides which types are used, and the file
    /// points at it. Without it, types every supported server has are chosen.
    #[arg(long, env = "PENSTOCK_CLICKHOUSE_URL")]
    clickhouse: Option<String>,
    /// Database of the table to create.
    #[arg(long, default_value = "default")]
    database: String,
    /// Table to create (default: the topic name, made a plain identifier).
    #[arg(long)]
    table: Option<String>,
    /// Write the pipeline file here instead of standard output.
    #[arg(long)]
    out: Option<PathBuf>,
}

pub(crate) async fn schema(args: SchemaArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        SchemaCommand::Ddl { pipeline } => ddl(pipeline),
        SchemaCommand::Infer(a) => infer_cmd(a).await,
    }
}

fn ddl(path: PathBuf) -> anyhow::Result<ExitCode> {
    let p = match super::load_pipeline(&path) {
        Ok(p) => p,
        Err(code) => return Ok(code),
    };
    let s = &p.sink;
    match &s.create {
        Some(c) => {
            println!("{};\n", create_database_sql(&s.database, &c.on_cluster));
            println!("{};\n", create_table_sql(&s.database, &s.table, &columns_for(&p.fields, c), c));
        }
        None => {
            println!("-- {}.{}: the pipeline has no `create:` section; the table must exist\n", s.database, s.table)
        }
    }
    println!(
        "-- dead letters (Kafka timestamps in seconds on servers before 20.1):\n{};",
        DeadLetterTable::create_sql(&s.dead_letter_database, &s.dead_letter_table, KafkaTimestamp::Millis)
    );
    Ok(ExitCode::SUCCESS)
}

/// A draws-on-one-line progress bar on a terminal; a single summary line otherwise.
struct Progress {
    total: usize,
    tty: bool,
    shown: usize,
}

impl Progress {
    fn update(&mut self, n: usize) {
        if !self.tty || (n < self.total && n < self.shown + self.total.div_ceil(50)) {
            return;
        }
        self.shown = n;
        let width = 30;
        let done = (n * width / self.total.max(1)).min(width);
        eprint!("\rsampling [{}{}] {n}/{}", "#".repeat(done), " ".repeat(width - done), self.total);
    }

    fn finish(&self, n: usize, topic: &str) {
        if self.tty {
            eprintln!();
        }
        eprintln!("sampled {n} messages of `{topic}`");
    }
}

async fn infer_cmd(a: InferArgs) -> anyhow::Result<ExitCode> {
    let (version, target) = match &a.clickhouse {
        Some(url) => {
            let client = ClickHouseClient::new(url, "default", None, Duration::from_secs(10));
            let v = client.server_version().await?;
            let t = Target { version: penstock_pipeline::table::version_of(&v) };
            (Some(v), t)
        }
        None => (None, Target { version: (0, 0) }),
    };
    let (brokers, topic, samples) = (a.brokers.clone(), a.topic.clone(), a.samples);
    let messages = tokio::task::spawn_blocking(move || -> anyhow::Result<Vec<Vec<u8>>> {
        let meta = MetadataClient::new(&brokers, &[], Duration::from_secs(10))?;
        let info = meta.topics(std::slice::from_ref(&topic))?;
        let partitions = info.first().map_or(1, |t| t.partitions.len());
        let mut bar = Progress { total: samples, tty: std::io::stderr().is_terminal(), shown: 0 };
        let out = penstock_kafka::sample(&brokers, &[], &topic, partitions, samples, Duration::from_secs(10), |n| {
            bar.update(n)
        })?;
        bar.finish(out.len(), &topic);
        Ok(out)
    })
    .await??;
    if messages.is_empty() {
        eprintln!("error: topic `{}` has no messages to infer a schema from", a.topic);
        return Ok(ExitCode::FAILURE);
    }
    let inferred = infer(&messages, target);
    let text = render(&a, &inferred, version.as_deref());
    match &a.out {
        Some(path) => {
            std::fs::write(path, &text)?;
            eprintln!("wrote {}", path.display());
        }
        None => print!("{text}"),
    }
    Ok(ExitCode::SUCCESS)
}

/// A YAML double-quoted scalar (JSON syntax), with `$` doubled against interpolation.
fn q(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '$' => out.push_str("$$"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A plain identifier made from a topic name.
fn plain(name: &str) -> String {
    let s: String = name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '_' }).collect();
    if s.is_empty() || s.starts_with(|c: char| c.is_ascii_digit()) {
        format!("t_{s}")
    } else {
        s
    }
}

/// A path as the pipeline file's `from:` spells it (bracketed keys with dots).
fn from_path(path: &str) -> String {
    path.split('.').enumerate().map(|(i, k)| if i == 0 { k.to_string() } else { format!(".{k}") }).collect()
}

fn render(a: &InferArgs, i: &Inferred, version: Option<&str>) -> String {
    let table = a.table.clone().unwrap_or_else(|| plain(&a.topic));
    let name = plain(&a.topic);
    let mut out = format!(
        "# Inferred by `penstock schema infer` from {} messages of topic `{}`{}.\n",
        i.messages,
        a.topic,
        version.map(|v| format!(" for ClickHouse {v}")).unwrap_or_else(|| " (types every server has)".into())
    );
    if i.not_objects > 0 {
        out.push_str(&format!(
            "# {} sampled messages were not JSON objects; they would be dead-lettered.\n",
            i.not_objects
        ));
    }
    out.push_str("# Why each type:\n");
    for f in &i.fields {
        out.push_str(&format!("#   {}: {}\n", f.column, f.why));
    }
    out.push_str(&format!(
        "name: {}\nsource:\n  kafka:\n    brokers: {}\n    topics: [{}]\n    start: earliest\nformat: json\nschema:\n",
        q(&name),
        q(&a.brokers),
        q(&a.topic)
    ));
    for f in &i.fields {
        let mut parts = vec![format!("type: {}", q(&f.ty.to_string()))];
        if f.path != f.column {
            parts.push(format!("from: {}", q(&from_path(&f.path))));
        }
        if f.required {
            parts.push("required: true".into());
        }
        if f.raw_json {
            parts.push("raw_json: true".into());
        }
        out.push_str(&format!("  {}: {{ {} }}\n", q(&f.column), parts.join(", ")));
    }
    if !i.fields.iter().any(|f| f.column == "_partition" || f.column == "_offset") {
        out.push_str("  # Kafka coordinates: they let exactly-once work on any server (docs/exactly-once.md).\n");
        out.push_str("  \"_partition\": \"Int32\"\n  \"_offset\": \"Int64\"\n");
    }
    let order = order_by(i);
    let time = i.fields.iter().find(|f| {
        matches!(f.ty.non_nullable(), ColumnType::DateTime { .. } | ColumnType::DateTime64 { .. } | ColumnType::Date)
            && !f.ty.is_nullable()
    });
    out.push_str(&format!(
        "sink:\n  clickhouse:\n    url: {}\n    database: {}\n    table: {}\n    create:\n      order_by: [{}]\n",
        a.clickhouse.as_deref().map_or_else(|| "\"${PENSTOCK_CLICKHOUSE_URL}\"".to_string(), q),
        q(&a.database),
        q(&table),
        order.iter().map(|c| q(c)).collect::<Vec<_>>().join(", ")
    ));
    if let Some(t) = time {
        out.push_str(&format!("      partition_by: {}\n", q(&format!("toYYYYMM({})", ident(&t.column)))));
    }
    out
}

/// A sorting key: low-cardinality strings, then the first timestamp, then an id.
fn order_by(i: &Inferred) -> Vec<String> {
    let pick = |want: &dyn Fn(&ColumnType) -> bool| {
        i.fields.iter().filter(|f| !f.ty.is_nullable() && want(&f.ty)).map(|f| f.column.clone()).next()
    };
    let mut out = Vec::new();
    if let Some(c) = pick(&|t| matches!(t, ColumnType::LowCardinality(_))) {
        out.push(c);
    }
    if let Some(c) = pick(&|t| matches!(t, ColumnType::DateTime { .. } | ColumnType::DateTime64 { .. })) {
        out.push(c);
    }
    if let Some(c) = pick(&|t| matches!(t, ColumnType::Uuid) || t.is_integer()) {
        out.push(c);
    }
    out
}
