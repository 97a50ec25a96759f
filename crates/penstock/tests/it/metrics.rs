//! The HTTP API during a real run: `/metrics` counters move and agree with ClickHouse
//! (rows inserted = `count()`), consumer lag reaches 0 once caught up, `/readyz` says
//! ready, and while ClickHouse is down the API keeps answering and says so.

use crate::harness::*;
use penstock_testkit::{free_port, http_post, unique_name, Services};
use std::time::{Duration, Instant};

pub(crate) fn metric(text: &str, name: &str) -> Vec<(String, f64)> {
    text.lines()
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with('{'))
        .filter_map(|l| l.rsplit_once(' ').map(|(k, v)| (k.to_string(), v.parse().unwrap_or(f64::NAN))))
        .collect()
}

fn wait_for(what: &str, limit: Duration, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(250));
    }
}

#[test]
fn metrics_agree_with_clickhouse_and_the_api_survives_an_outage() {
    let mut s = Services::start().expect("services");
    let topic = unique_name("metrics");
    let db = unique_name("db");
    s.kafka.create_topic(&topic, 2).expect("topic");
    let produced = produce(&s, &topic, 20_000, 12);
    let pipeline = example_pipeline(&s, s.dir(), &topic, &db, 5_000);
    let port = free_port();
    let log = s.dir().join("metrics.log");
    let addr = format!("127.0.0.1:{port}");
    let mut child = spawn_penstock(&["run", pipeline.to_str().unwrap(), "--http", &addr], &log);
    let get = |path: &str| http_post(port, path, "");

    wait_for("/healthz", Duration::from_secs(60), || get("/healthz").is_ok_and(|(s, _)| s == 200));
    // Everything delivered, and the lag of every partition back to 0.
    wait_for("all rows and zero lag", Duration::from_secs(120), || {
        let Ok((200, text)) = get("/metrics") else { return false };
        let rows = metric(&text, "penstock_rows_inserted_total");
        let lag = metric(&text, "penstock_consumer_lag_messages");
        rows.first().is_some_and(|(_, v)| *v == produced.count as f64)
            && lag.len() == 2
            && lag.iter().all(|(_, v)| *v == 0.0)
    });
    let (_, text) = get("/metrics").unwrap();
    let lag_seconds = metric(&text, "penstock_consumer_lag_seconds");
    assert!(lag_seconds.len() == 2 && lag_seconds.iter().all(|(_, v)| *v == 0.0), "{text}");
    let ch_count: u64 = s.clickhouse.scalar(&format!("SELECT count() FROM `{db}`.transactions"));
    let (_, text) = get("/metrics").unwrap();
    assert_eq!(metric(&text, "penstock_rows_inserted_total")[0].1, ch_count as f64, "{text}");
    assert_eq!(metric(&text, "penstock_messages_consumed_total")[0].1, produced.count as f64);
    assert_eq!(metric(&text, "penstock_rows_filtered_total")[0].1, 0.0, "no transforms: nothing filtered");
    assert!(metric(&text, "penstock_insert_duration_seconds_count")[0].1 >= 1.0);
    // Freshness of every row, against its Kafka timestamp and its event time.
    let freshness = metric(&text, "penstock_freshness_seconds_count");
    assert_eq!(freshness.len(), 2, "{text}");
    assert!(freshness.iter().all(|(_, v)| *v == produced.count as f64), "{freshness:?}");
    assert!(text.contains(&format!("topic=\"{topic}\",partition=\"1\"")), "{text}");
    wait_for("/readyz", Duration::from_secs(30), || get("/readyz").is_ok_and(|(s, _)| s == 200));
    let (status, json) = get("/api/pipelines").unwrap();
    assert_eq!(status, 200);
    assert!(
        json.contains(&format!("\"rows_inserted\":{}", produced.count)) && json.contains("\"state\":\"running\""),
        "{json}"
    );

    // The dashboard, in a real (headless) browser: its numbers are the API's.
    let dom = chromium(&format!("http://{addr}/"), &["--dump-dom"]);
    assert!(dom.contains(&format!("id=\"rows\">{}</div>", thousands(produced.count))), "{dom}");
    assert!(dom.contains("id=\"state\">running</div>") && dom.contains("ClickHouse reachable"), "{dom}");
    assert!(!dom.contains("id=\"freshness\">…"), "freshness shown: {dom}");
    assert!(dom.contains(&format!("<td class=\"l\">{topic}</td><td>1</td>")), "{dom}");
    let shot = screenshot_path();
    chromium(&format!("http://{addr}/"), &[&format!("--screenshot={}", shot.display()), "--window-size=1200,1000"]);
    assert!(std::fs::metadata(&shot).is_ok_and(|m| m.len() > 10_000), "no screenshot at {}", shot.display());

    let status_out = penstock(&["status", "--http", &addr]);
    let table = stdout(&status_out);
    assert!(status_out.status.success(), "{}", stderr(&status_out));
    assert!(table.contains("state running") && table.contains(&format!("rows inserted {}", produced.count)), "{table}");
    assert!(table.contains(&topic) && table.lines().filter(|l| l.contains(&topic)).count() == 2, "{table}");

    // Dead letters, read back from ClickHouse.
    produce_raw(&s, &topic, &[b"{not json"]);
    wait_for("a dead letter", Duration::from_secs(60), || {
        get("/api/dead-letters?limit=5").is_ok_and(|(s, b)| s == 200 && b.contains("\"error_kind\":\"invalid_json\""))
    });
    let (_, body) = get("/api/dead-letters?limit=5").unwrap();
    let (_, text) = get("/metrics").unwrap();
    assert!(
        metric(&text, "penstock_errors_total").iter().any(|(k, v)| k.contains("kind=\"invalid_json\"") && *v == 1.0),
        "{text}"
    );
    assert!(metric(&text, "penstock_process_resident_memory_bytes")[0].1 > 1e6, "{text}");
    assert!(metric(&text, "penstock_bytes_consumed_total")[0].1 > 1e6, "{text}");
    assert!(body.contains("\"raw_hex\":\"7B6E6F74206A736F6E\""), "{body}");

    // ClickHouse down: the API answers and says so.
    s.clickhouse.process().kill();
    wait_for("not ready", Duration::from_secs(30), || {
        get("/readyz").is_ok_and(|(s, b)| s == 503 && b.contains("ClickHouse unreachable"))
    });
    let (status, json) = get("/api/pipelines").unwrap();
    assert!(status == 200 && json.contains("\"clickhouse_reachable\":false"), "{json}");
    let (status, body) = get("/api/dead-letters").unwrap();
    assert!(status == 503 && body.contains("ClickHouse unreachable"), "{body}");
    s.clickhouse.restart().expect("restart ClickHouse");
    wait_for("ready again", Duration::from_secs(30), || get("/readyz").is_ok_and(|(s, _)| s == 200));

    let _ = std::process::Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
    let status = wait_with_limit(&mut child, Duration::from_secs(60), &log);
    assert!(status.success(), "{}", tail_of(&log, 20));
}

/// `n` with thousands separators, as the dashboard shows it.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Where the dashboard screenshot is kept (a test artifact under the target directory).
fn screenshot_path() -> std::path::PathBuf {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/test-artifacts");
    std::fs::create_dir_all(&dir).expect("artifact directory");
    dir.join("dashboard.png")
}

/// Runs headless Chromium (Debian's package) on `url` with `extra` flags; returns stdout.
pub(crate) fn chromium(url: &str, extra: &[&str]) -> String {
    let profile = tempfile_dir();
    let out = std::process::Command::new(std::env::var("PENSTOCK_CHROMIUM").unwrap_or_else(|_| "chromium".into()))
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--virtual-time-budget=5000",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(extra)
        .arg(url)
        .output()
        .expect("chromium (scripts/install.sh installs it)");
    let _ = std::fs::remove_dir_all(&profile);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn tempfile_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(unique_name("chromium"));
    std::fs::create_dir_all(&dir).expect("profile directory");
    dir
}
