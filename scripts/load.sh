#!/usr/bin/env bash
# Load test: the release service binary on a throwaway cluster, mixed traffic
# over many tenants (Zipf), for a fixed time. Prints a markdown table for
# docs/BENCHMARKS.md and exits non-zero on any error, a connection count over
# budget, or RSS that kept growing (a least-squares slope over a threshold).
#   scripts/load.sh [SECONDS] [TENANTS] [BUDGET]     (default 180 1000 100)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib-postgres.sh
ensure_postgres_server
exec cargo bench --bench load -- "$@"
