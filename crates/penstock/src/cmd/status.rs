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
        let parts = JsonPath::resolve(&JsonPath::parse("x.partitions").expect("path").steps, doc, p, &mut Vec::new());
        for (_, part) in parts.map(|s| members(doc, s).collect::<Vec<_>>()).unwrap_or_default() {
            println!(
                "  {:<40} {:>9} {:>14} {:>14} {:>10}",
                field(doc, part, "topic"),
                field(doc, part, "partition"),
                field(doc, part, "delivered"),
                field(doc, part, "high_watermark"),
                field(doc, part, "lag")
            );
        }
        let state = JsonPath::resolve(&JsonPath::parse("x.state").expect("path").steps, doc, p, &mut Vec::new());
        let state = state.map(|s| members(doc, s).collect::<Vec<_>>()).unwrap_or_default();
        if !state.is_empty() {
            println!(
                "  {:<12} {:<27} {:>9} {:>12} {:>12} {:>10} {:>14}",
                "state", "topic", "partition", "keys", "bytes", "unwritten", "covers"
            );
            for (_, s) in state {
                println!(
                    "  {:<12} {:<27} {:>9} {:>12} {:>12} {:>10} {:>14}",
                    field(doc, s, "stage"),
                    field(doc, s, "topic"),
                    field(doc, s, "partition"),
                    field(doc, s, "keys"),
                    field(doc, s, "bytes"),
                    field(doc, s, "unwritten"),
                    field(doc, s, "covers")
                );
            }
        }
        let restores = JsonPath::resolve(&JsonPath::parse("x.restores").expect("path").steps, doc, p, &mut Vec::new());
        for (_, r) in restores.map(|s| members(doc, s).collect::<Vec<_>>()).unwrap_or_default() {
            println!(
                "  restored {} {}/{} from its changelog: {} records, {} writes, in {} s",
                field(doc, r, "stage"),
                field(doc, r, "topic"),
                field(doc, r, "partition"),
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
