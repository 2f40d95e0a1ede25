#!/usr/bin/env bash
# The router against a bare handler on one static pool, cold starts against
# pgbench -C, and a noisy neighbour, in one run. Prints markdown tables for
# docs/BENCHMARKS.md. Extra argument: seconds per scenario (default 5).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib-postgres.sh
ensure_postgres_server
exec cargo bench --bench router -- "$@"
