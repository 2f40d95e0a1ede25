#!/usr/bin/env bash
# What one tenant costs: disk, shared memory and a session on its server,
# catalog rows and bytes, and a cached pool's memory in tenant-plane.
# Prints a markdown table for docs/BENCHMARKS.md. Extra argument: how many
# tenants to make (default 300).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib-postgres.sh
ensure_postgres_server
exec cargo bench --bench density -- "$@"
