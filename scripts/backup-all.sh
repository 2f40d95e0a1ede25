#!/usr/bin/env bash
# Backs up every root tenant for cron: BACKUP_DIR/<tenant id>/<UTC time>.tpbackup,
# then removes archives older than RETENTION_DAYS (each tenant's newest stays).
# Exits non-zero if any tenant's backup failed; the others are still written.
#
#   BACKUP_DIR=/var/backups/tenants RETENTION_DAYS=30 scripts/backup-all.sh
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib-backup.sh
mkdir -p "$BACKUP_DIR"
status=0
"$BACKUP_BIN" backup --all --dir "$BACKUP_DIR" || status=$?
for dir in "$BACKUP_DIR"/*/; do
    [ -d "$dir" ] && prune_old_archives "$dir"
done
exit "$status"
