//! Starting and stopping a pipeline: preflight checks, then the source thread and the
//! sink task joined by a bounded queue, with signal handling around them.

use crate::batch::Buffers;
use crate::batcher::Batcher;
use crate::catch_up::CatchUp;
use crate::dead_letter::{self, DeadLetterTable};
use crate::error::PipelineError;
use crate::exactly_once::mode::DedupMode;
use crate::exactly_once::{ledger, mode, recovery::Recovery};
use crate::origins::RowOrigins;
use crate::shared::Shared;
use crate::sink::SinkTask;
use crate::source::SourceLoop;
use crate::stats::{Stats, StatsSnapshot};
use crate::stop::{Stop, StopReason};
use penstock_clickhouse::ClickHouseClient;
use penstock_codec::JsonDecoder;
use penstock_config::{Delivery, Pipeline};
use penstock_kafka::MetadataClient;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// Sealed batches queued between the source and the sink. Two keep the sink busy while
/// the source fills the next; more would only hold memory.
const QUEUE_BATCHES: usize = 2;

/// Time limit of Kafka metadata requests during start-up.
const METADATA_TIMEOUT: Duration = Duration::from_secs(10);

/// How a run is carried out.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Exit once every assigned partition reached the high watermark it had at start.
    pub until_caught_up: bool,
    /// After a stop signal, how long pending inserts may keep retrying before the
    /// process gives up on them (they are re-read on the next start).
    pub shutdown_grace: Duration,
    /// Kafka `client.id`.
    pub client_id: String,
    /// Where the HTTP API reads the run's state, when it is served.
    pub telemetry: Option<Arc<crate::telemetry::Telemetry>>,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            until_caught_up: false,
            shutdown_grace: Duration::from_secs(30),
            client_id: "penstock".into(),
            telemetry: None,
        }
    }
}

/// The outcome of a run that ended cleanly.
#[derive(Debug, Clone)]
pub struct RunSummary {
    /// Counters at the end.
    pub stats: StatsSnapshot,
    /// Why it ended.
    pub reason: StopReason,
    /// Wall time.
    pub elapsed: Duration,
}

/// Checks, before consuming anything, that ClickHouse answers, the table exists (or is
/// created) and fits the schema (or is evolved to), and the topics exist. Each failure
/// is one clear error.
pub async fn preflight(p: &Pipeline, client: &ClickHouseClient) -> Result<(), PipelineError> {
    client.ping().await.map_err(PipelineError::ClickHouseUnavailable)?;
    // The topics first: a pipeline that cannot consume creates nothing.
    let source = p.source.clone();
    tokio::task::spawn_blocking(move || {
        MetadataClient::new(&source.brokers, &source.properties, METADATA_TIMEOUT)?.topics(&source.topics)
    })
    .await
    .map_err(|e| PipelineError::Internal(e.to_string()))??;
    crate::table::prepare(p, client).await?;
    let mismatches = client
        .check_table(&p.sink.database, &p.sink.table, &p.fields)
        .await
        .map_err(PipelineError::ClickHouseUnavailable)?;
    if !mismatches.is_empty() {
        return Err(PipelineError::TableMismatch {
            database: p.sink.database.clone(),
            table: p.sink.table.clone(),
            mismatches,
        });
    }
    Ok(())
}

/// Creates the dead-letter table if missing and checks its columns.
pub async fn prepare_dead_letters(p: &Pipeline, client: &ClickHouseClient) -> Result<DeadLetterTable, PipelineError> {
    let s = &p.sink;
    let table =
        dead_letter::ensure(client, &s.database, &s.dead_letter_database, &s.dead_letter_table, &p.name).await?;
    tracing::info!(
        table = %format!("{}.{}", table.database, table.table), kafka_timestamp = ?table.kafka_timestamp,
        "dead letters go to this table"
    );
    Ok(table)
}

/// Reads the server's capabilities and chooses how repeated inserts are recognised, or
/// refuses, saying why. Changes nothing on the server.
pub async fn choose_exactly_once(
    p: &Pipeline,
    client: &ClickHouseClient,
) -> Result<(mode::Capabilities, DedupMode), PipelineError> {
    let caps = ledger::capabilities(client, &p.sink.database, &p.sink.table)
        .await
        .map_err(PipelineError::ClickHouseUnavailable)?;
    let mode = mode::choose(&caps, &p.fields, p.source.topics.len()).map_err(PipelineError::ExactlyOnceUnavailable)?;
    Ok((caps, mode))
}

/// Exactly-once set-up once the mode is chosen: create the ledger table.
pub async fn prepare_exactly_once(
    p: &Pipeline,
    client: &ClickHouseClient,
    (caps, mode): (mode::Capabilities, DedupMode),
    dead_letters: &DeadLetterTable,
) -> Result<Recovery, PipelineError> {
    let client = client.clone();
    let ledger = ledger::Ledger::new(client.clone(), &p.sink.database, &p.sink.ledger_table, &p.name, &p.sink.table);
    ledger.create().await.map_err(PipelineError::ClickHouseUnavailable)?;
    tracing::info!(server = %caps.version, engine = %caps.engine, %mode, "exactly-once delivery");
    Ok(Recovery {
        ledger,
        client,
        database: p.sink.database.clone(),
        table: p.sink.table.clone(),
        mode,
        dead_letters: dead_letters.clone(),
        runtime: tokio::runtime::Handle::current(),
        retry: crate::retry::RetryPolicy::new(p.sink.retry),
    })
}

/// Opens the store of every stateful stage (creating its changelog topic, with as
/// many partitions as the source topics have, when changelogs are on). Fails, naming
/// the directory or topic, before anything is consumed.
pub async fn open_state(p: &Pipeline) -> Result<Vec<(String, penstock_state::StateStore)>, PipelineError> {
    let Some(cfg) = &p.state else { return Ok(Vec::new()) };
    let settings = penstock_state::StateSettings::new(cfg.dir.clone(), cfg.memory);
    let mut stores = Vec::new();
    for (name, _) in p.stages.dedups() {
        let changelog = if cfg.changelog {
            let topic = penstock_state::changelog::topic_name(&p.name, name);
            let (source, wanted) = (p.source.clone(), topic.clone());
            let (partitions, exists) = tokio::task::spawn_blocking(move || {
                let meta = MetadataClient::new(&source.brokers, &source.properties, METADATA_TIMEOUT)?;
                let topics = meta.topics(&source.topics)?;
                let exists = meta.topics(std::slice::from_ref(&wanted)).is_ok();
                let partitions = topics.iter().map(|t| t.partitions.len() as i32).max().unwrap_or(1);
                Ok::<_, penstock_kafka::KafkaEdgeError>((partitions, exists))
            })
            .await
            .map_err(|e| PipelineError::Internal(e.to_string()))??;
            if !exists {
                let config = [("cleanup.policy".to_string(), "compact".to_string())];
                penstock_kafka::create_topic(
                    &p.source.brokers,
                    &p.source.properties,
                    &topic,
                    partitions,
                    1,
                    &config,
                    METADATA_TIMEOUT,
                )
                .await
                .map_err(|e| PipelineError::State(format!("changelog topic `{topic}`: {e}")))?;
            }
            Some(penstock_state::Changelog::new(&p.source, topic).map_err(|e| PipelineError::State(e.to_string()))?)
        } else {
            None
        };
        let store = penstock_state::StateStore::open(&settings, &p.name, name, changelog)
            .map_err(|e| PipelineError::State(e.to_string()))?;
        tracing::info!(stage = name, dir = %store.dir().display(), changelog = ?store.changelog_topic(), "stage state");
        stores.push((name.to_string(), store));
    }
    Ok(stores)
}

/// Runs a pipeline until a signal, `--until-caught-up`, or a permanent failure (through
/// its internal topic when a dedup repartitions: [`crate::repartition`]).
pub async fn run(p: Pipeline, opts: RunOptions, stop: Arc<Stop>) -> Result<RunSummary, PipelineError> {
    if p.stages.repartition().is_some() {
        return crate::repartition::run(p, opts, stop).await;
    }
    run_direct(p, opts, stop).await
}

/// Runs a pipeline reading its source topics directly.
pub(crate) async fn run_direct(p: Pipeline, opts: RunOptions, stop: Arc<Stop>) -> Result<RunSummary, PipelineError> {
    let started = Instant::now();
    // One client (one connection pool) for everything the run asks ClickHouse.
    let client = ClickHouseClient::for_sink(&p.sink);
    // Stage state first: a directory that cannot be written stops the run before any
    // table is created.
    let state = open_state(&p).await?;
    preflight(&p, &client).await?;
    let mut p = p;
    let evolver = if p.add_unknown_fields {
        // Columns earlier runs added for new message fields are decoded again.
        let client = client.clone();
        crate::table::create_changes_table(&client, &p.sink).await?;
        for f in crate::table::added_fields(&client, &p.sink, &p.name).await? {
            if !p.fields.iter().any(|g| g.column == f.column) {
                p.fields.push(f);
            }
        }
        Some(crate::evolve::Evolver {
            client,
            sink: p.sink.clone(),
            pipeline: p.name.clone(),
            fields: p.fields.clone(),
            limits: p.limits,
            arrays_as_rows: p.arrays_as_rows,
            runtime: tokio::runtime::Handle::current(),
            failed: Default::default(),
        })
    } else {
        None
    };
    let decoder = JsonDecoder::new(p.fields.clone(), p.limits)?.with_arrays_as_rows(p.arrays_as_rows);
    // Every refusal comes before anything is created.
    let exactly_once = match p.delivery {
        Delivery::AtLeastOnce => None,
        Delivery::ExactlyOnce => Some(choose_exactly_once(&p, &client).await?),
    };
    let dead_letters = prepare_dead_letters(&p, &client).await?;
    if let Some(t) = &opts.telemetry {
        t.attach_dead_letters(client.clone(), dead_letters.clone());
    }
    let template =
        Buffers { block: decoder.new_block(), origins: RowOrigins::default(), dead: dead_letters.new_block() };
    let batcher = Batcher::new(p.sink.batch, p.sink.batch.max_bytes, template);
    let recovery = match exactly_once {
        None => None,
        Some(chosen) => Some(prepare_exactly_once(&p, &client, chosen, &dead_letters).await?),
    };
    let stages = p.stages.build(|name| {
        let store = state.iter().find(|(n, _)| n == name).map(|(_, s)| s.clone());
        Box::new(store.expect("every stateful stage has its store opened above"))
    });
    let shared = Arc::new(Shared::new(recovery).with_state(state));
    let stats = Arc::new(Stats::default());
    let consumer = penstock_kafka::subscribe(&p.source, &opts.client_id, shared.clone())?;
    let observers = opts.telemetry.clone().map(|t| {
        t.attach(stats.clone(), shared.clone());
        t.set_state(crate::telemetry::State::Running);
        crate::telemetry::observe(t, &p, client.clone(), stop.clone())
    });
    let (tx, rx) = mpsc::channel(QUEUE_BATCHES);
    let (recycle_tx, recycle_rx) = std::sync::mpsc::sync_channel(QUEUE_BATCHES + 2);
    tracing::info!(
        pipeline = %p.name, topics = ?p.source.topics, group = %p.source.group,
        table = %format!("{}.{}", p.sink.database, p.sink.table), "pipeline started"
    );

    let source = SourceLoop {
        consumer,
        intake: crate::source::Intake {
            decoder,
            batcher,
            shared: shared.clone(),
            replays: Vec::new(),
            dead_letters: dead_letters.clone(),
            evolver,
            stages,
            catch_ups: Vec::new(),
        },
        shared: shared.clone(),
        tx: Some(tx),
        recycled: recycle_rx,
        stop: stop.clone(),
        stats: stats.clone(),
        catch_up: opts.until_caught_up.then(CatchUp::default),
        start: p.source.start,
        metadata_timeout: METADATA_TIMEOUT,
    };
    let source_stop = stop.clone();
    let span = tracing::info_span!("pipeline", name = %p.name);
    let source_span = span.clone();
    let source_handle = tokio::task::spawn_blocking(move || {
        let _in_pipeline = source_span.enter();
        let r = source.run();
        if r.is_err() {
            source_stop.request(StopReason::Failure);
        }
        r
    });
    let sink = SinkTask {
        rx,
        pipeline: p.name.clone(),
        client: client.clone(),
        config: p.sink.clone(),
        shared: shared.clone(),
        stats: stats.clone(),
        stop: stop.clone(),
        dead_letters,
        event_time: p.event_time_column.as_ref().and_then(|c| {
            let i = p.fields.iter().position(|f| f.column == *c)?;
            match p.fields[i].ty.non_nullable() {
                penstock_codec::ColumnType::DateTime64 { precision, .. } => Some((i, *precision)),
                _ => Some((i, 0)),
            }
        }),
        recycle: recycle_tx,
    };
    let sink_handle = tokio::spawn(tracing::Instrument::instrument(sink.run(), span));
    let signals = tokio::spawn(watch_signals(stop.clone(), opts.shutdown_grace));

    let sink_result = sink_handle.await.map_err(|e| PipelineError::Internal(format!("sink task: {e}")))?;
    let source_result = source_handle.await.map_err(|e| PipelineError::Internal(format!("source thread: {e}")))?;
    signals.abort();
    if let Some(o) = observers {
        o.abort();
    }
    if let Some(t) = &opts.telemetry {
        match (&sink_result, &source_result) {
            (Err(e), _) | (_, Err(e)) => {
                t.set_error(&e.to_string());
                t.set_state(crate::telemetry::State::Failed);
            }
            _ => t.set_state(crate::telemetry::State::Stopped),
        }
    }
    sink_result?;
    source_result?;
    if stop.is_hard() {
        return Err(PipelineError::Interrupted);
    }
    let summary = RunSummary {
        stats: stats.snapshot(),
        reason: stop.reason().unwrap_or(StopReason::Signal),
        elapsed: started.elapsed(),
    };
    tracing::info!(?summary, "pipeline stopped");
    Ok(summary)
}

/// First SIGINT/SIGTERM: graceful stop, and a hard stop after `grace`. Second: hard stop.
pub(crate) async fn watch_signals(stop: Arc<Stop>, grace: Duration) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) else {
        tracing::warn!("cannot install signal handlers");
        return;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    tracing::info!("stop requested: flushing open batches and committing offsets (signal again to stop at once)");
    stop.request(StopReason::Signal);
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
        _ = tokio::time::sleep(grace) => tracing::warn!("shutdown grace period of {grace:?} ended"),
    }
    stop.hard_stop();
}
