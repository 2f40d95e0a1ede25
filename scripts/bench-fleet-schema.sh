#!/usr/bin/env bash
# Schema changes at scale (issue 29): N tenants on one PostgreSQL server. A
# fleet run (a new V2), a drift scan and a revert of that run, each through
# the service's API (`?wait=true`), timed against a plain loop that sends the
# same SQL with `psql` under `xargs -P` at the same concurrency, on an
# identical set of databases made outside the service. During each phase the
# sessions on the server are counted every 100 ms (pg_stat_activity, the
# counting session left out), and the service's peak memory is its VmHWM
# (a service started afresh for each phase).
#
#   scripts/bench-fleet-schema.sh [TENANTS] [CONCURRENCY[,CONCURRENCY...]]   (default 5000 4)
#
# With several concurrencies (`5000 4,8`), the fleet run and its revert are
# measured at each in turn on the same tenants (the drift scans once, after
# the first run). A concurrency named again (`5000 4,4,4`) repeats its run
# and revert, each beside its own baseline, so that one set-up shows the
# machine's run-to-run spread; the table then gives each phase's median ratio.
#
# Environment:
#   BENCH_BIN              the binary to measure (default: the release build, built once here)
#   BENCH_CREATE_PARALLEL  create requests in flight while the tenants are made (default 8)
#   BENCH_ORDER            interleaved: each service phase, then its baseline, with both sets
#                          of databases on disk; sequential: the service's phases, then its
#                          databases dropped and the baseline's made. Default: interleaved
#                          when the disk holds both sets.
#   BENCH_WORK_DIR         where the throwaway cluster goes (default: a temporary folder)
#   BENCH_KEEP             set: keep that folder (the cluster stopped) for a look afterwards
#   BENCH_PG_OPTIONS       more server settings, e.g. "-c log_min_duration_statement=0" to see
#                          every statement each contender sends (the log is kept with BENCH_KEEP)
#   BENCH_PERF             set: profile every timed phase system-wide with `perf record`
#                          (perf.PHASE.CONTENDER.data, kept with BENCH_KEEP)
#
# Prints a markdown table (docs/BENCHMARKS.md) and writes it, with the raw
# figures as JSON, under target/bench-fleet-schema/. Phases whose endpoint
# this build does not have (404) are skipped with a message.
set -Eeuo pipefail
cd "$(dirname "$0")/.."
. scripts/lib-postgres.sh
. scripts/lib-bench.sh
SECS_PLACES=3
ensure_postgres_server

tenants=${1:-5000}
IFS=, read -r -a concurrencies <<<"${2:-4}"
max_c=0
for c in "${concurrencies[@]}"; do
  [[ "$c" =~ ^[0-9]+$ ]] && [ "$c" -ge 1 ] && [ "$c" -le 256 ] || { echo "a concurrency is 1 to 256, not $c" >&2; exit 2; }
  [ "$c" -gt "$max_c" ] && max_c=$c
done
create_parallel=${BENCH_CREATE_PARALLEL:-8}
# Databases made between two checkpoints while the sets are made.
batch=${BENCH_CREATE_BATCH:-250}
here=scripts/bench-fleet-schema
v2_name=call_transcripts
for tool in curl jq xargs awk bc; do
  command -v "$tool" >/dev/null || { echo "$tool is needed" >&2; exit 1; }
done

if [ -n "${BENCH_BIN:-}" ]; then
  bin=$(realpath "$BENCH_BIN")
else
  cargo build --release --locked >&2
  bin=$(realpath target/release/tenant-plane)
fi

# The server's own binaries, psql included: a distribution's `psql` on PATH
# may be a wrapper script that costs more to start than the work it does.
pg_bin=$(dirname "$(realpath "$(command -v initdb || ls /usr/lib/postgresql/*/bin/initdb | tail -n1)")")
[ -x "$pg_bin/psql" ] || { echo "no psql beside $pg_bin/initdb" >&2; exit 1; }
run_as=()
[ "$(id -u)" = 0 ] && run_as=(runuser -u postgres --)
secret=tenant-plane-bench-secret-0123456789abcdef
key=00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff

work=$(mktemp -d "${BENCH_WORK_DIR:-${TMPDIR:-/tmp}}/tp-bench-fleet-schema.XXXXXX")
chmod 755 "$work"
serve_pid=
sampler_pid=
cleanup() {
  [ -n "$sampler_pid" ] && kill "$sampler_pid" 2>/dev/null || true
  [ -n "$perf_pid" ] && kill -INT "$perf_pid" 2>/dev/null || true
  [ -n "$serve_pid" ] && kill -9 "$serve_pid" 2>/dev/null || true
  [ -f "$work/pgdata/postmaster.pid" ] &&
    "${run_as[@]}" "$pg_bin/pg_ctl" -D "$work/pgdata" -m immediate stop >/dev/null 2>&1 || true
  if [ -n "${BENCH_KEEP:-}" ]; then echo "kept: $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'echo "$0: line $LINENO failed: $BASH_COMMAND" >&2' ERR


# Over TCP, as the service connects: the baseline pays what the service pays.
psql_c() { "$pg_bin/psql" -X -At -h 127.0.0.1 -p "$pg_port" -U postgres -v ON_ERROR_STOP=1 -d "$@"; }

# --- The cluster: durable (fsync on), as production; room for the sessions.
mkdir -p "$work/pgdata" "$work/run" "$work/migrations" "$work/data" "$work/out"
chown -R postgres "$work/pgdata" "$work/run" 2>/dev/null || true
"${run_as[@]}" "$pg_bin/initdb" -D "$work/pgdata" -U postgres --auth=trust --no-sync >/dev/null
# A port taken between the probe and the bind is tried again with another.
for attempt in 1 2 3 4 5; do
  pg_port=$(free_port)
  "${run_as[@]}" "$pg_bin/pg_ctl" -D "$work/pgdata" -l "$work/run/log" \
    -o "-p $pg_port -c listen_addresses=127.0.0.1 -c unix_socket_directories=$work/run -c max_connections=$((max_c * 4 + 200)) ${BENCH_PG_OPTIONS:-}" \
    -w start >/dev/null && break
  grep -q 'could not bind' "$work/run/log" && [ "$attempt" -lt 5 ] && continue
  cat "$work/run/log" >&2
  exit 1
done
cp tenant_template/migrations/V1__tenant_schema.sql "$work/migrations/"

# --- The service: started afresh for each phase, so VmHWM is that phase's peak.
serve_start() {
  local port attempt
  for attempt in 1 2 3 4 5; do
    port=$(free_port)
    base="http://127.0.0.1:$port"
    # The last start's output must not be read as this one's.
    rm -f "$work/serve.out"
    TENANT_PLANE_DATABASE_URL="host=127.0.0.1 port=$pg_port user=postgres dbname=catalog" \
      TENANT_PLANE_JWT_SECRET=$secret TENANT_PLANE_MASTER_KEY=$key \
      TENANT_PLANE_DATA_DIR="$work/data" \
      TENANT_PLANE_MIGRATIONS_TENANT_DIR="$work/migrations" \
      TENANT_PLANE_LISTEN="127.0.0.1:$port" RUST_LOG=${RUST_LOG:-warn} \
      "$bin" serve >"$work/serve.out" 2>&1 &
    serve_pid=$!
    until grep -qs '^tenant-plane listening on ' "$work/serve.out"; do
      if ! kill -0 "$serve_pid" 2>/dev/null; then
        grep -q 'Address already in use' "$work/serve.out" && continue 2
        cat "$work/serve.out" >&2
        exit 1
      fi
      sleep 0.05
    done
    return
  done
  echo "no free port to listen on" >&2
  exit 1
}
serve_stop() {
  [ -n "$serve_pid" ] || return 0
  kill "$serve_pid" 2>/dev/null || true
  wait "$serve_pid" 2>/dev/null || true
  cat "$work/serve.out" >>"$work/serve.log"
  serve_pid=
}
# Peak (VmHWM) or present (VmRSS) resident memory of the service, in MiB.
serve_mem() { awk -v f="^$1:" '$0 ~ f {printf "%.1f", $2 / 1024}' "/proc/$serve_pid/status"; }

# --- Sessions on the server, every 100 ms, from one session of its own
# (left out of the count): every client session, and those to tenant
# databases (not the catalog, not `postgres`).
sampler_start() {
  printf '%s\n\\watch 0.1\n' "SELECT count(*), count(*) FILTER (WHERE datname NOT IN ('catalog', 'postgres'))
     FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()" |
    "$pg_bin/psql" -X -At -F ' ' -h 127.0.0.1 -p "$pg_port" -U postgres -d postgres >"$work/out/sessions.$1" 2>/dev/null &
  sampler_pid=$!
  # Its first sample is taken before the phase starts.
  until [ -s "$work/out/sessions.$1" ]; do sleep 0.02; done
}
# Stops the sampler; sets peaks to "most sessions, most to tenant databases".
sampler_stop() {
  kill "$sampler_pid" 2>/dev/null || true
  wait "$sampler_pid" 2>/dev/null || true
  sampler_pid=
  peaks=$(awk 'NF == 2 { if ($1 > a) a = $1; if ($2 > t) t = $2 } END { printf "%d %d\n", a, t }' "$work/out/sessions.$1")
}

# One request to the service; sets http_status and leaves the body in $work/out/$1.json.
api() {
  local name=$1 method=$2 path=$3 body=${4:-}
  http_status=$(curl -s -o "$work/out/$name.json" -w '%{http_code}' -X "$method" \
    -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
    ${body:+-d "$body"} "$base$path")
}

# Runs `psql -f FILE` on each database named in LIST, P at a time.
psql_each() {
  local list=$1 parallel=$2 file=$3
  xargs -P "$parallel" -I{} "$pg_bin/psql" -X -q -h 127.0.0.1 -p "$pg_port" -U postgres \
    -v ON_ERROR_STOP=1 -d {} -f "$file" <"$list" >/dev/null
}

# --- Results, one line per contender and phase:
#   phase contender seconds peak_sessions peak_tenant_sessions peak_rss_mib
#   start_rss_mib catalog_commits tenant_db_commits all_commits wal_syncs
#   server_cpu_secs client_cpu_secs note...
results="$work/out/results"
: >"$results"
# Each line is also said as it comes: a later failure loses none.
record() { echo "$*" >>"$results"; say "recorded: $*"; }

# Commits in the catalog, commits in every database, and WAL flushes to disk
# (pg_stat_wal), so far. Read with no service running: a session's counts
# reach these views when it ends, at the latest.
pg_counters() {
  psql_c postgres -F ' ' -c "SELECT coalesce(sum(xact_commit) FILTER (WHERE datname = 'catalog'), 0),
      coalesce(sum(xact_commit) FILTER (WHERE datname ~ '^(ai_care_tenant_[0-9a-f]{32}|bench_base_[0-9]+)\$'), 0),
      coalesce(sum(xact_commit), 0), (SELECT wal_sync FROM pg_stat_wal)
    FROM pg_stat_database"
}
# Before each timed phase: dirty pages written out and a checkpoint taken,
# so no phase pays for the writes of the one before (the clones, above all:
# each is its whole database in the WAL).
settle() {
  local started
  started=$(now)
  psql_c postgres -c CHECKPOINT >/dev/null
  sync
  say "checkpoint and sync: $(secs "$started" "$(now)") s"
}
# "pid ticks" of each of the catalog's sessions (the service's pool).
catalog_ticks() {
  local pid stat
  for pid in $(psql_c postgres -c "SELECT pid FROM pg_stat_activity WHERE datname = 'catalog'"); do
    stat=$(cat "/proc/$pid/stat" 2>/dev/null) || continue
    echo "$pid $(sed 's/.*) //' <<<"$stat" | awk '{print $12 + $13}')"
  done
}
# CPU ms a tenant the catalog's sessions used between two catalog_ticks
# files (a session opened meanwhile counts whole).
catalog_ms() {
  awk -v t="$clk_tck" -v n="$tenants" 'NR == FNR { a[$1] = $2; next }
    { s += $2 - ($1 in a ? a[$1] : 0) } END { printf "%.2f", s * 1000 / t / n }' "$1" "$2"
}
# "after - before", field by field.
counters_delta() { paste -d ' ' <(tr ' ' '\n' <<<"$2") <(tr ' ' '\n' <<<"$1") | awk '{printf "%d ", $1 - $2}'; }

# One phase through the API: a service started afresh, one request (METHOD
# PATH BODY) timed, sessions sampled, then the service's peak memory and
# its operation timings (/metrics) read before it stops. Sets http_status,
# phase_line (seconds, peaks, RSS, counters) and leaves the answer in
# $work/out/NAME.json.
service_phase() {
  local name=$1 method=$2 path=$3 body=$4 before ended peaks hwm rss cpu_pg cpu_serve
  settle
  before=$(pg_counters)
  serve_start
  rss=$(serve_mem VmRSS)
  sampler_start "service_$name"
  cpu_pg=$(pg_cpu_secs "$work/pgdata")
  cpu_serve=$(proc_cpu_secs "$serve_pid")
  catalog_ticks >"$work/out/catalog_cpu.$name.start"
  perf_start "$work/out/perf.$name.service.data"
  phase_started=$(now)
  api "$name" "$method" "$path" "$body"
  ended=$(now)
  perf_stop
  cpu_serve=$(echo "$(proc_cpu_secs "$serve_pid") - $cpu_serve" | bc)
  catalog_ticks >"$work/out/catalog_cpu.$name.end"
  # Of the server's CPU, the catalog's part, for the phase's notes.
  catalog_cpu_ms=$(catalog_ms "$work/out/catalog_cpu.$name.start" "$work/out/catalog_cpu.$name.end")
  sampler_stop "service_$name"
  hwm=$(serve_mem VmHWM)
  curl -s "$base/metrics" | grep '^tenant_plane_operation_duration_seconds_\(sum\|count\)' \
    >"$work/out/metrics.$name" || true
  serve_stop
  # The server's CPU is read once the service's catalog sessions have ended.
  cpu_pg=$(echo "$(pg_cpu_secs "$work/pgdata") - $cpu_pg" | bc)
  phase_line="$(secs "$phase_started" "$ended") $peaks $hwm $rss $(counters_delta "$before" "$(pg_counters)") $cpu_pg $cpu_serve"
}

# The baseline of a phase: psql -f FILE on each baseline database, P at a time.
baseline_phase() {
  local name=$1 parallel=$2 file=$3 before started ended peaks cpu_pg cpu_client
  settle
  before=$(pg_counters)
  sampler_start "baseline_$name"
  cpu_pg=$(pg_cpu_secs "$work/pgdata")
  perf_start "$work/out/perf.$name.baseline.data"
  started=$(now)
  # `times` in the subshell: the CPU of xargs and every psql it waited for.
  cpu_client=$( (psql_each "$work/baseline_dbs" "$parallel" "$file"; times) | times_cpu_secs)
  ended=$(now)
  perf_stop
  cpu_pg=$(echo "$(pg_cpu_secs "$work/pgdata") - $cpu_pg" | bc)
  sampler_stop "baseline_$name"
  record "$name" baseline "$(secs "$started" "$ended")" $peaks - - $(counters_delta "$before" "$(pg_counters)") \
    "$cpu_pg" "$cpu_client" "psql -P $parallel"
}

# Mean seconds of one of the service's operations in a phase (/metrics).
op_mean() {
  awk -v op="operation=\"$2\"" 'index($0, op) && /outcome="ok"/ {
      if ($1 ~ /_sum/) s += $2; else c += $2 }
    END { if (c) printf "%.2f", s * 1000 / c; else printf "-" }' "$work/out/metrics.$1" 2>/dev/null || printf -
}

# --- The tenants, made through the API.
say "starting the service ($bin) on a cluster at port $pg_port"
serve_start
# Room for the service's tenants (one clone of the template each) and the
# WAL, or stop now rather than fill a disk other work needs too.
db_bytes=$(psql_c postgres -c "SELECT pg_database_size('ai_care_tenant_template')")
free_bytes=$(($(df -Pk "$work" | awk 'NR == 2 {print $4}') * 1024))
need_bytes=$((db_bytes * tenants * 11 / 10 + 4 * 1024 * 1024 * 1024))
if [ "$free_bytes" -lt "$need_bytes" ]; then
  echo "$tenants tenants need about $((need_bytes >> 30)) GiB on the cluster's disk; $((free_bytes >> 30)) GiB are free." >&2
  echo "Free some, or point BENCH_WORK_DIR at a larger disk." >&2
  exit 1
fi
token=$(TENANT_PLANE_DATABASE_URL="host=127.0.0.1 port=$pg_port user=postgres dbname=catalog" \
  TENANT_PLANE_JWT_SECRET=$secret TENANT_PLANE_MASTER_KEY=$key TENANT_PLANE_DATA_DIR="$work/data" \
  "$bin" token --role super_admin --ttl 12h)
say "creating $tenants tenants through the API, $create_parallel at a time"
started=$(now)
# In batches, each followed by a checkpoint: a clone is its whole database
# in the WAL, and without one the WAL outgrows the disk long before the
# checkpointer catches up (5,000 clones filled 50 GB here).
: >"$work/out/creates"
for first in $(seq 1 "$batch" "$tenants"); do
  seq "$first" "$(( first + batch - 1 < tenants ? first + batch - 1 : tenants ))" |
    xargs -P "$create_parallel" -I{} curl -s -o /dev/null -w '%{http_code}\n' \
      -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
      -d '{"name":"Bench {}","slug":"bench-{}"}' "$base/v1/tenants" >>"$work/out/creates"
  psql_c postgres -c CHECKPOINT >/dev/null
done
create_secs=$(secs "$started" "$(now)")
if [ "$(grep -c '^201$' "$work/out/creates")" != "$tenants" ]; then
  echo "not every create answered 201:" >&2
  sort "$work/out/creates" | uniq -c >&2
  exit 1
fi
say "created $tenants tenants in $create_secs s"
serve_stop
psql_c catalog -c "SELECT db_name FROM tenants WHERE db_name IS NOT NULL AND purged_at IS NULL ORDER BY db_name" \
  >"$work/service_dbs"
[ "$(wc -l <"$work/service_dbs")" = "$tenants" ] || { echo "the catalog does not list $tenants tenant databases" >&2; exit 1; }

# --- The baseline's databases: clones of a V1 template (a copy of the
# service's template before the run, refinery's history included), made
# outside the service.
psql_c postgres -c "CREATE DATABASE bench_v1 TEMPLATE ai_care_tenant_template" >/dev/null
seq -f 'bench_base_%05g' 1 "$tenants" >"$work/baseline_dbs"
make_baseline_set() {
  local started
  say "creating the baseline's $tenants databases (createdb -T bench_v1, 4 at a time)"
  started=$(now)
  # In batches with a checkpoint after each, as the service's were made.
  local rest=$work/baseline_rest
  cp "$work/baseline_dbs" "$rest"
  while [ -s "$rest" ]; do
    head -n "$batch" "$rest" |
      xargs -P 4 -I{} "$pg_bin/createdb" -h 127.0.0.1 -p "$pg_port" -U postgres -T bench_v1 {}
    tail -n +"$(( batch + 1 ))" "$rest" >"$rest.next" && mv "$rest.next" "$rest"
    psql_c postgres -c CHECKPOINT >/dev/null
  done
  baseline_create_secs=$(secs "$started" "$(now)")
  say "made them in $baseline_create_secs s"
}
drop_service_set() {
  say "dropping the service's $tenants tenant databases to make room"
  xargs -P 4 -I{} "$pg_bin/dropdb" -h 127.0.0.1 -p "$pg_port" -U postgres {} <"$work/service_dbs"
}

db_bytes=$(psql_c postgres -c "SELECT pg_database_size('bench_v1')")
free_bytes=$(($(df -Pk "$work" | awk 'NR == 2 {print $4}') * 1024))
need_bytes=$((db_bytes * tenants * 12 / 10 + 2 * 1024 * 1024 * 1024))
order=${BENCH_ORDER:-}
if [ -z "$order" ]; then
  if [ "$free_bytes" -gt "$need_bytes" ]; then order=interleaved; else order=sequential; fi
fi
say "order: $order (a second set needs about $((need_bytes >> 30)) GiB; $((free_bytes >> 30)) GiB free)"
baseline_create_secs=
[ "$order" = interleaved ] && make_baseline_set

# A phase B or C that went wrong: said, recorded, and the run goes on to
# its tables (and exits non-zero at the end). Its baseline is not run.
failed=
phase_failed() {
  echo "$2:" >&2
  head -c 2000 "$3" >&2
  echo >&2
  record "$1" service - - - - - - - - - - - "failed: $2"
  failed=1
}

# --- Phase A: the fleet run at concurrency $1 (phase A$1).
cp "$here/V2__$v2_name.sql" "$here/V2__$v2_name.down.sql" "$work/migrations/"
run_id=
v2_checksum=
service_a() {
  local c=$1 tag=${2:-$1}
  say "A$tag, service: POST /v1/migrations/runs?wait=true (concurrency $c, canary 1)"
  service_phase "A$tag" POST "/v1/migrations/runs?wait=true" "{\"concurrency\": $c, \"canary\": 1}"
  if [ "$http_status" != 200 ]; then
    echo "the fleet run answered $http_status:" >&2
    cat "$work/out/A$tag.json" >&2
    exit 1
  fi
  jq -e --argjson n "$tenants" '.run.state == "succeeded" and .counts.succeeded == $n' "$work/out/A$tag.json" >/dev/null || {
    echo "the fleet run did not migrate every tenant:" >&2
    jq '{run: .run.state, counts, failures: .failures[:3]}' "$work/out/A$tag.json" >&2
    exit 1
  }
  run_id=$(jq -r '.run.id' "$work/out/A$tag.json")
  # Where the run's time went, from its ledger: before the run was recorded
  # (the templates migrated, the run's checks), and a tenant's item (its
  # operation begun and finished, its database migrated) on average, beside
  # the database part alone (the migrator's own timing, from /metrics).
  local ledger
  ledger=$(psql_c catalog -F ' ' -c "SELECT round(extract(epoch FROM r.created_at) - $phase_started, 3),
      round(avg(i.duration_ms)::numeric, 2)
      FROM migration_runs r JOIN migration_items i ON i.run_id = r.id WHERE r.id = '$run_id' GROUP BY r.created_at")
  record "A$tag" service $phase_line "before the run was recorded ${ledger% *} s; mean item ${ledger#* } ms;" \
    "mean database_migrate $(op_mean "A$tag" database_migrate) ms; catalog sessions' CPU $catalog_cpu_ms ms a tenant"
  # What refinery recorded, for the baseline's own bookkeeping row.
  [ -n "$v2_checksum" ] ||
    v2_checksum=$(psql_c "$(head -n1 "$work/service_dbs")" -c "SELECT checksum FROM refinery_schema_history WHERE version = 2")
}
baseline_a() {
  local c=$1 tag=${2:-$1}
  # V2 and refinery's row for it, in one transaction, as refinery applies it.
  {
    echo "BEGIN;"
    cat "$here/V2__$v2_name.sql"
    echo "INSERT INTO refinery_schema_history (version, name, applied_on, checksum)"
    echo "  VALUES (2, '$v2_name', to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), '$v2_checksum');"
    echo "COMMIT;"
  } >"$work/a.sql"
  say "A$tag, baseline: psql -f V2 + history row, xargs -P $c"
  baseline_phase "A$tag" "$c" "$work/a.sql"
}

# --- Phase B: the drift scan (at most 2 sessions per server, so -P 2).
# The first scan after the run builds the expected schema of V2 (a scratch
# database, migrated, described, dropped); a second scan (B2) finds it
# stored, as every later scan does. Both are held against the one baseline.
service_b() {
  local scan
  for scan in B B2; do
    say "$scan, service: POST /v1/migrations/drift/scans?wait=true"
    service_phase $scan POST "/v1/migrations/drift/scans?wait=true" ''
    if [ "$http_status" = 404 ]; then
      say "B skipped: this build has no drift scan endpoint (404)"
      record B service - - - - - - - - - - - "skipped: no endpoint"
      return
    fi
    if [ "$http_status" != 200 ]; then
      phase_failed B "the drift scan answered $http_status" "$work/out/$scan.json"
      return
    fi
    if ! jq -e --argjson n "$tenants" '.scan.state == "succeeded" and .scan.in_sync == $n' "$work/out/$scan.json" >/dev/null; then
      jq -c '{scan, drifted: .drifted[:2]}' "$work/out/$scan.json" >"$work/out/$scan.short"
      phase_failed B "the drift scan did not find every tenant in sync" "$work/out/$scan.short"
      return
    fi
    record $scan service $phase_line "$(jq -r '.scan | "in_sync \(.in_sync), drifted \(.drifted), unknown \(.unknown);"' "$work/out/$scan.json")" \
      "mean drift_check $(op_mean $scan drift_check) ms; catalog sessions' CPU $catalog_cpu_ms ms a tenant"
  done
  ran_b=1
}
baseline_b() {
  say "B, baseline: psql -f describe.sql, xargs -P 2"
  baseline_phase B 2 "$here/describe.sql"
}

# --- Phase C: the revert of the last fleet run, at concurrency $1 (C$1).
# Sets reverted when every tenant is back at V1 (the next concurrency, if
# any, starts from there).
service_c() {
  local c=$1 tag=${2:-$1}
  reverted=
  say "C$tag, service: POST /v1/migrations/runs/$run_id/revert?wait=true (concurrency $c)"
  service_phase "C$tag" POST "/v1/migrations/runs/$run_id/revert?wait=true" \
    "{\"concurrency\": $c, \"accept_data_loss\": true}"
  # A 404 that names the run is a real answer; any other is a missing route.
  if [ "$http_status" = 404 ] && ! grep -q run_not_found "$work/out/C$tag.json"; then
    say "C skipped: this build has no revert endpoint (404)"
    record "C$tag" service - - - - - - - - - - - "skipped: no endpoint"
    return
  fi
  if [ "$http_status" != 200 ]; then
    phase_failed "C$tag" "the revert answered $http_status" "$work/out/C$tag.json"
    return
  fi
  local left
  left=$(psql_c catalog -c "SELECT count(*) FROM tenants WHERE db_name IS NOT NULL AND purged_at IS NULL AND schema_version <> 1")
  if [ "$left" != 0 ]; then
    jq -c '{revert: .revert.state, error: .revert.error, counts, items: [.items[]? | select(.state != "succeeded")][:3]}' \
      "$work/out/C$tag.json" >"$work/out/C$tag.short"
    phase_failed "C$tag" "$left tenants are not back at V1 after the revert" "$work/out/C$tag.short"
    return
  fi
  # The database part alone (the revert's own session), against the whole.
  record "C$tag" service $phase_line "mean database_revert $(op_mean "C$tag" database_revert) ms;" \
    "catalog sessions' CPU $catalog_cpu_ms ms a tenant"
  reverted=1
}
baseline_c() {
  local c=$1 tag=${2:-$1}
  {
    echo "BEGIN;"
    cat "$here/V2__$v2_name.down.sql"
    echo "DELETE FROM refinery_schema_history WHERE version = 2;"
    echo "COMMIT;"
  } >"$work/c.sql"
  say "C$tag, baseline: psql -f the down file + history delete, xargs -P $c"
  baseline_phase "C$tag" "$c" "$work/c.sql"
}

# The service's phases: for each concurrency a fleet run and its revert
# (the drift scans once, after the first run). A later pass needs the
# revert before it to have taken every tenant back to V1; the passes whose
# phases ran are left in `done_passes`. Each
# baseline runs only where its service phase ran, so that the baseline's
# databases go through what the service's went through.
ran_b=
done_passes=()
reverted_all=()
# A pass's label: its concurrency, and `.2`, `.3`... when it repeats one.
pass_tag() {
  local i=$1 c=${concurrencies[$1]} k=1 j
  for ((j = 0; j < i; j++)); do [ "${concurrencies[$j]}" = "$c" ] && k=$((k + 1)); done
  if [ "$k" = 1 ]; then echo "$c"; else echo "$c.$k"; fi
}
if [ "$order" = interleaved ]; then
  for i in "${!concurrencies[@]}"; do
    c=${concurrencies[$i]}
    tag=$(pass_tag "$i")
    service_a "$c" "$tag"
    baseline_a "$c" "$tag"
    if [ "$i" = 0 ]; then
      service_b
      if [ -n "$ran_b" ]; then baseline_b; fi
    fi
    service_c "$c" "$tag"
    done_passes+=("$tag")
    [ -n "$reverted" ] || break
    baseline_c "$c" "$tag"
  done
else
  for i in "${!concurrencies[@]}"; do
    c=${concurrencies[$i]}
    tag=$(pass_tag "$i")
    service_a "$c" "$tag"
    if [ "$i" = 0 ]; then service_b; fi
    service_c "$c" "$tag"
    done_passes+=("$tag")
    reverted_all+=("$reverted")
    [ -n "$reverted" ] || break
  done
  drop_service_set
  make_baseline_set
  for i in "${!done_passes[@]}"; do
    tag=${done_passes[$i]}
    c=${tag%%.*}
    baseline_a "$c" "$tag"
    if [ "$i" = 0 ] && [ -n "$ran_b" ]; then baseline_b; fi
    if [ -n "${reverted_all[$i]}" ]; then baseline_c "$c" "$tag"; fi
  done
fi

# --- The tables.
outdir=target/bench-fleet-schema
mkdir -p "$outdir"
stamp=$(date -u +%Y%m%dT%H%M%SZ)
label="n$tenants-c$(IFS=-; echo "${concurrencies[*]}")"
md="$outdir/$stamp-$label.md"
json="$outdir/$stamp-$label.json"
per_tenant() { [ "$1" = - ] && printf - || printf '%.2f' "$(echo "$1 / $tenants" | bc -l)"; }
# "concurrency 4", or "concurrency 4, pass 2" for a repeat (tag 4.2).
pass_text() { case $1 in *.*) echo "concurrency ${1%%.*}, pass ${1#*.}" ;; *) echo "concurrency $1" ;; esac; }
: >"$work/out/ratios"
rows=()
for i in "${!done_passes[@]}"; do
  rows+=("A${done_passes[$i]}")
  [ "$i" = 0 ] && rows+=(B B2)
  rows+=("C${done_passes[$i]}")
done
{
  echo "$tenants tenants, concurrency ${concurrencies[*]}, one server (fsync on), order $order, $("$bin" --version 2>/dev/null | head -n1)"
  echo "tenants created through the API ($create_parallel requests at a time): $create_secs s;" \
    "baseline databases made with createdb -T: ${baseline_create_secs:-?} s"
  echo
  echo "| phase | service | baseline (psql, xargs -P) | ratio | peak sessions on the server: service (to tenant dbs) | baseline | service RSS: peak (at start) |"
  echo "|---|---|---|---|---|---|---|"
  for phase in "${rows[@]}"; do
    case $phase in
      A*) p=${phase#A}; what="fleet run (V2), $(pass_text "$p")"; p=${p%%.*}; base=$phase ;;
      B) what="drift scan (builds the expected schema)"; p=2; base=B ;;
      B2) what="drift scan again (expected schema stored)"; p=2; base=B ;;
      C*) p=${phase#C}; what="revert of the run, $(pass_text "$p")"; p=${p%%.*}; base=$phase ;;
    esac
    read -r _ _ s_secs s_all s_ten s_hwm s_rss _ _ _ _ _ _ s_note < <(grep "^$phase service " "$results" || echo "- - - - - - - - - - - - - not run")
    [ "$phase" = B2 ] && [ "$s_secs" = - ] && continue
    read -r _ _ b_secs b_all _ < <(grep "^$base baseline " "$results" || echo "- - - - -")
    if [ "$s_secs" = - ] || [ "$b_secs" = - ]; then
      echo "| $what | ${s_note} | | | | | |"
      continue
    fi
    case $phase in A* | C*) echo "${phase:0:1} $p $(echo "$s_secs / $b_secs" | bc -l)" >>"$work/out/ratios" ;; esac
    printf '| %s | %.1f s (%.2f ms/tenant) | %.1f s (%.2f ms/tenant, -P %s) | %.2f | %s (%s) | %s | %s MiB (%s) |\n' \
      "$what" "$s_secs" "$(echo "$s_secs * 1000 / $tenants" | bc -l)" \
      "$b_secs" "$(echo "$b_secs * 1000 / $tenants" | bc -l)" "$p" \
      "$(echo "$s_secs / $b_secs" | bc -l)" "$s_all" "$s_ten" "$b_all" "$s_hwm" "$s_rss"
  done
  # Repeated passes: each phase's median ratio (and its spread).
  echo
  sort -k1,1 -k2,2n -k3,3g "$work/out/ratios" | awk '
    { key = $1 " " $2; n[key]++; v[key, n[key]] = $3 }
    END { for (key in n) if (n[key] > 1) {
        split(key, k, " "); c = n[key]
        med = (c % 2) ? v[key, (c + 1) / 2] : (v[key, c / 2] + v[key, c / 2 + 1]) / 2
        printf "- %s at concurrency %s over %d passes: median ratio %.2f (%.2f to %.2f)\n",
          (k[1] == "A" ? "fleet run" : "revert"), k[2], c, med, v[key, 1], v[key, c] } }'
  echo
  echo "| phase | contender | commits per tenant: catalog / tenant databases / other | WAL flushes per tenant | CPU ms per tenant: server / client | notes |"
  echo "|---|---|---|---|---|---|"
  while read -r phase who s_secs _ _ _ _ c_cat c_ten c_all c_wal cpu_pg cpu_client note; do
    [ "$s_secs" = - ] && continue
    echo "| $phase | $who | $(per_tenant "$c_cat") / $(per_tenant "$c_ten") / $(per_tenant "$((c_all - c_cat - c_ten))") | $(per_tenant "$c_wal") |" \
      "$(per_tenant "$(echo "$cpu_pg * 1000" | bc)") / $(per_tenant "$(echo "$cpu_client * 1000" | bc)") | $note |"
  done <"$results"
} | tee "$md"
jq -Rn --argjson tenants "$tenants" --arg concurrency "${concurrencies[*]}" --arg order "$order" \
  --arg create_secs "$create_secs" --arg baseline_create_secs "${baseline_create_secs:-}" '
  def num: tonumber? // null;
  {tenants: $tenants, concurrency: ($concurrency | split(" ") | map(tonumber)), order: $order,
   create_secs: ($create_secs | num), baseline_create_secs: ($baseline_create_secs | num),
   phases: [inputs | split(" ") | {phase: .[0], contender: .[1], seconds: (.[2] | num),
     peak_sessions: (.[3] | num), peak_tenant_sessions: (.[4] | num), peak_rss_mib: (.[5] | num),
     start_rss_mib: (.[6] | num), catalog_commits: (.[7] | num), tenant_db_commits: (.[8] | num),
     all_commits: (.[9] | num), wal_syncs: (.[10] | num), server_cpu_secs: (.[11] | num),
     client_cpu_secs: (.[12] | num), note: (.[13:] | join(" "))}]}' <"$results" >"$json"
say "written: $md, $json"
[ -z "$failed" ] || { echo "a phase failed (above)" >&2; exit 1; }
