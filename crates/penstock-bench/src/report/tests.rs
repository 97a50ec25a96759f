use super::*;
use crate::measure::summarize;

fn cost(role: &str, cpu: f64, rss: f64) -> ProcessCost {
    ProcessCost { role: role.into(), cpu_seconds: Some(cpu), peak_rss_mib: Some(rss) }
}

fn rate_run(pattern: &str, rate: u64, freshness: &[f64], penstock_cpu: Option<f64>, ch_cpu: f64) -> RunResult {
    let samples: Vec<Sample> = freshness
        .iter()
        .enumerate()
        .map(|(i, f)| Sample { t: i as f64 * 0.5, freshness_ms: Some(*f), visible: i as u64 * 100, behind: 50 })
        .collect();
    let mut processes = vec![cost(ROLE_CLICKHOUSE, ch_cpu, 300.0), cost(ROLE_BROKER, 20.0, 900.0)];
    if let Some(c) = penstock_cpu {
        processes.insert(0, cost(ROLE_PENSTOCK, c, 60.0));
    }
    RunResult {
        scenario: Scenario::Rate(rate),
        pattern: pattern.into(),
        produced: 500_000,
        stored: 500_000,
        distinct: 500_000,
        gen_rate: Some(rate as f64 * 1.01),
        throughput: rate as f64,
        elapsed: 12.0,
        freshness: summarize(freshness),
        lag: summarize(&[50.0]),
        samples,
        processes,
        note: None,
    }
}

fn drain_run(pattern: &str, penstock_cpu: Option<f64>, ch_cpu: f64, seconds: f64, stored: u64) -> RunResult {
    let mut r = rate_run(pattern, 1, &[], penstock_cpu, ch_cpu);
    r.scenario = Scenario::Drain(1_000_000);
    r.produced = 1_000_000;
    r.stored = stored;
    r.distinct = stored.min(1_000_000);
    r.gen_rate = None;
    r.throughput = 1e6 / seconds;
    r.elapsed = seconds;
    r.freshness = None;
    r.lag = None;
    r.note = (stored != 1_000_000).then(|| "the Kafka engine re-read a batch, \"twice\", after a rebalance".into());
    r
}

pub(crate) fn sample_report() -> BenchReport {
    BenchReport {
        environment: Environment {
            command: "penstock bench --rates 50000".into(),
            started_at: "2026-11-21T13:00:00Z".into(),
            cpu: "Test CPU".into(),
            cores: 2,
            memory_gib: 24.0,
            os: "Debian 12".into(),
            penstock: "0.1.0".into(),
            librdkafka: "2.12.1".into(),
            clickhouse: "18.16.1".into(),
            broker: "tansu 0.6.0".into(),
            storage: "memory".into(),
            kafka_engine_librdkafka: Some("librdkafka-0cb94173.so.1".into()),
            partitions: 4,
            event_bytes: 171.4,
        },
        ceilings: Ceilings {
            raw_produce_rate: 800_000.0,
            gen_rate: 760_000.0,
            gen_threads: 2,
            raw_consume_rate: 1_000_000.0,
            raw_consume_cpu_per_million: Some(0.4),
            messages: 1_000_000,
        },
        runs: vec![
            rate_run("kafka-engine", 50_000, &[2000.0, 2100.0, 7000.0], None, 1.0),
            rate_run("penstock", 50_000, &[300.0, 400.0, 1200.0], Some(0.5), 0.3),
            drain_run("kafka-engine", None, 1.65, 7.0, 1_070_000),
            drain_run("penstock", Some(1.2), 0.6, 4.0, 1_000_000),
        ],
        queries: vec![
            QueryResult {
                pattern: "kafka-engine".into(),
                query: "Q1".into(),
                median_ms: 12.5,
                max_ms: 20.0,
                runs: 5,
                table_rows: 1_070_000,
            },
            QueryResult {
                pattern: "penstock".into(),
                query: "Q1".into(),
                median_ms: 11.0,
                max_ms: 13.0,
                runs: 5,
                table_rows: 1_000_000,
            },
            QueryResult {
                pattern: "penstock".into(),
                query: "Q2".into(),
                median_ms: 30.0,
                max_ms: 31.0,
                runs: 5,
                table_rows: 1_000_000,
            },
        ],
        warmup_seconds: 3.0,
        pattern_notes: vec![("penstock".into(), "defaults".into())],
    }
}

#[test]
fn bars_read_the_right_runs() {
    let r = sample_report();
    let b = readings(&r);
    let find = |prefix: &str| b.iter().find(|x| x.bar.starts_with(prefix)).unwrap();
    let cpu = find("Penstock process");
    assert_eq!((cpu.verdict, cpu.measured.as_str()), (Verdict::Missed, "1.20 CPU-s/M"));
    assert!(cpu.gap.as_deref().unwrap().contains("0.20 CPU-s/M over (20 %"), "{cpu:?}");
    let ch = find("ClickHouse server CPU");
    assert_eq!(ch.verdict, Verdict::Met, "1.65 / 0.6 = 2.75×: {ch:?}");
    assert!(ch.measured.starts_with("2.75×"));
    let total = find("Penstock + ClickHouse");
    assert_eq!(total.verdict, Verdict::Missed, "1.2 + 0.6 = 1.8 > 1.65: {total:?}");
    let thr = find("Throughput");
    assert_eq!((thr.verdict, thr.measured.as_str()), (Verdict::Missed, "25 % (250,000 of 1,000,000 events/s)"));
    assert_eq!(thr.gap.as_deref(), Some("65 points short"));
    let fresh = find("Freshness");
    assert_eq!((fresh.verdict, fresh.measured.as_str()), (Verdict::Missed, "1200 ms"));
    assert_eq!(find("Penstock ≤ 256 MiB").verdict, Verdict::Met);
    let gen = find("`penstock gen` ≥ 90 %");
    assert_eq!((gen.verdict, gen.measured.as_str()), (Verdict::Met, "95 % (760,000 of 800,000 msg/s)"));
    let held = find("`penstock gen` holds");
    assert_eq!(held.verdict, Verdict::Met);
    assert!(held.measured.starts_with("worst 1.00 % off over 2"), "{held:?}");
}

#[test]
fn bars_without_runs_are_not_measured() {
    let r = BenchReport::default();
    assert!(readings(&r).iter().all(|b| b.verdict == Verdict::NotMeasured && b.measured == "—"));
}

#[test]
fn markdown_has_every_section_and_number() {
    let md = markdown(&sample_report());
    for needle in [
        "```sh\npenstock bench --rates 50000\n```",
        "| broker | tansu 0.6.0, storage: memory |",
        "## DESIGN.md bars",
        "**missed** by 0.20 CPU-s/M over",
        "| raw consume (bare consumer, no group) (0.40 CPU-s per million) | 1,000,000 |",
        "## 50,000 events/s",
        "| penstock | 50,500 (+1.0 %) | 500,000 / 500,000 ✓ | 400 / 1200 / 1200 / 1200 | 50 | 1.00 | 0.60 | 1.60 | 40.00 | 60 / 300 |",
        "| kafka-engine | 50,500 (+1.0 %) | 500,000 / 500,000 ✓ | 2100 / 7000 / 7000 / 7000 | 50 | — | 2.00 | 2.00 | 40.00 | — / 300 |",
        "![freshness at 50,000/s](freshness-rate-50000.svg)",
        "## Backlog drain: 1,000,000 events already in the topic",
        "| penstock | 4.0 | 250,000 | 25 % | 1,000,000 / 1,000,000 ✓ | 1.20 | 0.60 | 1.80 | 20.00 | 60 / 300 |",
        "| kafka-engine | 7.0 | 142,857 | 14 % | 1,070,000 / 1,000,000 (70,000 duplicates) |",
        "| Q1 | 12.5 / 20.0 (5 runs, 1,070,000 rows) | 11.0 / 13.0 (5 runs, 1,000,000 rows) |",
        "| Q2 | — | 30.0 / 31.0 (5 runs, 1,000,000 rows) |\n\n",
        "- drain 1,000,000 / kafka-engine: the Kafka engine re-read a batch",
        "- **penstock**: defaults",
    ] {
        assert!(md.contains(needle), "missing {needle:?} in\n{md}");
    }
}

#[test]
fn csv_rows_have_as_many_fields_as_the_header() {
    let r = sample_report();
    for text in [runs_csv(&r), samples_csv(&r)] {
        let mut lines = text.lines();
        let header_fields = lines.next().unwrap().split(',').count();
        let mut rows = 0;
        for line in lines {
            rows += 1;
            assert_eq!(split_csv(line).len(), header_fields, "{line}");
        }
        assert!(rows >= 4);
    }
    let runs = runs_csv(&r);
    let drain = runs.lines().find(|l| l.starts_with("drain-1000000,kafka-engine")).unwrap();
    assert!(drain.ends_with(",\"the Kafka engine re-read a batch, \"\"twice\"\", after a rebalance\""), "{drain}");
    assert!(runs.contains("rate-50000,penstock,500000,500000,500000,50500.000,50000.0,12.000,400.000,1200.000,1200.000,1200.000,50.000,1.000,0.600,1.600,40.000,60.000,300.000,900.000,"));
}

/// Splits one CSV line, honouring quotes.
fn split_csv(line: &str) -> Vec<String> {
    let (mut out, mut cur, mut quoted, mut chars) = (Vec::new(), String::new(), false, line.chars().peekable());
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            ('"', _) => quoted = !quoted,
            (',', false) => out.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    out.push(cur);
    out
}

/// Checks that every element opened is closed in order, and returns the element names.
fn check_balanced(svg: &str) -> Vec<String> {
    let (mut stack, mut names) = (Vec::<String>::new(), Vec::new());
    let mut rest = svg;
    while let Some(start) = rest.find('<') {
        let end = rest[start..].find('>').expect("unterminated tag") + start;
        let tag = &rest[start + 1..end];
        if let Some(name) = tag.strip_prefix('/') {
            assert_eq!(stack.pop().as_deref(), Some(name), "mismatched </{name}>");
        } else {
            let name: String = tag.chars().take_while(|c| c.is_ascii_alphanumeric()).collect();
            names.push(name.clone());
            if !tag.ends_with('/') {
                stack.push(name);
            }
        }
        rest = &rest[end + 1..];
    }
    assert!(stack.is_empty(), "unclosed {stack:?}");
    names
}

#[test]
fn charts_are_well_formed_and_inside_their_frame() {
    let r = sample_report();
    let fresh = freshness_chart(&r, Scenario::Rate(50_000));
    let names = check_balanced(&fresh);
    assert_eq!(names.iter().filter(|n| *n == "path").count(), 2, "one line per pattern");
    assert!(fresh.contains(">kafka-engine</text>") && fresh.contains(">penstock</text>"));
    // The y axis tops out at a nice number above the largest sample (7,000 ms → 8,000).
    assert!(fresh.contains(">8000</text>"), "{fresh}");
    for number in fresh.split(['"', ' ', ',', 'M', 'L']).filter_map(|t| t.parse::<f64>().ok()) {
        assert!((-1.0..=760.0).contains(&number), "{number} outside the 760×380 canvas");
    }
    let scatter = throughput_cpu_chart(&r);
    let names = check_balanced(&scatter);
    assert_eq!(names.iter().filter(|n| *n == "circle").count(), 4);
    assert!(scatter.contains("drain 1,000,000: 250,000 events/s, 1.80 CPU-s/M"), "{scatter}");
}

#[test]
fn hostile_names_are_escaped() {
    let mut r = sample_report();
    r.runs[1].pattern = "<penstock & \"co\">".into();
    let svg = freshness_chart(&r, Scenario::Rate(50_000));
    check_balanced(&svg);
    assert!(svg.contains("&lt;penstock &amp; &quot;co&quot;&gt;"));
}

#[test]
fn nice_ceilings_and_thousands() {
    assert_eq!(svg::nice_ceiling(7_000.0), 8_000.0);
    assert_eq!(svg::nice_ceiling(1_200.0), 1_500.0);
    assert_eq!(svg::nice_ceiling(34.5), 40.0);
    assert_eq!(svg::nice_ceiling(100.0), 100.0);
    assert!((svg::nice_ceiling(0.3) - 0.3).abs() < 1e-12);
    assert_eq!(svg::nice_ceiling(0.0), 1.0);
    assert_eq!(thousands(1_234_567.8), "1,234,568");
    assert_eq!(thousands(999.0), "999");
    assert_eq!(thousands(-1000.0), "-1,000");
}

#[test]
fn files_are_written() {
    let dir = tempfile::tempdir().unwrap();
    let files = write_all(&sample_report(), dir.path()).unwrap();
    let names: Vec<String> = files.iter().map(|f| f.file_name().unwrap().to_string_lossy().into_owned()).collect();
    assert_eq!(names, ["report.md", "runs.csv", "samples.csv", "freshness-rate-50000.svg", "throughput-cpu.svg"]);
}
