//! Bad input gives one clear error, never a panic or a backtrace.

use crate::harness::*;
use penstock_testkit::{free_port, unique_name, Services};

fn assert_clean_failure(out: &std::process::Output, code: i32, expected: &[&str]) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(code), "exit code; stderr:\n{err}");
    for e in expected {
        assert!(err.contains(e), "stderr lacks `{e}`:\n{err}");
    }
    assert!(!err.contains("panicked") && !err.contains("backtrace"), "{err}");
}

#[test]
fn malformed_pipeline_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.yaml");
    std::fs::write(
        &path,
        "name: bad\nsource:\n  kafka:\n    brokers: 127.0.0.1:1\n    topics: [t]\nschema:\n  a: { type: UInt64, requird: true }\nsink:\n  clickhouse: { url: 'http://127.0.0.1:1', table: t }\n",
    )
    .unwrap();
    let out = penstock(&["run", path.to_str().unwrap()]);
    assert_clean_failure(&out, 2, &["bad.yaml:7:", "`schema.a.requird`", "unknown field `requird`"]);
    let out = penstock(&["check", path.to_str().unwrap()]);
    assert_clean_failure(&out, 2, &["unknown field `requird`"]);
    let out = penstock(&["run", dir.path().join("missing.yaml").to_str().unwrap()]);
    assert_clean_failure(&out, 2, &["missing.yaml: cannot read the pipeline file"]);
}

#[test]
fn unreachable_services_missing_table_and_type_mismatch() {
    let s = Services::start().expect("services");
    let topic = unique_name("t");
    let db = unique_name("db");
    s.kafka.create_topic(&topic, 1).expect("topic");
    let pipeline = example_pipeline(&s, s.dir(), &topic, &db, 1000);
    let text = std::fs::read_to_string(&pipeline).unwrap();
    let write = |name: &str, text: String| {
        let p = s.dir().join(name);
        std::fs::write(&p, text).unwrap();
        p.to_str().unwrap().to_string()
    };

    // No table yet, and the pipeline does not create it.
    s.clickhouse.query(&format!("CREATE DATABASE `{db}`"));
    let create =
        "    create:\n      order_by: [region, event_time, event_id]\n      partition_by: toYYYYMMDD(event_time)\n";
    assert!(text.contains(create), "the example's create section changed");
    let no_create = write("no-create.yaml", text.replace(create, ""));
    let out = penstock(&["run", &no_create, "--until-caught-up"]);
    assert_clean_failure(&out, 1, &[&format!("table `{db}`.`transactions` does not exist")]);
    let out = penstock(&["check", &no_create]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains("does not exist (add `create:`"), "{}", stdout(&out));

    // Type mismatch.
    create_transactions_table(&s, &db);
    s.clickhouse.query(&format!("ALTER TABLE `{db}`.transactions MODIFY COLUMN user_id String"));
    let out = penstock(&["run", &pipeline.to_string_lossy()]);
    assert_clean_failure(&out, 1, &["column `user_id`: the pipeline declares UInt64 but the table has String"]);
    let out = penstock(&["check", &pipeline.to_string_lossy()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains("FAIL table"), "{}", stdout(&out));
    s.clickhouse.query(&format!("ALTER TABLE `{db}`.transactions MODIFY COLUMN user_id UInt64"));

    // Unreachable ClickHouse.
    let dead = format!("http://127.0.0.1:{}", free_port());
    let p = write("no-ch.yaml", text.replace(&s.clickhouse.url(), &dead));
    let out = penstock(&["run", &p]);
    assert_clean_failure(&out, 1, &[&format!("cannot reach ClickHouse at {dead}")]);

    // Unreachable broker.
    let p = write("no-kafka.yaml", text.replace(&s.kafka.bootstrap(), &format!("127.0.0.1:{}", free_port())));
    let out = penstock(&["run", &p]);
    assert_clean_failure(&out, 1, &["cannot reach the Kafka brokers at 127.0.0.1:"]);

    // Missing topic.
    let p = write("no-topic.yaml", text.replace(&topic, "no_such_topic"));
    let out = penstock(&["run", &p]);
    assert_clean_failure(&out, 1, &["topic `no_such_topic` does not exist"]);

    // And with everything fixed, check passes.
    let out = penstock(&["check", &pipeline.to_string_lossy()]);
    assert!(out.status.success(), "{}", stdout(&out));
}

#[test]
fn exactly_once_is_refused_where_it_cannot_hold() {
    let s = Services::start().expect("services");
    let topic = unique_name("t");
    let db = unique_name("db");
    s.kafka.create_topic(&topic, 1).expect("topic");
    create_transactions_table(&s, &db);
    s.clickhouse.query(&format!("ALTER TABLE `{db}`.transactions DROP COLUMN _offset"));
    let pipeline = example_pipeline(&s, s.dir(), &topic, &db, 1000);
    let text = std::fs::read_to_string(&pipeline).unwrap().replace("  _offset:     Int64\n", "");
    std::fs::write(&pipeline, &text).unwrap();
    let path = pipeline.to_str().unwrap();

    let out = penstock(&["run", path, "--until-caught-up"]);
    assert_clean_failure(
        &out,
        1,
        &[
            "exactly-once delivery into the MergeTree table on ClickHouse 18.16",
            "`_offset: Int64`",
            "delivery: at_least_once",
        ],
    );
    let out = penstock(&["check", path]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains("FAIL delivery: exactly-once delivery into the MergeTree table"), "{}", stdout(&out));

    // The same pipeline in at-least-once mode is accepted.
    std::fs::write(&pipeline, format!("{text}delivery: at_least_once\n")).unwrap();
    let out = penstock(&["check", path]);
    assert!(out.status.success(), "{}", stdout(&out));
    assert!(stdout(&out).contains("delivery: at least once"), "{}", stdout(&out));
}

/// A password from the environment never appears in output, logs (text or JSON, at
/// debug level) or errors — even when ClickHouse refuses it.
#[test]
fn secrets_are_never_logged() {
    let s = Services::start().expect("services");
    let topic = unique_name("secret");
    let db = unique_name("db");
    s.kafka.create_topic(&topic, 1).expect("topic");
    let pipeline = example_pipeline(&s, s.dir(), &topic, &db, 1000);
    let secret = "s3cret-Zq9-never-shown";
    for args in [
        vec!["--log-level", "debug", "run", pipeline.to_str().unwrap(), "--until-caught-up"],
        vec!["--log-format", "json", "--log-level", "debug", "run", pipeline.to_str().unwrap(), "--until-caught-up"],
        vec!["check", pipeline.to_str().unwrap()],
    ] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_penstock"))
            .args(&args)
            .env("PENSTOCK_CLICKHOUSE_PASSWORD", secret)
            .output()
            .expect("penstock");
        let all = format!("{}{}", stdout(&out), stderr(&out));
        assert!(!out.status.success(), "the server has no such password: {all}");
        assert!(all.contains("password") || all.contains("Authentication") || all.contains("193"), "{all}");
        assert!(!all.contains(secret), "the secret leaked with {args:?}:\n{all}");
    }
}
