//! `penstock check PIPELINE`: every problem at once, exit 0 only when all is well.

use penstock_clickhouse::ClickHouseClient;
use penstock_kafka::MetadataClient;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// Arguments of `penstock check`.
#[derive(Debug, clap::Args)]
pub(crate) struct CheckArgs {
    /// Pipeline file (YAML).
    pipeline: PathBuf,
}

/// Reports how exactly-once delivery would work here, or why it cannot; returns the
/// number of failures (0 or 1).
async fn check_delivery(p: &penstock_config::Pipeline, client: &ClickHouseClient) -> usize {
    use penstock_pipeline::exactly_once::{ledger, mode};
    if p.delivery == penstock_config::Delivery::AtLeastOnce {
        println!("ok   delivery: at least once (no ledger)");
        return 0;
    }
    match ledger::capabilities(client, &p.sink.database, &p.sink.table).await {
        Ok(mut caps) => {
            // A table the first run will create: judge the engine it will have.
            if let (true, Some(c)) = (caps.engine.is_empty(), &p.sink.create) {
                caps.engine.clone_from(&c.engine);
                caps.non_replicated_window =
                    c.settings.iter().any(|(k, v)| k == "non_replicated_deduplication_window" && v != "0");
            }
            match mode::choose(&caps, &p.fields, p.source.topics.len()) {
                Ok(m) => {
                    println!(
                        "ok   delivery: exactly once on {} {}: {m}; ledger {}.{}",
                        caps.engine, caps.version, p.sink.database, p.sink.ledger_table
                    );
                    0
                }
                Err(why) => {
                    println!("FAIL delivery: {why}");
                    1
                }
            }
        }
        Err(e) => {
            println!("FAIL delivery: {e}");
            1
        }
    }
}

/// Reports how the table differs from the schema and what the first run would do about
/// it (create, add columns, widen), or why it would refuse; returns the failures.
async fn check_table_drift(p: &penstock_config::Pipeline, client: &ClickHouseClient) -> usize {
    use penstock_clickhouse::plan_evolution;
    let (db, table) = (&p.sink.database, &p.sink.table);
    let columns = match client.table_columns(db, table).await {
        Ok(c) => c,
        Err(e) => {
            println!("FAIL table {db}.{table}: {e}");
            return 1;
        }
    };
    if columns.is_empty() {
        return if p.sink.create.is_some() {
            println!("ok   table {db}.{table} will be created from the schema on the first run");
            0
        } else {
            println!("FAIL table {db}.{table} does not exist (add `create:` to the sink to let Penstock create it)");
            1
        };
    }
    let plan = plan_evolution(&p.fields, &columns, p.sink.evolve_add, p.sink.widen);
    for (column, ty, _) in &plan.add {
        println!("ok   table {db}.{table}: column `{column}` {ty} is new in the schema; the first run adds it");
    }
    for (column, old, ty) in &plan.widen {
        println!("ok   table {db}.{table}: column `{column}` will be widened from {old} to {ty}");
    }
    for m in &plan.refused {
        println!("FAIL table {db}.{table}: {m}");
    }
    if plan.add.is_empty() && plan.widen.is_empty() && plan.refused.is_empty() {
        println!("ok   table {db}.{table}: every schema column exists with the same type");
    }
    plan.refused.len()
}

/// Reports whether the dead-letter table exists and fits, or will be created; returns
/// the number of failures (0 or 1). Creates nothing.
async fn check_dead_letters(p: &penstock_config::Pipeline, client: &ClickHouseClient) -> usize {
    use penstock_pipeline::dead_letter::DeadLetterTable;
    let (db, table) = (&p.sink.dead_letter_database, &p.sink.dead_letter_table);
    match client.table_columns(db, table).await {
        Ok(columns) if columns.is_empty() => {
            println!("ok   dead letters: table {db}.{table} will be created on the first run");
            0
        }
        Ok(columns) => match DeadLetterTable::from_columns(db, table, &p.name, &columns) {
            Ok(_) => {
                println!("ok   dead letters: table {db}.{table} exists and fits");
                0
            }
            Err(why) => {
                println!("FAIL dead letters: {why}");
                1
            }
        },
        Err(e) => {
            println!("FAIL dead letters: {e}");
            1
        }
    }
}

/// `penstock check` of a ClickHouse → Kafka pipeline.
async fn check_publication(args: &CheckArgs, p: &penstock_config::Publication) -> ExitCode {
    println!(
        "ok   pipeline file {}: {} into Kafka topic {}",
        args.pipeline.display(),
        penstock_clickhouse::Cursor::from_sql(&p.source),
        p.sink.topic
    );
    match penstock_pipeline::publish::check(p).await {
        Ok(c) => {
            println!("ok   ClickHouse {}: source has {} columns", p.source.url, c.columns.len());
            for (i, f) in p.filters.iter().enumerate() {
                println!("ok   transforms[{i}]: filter `{f}`");
            }
            let cursor: Vec<String> = c.cursor.iter().map(|(n, t)| format!("{n} {t}")).collect();
            if p.source.block {
                println!(
                    "ok   cursor: block ({}): a plain MergeTree persisting its block numbers, read in commit order, no settle delay",
                    cursor.join(", ")
                );
            } else {
                println!(
                    "ok   cursor ({}), rows read once they are {:?} old by the server's clock",
                    cursor.join(", "),
                    p.source.settle
                );
            }
            match (c.partitions, c.create_partitions) {
                (Some(n), _) => println!("ok   Kafka {}: topic {} has {n} partitions", p.sink.brokers, p.sink.topic),
                (None, Some(n)) => {
                    println!(
                        "ok   Kafka {}: topic {} will be created with {n} partitions",
                        p.sink.brokers, p.sink.topic
                    )
                }
                (None, None) => unreachable!("a missing topic without create fails the check"),
            }
            kafka_sink_passed(&p.sink, "each partition's last message")
        }
        Err(e) => one_check_failed(&e),
    }
}

/// What runs between decode and sink: each computed column and transform, with its
/// checked type.
fn print_stages(pipeline: &str, stages: &penstock_config::StageSpecs, fields: &[penstock_codec::FieldSpec]) {
    for (_, column, e) in &stages.computed {
        println!("ok   computed column `{column}` = {} ({})", e.text(), e.ty());
    }
    for (i, t) in stages.transforms.iter().enumerate() {
        match t {
            penstock_config::Transform::Filter(e) => println!("ok   transforms[{i}]: filter `{}`", e.text()),
            penstock_config::Transform::Dedup { spec, name } => {
                let keys: Vec<&str> = spec.keys.iter().map(|(_, n)| n.as_str()).collect();
                let time = match spec.time {
                    penstock_stages::dedup::DedupTime::Kafka => "_timestamp".to_string(),
                    penstock_stages::dedup::DedupTime::Seconds(c) | penstock_stages::dedup::DedupTime::Ticks(c, _) => {
                        fields[c].column.clone()
                    }
                };
                println!(
                    "ok   transforms[{i}]: dedup ({name}) by {} within {} ms of {time}",
                    keys.join(", "),
                    spec.window_ms
                );
                if spec.repartition {
                    println!(
                        "ok   transforms[{i}]: repartitioned: every message goes through topic {} (created when missing, with as many partitions as the source topic with the most), to the partition of its {}",
                        penstock_pipeline::repartition::topic_name(pipeline),
                        keys.join(", ")
                    );
                } else if !dedup_key_is_message_key(spec, fields) {
                    println!(
                        "warn transforms[{i}]: the dedup key is not the message key: state is kept per source partition, so a duplicate is caught only when it lands on the partition of its original — true for producer retries and re-sends of one key, not for the same {} sent with another key (`repartition: true` routes every message by the dedup key)",
                        keys.join(", ")
                    );
                }
            }
        }
    }
}

/// The state directory of stateful stages: it can be created, written and locked.
fn check_state(p: &penstock_config::Pipeline) -> usize {
    let Some(cfg) = &p.state else { return 0 };
    let settings = penstock_state::StateSettings::new(cfg.dir.clone(), cfg.memory);
    let mut failures = 0;
    for (name, _) in p.stages.dedups() {
        match penstock_state::StateStore::open(&settings, &p.name, name, None) {
            Ok(store) => println!(
                "ok   state of {name}: {} ({} MiB for filters and writes in flight; changelog {})",
                store.dir().display(),
                cfg.memory >> 20,
                if cfg.changelog { penstock_state::changelog::topic_name(&p.name, name) } else { "off".into() }
            ),
            Err(e) => {
                failures += 1;
                println!("FAIL state of {name}: {e}");
            }
        }
    }
    failures
}

/// True when rows with the same dedup key share a partition because the key is the
/// message key (a single column taken from `_key`).
fn dedup_key_is_message_key(spec: &penstock_stages::DedupSpec, fields: &[penstock_codec::FieldSpec]) -> bool {
    matches!(spec.keys.as_slice(), [(c, _)] if matches!(fields[*c].source, penstock_codec::ValueSource::Key))
}

/// The last lines of a passing check of a Kafka sink: how it delivers.
fn kafka_sink_passed(sink: &penstock_config::KafkaSink, recovery_reads: &str) -> ExitCode {
    let key = if sink.key.is_empty() { "no key".to_string() } else { format!("key {}", sink.key.join(", ")) };
    println!(
        "ok   delivery: exactly once without transactions ({key}, partition by murmur2; recovery reads {recovery_reads})"
    );
    println!("all checks passed");
    ExitCode::SUCCESS
}

/// A check that stopped at its first failure.
fn one_check_failed(e: &dyn std::fmt::Display) -> ExitCode {
    println!("FAIL {e}");
    println!("1 check(s) failed");
    ExitCode::FAILURE
}

/// `penstock check` of a Kafka → Kafka pipeline.
async fn check_relay(args: &CheckArgs, r: &penstock_config::Relay) -> ExitCode {
    println!(
        "ok   pipeline file {}: {} columns from {} into Kafka topic {} (dead letters: {})",
        args.pipeline.display(),
        r.fields.len(),
        r.source.topics.join(", "),
        r.sink.topic,
        r.dead_letter_topic
    );
    print_stages(&r.name, &r.stages, &r.fields);
    match penstock_pipeline::relay::check(r).await {
        Ok(c) => {
            println!("ok   Kafka {}: source partitions {}", r.source.brokers, c.streams.join(", "));
            let create = r.sink.create.as_ref().map_or(1, |c| c.partitions);
            for (topic, partitions) in
                [(&r.sink.topic, c.output_partitions), (&r.dead_letter_topic, c.dead_letter_partitions)]
            {
                match partitions {
                    Some(n) => println!("ok   Kafka {}: topic {topic} has {n} partitions", r.sink.brokers),
                    None => println!(
                        "ok   Kafka {}: topic {topic} will be created with {create} partitions",
                        r.sink.brokers
                    ),
                }
            }
            kafka_sink_passed(&r.sink, "each output partition back to its newest checkpoint")
        }
        Err(e) => one_check_failed(&e),
    }
}

pub(crate) async fn check(args: CheckArgs) -> anyhow::Result<ExitCode> {
    let p = match super::load_job(&args.pipeline) {
        Ok(penstock_config::Job::Ingest(p)) => p,
        Ok(penstock_config::Job::Publish(p)) => return Ok(check_publication(&args, &p).await),
        Ok(penstock_config::Job::Relay(r)) => return Ok(check_relay(&args, &r).await),
        Err(code) => return Ok(code),
    };
    println!(
        "ok   pipeline file {}: {} columns from {} into {}.{}",
        args.pipeline.display(),
        p.fields.len(),
        p.source.topics.join(", "),
        p.sink.database,
        p.sink.table
    );
    print_stages(&p.name, &p.stages, &p.fields);
    let mut failures = check_state(&p);

    let source = p.source.clone();
    let kafka = tokio::task::spawn_blocking(move || {
        MetadataClient::new(&source.brokers, &source.properties, Duration::from_secs(10))?.topics(&source.topics)
    })
    .await?;
    match kafka {
        Ok(topics) => {
            for t in topics {
                println!("ok   Kafka {}: topic {} has {} partitions", p.source.brokers, t.name, t.partitions.len());
            }
        }
        Err(e) => {
            failures += 1;
            println!("FAIL Kafka: {e}");
        }
    }

    let client = ClickHouseClient::for_sink(&p.sink);
    match client.server_version().await {
        Ok(v) => {
            println!("ok   ClickHouse {}: server version {v}", client.url());
            if let Some(why) = penstock_pipeline::table::unsupported_type(&p, &v) {
                failures += 1;
                println!("FAIL table {}.{}: {why}", p.sink.database, p.sink.table);
            }
            failures += check_table_drift(&p, &client).await;
            failures += check_delivery(&p, &client).await;
            failures += check_dead_letters(&p, &client).await;
        }
        Err(e) => {
            failures += 1;
            println!("FAIL ClickHouse: {e}");
        }
    }
    if failures == 0 {
        println!("all checks passed");
        Ok(ExitCode::SUCCESS)
    } else {
        println!("{failures} check(s) failed");
        Ok(ExitCode::FAILURE)
    }
}
