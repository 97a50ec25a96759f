//! Prints the offsets a plain consumer receives when assigned at an explicit offset:
//! `cargo run -p penstock-kafka --example fetch_from -- BROKERS TOPIC PARTITION OFFSET [N]`.
//! Used to check a broker's fetch behaviour from inside a stored record batch.

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use std::time::Duration;

fn main() {
    let a: Vec<String> = std::env::args().collect();
    let (brokers, topic, partition, offset) = (&a[1], &a[2], a[3].parse().unwrap(), a[4].parse().unwrap());
    let n: usize = a.get(5).map_or(10, |v| v.parse().unwrap());
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "fetch-from-probe")
        .set("enable.auto.commit", "false")
        .set("fetch.wait.max.ms", "10")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, partition, Offset::Offset(offset)).unwrap();
    c.assign(&tpl).unwrap();
    let mut got = Vec::new();
    while got.len() < n {
        match c.poll(Duration::from_secs(5)) {
            Some(Ok(m)) => got.push(m.offset()),
            Some(Err(e)) => println!("error: {e}"),
            None => break,
        }
    }
    let gaps: Vec<(i64, i64)> = got.windows(2).filter(|w| w[1] != w[0] + 1).map(|w| (w[0], w[1])).collect();
    println!("received {} offsets: first {:?}, last {:?}, gaps {:?}", got.len(), got.first(), got.last(), gaps);
}
