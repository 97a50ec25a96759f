//! `penstock run PIPELINE`

use penstock_pipeline::{RunOptions, Stop, StopReason};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

/// Arguments of `penstock run`.
#[derive(Debug, clap::Args)]
pub(crate) struct RunArgs {
    /// Pipeline file (YAML).
    pipeline: PathBuf,
    /// Exit once every assigned partition has reached the high watermark it had when
    /// the run started (for backfills, tests and demos).
    #[arg(long)]
    until_caught_up: bool,
    /// After SIGINT/SIGTERM, how long to keep retrying pending inserts before giving
    /// up on them (they are re-read on the next start).
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    shutdown_grace: std::time::Duration,
    /// Address of the HTTP API and dashboard (/, /metrics, /healthz, /readyz,
    /// /api/...): this, else the pipeline file's `http.address`, else 127.0.0.1:9464
    /// (loopback); `off` disables it.
    #[arg(long, env = "PENSTOCK_HTTP")]
    http: Option<String>,
    /// Bearer token the HTTP API requires (all routes but /healthz).
    #[arg(long, env = "PENSTOCK_HTTP_TOKEN", hide_env_values = true)]
    http_token: Option<String>,
}

fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    penstock_config::units::parse_duration(s)
}

pub(crate) async fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let pipeline = match super::load_job(&args.pipeline) {
        Ok(penstock_config::Job::Ingest(p)) => p,
        Ok(penstock_config::Job::Publish(p)) => return publish(args, p).await,
        Ok(penstock_config::Job::Relay(r)) => return relay(args, r).await,
        Err(code) => return Ok(code),
    };
    let destination = format!("{}.{}", pipeline.sink.database, pipeline.sink.table);
    let telemetry = serve_http(&args, &pipeline.name, &destination, &pipeline.http_address, &pipeline.http_token);
    let opts = RunOptions {
        until_caught_up: args.until_caught_up,
        shutdown_grace: args.shutdown_grace,
        client_id: format!("penstock-{}", pipeline.name),
        telemetry,
    };
    let stop = Arc::new(Stop::default());
    match penstock_pipeline::run(pipeline, opts, stop).await {
        Ok(summary) => {
            let s = summary.stats;
            let secs = summary.elapsed.as_secs_f64().max(1e-9);
            let mut filtered =
                if s.rows_filtered > 0 { format!(", {} filtered", s.rows_filtered) } else { String::new() };
            if s.rows_deduplicated > 0 {
                filtered += &format!(", {} duplicates dropped", s.rows_deduplicated);
            }
            if s.caught_up > 0 {
                filtered += &format!(", {} delivered messages re-read for stage state", s.caught_up);
            }
            println!(
                "{}: {} messages, {} rows inserted, {} dead-lettered ({} undecodable){filtered}, {} inserts, {} retries, in {:.1}s ({:.0} rows/s)",
                match summary.reason {
                    StopReason::CaughtUp => "caught up",
                    StopReason::Signal => "stopped",
                    StopReason::Failure => "failed",
                },
                s.messages,
                s.rows_inserted,
                s.dead_lettered,
                s.undecodable,
                s.batches,
                s.retries,
                secs,
                s.rows_inserted as f64 / secs
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("error: {e}");
            Ok(ExitCode::FAILURE)
        }
    }
}

/// Serves the HTTP API at `--http`, else the file's `http.address`, else loopback
/// (`off`: not at all), and returns the telemetry it reads.
fn serve_http(
    args: &RunArgs,
    name: &str,
    destination: &str,
    file_address: &Option<String>,
    file_token: &Option<penstock_config::Secret>,
) -> Option<Arc<penstock_pipeline::telemetry::Telemetry>> {
    let address = args.http.clone().or_else(|| file_address.clone()).unwrap_or_else(|| "127.0.0.1:9464".into());
    let token = args.http_token.clone().or_else(|| file_token.as_ref().map(|t| t.expose().to_string()));
    (address != "off").then(|| {
        let t = Arc::new(penstock_pipeline::telemetry::Telemetry::new(name, destination));
        tokio::spawn(crate::http::serve(address, token, t.clone()));
        t
    })
}

/// `penstock run` of a ClickHouse → Kafka pipeline.
async fn publish(args: RunArgs, p: penstock_config::Publication) -> anyhow::Result<ExitCode> {
    let telemetry = serve_http(&args, &p.name, &format!("kafka:{}", p.sink.topic), &p.http_address, &p.http_token);
    let opts = into_kafka_options(&args, telemetry);
    let result = penstock_pipeline::publish::run_publication(p, opts, Arc::new(Stop::default())).await;
    Ok(report_into_kafka(result, "rows read"))
}

/// `penstock run` of a Kafka → Kafka pipeline.
async fn relay(args: RunArgs, r: penstock_config::Relay) -> anyhow::Result<ExitCode> {
    let telemetry = serve_http(&args, &r.name, &format!("kafka:{}", r.sink.topic), &r.http_address, &r.http_token);
    let opts = into_kafka_options(&args, telemetry);
    let result = penstock_pipeline::relay::run_relay(r, opts, Arc::new(Stop::default())).await;
    Ok(report_into_kafka(result, "messages read"))
}

fn into_kafka_options(args: &RunArgs, telemetry: Option<Arc<penstock_pipeline::telemetry::Telemetry>>) -> RunOptions {
    RunOptions {
        until_caught_up: args.until_caught_up,
        shutdown_grace: args.shutdown_grace,
        client_id: "penstock".into(),
        telemetry,
    }
}

/// The last line of a run into Kafka.
fn report_into_kafka(
    result: Result<penstock_pipeline::publish::run::PublishSummary, penstock_pipeline::PipelineError>,
    read: &str,
) -> ExitCode {
    match result {
        Ok(summary) => {
            let s = summary.stats;
            let secs = summary.elapsed.as_secs_f64().max(1e-9);
            let filtered = if s.rows_filtered > 0 { format!(", {} filtered", s.rows_filtered) } else { String::new() };
            println!(
                "{}: {} {read}, {} messages produced ({} dead letters){filtered}, {} already in the topic, {} recoveries, {} late rows, in {:.1}s ({:.0} messages/s)",
                match summary.reason {
                    StopReason::CaughtUp => "caught up",
                    StopReason::Signal => "stopped",
                    StopReason::Failure => "failed",
                },
                s.rows_read,
                s.messages_produced,
                s.dead_letters,
                s.messages_skipped,
                s.recoveries,
                s.late_rows,
                secs,
                s.messages_produced as f64 / secs
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
