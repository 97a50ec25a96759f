//! `penstock status [--http ADDR]`: what `/api/pipelines` says, as a table.

use penstock_codec::decode::json::scan::{members, scan_value, Kind, Span};
use penstock_codec::JsonPath;
use std::io::{Read, Write};
use std::process::ExitCode;
use std::time::Duration;

/// Arguments of `penstock status`.
#[derive(Debug, clap::Args)]
pub(crate) struct StatusArgs {
    /// Address of a running pipeline's HTTP API.
    #[arg(long, default_value = "127.0.0.1:9464", env = "PENSTOCK_HTTP")]
    http: String,
    /// Bearer token, when the API requires one.
    #[arg(long, env = "PENSTOCK_HTTP_TOKEN", hide_env_values = true)]
    http_token: Option<String>,
}

fn get(addr: &str, path: &str, token: Option<&str>) -> std::io::Result<(u16, String)> {
    let sock = addr.parse().map_err(|e| std::io::Error::other(format!("`{addr}`: {e}")))?;
    let mut s = std::net::TcpStream::connect_timeout(&sock, Duration::from_secs(3))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    let auth = token.map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default();
    write!(s, "GET {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Connection: close\r\n\r\n")?;
    let mut text = String::new();
    s.read_to_string(&mut text)?;
    let status = text.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b).to_string();
    Ok((status, body))
}

/// The text of the value at `path` below `span` (strings without quotes).
fn field(doc: &[u8], span: Span, path: &str) -> String {
    let steps = JsonPath::parse(&format!("x.{path}")).map(|p| p.steps).unwrap_or_default();
    match JsonPath::resolve(&steps, doc, span, &mut Vec::new()) {
        Some(s) if s.kind == Kind::Null => "-".into(),
        Some(s) => String::from_utf8_lossy(&doc[s.start as usize..s.end as usize]).into_owned(),
        None => "-".into(),
    }
}

/// The elements of the array at `path` below `span` (none when it is missing).
fn elements(doc: &[u8], span: Span, path: &str) -> Vec<Span> {
    let steps = JsonPath::parse(&format!("x.{path}")).map(|p| p.steps).unwrap_or_default();
    JsonPath::resolve(&steps, doc, span, &mut Vec::new())
        .map(|s| members(doc, s).map(|(_, m)| m).collect())
        .unwrap_or_default()
}

/// Prints one row of `columns` (width, field) read from `span`, right-aligned but the
/// first two.
fn row(doc: &[u8], span: Span, columns: &[(usize, &str)]) {
    let mut line = String::from(" ");
    for (i, (w, name)) in columns.iter().enumerate() {
        let v = field(doc, span, name);
        line += &if i < 2 { format!(" {v:<w$}") } else { format!(" {v:>w$}") };
    }
    println!("{line}");
}

pub(crate) async fn status(args: StatusArgs) -> anyhow::Result<ExitCode> {
    let (addr, token) = (args.http.clone(), args.http_token.clone());
    let (code, body) =
        tokio::task::spawn_blocking(move || get(&addr, "/api/pipelines", token.as_deref())).await?.map_err(|e| {
            anyhow::anyhow!("no pipeline answers at {}: {e} (is `penstock run` running with --http?)", args.http)
        })?;
    if code != 200 {
        anyhow::bail!("{} answered {code}: {}", args.http, body.trim());
    }
    let doc = body.as_bytes();
    let root = scan_value(doc, 16).map_err(|e| anyhow::anyhow!("unreadable answer: {}", e.what))?;
    let Some(list) =
        JsonPath::resolve(&JsonPath::parse("x.pipelines").expect("path").steps, doc, root, &mut Vec::new())
    else {
        anyhow::bail!("unreadable answer: no `pipelines`");
    };
    for (_, p) in members(doc, list) {
        println!(
            "pipeline {}  → {}  state {}  ClickHouse {}",
            field(doc, p, "name"),
            field(doc, p, "table"),
            field(doc, p, "state"),
            if field(doc, p, "clickhouse_reachable") == "true" { "reachable" } else { "UNREACHABLE" }
        );
        println!(
            "  messages {}  rows inserted {}  filtered {}  deduplicated {}  dead-lettered {}  bytes sent {}  retries {}",
            field(doc, p, "messages"),
            field(doc, p, "rows_inserted"),
            field(doc, p, "rows_filtered"),
            field(doc, p, "rows_deduplicated"),
            field(doc, p, "dead_lettered"),
            field(doc, p, "bytes_sent"),
            field(doc, p, "retries")
        );
        println!("  {:<40} {:>9} {:>14} {:>14} {:>10}", "topic", "partition", "delivered", "high", "lag");
        let partition_columns =
            [(40, "topic"), (9, "partition"), (14, "delivered"), (14, "high_watermark"), (10, "lag")];
        for part in elements(doc, p, "partitions") {
            row(doc, part, &partition_columns);
        }
        let state = elements(doc, p, "stage_state");
        if !state.is_empty() {
            println!(
                "  {:<12} {:<27} {:>9} {:>12} {:>12} {:>10} {:>14}",
                "state", "topic", "partition", "keys", "bytes", "unwritten", "covers"
            );
            let state_columns = [
                (12, "stage"),
                (27, "topic"),
                (9, "partition"),
                (12, "keys"),
                (12, "bytes"),
                (10, "unwritten"),
                (14, "covers"),
            ];
            for s in state {
                row(doc, s, &state_columns);
            }
        }
        for r in elements(doc, p, "state_restores") {
            println!(
                "  restored {} {}/{} from its changelog (from offset {}): {} records, {} writes, in {} s",
                field(doc, r, "stage"),
                field(doc, r, "topic"),
                field(doc, r, "partition"),
                field(doc, r, "from_offset"),
                field(doc, r, "records"),
                field(doc, r, "writes"),
                field(doc, r, "seconds")
            );
        }
        let error = field(doc, p, "last_error");
        if error != "-" {
            println!("  last error: {error}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
