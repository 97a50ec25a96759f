//! `dedup: { key, repartition: true }`: rows of one key meet on one partition even when
//! producers spread them over several.
//!
//! ```text
//!  source topics ──► forwarder (Kafka → Kafka, exactly once) ──► penstock-<name>-repartition
//!                    each message unchanged — payload, key,          partition = murmur2(dedup key)
//!                    timestamp — plus a penstock-origin header                │
//!                                                                             ▼
//!                               the pipeline as written, reading the internal topic
//!                               (decode, transforms, dedup state per internal partition,
//!                               ClickHouse, dead letters, exactly once as always)
//! ```
//!
//! The forwarder is the Kafka → Kafka relay in its forward mode (`Relay::forward`): it
//! decodes a message only to read its key columns (computed columns included), and
//! sends the message itself; its progress is the internal topic's checkpoint headers,
//! so a crash neither loses nor repeats a message there. The pipeline then reads the
//! internal topic with its own group, so everything downstream — the ledger, the state
//! and its changelog, `_topic`/`_partition`/`_offset` — is about the internal topic's
//! partitions (that is what exactly-once checks against); `_timestamp` and `_key` are
//! the original message's, and its original coordinates are in its `penstock-origin`
//! header. A message whose key cannot be read keeps its source partition's number and
//! is dead-lettered downstream, as it would have been.
//!
//! Both halves run in this process: side by side, or — with `--until-caught-up` — the
//! forwarder first until it has forwarded everything present at start, then the
//! pipeline until it has read all of that.

use crate::error::PipelineError;
use crate::publish::topic::METADATA_TIMEOUT;
use crate::runner::{RunOptions, RunSummary};
use crate::stop::{Stop, StopReason};
use penstock_config::{KafkaSink, Pipeline, Relay, TopicCreation};
use penstock_kafka::MetadataClient;
use std::sync::Arc;

/// The internal topic of a pipeline.
pub fn topic_name(pipeline: &str) -> String {
    format!("penstock-{pipeline}-repartition")
}

/// The forwarder of `p` (whose dedup repartitions) into `topic` of `partitions`.
pub fn forwarder(p: &Pipeline, topic: &str, partitions: i32) -> Relay {
    let dedup = p.stages.repartition().map(|(_, d)| d);
    let key = dedup.map(|d| d.keys.iter().map(|(_, n)| n.clone()).collect()).unwrap_or_default();
    let mut source = p.source.clone();
    // Informational commits only (progress is the internal topic); never the
    // pipeline's own static member id.
    source.group = format!("{}-repartition", p.source.group);
    source.properties.retain(|(k, _)| k != "group.instance.id");
    let connection = ["security.", "sasl.", "ssl.", "client.", "socket.", "broker.", "api."];
    let properties =
        p.source.properties.iter().filter(|(k, _)| connection.iter().any(|c| k.starts_with(c))).cloned().collect();
    Relay {
        name: p.name.clone(),
        source,
        fields: p.fields.clone(),
        limits: p.limits,
        arrays_as_rows: false,
        sink: KafkaSink {
            brokers: p.source.brokers.clone(),
            topic: topic.to_string(),
            key,
            properties,
            create: Some(TopicCreation { partitions, replication_factor: 1, config: Vec::new() }),
            lease: dedup.is_none_or(|d| d.repartition_lease),
        },
        dead_letter_topic: topic.to_string(),
        http_address: None,
        http_token: None,
        // Computed columns only: a key may be one; nothing is filtered out here.
        stages: penstock_config::stages::StageSpecs { computed: p.stages.computed.clone(), transforms: Vec::new() },
        forward: true,
    }
}

/// The partitions the internal topic gets: as many as the source topic with the most.
pub async fn partitions(p: &Pipeline) -> Result<i32, PipelineError> {
    let s = p.source.clone();
    let topics = tokio::task::spawn_blocking(move || {
        MetadataClient::new(&s.brokers, &s.properties, METADATA_TIMEOUT)?.topics(&s.topics)
    })
    .await
    .map_err(|e| PipelineError::Internal(e.to_string()))??;
    Ok(topics.iter().map(|t| t.partitions.len() as i32).max().unwrap_or(1).max(1))
}

/// Runs `p` through its internal topic (see the module docs).
pub async fn run(p: Pipeline, opts: RunOptions, stop: Arc<Stop>) -> Result<RunSummary, PipelineError> {
    let topic = topic_name(&p.name);
    let relay = forwarder(&p, &topic, partitions(&p).await?);
    crate::publish::topic::prepare_topic(&relay.sink, &topic, relay.sink.create.as_ref()).await?;
    tracing::info!(pipeline = %p.name, topic = %topic, "rows repartitioned by the dedup key through an internal topic");
    let mut downstream = p;
    downstream.source.topics = vec![topic];
    // The forwarder reports nothing of its own over HTTP: the pipeline's telemetry is
    // the one served.
    let relay_opts =
        RunOptions { telemetry: None, client_id: format!("{}-repartition", opts.client_id), ..opts.clone() };
    if opts.until_caught_up {
        let forwarded = crate::relay::run_relay(relay, relay_opts, Arc::new(Stop::default())).await?;
        if forwarded.reason != StopReason::CaughtUp {
            return Err(PipelineError::Internal(format!("the repartition forwarder stopped ({:?})", forwarded.reason)));
        }
        return crate::runner::run_direct(downstream, opts, stop).await;
    }
    let relay_stop = Arc::new(Stop::default());
    let forwarding = tokio::spawn(crate::relay::run_relay(relay, relay_opts, relay_stop.clone()));
    // A forwarder that fails stops the pipeline (it would read nothing new).
    let watch = {
        let (stop, relay_stop) = (stop.clone(), relay_stop.clone());
        tokio::spawn(async move {
            while !relay_stop.is_requested() {
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            }
            if relay_stop.reason() == Some(StopReason::Failure) {
                tracing::error!("the repartition forwarder failed; stopping the pipeline");
                stop.request(StopReason::Failure);
            }
        })
    };
    let result = crate::runner::run_direct(downstream, opts, stop).await;
    relay_stop.request(StopReason::Signal);
    watch.abort();
    match forwarding.await {
        Ok(Err(e)) if result.is_ok() => Err(PipelineError::Internal(format!("the repartition forwarder failed: {e}"))),
        _ => result,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_forwarder_keys_by_the_dedup_key_and_reads_with_its_own_group() {
        let text = r#"
name: tx
source:
  kafka: { brokers: "127.0.0.1:9092", topics: [a, b], group: g, properties: { group.instance.id: m, security.protocol: plaintext } }
schema:
  event_id: UUID
  region: String
  slot: { type: UInt8, expr: "toUInt8(length(region))" }
transforms:
  - filter: "region != ''"
  - dedup: { key: [region, slot], window: 1h, repartition: true }
state: { dir: /tmp/x }
sink:
  clickhouse: { url: "http://127.0.0.1:8123", table: t }
"#;
        let p = penstock_config::parse(text, "p.yaml", |_| None).unwrap();
        let r = forwarder(&p, &topic_name(&p.name), 4);
        assert_eq!(r.sink.topic, "penstock-tx-repartition");
        assert_eq!(r.sink.key, vec!["region".to_string(), "slot".to_string()]);
        assert_eq!(r.sink.create.as_ref().map(|c| c.partitions), Some(4));
        assert!(r.forward && r.sink.lease);
        let unleased = text.replace("repartition: true }", "repartition: true, repartition_lease: none }");
        let p = penstock_config::parse(&unleased, "p.yaml", |_| None).unwrap();
        assert!(!forwarder(&p, &topic_name(&p.name), 4).sink.lease, "repartition_lease: none");
        assert_eq!(r.source.topics, vec!["a".to_string(), "b".to_string()]);
        assert_eq!(r.source.group, "g-repartition");
        assert!(r.source.properties.iter().all(|(k, _)| k != "group.instance.id"));
        assert_eq!(r.sink.properties, vec![("security.protocol".to_string(), "plaintext".to_string())]);
        assert_eq!((r.stages.computed.len(), r.stages.transforms.len()), (1, 0), "computed columns, no filter");
    }
}
