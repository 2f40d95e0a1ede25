#!/usr/bin/env bash
# The router against a bare handler on one static pool, cold starts against
# pgbench -C, and a noisy neighbour, in one run. Prints markdown tables for
# docs/BENCHMARKS.md. Extra argument: seconds per scenario (default 5);
# `wrk` after it holds one tenant's read against the plain handlers with wrk
# (installed from Debian's packages) as the load, in a process of its own.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib-postgres.sh
ensure_postgres_server
for arg in "$@"; do [ "$arg" = wrk ] && ensure_wrk; done
exec cargo bench --bench router -- "$@"
