#!/usr/bin/env bash
# Fleet migration sweeps over many tenants, against a bare-connection baseline,
# in one run. Prints a markdown table for docs/BENCHMARKS.md. Extra argument:
# the number of tenants (default 1000).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib-postgres.sh
ensure_postgres_server
exec cargo bench --bench migrate -- "$@"
