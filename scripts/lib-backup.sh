# Shared by the backup scripts: where archives go, how long they stay, and
# which binary writes them (BACKUP_BIN; the TENANT_PLANE_ prefix is the
# service's own settings).
BACKUP_DIR="${BACKUP_DIR:-backups}"
RETENTION_DAYS="${RETENTION_DAYS:-14}"
case "$RETENTION_DAYS" in
    ''|*[!0-9]*) echo "RETENTION_DAYS must be a whole number of days" >&2; exit 2 ;;
esac
if [ -z "${BACKUP_BIN:-}" ]; then
    if command -v tenant-plane >/dev/null 2>&1; then
        BACKUP_BIN=tenant-plane
    else
        cargo build --release --quiet
        BACKUP_BIN=target/release/tenant-plane
    fi
fi

# Removes archives in $1 older than RETENTION_DAYS, keeping the newest.
prune_old_archives() {
    local dir="${1%/}" newest
    newest=$(ls -1t "$dir"/*.tpbackup 2>/dev/null | head -n 1 || true)
    find "$dir" -maxdepth 1 -name '*.tpbackup' -mtime +"$RETENTION_DAYS" \
        ! -path "$newest" -print -delete
}
