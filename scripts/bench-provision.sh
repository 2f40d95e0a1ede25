#!/usr/bin/env bash
# Tenant creation latency against a raw CREATE DATABASE … TEMPLATE, in one run.
# Prints a markdown table for docs/BENCHMARKS.md. Extra arguments: the rounds.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib-postgres.sh
ensure_postgres_server
exec cargo bench --bench provision -- "$@"
