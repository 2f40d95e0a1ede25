#!/usr/bin/env bash
# Request metering's cost: the router with usage.meter_requests on against
# it off, in one run. Prints a markdown table for docs/BENCHMARKS.md. Extra
# argument: seconds per round (default 5).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib-postgres.sh
ensure_postgres_server
exec cargo bench --bench metering -- "$@"
