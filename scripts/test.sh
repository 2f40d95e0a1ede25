#!/usr/bin/env bash
# Runs the test suite against real PostgreSQL clusters that the tests start
# themselves. Extra arguments go to `cargo test`.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib-postgres.sh
ensure_postgres_server
ensure_promtool
ensure_browser
ensure_openssl
exec cargo test --features failpoints "$@"
