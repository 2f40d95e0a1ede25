#!/usr/bin/env bash
# Backs up one tenant for cron: DIR/<tenant id>/<UTC time>.tpbackup, then
# removes that tenant's archives older than RETENTION_DAYS (the newest one
# always stays). Settings come from the usual TENANT_PLANE_* variables.
#
#   scripts/backup-tenant.sh TENANT_ID
#   BACKUP_DIR=/var/backups/tenants RETENTION_DAYS=30 scripts/backup-tenant.sh TENANT_ID
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib-backup.sh
tenant="${1:?usage: scripts/backup-tenant.sh TENANT_ID}"
dir="$BACKUP_DIR/$tenant"
mkdir -p "$dir"
"$BACKUP_BIN" backup --tenant "$tenant" --out "$dir/$(date -u +%Y%m%dT%H%M%SZ).tpbackup"
prune_old_archives "$dir"
