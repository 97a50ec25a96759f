#!/usr/bin/env bash
# The whole test suite: unit, property and doc tests, and integration tests against a
# real Tansu broker and a real ClickHouse server that the tests start on loopback
# (free ports, temporary directories, stopped by PID). Installs what is missing first.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install.sh
export PENSTOCK_TANSU="${PENSTOCK_TANSU:-${PENSTOCK_CACHE:-$HOME/.cache/penstock}/tansu/bin/tansu}"
cargo test --workspace --locked "$@"
