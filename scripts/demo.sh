#!/usr/bin/env bash
# Penstock's main job end to end on this machine: installs what is missing, builds,
# starts a Kafka-protocol broker (Tansu, sqlite storage) and ClickHouse on free loopback
# ports, produces 1,000,000 `transactions` events to a 4-partition topic, runs
# examples/transactions.yaml until caught up, prints the row count and the seed
# benchmark's Q1, publishes the table back to Kafka with examples/clickhouse-to-kafka.yaml
# (exactly once, to `transactions-out`), and stops the services.
#   EVENTS=200000 scripts/demo.sh      # fewer events
#   KEEP=1 scripts/demo.sh             # leave the services running to explore
set -euo pipefail
cd "$(dirname "$0")/.."
EVENTS="${EVENTS:-1000000}"

scripts/install.sh
export PENSTOCK_TANSU="${PENSTOCK_TANSU:-${PENSTOCK_CACHE:-$HOME/.cache/penstock}/tansu/bin/tansu}"
cargo build --release --locked -p penstock -p penstock-testkit
BIN=target/release

DIR="$(mktemp -d /tmp/penstock-demo.XXXXXX)"
"$BIN/penstock-services" up "$DIR" >/dev/null
if [ -z "${KEEP:-}" ]; then
  trap '"$BIN/penstock-services" down "$DIR"' EXIT
fi
set -a; . "$DIR/services.env"; set +a
echo "demo: broker $PENSTOCK_KAFKA_BROKERS, ClickHouse $PENSTOCK_CLICKHOUSE_URL"

q() { curl -sS --fail-with-body "$PENSTOCK_CLICKHOUSE_URL/" --data-binary "$1"; }

"$BIN/penstock" gen --topic transactions --count "$EVENTS" --create-partitions 4 --log-level warn
"$BIN/penstock" check examples/transactions.yaml
"$BIN/penstock" run examples/transactions.yaml --until-caught-up --log-level warn

echo
echo "rows in default.transactions:"
q "SELECT count() AS rows, uniqExact(event_id) AS distinct_events FROM transactions FORMAT PrettyCompact"
echo "Q1 (seed benchmark; 18.16 has no now64, so now() stands in):"
q "SELECT region, count() AS cnt, sum(amount) AS total, avg(amount) AS avg_amount
   FROM transactions WHERE event_time >= now() - INTERVAL 1 HOUR
   GROUP BY region ORDER BY total DESC FORMAT PrettyCompact"
echo
echo "publishing the table to Kafka topic transactions-out (examples/clickhouse-to-kafka.yaml):"
sleep 3 # the example reads rows once they are 2 s old by the server's clock
"$BIN/penstock" check examples/clickhouse-to-kafka.yaml
"$BIN/penstock" run examples/clickhouse-to-kafka.yaml --until-caught-up --log-level warn
if [ -n "${KEEP:-}" ]; then
  echo "services left running; stop them with: $BIN/penstock-services down $DIR"
fi
