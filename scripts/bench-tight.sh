#!/usr/bin/env bash
# Budgets below the active set against their physical limit: the router's
# throughput as a ratio of 1 / (hit × warm cost + miss × session-start
# cost), and its hit ratio beside reference caches replayed on the same
# trace. Prints a markdown table for docs/BENCHMARKS.md. Extra argument:
# seconds per round (default 5).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib-postgres.sh
ensure_postgres_server
exec cargo bench --bench tight -- "$@"
