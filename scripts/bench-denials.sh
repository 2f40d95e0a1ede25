#!/usr/bin/env bash
# Denial flood: bad tokens against the service and against a row-per-denial
# baseline, with a control call timed before and during (docs/BENCHMARKS.md).
#   scripts/bench-denials.sh [REQUESTS] [RATE]   (defaults: 20000 2000; RATE 0 = unpaced)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib-postgres.sh
ensure_postgres_server
exec cargo bench --bench denials -- "${1:-20000}" "${2:-2000}"
