#!/usr/bin/env bash
# Installs what Penstock's tests and demo need, skipping whatever is already present:
#   - ClickHouse server + client (Debian package clickhouse-server, 18.16 here)
#   - Tansu 0.6.0, a Kafka-protocol broker, built with its sqlite (libsql) storage into
#     $PENSTOCK_CACHE (default ~/.cache/penstock); a cold build takes ~9 min on 2 cores.
#   - curl and python3 (the harness adds an index to Tansu's sqlite file with python3)
#   - ZooKeeper (Debian package; tests run it as a plain process) for Replicated*MergeTree
#   - Chromium (Debian package) for the headless-browser test of the dashboard
#   - chdb (PyPI, ClickHouse 26.9's engine in-process) in a venv under $PENSTOCK_CACHE:
#     the modern-server oracle for conformance tests (the wheel is ~180 MB, fetched once)
#   - confluent-kafka (PyPI) in the same venv, only for the librdkafka it ships: ClickHouse
#     18.16's Kafka engine needs it preloaded to talk to Tansu (`penstock bench`)
set -euo pipefail

CACHE="${PENSTOCK_CACHE:-$HOME/.cache/penstock}"
TANSU="$CACHE/tansu/bin/tansu"
mkdir -p "$CACHE"

need_apt=()
command -v clickhouse-server >/dev/null 2>&1 || [ -x /usr/sbin/clickhouse-server ] || need_apt+=(clickhouse-server clickhouse-client)
command -v curl >/dev/null 2>&1 || need_apt+=(curl)
command -v python3 >/dev/null 2>&1 || need_apt+=(python3)
[ -f /usr/share/java/zookeeper.jar ] || need_apt+=(zookeeper)
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "install: apt-get install ${need_apt[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

# A Tansu built with default features has no storage at all: check for libsql.
if ! { [ -x "$TANSU" ] && "$TANSU" --help 2>/dev/null | grep -q libsql; }; then
  echo "install: building tansu 0.6.0 with sqlite storage into $CACHE (takes a while the first time)"
  CARGO_TARGET_DIR="$CACHE/tansu-target" cargo install tansu --version 0.6.0 --locked \
    --features libsql,dynostore --root "$CACHE/tansu" --quiet
fi
"$TANSU" --help | grep -q libsql || { echo "install: $TANSU lacks sqlite storage" >&2; exit 1; }
CHDB_VENV="$CACHE/chdb-venv"
if ! "$CHDB_VENV/bin/python" -c "import chdb" >/dev/null 2>&1; then
  echo "install: chdb 4.4.0 into $CHDB_VENV"
  python3 -m venv "$CHDB_VENV"
  "$CHDB_VENV/bin/pip" install --quiet --disable-pip-version-check chdb==4.4.0
fi
if ! "$CHDB_VENV/bin/python" -c "import confluent_kafka" >/dev/null 2>&1; then
  echo "install: confluent-kafka 2.16.1 into $CHDB_VENV (its librdkafka, for ClickHouse's Kafka engine)"
  "$CHDB_VENV/bin/pip" install --quiet --disable-pip-version-check confluent-kafka==2.16.1
fi
echo "install: ready (clickhouse-server: $(command -v clickhouse-server || echo /usr/sbin/clickhouse-server), tansu: $TANSU, chdb: $CHDB_VENV)"
