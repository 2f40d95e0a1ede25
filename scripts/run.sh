#!/usr/bin/env bash
# Runs the service. With no TENANT_PLANE_DATABASE_URL it starts a managed
# PostgreSQL under the data directory (.tenant-plane by default) and prints a
# super_admin token. Extra arguments go to `tenant-plane serve`.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib-postgres.sh
if [ -z "${TENANT_PLANE_DATABASE_URL:-}" ]; then
  ensure_postgres_server
  # A backup location turns on WAL archiving (point-in-time restore).
  if [ -n "${TENANT_PLANE_BACKUP_LOCATION:-}" ]; then
    install_pgbackrest
  fi
fi
exec cargo run --release -- serve "$@"
