//! `penstock`: Kafka → ClickHouse, typed, validated and exactly once.
//!
//! Commands: `run` a pipeline, `check` it against the live services, `gen`erate the
//! seed benchmark's `transactions` events, `bench`mark against ClickHouse's Kafka
//! engine, infer or print a `schema`, show a running pipeline's `status`. Exit codes: 0 success, 1 a runtime failure,
//! 2 a bad pipeline file or command line (nothing was started).

mod cmd;
mod http;

mod logging;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// Kafka → ClickHouse pipelines, exactly once.
#[derive(Debug, Parser)]
#[command(name = "penstock", version, about, propagate_version = true)]
struct Cli {
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = logging::LogFormat::Text)]
    log_format: logging::LogFormat,
    /// Log filter (tracing syntax), e.g. `info` or `penstock_pipeline=debug`; `RUST_LOG` also works.
    #[arg(long, global = true, default_value = "info")]
    log_level: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a pipeline.
    Run(cmd::run::RunArgs),
    /// Validate a pipeline file and check it against the broker and ClickHouse.
    Check(cmd::check::CheckArgs),
    /// Produce `transactions` events to a topic, at a target rate, with duplicates,
    /// malformed and late events on request.
    Gen(cmd::gen::GenArgs),
    /// Benchmark Penstock against ClickHouse's Kafka engine on the same broker and data.
    Bench(cmd::bench::BenchArgs),
    /// Infer a pipeline from a topic's messages, or print a pipeline's DDL.
    Schema(cmd::schema::SchemaArgs),
    /// Show a running pipeline's state, counters and lag (from its HTTP API).
    Status(cmd::status::StatusArgs),
}

/// How long the process waits, once its command has finished, for blocking tasks.
const SHUTDOWN_LIMIT: std::time::Duration = std::time::Duration::from_secs(2);

fn main() -> ExitCode {
    let cli = Cli::parse();
    logging::init(cli.log_format, &cli.log_level);
    let runtime = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Run(a) => cmd::run::run(a).await,
            Command::Check(a) => cmd::check::check(a).await,
            Command::Gen(a) => cmd::gen::gen(a).await,
            Command::Bench(a) => cmd::bench::bench(a).await,
            Command::Schema(a) => cmd::schema::schema(a).await,
            Command::Status(a) => cmd::status::status(a).await,
        }
    });
    // A command is over when its future is: blocking work still running (a generator
    // thread after Ctrl-C, a librdkafka client retrying a stopped broker) must not hold
    // the process open.
    runtime.shutdown_timeout(SHUTDOWN_LIMIT);
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
