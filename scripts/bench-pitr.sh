#!/usr/bin/env bash
# Point-in-time restore of one tenant (issue 30). The embedded default holds
# TENANTS tenants of TENANT_MIB each; its WAL is archived with pgBackRest and
# the reconciler takes a full base backup. Then one tenant is restored to a
# time T as a new tenant, through the API (`restore-to-time`, followed to its
# end), against the plain thing an operator would do instead: `pgbackrest
# restore` of the whole cluster to T into a folder, and a PostgreSQL started
# on it until it has recovered to T and promoted. Both must bring back the
# same marker rows (written just before and just after T).
#
# Then the data-loss window after a crash: a writer commits a row every
# 100 ms to a small tenant, the server is killed with kill -9 at the worst
# moment (a second before the archive timeout would push its WAL), and the
# last row the archive can bring back (a restore of that tenant to the end
# of the archive) is compared with the last row the writer saw committed.
#
#   scripts/bench-pitr.sh [TENANT_MIB] [TENANTS]      (default 1024 10)
#
# Environment:
#   BENCH_BIN               the binary to measure (default: the release build, built once here)
#   BENCH_WORK_DIR          where the data goes (default: a temporary folder); it needs about
#                           3 × TENANTS × TENANT_MIB free
#   BENCH_ARCHIVE_TIMEOUT   backup.archive_timeout_secs (default 60, the setting's default)
#   BENCH_KEEP              set: keep the folder for a look afterwards
#
# Prints a markdown table (docs/BENCHMARKS.md) and writes it, with the raw
# figures, under target/bench-pitr/.
set -Eeuo pipefail
cd "$(dirname "$0")/.."
. scripts/lib-postgres.sh
. scripts/lib-bench.sh
SECS_PLACES=1
ensure_postgres_server
ensure_pgbackrest

tenant_mib=${1:-1024}
tenants=${2:-10}
archive_timeout=${BENCH_ARCHIVE_TIMEOUT:-60}
[[ "$tenant_mib" =~ ^[0-9]+$ && "$tenants" =~ ^[0-9]+$ && "$tenants" -ge 2 ]] || {
  echo "usage: $0 [TENANT_MIB] [TENANTS ≥ 2]" >&2
  exit 2
}
for tool in curl jq bc pgbackrest; do
  command -v "$tool" >/dev/null || { echo "$tool is needed" >&2; exit 1; }
done
if [ -n "${BENCH_BIN:-}" ]; then
  bin=$(realpath "$BENCH_BIN")
else
  cargo build --release --locked >&2
  bin=$(realpath target/release/tenant-plane)
fi
pg_bin=$(dirname "$(realpath "$(command -v initdb || ls /usr/lib/postgresql/*/bin/initdb | tail -n1)")")
run_as=()
[ "$(id -u)" = 0 ] && run_as=(runuser -u postgres --)
secret=tenant-plane-bench-secret-0123456789abcdef
key=00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff

work=$(mktemp -d "${BENCH_WORK_DIR:-${TMPDIR:-/tmp}}/tp-bench-pitr.XXXXXX")
chmod 755 "$work"
need=$((tenant_mib * tenants * 3))
free=$(df -Pm "$work" | awk 'NR == 2 { print $4 }')
if [ "$free" -lt "$need" ]; then
  echo "about $need MiB are needed under $work; $free MiB are free (BENCH_WORK_DIR)" >&2
  rm -rf "$work"
  exit 1
fi
data=$work/data
whole=$work/whole
serve_pid=
writer_pid=
cleanup() {
  [ -n "$writer_pid" ] && kill "$writer_pid" 2>/dev/null || true
  [ -n "$serve_pid" ] && kill -9 "$serve_pid" 2>/dev/null || true
  for pgdata in "$data/postgres" "$whole/pgdata" "$work/latest/pgdata"; do
    [ -f "$pgdata/postmaster.pid" ] &&
      "${run_as[@]}" "$pg_bin/pg_ctl" -D "$pgdata" -m immediate stop >/dev/null 2>&1 || true
  done
  if [ -n "${BENCH_KEEP:-}" ]; then echo "kept: $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'echo "$0: line $LINENO failed: $BASH_COMMAND" >&2' ERR

# Before each measured phase: written out, and the page cache dropped where
# this user may (root), so that every phase reads the repository from disk,
# as a restore after an incident does; else said once, as the figures then
# depend on what the phase before left cached.
cold() {
  sync
  if [ -w /proc/sys/vm/drop_caches ]; then
    echo 3 >/proc/sys/vm/drop_caches
    caches="each phase started with the page cache dropped"
  else
    caches="the page cache could not be dropped (not root): phases after the first may read cached files"
  fi
}

# `serve` on the data directory; more settings as NAME=VALUE arguments.
serve_start() {
  local port
  port=$(free_port)
  base="http://127.0.0.1:$port"
  rm -f "$work/serve.out"
  env TENANT_PLANE_DATA_DIR="$data" TENANT_PLANE_JWT_SECRET=$secret TENANT_PLANE_MASTER_KEY=$key \
    TENANT_PLANE_LISTEN="127.0.0.1:$port" RUST_LOG=${RUST_LOG:-warn} "$@" \
    "$bin" serve >"$work/serve.out" 2>&1 &
  serve_pid=$!
  until grep -qs '^tenant-plane listening on ' "$work/serve.out"; do
    kill -0 "$serve_pid" 2>/dev/null || { cat "$work/serve.out" >&2; exit 1; }
    sleep 0.1
  done
  token=$(TENANT_PLANE_DATA_DIR="$data" TENANT_PLANE_JWT_SECRET=$secret TENANT_PLANE_MASTER_KEY=$key \
    "$bin" token --role super_admin --ttl 12h)
}
serve_stop() {
  kill "$serve_pid" 2>/dev/null || true
  wait "$serve_pid" 2>/dev/null || true
  cat "$work/serve.out" >>"$work/serve.log"
  serve_pid=
}
api() {
  curl -sf -X "$1" -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
    ${3:+-d "$3"} "$base$2"
}
# Follows an operation (its path) to its end; prints its last view. Each
# step it reaches is written to $work/steps with the seconds since it began.
follow() {
  local view step last='' begun
  begun=$(now)
  : >"$work/steps"
  while :; do
    view=$(api GET "$1")
    step=$(jq -r '.step // ""' <<<"$view")
    if [ "$step" != "$last" ]; then
      echo "$step at $(secs "$begun" "$(now)") s" >>"$work/steps"
      last=$step
    fi
    case $(jq -r .state <<<"$view") in
      running | pending | queued) sleep 0.1 ;;
      *) echo "$view"; return ;;
    esac
  done
}
# psql as the embedded cluster's superuser (its port and password from the data directory).
sql() {
  local port
  port=$(sed -n 4p "$data/postgres/postmaster.pid")
  PGPASSWORD=$(cat "$data/secrets/postgres_password") "$pg_bin/psql" -X -At -h 127.0.0.1 \
    -p "$port" -U postgres -v ON_ERROR_STOP=1 -d "$@"
}

# --- The tenants, loaded before archiving starts (the archive then holds
# the base backup, not the load's WAL).
say "making $tenants tenants of $tenant_mib MiB"
serve_start
ids=()
dbs=()
for i in $(seq 1 "$tenants"); do
  view=$(api POST /v1/tenants "{\"name\": \"Bench $i\", \"slug\": \"bench-$i\", \"tier\": \"standard\"}")
  ids+=("$(jq -r .id <<<"$view")")
  dbs+=("$(jq -r .database <<<"$view")")
done
small=$(api POST /v1/tenants '{"name": "Writer", "slug": "bench-writer", "tier": "standard"}')
small_id=$(jq -r .id <<<"$small")
small_db=$(jq -r .database <<<"$small")
# Rows of about 500 bytes: a customer-care line (compressible) and two
# digests (not), with its primary key.
rows=$((tenant_mib * 1024 * 1024 / 560))
for db in "${dbs[@]}"; do
  sql "$db" -q -c "CREATE TABLE bench_transcript (id bigint PRIMARY KEY, body text NOT NULL);
    INSERT INTO bench_transcript
    SELECT g, md5(g::text) || ' ' || substr(repeat('the customer asked where the order is, the agent checked the tracking number and promised a call back before noon; ', 8), 1 + (g * 37) % 400, 420) || ' ' || md5((g * 7)::text)
      FROM generate_series(1, $rows) g;
    CREATE TABLE bench_marker (n int PRIMARY KEY, at timestamptz NOT NULL DEFAULT clock_timestamp());"
done
sql "$small_db" -q -c "CREATE TABLE bench_marker (n int PRIMARY KEY, at timestamptz NOT NULL DEFAULT clock_timestamp())"
# Vacuumed now, as a settled server's tables are: otherwise autovacuum
# reads all ten tenants during the first measured restore.
for db in "${dbs[@]}"; do sql "$db" -q -c "VACUUM (ANALYZE) bench_transcript"; done
sql postgres -q -c CHECKPOINT
target_mib=$(sql postgres -c "SELECT pg_database_size('${dbs[0]}') / 1048576")
cluster_mib=$(sql postgres -c "SELECT (sum(pg_database_size(datname)) / 1048576)::bigint FROM pg_database")
say "tenant ${dbs[0]}: $target_mib MiB; the cluster: $cluster_mib MiB"
serve_stop

# --- Archiving on, and the first full base backup, taken by the reconciler.
serve_start TENANT_PLANE_BACKUP_LOCATION="$work/backups" TENANT_PLANE_BACKUP_RECOVERY_DIR="$work/recovery" \
  TENANT_PLANE_BACKUP_ARCHIVE_TIMEOUT_SECS="$archive_timeout" TENANT_PLANE_RECONCILER_INTERVAL_SECS=1
say "waiting for the first full base backup"
started=$(now)
until [ "$(api GET "/v1/tenants/${ids[0]}/recovery-window" | jq -r '.earliest // empty')" != "" ]; do sleep 1; done
backup_s=$(secs "$started" "$(now)")
repo_mib=$(du -sm "$work/backups/pgbackrest" | cut -f1)
say "base backup: ${backup_s}s, repository $repo_mib MiB"

# --- Markers: 1 before T, 2 after.
sql "${dbs[0]}" -q -c "INSERT INTO bench_marker (n) VALUES (1)"
sleep 1
at=$(date -u +%Y-%m-%dT%H:%M:%S.%6NZ)
sleep 1
sql "${dbs[0]}" -q -c "INSERT INTO bench_marker (n) VALUES (2)"

# Starts PostgreSQL on a restored data directory (no TCP; its own socket
# folder and trust on it, archiving off) and waits until it has recovered
# and promoted.
recovered_start() {
  local dir=$1 more=${2:-}
  echo "local all all trust" >"$dir/run/pg_hba.conf"
  [ ${#run_as[@]} -gt 0 ] && chown postgres "$dir/run/pg_hba.conf"
  "${run_as[@]}" "$pg_bin/pg_ctl" -D "$dir/pgdata" -l "$dir/run/log" -w -t 3600 \
    -o "-p 5432 -c listen_addresses='' -c unix_socket_directories=$dir/run -c hba_file=$dir/run/pg_hba.conf -c archive_mode=off -c hot_standby=off $more" \
    start >/dev/null
  until [ "$("$pg_bin/psql" -X -At -h "$dir/run" -p 5432 -U postgres -d postgres -c 'SELECT NOT pg_is_in_recovery()' 2>/dev/null)" = t ]; do
    sleep 0.1
  done
}
local_sql() { local dir=$1; shift; "$pg_bin/psql" -X -At -h "$dir/run" -p 5432 -U postgres -v ON_ERROR_STOP=1 -d "$@"; }

# --- tenant-plane: one tenant, as a new tenant. Each measured phase starts
# cold (see `cold`).
ours_restore() {
  local slug=$1 started accepted op restored_db
  cold
  say "restoring ${dbs[0]} to $at through the API, as $slug"
  started=$(now)
  accepted=$(api POST "/v1/tenants/${ids[0]}/restore-to-time" "{\"at\": \"$at\", \"as_new\": {\"slug\": \"$slug\"}}")
  op=$(follow "/v1/operations/$(jq -r .id <<<"$accepted")")
  ours_s=$(secs "$started" "$(now)")
  [ "$(jq -r .state <<<"$op")" = succeeded ] || { echo "the restore failed: $op" >&2; exit 1; }
  restored_db=$(api GET "/v1/tenants?q=$slug" | jq -r --arg s "$slug" '[.. | objects | select(.slug? == $s) | .database][0]')
  ours_markers=$(sql "$restored_db" -c "SELECT string_agg(n::text, ',' ORDER BY n) FROM bench_marker")
  ours_rows=$(sql "$restored_db" -c "SELECT count(*) FROM bench_transcript")
  steps=$(paste -sd ';' "$work/steps" | sed 's/;/; /g')
  say "tenant-plane: ${ours_s}s, markers $ours_markers, $ours_rows rows; steps: $steps"
  [ "$ours_markers" = 1 ] || { echo "the restored markers are $ours_markers, not 1" >&2; exit 1; }
  # Its copy goes, so that the next phase's disk is the same.
  api DELETE "/v1/tenants/$(api GET "/v1/tenants?q=$slug" | jq -r --arg s "$slug" '[.. | objects | select(.slug? == $s) | .id][0]')" >/dev/null || true
}
ours_restore bench-restored
first_s=$ours_s first_steps=$steps

# --- Baseline: the whole cluster to the same time, with the same
# repository and the same configuration, recovered and promoted: first as
# pgBackRest does by default (one process), then with as many processes as
# tenant-plane's restore uses (one a core, up to four).
conf=$(find "$data" -name pgbackrest.conf -path '*pgbackrest*' | head -n1)
processes=$(nproc)
[ "$processes" -gt 4 ] && processes=4
whole_cluster() {
  local started
  cold
  mkdir -p "$whole/pgdata" "$whole/run"
  chmod 700 "$whole/pgdata"
  [ ${#run_as[@]} -gt 0 ] && chown -R postgres "$whole"
  say "restoring the whole cluster to $at with pgbackrest $*"
  started=$(now)
  "${run_as[@]}" pgbackrest --config="$conf" --stanza=tenant-plane --pg1-path="$whole/pgdata" \
    --type=time --target="$(date -u -d "$at" '+%Y-%m-%d %H:%M:%S.%6N+00')" --target-action=promote \
    --archive-mode=off "$@" restore
  files_s=$(secs "$started" "$(now)")
  recovered_start "$whole"
  whole_s=$(secs "$started" "$(now)")
  whole_markers=$(local_sql "$whole" "${dbs[0]}" -c "SELECT string_agg(n::text, ',' ORDER BY n) FROM bench_marker")
  "${run_as[@]}" "$pg_bin/pg_ctl" -D "$whole/pgdata" -m fast stop >/dev/null
  whole_mib=$(du -sm "$whole/pgdata" | cut -f1)
  rm -rf "$whole"
  say "whole cluster: ${whole_s}s (files ${files_s}s), markers $whole_markers"
  [ "$whole_markers" = 1 ] || { echo "the whole cluster's markers are $whole_markers, not 1" >&2; exit 1; }
}
whole_cluster
plain_s=$whole_s plain_files_s=$files_s
whole_cluster --process-max="$processes"
parallel_s=$whole_s parallel_files_s=$files_s
# Once more, after the baselines: the machine's disk varies from minute to minute.
ours_restore bench-restored-again
second_s=$ours_s second_steps=$steps

# --- Data-loss window: commits every 100 ms, and kill -9 of the server at
# its worst moment, just before the archive timeout would push the segment
# (a second before the last push plus the timeout).
say "writing a row every 100 ms, then kill -9 of the server just before its next timed WAL push"
port=$(sed -n 4p "$data/postgres/postmaster.pid")
postmaster=$(sed -n 1p "$data/postgres/postmaster.pid")
(
  n=100
  while :; do
    n=$((n + 1))
    PGPASSWORD=$(cat "$data/secrets/postgres_password") "$pg_bin/psql" -X -At -h 127.0.0.1 -p "$port" \
      -U postgres -d "$small_db" -c "INSERT INTO bench_marker (n) VALUES ($n) RETURNING n, extract(epoch FROM at)" \
      >>"$work/written" 2>/dev/null || break
    sleep 0.1
  done
) &
writer_pid=$!
# A push of the writer's own WAL first, so that the next one is the timer's.
first=$(sql postgres -c "SELECT coalesce(extract(epoch FROM last_archived_time), 0) FROM pg_stat_archiver")
until [ "$(echo "$(sql postgres -c "SELECT coalesce(extract(epoch FROM last_archived_time), 0) FROM pg_stat_archiver") > $first" | bc)" = 1 ]; do
  sleep 0.5
done
pushed=$(sql postgres -c "SELECT extract(epoch FROM last_archived_time) FROM pg_stat_archiver")
kill_at=$(echo "$pushed + $archive_timeout - 1" | bc)
while [ "$(echo "$(now) < $kill_at" | bc)" = 1 ]; do sleep 0.05; done
kill -9 "$postmaster"
wait "$writer_pid" 2>/dev/null || true
writer_pid=
kill -9 "$serve_pid" 2>/dev/null || true
serve_pid=
last_written=$(grep '|' "$work/written" | tail -n1)
# The archive's end: that tenant restored to the end of the archive.
mkdir -p "$work/latest/pgdata" "$work/latest/run"
chmod 700 "$work/latest/pgdata"
[ ${#run_as[@]} -gt 0 ] && chown -R postgres "$work/latest"
"${run_as[@]}" pgbackrest --config="$conf" --stanza=tenant-plane --pg1-path="$work/latest/pgdata" \
  --db-include="$small_db" --archive-mode=off restore
# One database restored: the others' pages are zeroed (pgBackRest's guide).
recovered_start "$work/latest" "-c ignore_invalid_pages=on"
last_archived=$(local_sql "$work/latest" "$small_db" \
  -c "SELECT n || '|' || extract(epoch FROM at) FROM bench_marker ORDER BY n DESC LIMIT 1")
"${run_as[@]}" "$pg_bin/pg_ctl" -D "$work/latest/pgdata" -m immediate stop >/dev/null
rpo_s=$(secs "${last_archived#*|}" "${last_written#*|}")
rows_lost=$(( ${last_written%%|*} - ${last_archived%%|*} ))
say "last committed: ${last_written%%|*}; last in the archive: ${last_archived%%|*}; window ${rpo_s}s"

out=target/bench-pitr
mkdir -p "$out"
ratio() { printf '%.2f' "$(echo "$1 / $2" | bc -l)"; }
table="| phase | tenant-plane | baseline | ratio |
|---|---|---|---|
| one ${target_mib} MiB tenant of $tenants (cluster ${cluster_mib} MiB) restored to T, first | ${first_s} s (restore-to-time as a new tenant, to its end) | ${plain_s} s (\`pgbackrest restore\` of the whole cluster, ${plain_files_s} s, then recovery to T; ${whole_mib} MiB written) | **$(ratio "$first_s" "$plain_s")×** |
| the same, again after the baselines | ${second_s} s | ${plain_s} s | **$(ratio "$second_s" "$plain_s")×** |
| against the baseline with \`--process-max=$processes\`, as tenant-plane's restore | ${first_s} s, ${second_s} s | ${parallel_s} s (files ${parallel_files_s} s) | **$(ratio "$first_s" "$parallel_s")×, $(ratio "$second_s" "$parallel_s")×** |
| data-loss window after kill -9 at the worst moment (archive_timeout ${archive_timeout} s) | ${rpo_s} s (${rows_lost} rows lost) | | |

tenant-plane's steps, reached at: first: ${first_steps}; again: ${second_steps}.
Base backup of the cluster: ${backup_s} s; repository ${repo_mib} MiB (lz4, AES-256); ${caches}."
echo "$table" | tee "$out/results.md"
printf '{"tenant_mib": %s, "cluster_mib": %s, "ours_s": [%s, %s], "whole_s": %s, "whole_parallel_s": %s, "rpo_s": %s, "rows_lost": %s, "backup_s": %s, "repo_mib": %s}\n' \
  "$target_mib" "$cluster_mib" "$first_s" "$second_s" "$plain_s" "$parallel_s" "$rpo_s" "$rows_lost" "$backup_s" "$repo_mib" >"$out/results.json"
