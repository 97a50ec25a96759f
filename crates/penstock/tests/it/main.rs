//! Integration tests against real services on loopback: a Tansu broker (sqlite
//! storage) and a ClickHouse server started by `penstock-testkit`, one pair per test,
//! with a unique topic and database per test. The `penstock` binary is run as a user
//! would run it.

#![allow(unreachable_pub, missing_docs)]

mod bad_input;
mod broker_restart;
mod clickhouse_outage;
mod corpus;
mod crash_loop;
mod dedup;
mod dedup_modes;
mod end_to_end;
mod field_options;
mod gen_bench;
mod harness;
mod metrics;
mod publish;
mod relay;
mod tables;
mod transforms;
mod types_on_server;
