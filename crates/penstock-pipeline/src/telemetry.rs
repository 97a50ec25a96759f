//! What a running pipeline shows to operators: Prometheus metrics and a JSON status,
//! rendered from the run's counters ([`Stats`]), the partitions it owns ([`Shared`])
//! and the high watermarks a background poller reads. Rendering is a pure function of
//! those values; the HTTP server that serves it lives in the `penstock` binary.

use crate::shared::Shared;
use crate::stats::Stats;
use penstock_kafka::Partition;
use std::collections::HashMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

/// A histogram with fixed upper bounds, updated with relaxed atomics (once per batch).
#[derive(Debug)]
pub struct Histogram {
    bounds: &'static [f64],
    counts: Vec<AtomicU64>,
    /// Sum of observations, in millionths.
    sum_micros: AtomicU64,
    count: AtomicU64,
}

/// Insert latency buckets, seconds.
pub const LATENCY_BOUNDS: &[f64] = &[0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];
/// End-to-end freshness buckets, seconds (acknowledgement time minus event time).
pub const FRESHNESS_BOUNDS: &[f64] =
    &[0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0];
/// Batch size buckets, rows.
pub const ROWS_BOUNDS: &[f64] = &[10.0, 100.0, 1_000.0, 10_000.0, 50_000.0, 100_000.0, 200_000.0, 500_000.0, 1e6];

impl Histogram {
    /// An empty histogram with these bucket bounds (ascending).
    pub fn new(bounds: &'static [f64]) -> Self {
        Histogram {
            bounds,
            counts: bounds.iter().map(|_| AtomicU64::new(0)).collect(),
            sum_micros: AtomicU64::new(0),
            count: AtomicU64::new(0),
        }
    }

    /// Records one observation.
    pub fn observe(&self, v: f64) {
        if let Some(i) = self.bounds.iter().position(|b| v <= *b) {
            self.counts[i].fetch_add(1, Ordering::Relaxed);
        }
        self.sum_micros.fetch_add((v.max(0.0) * 1e6) as u64, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    /// Records many observations with one atomic update per bucket (a batch's rows).
    pub fn observe_many(&self, values: impl Iterator<Item = f64>) {
        let mut counts = vec![0u64; self.bounds.len()];
        let (mut n, mut sum) = (0u64, 0f64);
        for v in values {
            if let Some(i) = self.bounds.iter().position(|b| v <= *b) {
                counts[i] += 1;
            }
            n += 1;
            sum += v.max(0.0);
        }
        for (c, add) in self.counts.iter().zip(counts) {
            if add > 0 {
                c.fetch_add(add, Ordering::Relaxed);
            }
        }
        self.sum_micros.fetch_add((sum * 1e6) as u64, Ordering::Relaxed);
        self.count.fetch_add(n, Ordering::Relaxed);
    }

    /// The upper bound of the bucket holding quantile `q` (`None` when empty or
    /// beyond the last bound).
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let total = self.count.load(Ordering::Relaxed);
        if total == 0 {
            return None;
        }
        let want = (q * total as f64).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (b, c) in self.bounds.iter().zip(&self.counts) {
            seen += c.load(Ordering::Relaxed);
            if seen >= want {
                return Some(*b);
            }
        }
        None
    }

    /// Writes the Prometheus histogram lines (cumulative buckets, `+Inf`, sum, count).
    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let mut cumulative = 0;
        for (b, c) in self.bounds.iter().zip(&self.counts) {
            cumulative += c.load(Ordering::Relaxed);
            let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{b}\"}} {cumulative}");
        }
        let count = self.count.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {count}");
        let _ = writeln!(out, "{name}_sum{{{labels}}} {}", self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6);
        let _ = writeln!(out, "{name}_count{{{labels}}} {count}");
    }
}

/// Pipeline states, as the API reports them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum State {
    /// Checking services, creating tables, joining the group.
    Starting = 0,
    /// Consuming.
    Running = 1,
    /// Flushing and committing after a stop request.
    Stopping = 2,
    /// Stopped by an error.
    Failed = 3,
    /// Stopped cleanly.
    Stopped = 4,
}

impl State {
    fn name(self) -> &'static str {
        match self {
            State::Starting => "starting",
            State::Running => "running",
            State::Stopping => "stopping",
            State::Failed => "failed",
            State::Stopped => "stopped",
        }
    }
}

/// One partition as reported: delivered offset, high watermark, lag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionView {
    /// The partition.
    pub partition: Partition,
    /// Next offset after what was delivered (or where delivery starts).
    pub delivered: Option<i64>,
    /// The partition's high watermark when last read.
    pub high: Option<i64>,
    /// Kafka timestamp (ms) of the newest delivered row.
    pub delivered_ms: Option<i64>,
}

impl PartitionView {
    /// Messages not yet delivered, when both offsets are known.
    pub fn lag(&self) -> Option<i64> {
        Some((self.high? - self.delivered?).max(0))
    }

    /// How far behind in time: 0 when caught up, else the age (at `now_ms`) of the
    /// newest delivered row — the next undelivered one is at least that old.
    pub fn lag_seconds(&self, now_ms: i64) -> Option<f64> {
        match self.lag()? {
            0 => Some(0.0),
            _ => Some(((now_ms - self.delivered_ms?).max(0)) as f64 / 1000.0),
        }
    }
}

/// Everything the HTTP API reads, filled in as the pipeline starts.
#[derive(Debug)]
pub struct Telemetry {
    /// Pipeline name.
    pub pipeline: String,
    /// Destination `database.table`.
    pub table: String,
    stats: OnceLock<Arc<Stats>>,
    shared: OnceLock<Arc<Shared>>,
    high: Mutex<HashMap<Partition, i64>>,
    state: AtomicU8,
    clickhouse_reachable: AtomicBool,
    last_error: Mutex<Option<String>>,
    dead_letters: OnceLock<(penstock_clickhouse::ClickHouseClient, crate::dead_letter::DeadLetterTable)>,
    publish: OnceLock<Arc<crate::publish::PublishStats>>,
}

impl Telemetry {
    /// Telemetry of a pipeline about to start.
    pub fn new(pipeline: &str, table: &str) -> Self {
        Telemetry {
            pipeline: pipeline.into(),
            table: table.into(),
            stats: OnceLock::new(),
            shared: OnceLock::new(),
            high: Mutex::new(HashMap::new()),
            state: AtomicU8::new(State::Starting as u8),
            clickhouse_reachable: AtomicBool::new(false),
            last_error: Mutex::new(None),
            dead_letters: OnceLock::new(),
            publish: OnceLock::new(),
        }
    }

    /// Attaches a ClickHouse → Kafka run's counters.
    pub(crate) fn attach_publish(&self, stats: Arc<crate::publish::PublishStats>) {
        let _ = self.publish.set(stats);
    }

    /// The Prometheus text of a ClickHouse → Kafka run's counters.
    fn render_publish(&self, out: &mut String, labels: &str) {
        let Some(p) = self.publish.get() else { return };
        let snap = p.snapshot();
        let mut metric = |name: &str, kind: &str, help: &str, v: String| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name}{{{labels}}} {v}");
        };
        metric(
            "penstock_source_rows_read_total",
            "counter",
            "Rows read from the ClickHouse source (messages, from a Kafka source into a Kafka sink).",
            snap.rows_read.to_string(),
        );
        metric(
            "penstock_source_read_retries_total",
            "counter",
            "Source queries that failed and were retried.",
            snap.read_retries.to_string(),
        );
        metric(
            "penstock_source_late_rows_total",
            "counter",
            "Rows that appeared behind the cursor after it passed (committed later than settle allows; not published).",
            snap.late_rows.to_string(),
        );
        metric(
            "penstock_source_lag_rows",
            "gauge",
            "Settled rows not yet read, at the last check.",
            p.lag_rows.load(Ordering::Relaxed).to_string(),
        );
        metric(
            "penstock_source_lag_seconds",
            "gauge",
            "Newest settled row's cursor time minus the cursor's (DateTime cursors).",
            p.lag_seconds.load(Ordering::Relaxed).to_string(),
        );
        metric(
            "penstock_source_cursor",
            "gauge",
            "The cursor's first column, as a number (epoch seconds for DateTime).",
            p.cursor_first.load(Ordering::Relaxed).to_string(),
        );
        metric(
            "penstock_messages_produced_total",
            "counter",
            "Messages the broker acknowledged.",
            snap.messages_produced.to_string(),
        );
        metric(
            "penstock_messages_skipped_total",
            "counter",
            "Rows read again after a recovery and found already in their partition.",
            snap.messages_skipped.to_string(),
        );
        metric(
            "penstock_messages_dead_lettered_total",
            "counter",
            "Kafka → Kafka: source messages that could not be decoded, sent to the dead-letter topic.",
            snap.dead_letters.to_string(),
        );
        metric(
            "penstock_rows_filtered_total",
            "counter",
            "Rows the transforms' filters dropped.",
            snap.rows_filtered.to_string(),
        );
        metric(
            "penstock_sink_recoveries_total",
            "counter",
            "Producer sessions ended by an error and recovered.",
            snap.recoveries.to_string(),
        );
        let _ = writeln!(
            out,
            "# HELP penstock_produce_latency_seconds Time from sending a message to its acknowledgement.\n\
             # TYPE penstock_produce_latency_seconds summary\n\
             penstock_produce_latency_seconds_sum{{{labels}}} {}\npenstock_produce_latency_seconds_count{{{labels}}} {}",
            p.produce_latency_us.load(Ordering::Relaxed) as f64 / 1e6,
            snap.messages_produced
        );
    }

    /// The `/api/pipelines` fields of a ClickHouse → Kafka run.
    fn publish_json(&self) -> String {
        let Some(p) = self.publish.get() else { return String::new() };
        let snap = p.snapshot();
        format!(
            "\"publish\":{{\"rows_read\":{},\"messages_produced\":{},\"messages_skipped\":{},\"recoveries\":{},\
             \"late_rows\":{},\"read_retries\":{},\"dead_letters\":{},\"rows_filtered\":{},\"lag_rows\":{},\"lag_seconds\":{},\"cursor\":{}}},",
            snap.rows_read,
            snap.messages_produced,
            snap.messages_skipped,
            snap.recoveries,
            snap.late_rows,
            snap.read_retries,
            snap.dead_letters,
            snap.rows_filtered,
            p.lag_rows.load(Ordering::Relaxed),
            p.lag_seconds.load(Ordering::Relaxed),
            p.cursor_first.load(Ordering::Relaxed)
        )
    }

    pub(crate) fn attach(&self, stats: Arc<Stats>, shared: Arc<Shared>) {
        let _ = self.stats.set(stats);
        let _ = self.shared.set(shared);
    }

    pub(crate) fn attach_dead_letters(
        &self,
        client: penstock_clickhouse::ClickHouseClient,
        table: crate::dead_letter::DeadLetterTable,
    ) {
        let _ = self.dead_letters.set((client, table));
    }

    /// The most recent dead letters (newest first) of `pipeline` (default: this one),
    /// read back from ClickHouse, as `{"dead_letters":[...]}` with the raw bytes in hex.
    pub async fn dead_letters_json(&self, limit: usize, pipeline: Option<&str>) -> Result<String, String> {
        use penstock_clickhouse::sql::{ident, literal, table_ref};
        let Some((client, t)) = self.dead_letters.get() else {
            return Err("the pipeline has not started yet".into());
        };
        let sql = format!(
            "SELECT pipeline, topic, {p} AS partition, {o} AS offset, toString(kafka_timestamp) AS kafka_timestamp, \
             hex(ifNull(key, '')) AS key_hex, hex(raw) AS raw_hex, error_kind, error_message, \
             toString(dead_lettered_at) AS dead_lettered_at FROM {} WHERE pipeline = {} \
             ORDER BY dead_lettered_at DESC, {o} DESC LIMIT {} FORMAT JSONEachRow",
            table_ref(&t.database, &t.table),
            literal(pipeline.unwrap_or(&self.pipeline)),
            limit.clamp(1, 1000),
            p = ident("partition"),
            o = ident("offset"),
        );
        let rows = client.query(&sql).await.map_err(|e| e.to_string())?;
        let rows: Vec<&str> = rows.lines().filter(|l| !l.trim().is_empty()).collect();
        Ok(format!("{{\"dead_letters\":[{}]}}", rows.join(",")))
    }

    /// Sets the state.
    pub fn set_state(&self, s: State) {
        self.state.store(s as u8, Ordering::Relaxed);
    }

    /// The current state.
    pub fn state(&self) -> State {
        match self.state.load(Ordering::Relaxed) {
            0 => State::Starting,
            1 => State::Running,
            2 => State::Stopping,
            3 => State::Failed,
            _ => State::Stopped,
        }
    }

    /// Records whether ClickHouse answered the last probe.
    pub fn set_clickhouse_reachable(&self, ok: bool) {
        self.clickhouse_reachable.store(ok, Ordering::Relaxed);
    }

    /// Whether ClickHouse answered the last probe.
    pub fn clickhouse_reachable(&self) -> bool {
        self.clickhouse_reachable.load(Ordering::Relaxed)
    }

    /// Records the last error (shown by the API).
    pub fn set_error(&self, e: &str) {
        *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(e.to_string());
    }

    /// Records a partition's high watermark.
    pub fn set_high(&self, p: Partition, high: i64) {
        self.high.lock().unwrap_or_else(|e| e.into_inner()).insert(p, high);
    }

    /// The partitions owned now.
    pub fn partitions(&self) -> Vec<PartitionView> {
        let Some(shared) = self.shared.get() else { return Vec::new() };
        let high = self.high.lock().unwrap_or_else(|e| e.into_inner());
        shared
            .owned()
            .into_iter()
            .map(|(p, delivered, delivered_ms)| PartitionView {
                high: high.get(&p).copied(),
                partition: p,
                delivered,
                delivered_ms,
            })
            .collect()
    }

    /// Ready: consuming, and ClickHouse reachable.
    pub fn ready(&self) -> bool {
        self.state() == State::Running && self.clickhouse_reachable()
    }

    /// The Prometheus text exposition.
    pub fn render_prometheus(&self) -> String {
        let mut out = String::new();
        let labels = format!("pipeline=\"{}\",table=\"{}\"", escape(&self.pipeline), escape(&self.table));
        let counter = |out: &mut String, name: &str, help: &str, v: u64| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter\n{name}{{{labels}}} {v}");
        };
        if let Some(s) = self.stats.get() {
            let snap = s.snapshot();
            counter(&mut out, "penstock_messages_consumed_total", "Messages read from Kafka.", snap.messages);
            counter(&mut out, "penstock_rows_inserted_total", "Rows ClickHouse acknowledged.", snap.rows_inserted);
            counter(
                &mut out,
                "penstock_bytes_sent_total",
                "Insert bodies sent, bytes after compression.",
                snap.bytes_sent,
            );
            counter(
                &mut out,
                "penstock_rows_dead_lettered_total",
                "Rows written to the dead-letter table.",
                snap.dead_lettered,
            );
            counter(
                &mut out,
                "penstock_rows_filtered_total",
                "Rows the transforms' filters dropped.",
                snap.rows_filtered,
            );
            counter(
                &mut out,
                "penstock_rows_deduplicated_total",
                "Rows dedup stages dropped as duplicates.",
                snap.rows_deduplicated,
            );
            counter(
                &mut out,
                "penstock_messages_caught_up_total",
                "Delivered messages read again after a restart to bring stage state forward.",
                snap.caught_up,
            );
            render_state(&mut out, &labels, &s.state());
            counter(
                &mut out,
                "penstock_messages_undecodable_total",
                "Messages that could not be decoded.",
                snap.undecodable,
            );
            counter(&mut out, "penstock_inserts_total", "Insert requests acknowledged.", snap.batches);
            counter(
                &mut out,
                "penstock_bytes_consumed_total",
                "Message payload bytes consumed.",
                s.bytes_consumed.load(Ordering::Relaxed),
            );
            let _ = writeln!(out, "# HELP penstock_errors_total Errors by kind: each dead letter's kind, and insert retries.\n# TYPE penstock_errors_total counter");
            for (kind, n) in s.errors.lock().unwrap_or_else(|e| e.into_inner()).iter() {
                let _ = writeln!(out, "penstock_errors_total{{{labels},kind=\"{}\"}} {n}", escape(kind));
            }
            counter(
                &mut out,
                "penstock_insert_retries_total",
                "Insert attempts that failed and were retried.",
                snap.retries,
            );
            counter(&mut out, "penstock_commits_total", "Offset commits issued.", snap.commits);
            let _ = writeln!(out, "# HELP penstock_insert_duration_seconds Time from sending an insert to its acknowledgement.\n# TYPE penstock_insert_duration_seconds histogram");
            s.insert_seconds.render(&mut out, "penstock_insert_duration_seconds", &labels);
            let _ = writeln!(out, "# HELP penstock_batch_rows Rows per insert.\n# TYPE penstock_batch_rows histogram");
            s.batch_rows.render(&mut out, "penstock_batch_rows", &labels);
            let _ = writeln!(out, "# HELP penstock_freshness_seconds Insert acknowledgement time minus the row's Kafka timestamp (source=kafka_timestamp) or event-time column (source=event_time).\n# TYPE penstock_freshness_seconds histogram");
            s.freshness_kafka.render(
                &mut out,
                "penstock_freshness_seconds",
                &format!("{labels},source=\"kafka_timestamp\""),
            );
            s.freshness_event.render(
                &mut out,
                "penstock_freshness_seconds",
                &format!("{labels},source=\"event_time\""),
            );
        }
        self.render_publish(&mut out, &labels);
        if let Some((cpu, rss)) = process_usage() {
            let _ = writeln!(out, "# HELP penstock_process_cpu_seconds_total CPU time of the Penstock process.\n# TYPE penstock_process_cpu_seconds_total counter\npenstock_process_cpu_seconds_total{{{labels}}} {cpu}");
            let _ = writeln!(out, "# HELP penstock_process_resident_memory_bytes Resident memory of the Penstock process.\n# TYPE penstock_process_resident_memory_bytes gauge\npenstock_process_resident_memory_bytes{{{labels}}} {rss}");
        }
        let _ = writeln!(out, "# HELP penstock_up Pipeline state: 1 for the current state.\n# TYPE penstock_up gauge");
        for st in [State::Starting, State::Running, State::Stopping, State::Failed, State::Stopped] {
            let v = u8::from(self.state() == st);
            let _ = writeln!(out, "penstock_up{{{labels},state=\"{}\"}} {v}", st.name());
        }
        let _ = writeln!(
            out,
            "# HELP penstock_clickhouse_reachable 1 when ClickHouse answered the last probe.\n# TYPE penstock_clickhouse_reachable gauge\npenstock_clickhouse_reachable{{{labels}}} {}",
            u8::from(self.clickhouse_reachable())
        );
        let parts = self.partitions();
        let _ = writeln!(out, "# HELP penstock_consumer_lag_messages Messages not yet delivered to ClickHouse.\n# TYPE penstock_consumer_lag_messages gauge");
        for p in &parts {
            if let Some(lag) = p.lag() {
                let _ = writeln!(
                    out,
                    "penstock_consumer_lag_messages{{{labels},topic=\"{}\",partition=\"{}\"}} {lag}",
                    escape(&p.partition.topic),
                    p.partition.partition
                );
            }
        }
        let now_ms = now_millis();
        let _ = writeln!(out, "# HELP penstock_consumer_lag_seconds Age of the newest delivered row while messages wait (0 when caught up).\n# TYPE penstock_consumer_lag_seconds gauge");
        for p in &parts {
            if let Some(lag) = p.lag_seconds(now_ms) {
                let _ = writeln!(
                    out,
                    "penstock_consumer_lag_seconds{{{labels},topic=\"{}\",partition=\"{}\"}} {lag}",
                    escape(&p.partition.topic),
                    p.partition.partition
                );
            }
        }
        let _ = writeln!(out, "# HELP penstock_delivered_offset Next offset after the last delivered batch.\n# TYPE penstock_delivered_offset gauge");
        for p in &parts {
            if let Some(d) = p.delivered {
                let _ = writeln!(
                    out,
                    "penstock_delivered_offset{{{labels},topic=\"{}\",partition=\"{}\"}} {d}",
                    escape(&p.partition.topic),
                    p.partition.partition
                );
            }
        }
        out
    }

    /// The `/api/pipelines` document.
    pub fn pipelines_json(&self) -> String {
        let snap = self.stats.get().map(|s| s.snapshot()).unwrap_or_default();
        let parts: Vec<String> = self
            .partitions()
            .iter()
            .map(|p| {
                format!(
                    "{{\"topic\":{},\"partition\":{},\"delivered\":{},\"high_watermark\":{},\"lag\":{},\"lag_seconds\":{}}}",
                    json_str(&p.partition.topic),
                    p.partition.partition,
                    opt(p.delivered),
                    opt(p.high),
                    opt(p.lag()),
                    p.lag_seconds(now_millis()).map_or_else(|| "null".to_string(), |v| v.to_string())
                )
            })
            .collect();
        let error = self.last_error.lock().unwrap_or_else(|e| e.into_inner()).clone();
        // Freshness against the event time when the pipeline names it, else the Kafka timestamp.
        let freshness = self.stats.get().map(|s| {
            let h = if s.freshness_event.quantile(0.5).is_some() { &s.freshness_event } else { &s.freshness_kafka };
            let q = |q: f64| h.quantile(q).map_or_else(|| "null".to_string(), |v| v.to_string());
            format!("\"freshness_p50_seconds\":{},\"freshness_p99_seconds\":{},", q(0.5), q(0.99))
        });
        format!(
            "{{\"pipelines\":[{{\"name\":{},\"table\":{},\"state\":\"{}\",\"clickhouse_reachable\":{},\
             {}{}{}\"messages\":{},\"rows_inserted\":{},\"rows_filtered\":{},\"rows_deduplicated\":{},\"caught_up\":{},\"dead_lettered\":{},\"bytes_sent\":{},\"retries\":{},\
             \"partitions\":[{}],\"last_error\":{}}}]}}",
            json_str(&self.pipeline),
            json_str(&self.table),
            self.state().name(),
            self.clickhouse_reachable(),
            freshness.unwrap_or_default(),
            self.publish_json(),
            self.stats.get().map(|s| state_json(&s.state())).unwrap_or_default(),
            snap.messages,
            snap.rows_inserted,
            snap.rows_filtered,
            snap.rows_deduplicated,
            snap.caught_up,
            snap.dead_lettered,
            snap.bytes_sent,
            snap.retries,
            parts.join(","),
            error.as_deref().map_or_else(|| "null".to_string(), json_str)
        )
    }
}

/// Stage state gauges: keys, bytes, entries not yet written (the changelog's lag
/// behind the decisions) per stage and partition, and each restore's time.
fn render_state(out: &mut String, labels: &str, state: &crate::stats::StateReport) {
    if state.partitions.is_empty() && state.restores.is_empty() {
        return;
    }
    let gauge = |out: &mut String, name: &str, help: &str, rows: &[(String, f64)]| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
        for (l, v) in rows {
            let _ = writeln!(out, "{name}{{{labels},{l}}} {v}");
        }
    };
    let part = |stage: &str, topic: &str, partition: i32| {
        format!("stage=\"{}\",topic=\"{}\",partition=\"{partition}\"", escape(stage), escape(topic))
    };
    let rows = |f: &dyn Fn(&penstock_stages::PartitionState) -> f64| -> Vec<(String, f64)> {
        state.partitions.iter().map(|(n, p)| (part(n, &p.topic, p.partition), f(p))).collect()
    };
    gauge(
        out,
        "penstock_state_keys",
        "Keys a stateful stage holds on disk, per source partition.",
        &rows(&|p| p.keys as f64),
    );
    gauge(
        out,
        "penstock_state_bytes",
        "Bytes of a stateful stage's store on disk, per source partition.",
        &rows(&|p| p.bytes as f64),
    );
    gauge(
        out,
        "penstock_state_unwritten_entries",
        "State entries decided but not yet written to the changelog and store (their batches are not delivered yet).",
        &rows(&|p| p.unwritten as f64),
    );
    let restores: Vec<(String, f64)> =
        state.restores.iter().map(|(n, r)| (part(n, &r.topic, r.partition), r.took.as_secs_f64())).collect();
    gauge(
        out,
        "penstock_state_restore_seconds",
        "How long restoring a partition's state from its changelog took.",
        &restores,
    );
}

/// Stage state as JSON (`stage_state`, `state_restores`: the pipeline's own `state`
/// is its run state): per partition, then the restores.
fn state_json(state: &crate::stats::StateReport) -> String {
    let parts: Vec<String> = state
        .partitions
        .iter()
        .map(|(n, p)| {
            format!(
                "{{\"stage\":{},\"topic\":{},\"partition\":{},\"keys\":{},\"bytes\":{},\"unwritten\":{},\"covers\":{}}}",
                json_str(n),
                json_str(&p.topic),
                p.partition,
                p.keys,
                p.bytes,
                p.unwritten,
                p.covers.map_or_else(|| "null".to_string(), |c| c.to_string())
            )
        })
        .collect();
    let restores: Vec<String> = state
        .restores
        .iter()
        .map(|(n, r)| {
            format!(
                "{{\"stage\":{},\"topic\":{},\"partition\":{},\"from_offset\":{},\"records\":{},\"writes\":{},\"seconds\":{}}}",
                json_str(n),
                json_str(&r.topic),
                r.partition,
                r.from_offset.map_or_else(|| "null".to_string(), |o| o.to_string()),
                r.records,
                r.writes,
                r.took.as_secs_f64()
            )
        })
        .collect();
    format!("\"stage_state\":[{}],\"state_restores\":[{}],", parts.join(","), restores.join(","))
}

/// Starts the background probes of a run: ClickHouse reachability (every 5 s) and the
/// owned partitions' high watermarks (every 5 s, on a thread of its own since the
/// metadata calls block). Abort the returned task to stop them; the thread ends with
/// the stop signal.
pub(crate) fn observe(
    t: Arc<Telemetry>,
    p: &penstock_config::Pipeline,
    client: penstock_clickhouse::ClickHouseClient,
    stop: Arc<crate::stop::Stop>,
) -> tokio::task::JoinHandle<()> {
    const EVERY: std::time::Duration = std::time::Duration::from_secs(5);
    let source = p.source.clone();
    let watched = t.clone();
    std::thread::spawn(move || {
        let Ok(meta) = penstock_kafka::MetadataClient::new(&source.brokers, &source.properties, EVERY) else {
            return;
        };
        while !stop.is_requested() {
            for part in watched.partitions() {
                if let Ok((_, high)) = meta.watermarks(&part.partition.topic, part.partition.partition) {
                    watched.set_high(part.partition, high);
                }
            }
            std::thread::sleep(EVERY);
        }
    });
    tokio::spawn(async move {
        loop {
            t.set_clickhouse_reachable(client.ping().await.is_ok());
            tokio::time::sleep(EVERY).await;
        }
    })
}

/// CPU seconds (user + system) and resident bytes of this process, from /proc
/// (Linux: clock ticks of 1/100 s, 4 KiB pages).
fn process_usage() -> Option<(f64, u64)> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the parenthesised command name; utime and stime are the 14th and 15th.
    let rest = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some((ticks as f64 / 100.0, pages * 4096))
}

fn now_millis() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

fn opt(v: Option<i64>) -> String {
    v.map_or_else(|| "null".to_string(), |v| v.to_string())
}

/// A Prometheus label value.
fn escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// A JSON string.
fn json_str(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_are_cumulative() {
        let h = Histogram::new(&[1.0, 10.0]);
        for v in [0.5, 2.0, 3.0, 50.0] {
            h.observe(v);
        }
        let mut out = String::new();
        h.render(&mut out, "x", "p=\"a\"");
        assert_eq!(
            out,
            "x_bucket{p=\"a\",le=\"1\"} 1\nx_bucket{p=\"a\",le=\"10\"} 3\nx_bucket{p=\"a\",le=\"+Inf\"} 4\n\
             x_sum{p=\"a\"} 55.5\nx_count{p=\"a\"} 4\n"
        );
    }

    #[test]
    fn metrics_and_status_render_counters_labels_and_lag() {
        let t = Telemetry::new("tx\"1", "db.t");
        let stats = Arc::new(Stats::default());
        Stats::add(&stats.rows_inserted, 42);
        stats.insert_seconds.observe(0.02);
        t.attach(stats, Arc::new(Shared::new(None)));
        t.set_state(State::Running);
        let text = t.render_prometheus();
        assert!(text.contains("penstock_rows_inserted_total{pipeline=\"tx\\\"1\",table=\"db.t\"} 42"), "{text}");
        assert!(text.contains("penstock_insert_duration_seconds_count{pipeline=\"tx\\\"1\",table=\"db.t\"} 1"));
        assert!(text.contains("penstock_up{pipeline=\"tx\\\"1\",table=\"db.t\",state=\"running\"} 1"));
        assert!(text.contains("penstock_process_resident_memory_bytes{"), "{text}");
        let json = t.pipelines_json();
        assert!(json.starts_with("{\"pipelines\":[{\"name\":\"tx\\\"1\""), "{json}");
        assert!(json.contains("\"rows_inserted\":42") && json.contains("\"last_error\":null"), "{json}");
        assert!(!t.ready(), "not ready until ClickHouse answered");
        t.set_clickhouse_reachable(true);
        assert!(t.ready());
        let v = PartitionView {
            partition: Partition { topic: "t".into(), partition: 0 },
            delivered: Some(7),
            high: Some(10),
            delivered_ms: Some(1_000),
        };
        assert_eq!(v.lag(), Some(3));
        assert_eq!(v.lag_seconds(4_500), Some(3.5));
        assert_eq!(PartitionView { high: Some(7), ..v }.lag_seconds(4_500), Some(0.0), "caught up");
        let h = Histogram::new(&[1.0, 10.0, 100.0]);
        h.observe_many([0.5, 5.0, 5.0, 50.0].into_iter());
        assert_eq!((h.quantile(0.5), h.quantile(0.99)), (Some(10.0), Some(100.0)));
    }

    /// The alert rules and the Grafana dashboard in `deploy/` only use metrics Penstock
    /// exports (histograms through their `_bucket` series).
    #[test]
    fn stage_state_is_exported_per_partition_and_kept_apart_from_the_run_state() {
        let t = Telemetry::new("dd", "db.t");
        let stats = Arc::new(Stats::default());
        Stats::add(&stats.rows_deduplicated, 9);
        *stats.state.lock().unwrap() = crate::stats::StateReport {
            partitions: vec![(
                "dedup".into(),
                penstock_stages::PartitionState {
                    topic: "tx".into(),
                    partition: 2,
                    keys: 1000,
                    bytes: 32_016,
                    unwritten: 7,
                    covers: Some(1200),
                },
            )],
            restores: vec![(
                "dedup".into(),
                penstock_state::Restore {
                    topic: "tx".into(),
                    partition: 2,
                    from_offset: Some(40),
                    records: 3,
                    writes: 2,
                    covers: Some(1000),
                    took: std::time::Duration::from_millis(1500),
                },
            )],
        };
        t.attach(stats, Arc::new(Shared::new(None)));
        t.set_state(State::Running);
        let m = t.render_prometheus();
        let labels = "pipeline=\"dd\",table=\"db.t\",stage=\"dedup\",topic=\"tx\",partition=\"2\"";
        for line in [
            "penstock_rows_deduplicated_total{pipeline=\"dd\",table=\"db.t\"} 9".to_string(),
            format!("penstock_state_keys{{{labels}}} 1000"),
            format!("penstock_state_bytes{{{labels}}} 32016"),
            format!("penstock_state_unwritten_entries{{{labels}}} 7"),
            format!("penstock_state_restore_seconds{{{labels}}} 1.5"),
        ] {
            assert!(m.contains(&line), "{line} missing:\n{m}");
        }
        let json = t.pipelines_json();
        assert!(json.contains("\"state\":\"running\""), "{json}");
        assert!(json.contains("\"rows_deduplicated\":9"), "{json}");
        assert!(
            json.contains("\"stage_state\":[{\"stage\":\"dedup\",\"topic\":\"tx\",\"partition\":2,\"keys\":1000,\"bytes\":32016,\"unwritten\":7,\"covers\":1200}]"),
            "{json}"
        );
        assert!(json.contains("\"state_restores\":[{\"stage\":\"dedup\",\"topic\":\"tx\",\"partition\":2,\"from_offset\":40,\"records\":3,\"writes\":2,\"seconds\":1.5}]"), "{json}");
        assert_eq!(json.matches("\"state\":").count(), 1, "one `state` key per pipeline: {json}");
    }

    #[test]
    fn publication_counters_are_exported_and_listed() {
        let t = Telemetry::new("out", "kafka:topic");
        let p = Arc::new(crate::publish::PublishStats::default());
        crate::publish::PublishStats::add(&p.rows_read, 7);
        crate::publish::PublishStats::add(&p.messages_produced, 5);
        crate::publish::PublishStats::add(&p.late_rows, 1);
        p.lag_rows.store(2, Ordering::Relaxed);
        t.attach_publish(p);
        let m = t.render_prometheus();
        for line in [
            "penstock_source_rows_read_total{pipeline=\"out\",table=\"kafka:topic\"} 7",
            "penstock_messages_produced_total{pipeline=\"out\",table=\"kafka:topic\"} 5",
            "penstock_source_late_rows_total{pipeline=\"out\",table=\"kafka:topic\"} 1",
            "penstock_source_lag_rows{pipeline=\"out\",table=\"kafka:topic\"} 2",
            "# TYPE penstock_produce_latency_seconds summary",
        ] {
            assert!(m.contains(line), "{line} missing in\n{m}");
        }
        let j = t.pipelines_json();
        assert!(j.contains("\"publish\":{\"rows_read\":7,\"messages_produced\":5,"), "{j}");
        assert!(!Telemetry::new("x", "d.t").pipelines_json().contains("publish"));
    }

    #[test]
    fn deploy_files_use_exported_metrics() {
        let t = Telemetry::new("p", "d.t");
        t.attach(Arc::new(Stats::default()), Arc::new(Shared::new(None)));
        let exported: Vec<String> = t
            .render_prometheus()
            .lines()
            .filter_map(|l| l.strip_prefix("# TYPE "))
            .filter_map(|l| l.split(' ').next())
            .map(str::to_string)
            .collect();
        for (file, text) in [
            ("alerts", include_str!("../../../deploy/prometheus/penstock-alerts.yml")),
            ("grafana", include_str!("../../../deploy/grafana/penstock-dashboard.json")),
        ] {
            let mut used = 0;
            for word in text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
                if let Some(name) = word.strip_prefix("penstock_") {
                    let base = format!("penstock_{name}");
                    let base = base.strip_suffix("_bucket").unwrap_or(&base);
                    assert!(exported.iter().any(|e| e == base), "{file} uses `{word}`, which is not exported");
                    used += 1;
                }
            }
            assert!(used >= 5, "{file} uses {used} metrics");
        }
    }
}
