#!/usr/bin/env bash
# Usage at fleet scale (issue 31): N tenants on one PostgreSQL server.
#
# 1. Catalog rows: every tenant gets two data-plane requests; the service is
#    stopped (its flush), and the rows metering wrote are counted per tenant
#    and hour.
# 2. Sampling: `tenant-plane usage --sample` (every tenant database's size and
#    counters, one session per server) timed against the plainest script an
#    operator would write instead, `psql` connected to each database in turn
#    asking its size and counters, at the same number of sessions (2,
#    under `xargs -P 2`); and beside them one `psql` session sending the
#    service's own query, which shares its design. The sessions each
#    contender holds on the server are counted every 100 ms.
#
#   scripts/bench-usage.sh [TENANTS]   (default 5000)
#
# Room: each tenant database is some 7.5 MiB, so 5,000 take about 40 GiB
# (the script refuses to start with less than 1.5 times that free). The
# cluster runs with fsync off and small WAL (nothing measured here writes).
#
# Environment: BENCH_BIN (the binary; default the release build), BENCH_WORK_DIR,
# BENCH_KEEP, BENCH_CREATE_PARALLEL (default 8), BENCH_ROUNDS (default 3).
set -Eeuo pipefail
cd "$(dirname "$0")/.."
. scripts/lib-postgres.sh
. scripts/lib-bench.sh
ensure_postgres_server

tenants=${1:-5000}
rounds=${BENCH_ROUNDS:-3}
parallel=${BENCH_CREATE_PARALLEL:-8}
for tool in curl jq xargs awk bc; do
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

work=$(mktemp -d "${BENCH_WORK_DIR:-${TMPDIR:-/tmp}}/tp-bench-usage.XXXXXX")
chmod 755 "$work"
serve_pid=
watch_pid=
cleanup() {
  [ -n "$watch_pid" ] && kill "$watch_pid" 2>/dev/null || true
  [ -n "$serve_pid" ] && kill -9 "$serve_pid" 2>/dev/null || true
  [ -f "$work/pgdata/postmaster.pid" ] &&
    "${run_as[@]}" "$pg_bin/pg_ctl" -D "$work/pgdata" -m immediate stop >/dev/null 2>&1 || true
  if [ -n "${BENCH_KEEP:-}" ]; then echo "kept: $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT
median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
psql_c() { "$pg_bin/psql" -X -At -h 127.0.0.1 -p "$pg_port" -U postgres -v ON_ERROR_STOP=1 -d "$@"; }

need_kib=$((tenants * 7680 * 3 / 2))
free_kib=$(df -Pk "$work" | awk 'NR == 2 { print $4 }')
[ "$free_kib" -ge "$need_kib" ] || { echo "$tenants tenants need about $((need_kib / 1048576)) GiB free under $work; there are $((free_kib / 1048576))" >&2; exit 1; }
mkdir -p "$work/pgdata" "$work/run" "$work/data" "$work/out"
chown -R postgres "$work/pgdata" "$work/run" 2>/dev/null || true
"${run_as[@]}" "$pg_bin/initdb" -D "$work/pgdata" -U postgres --auth=trust --no-sync >/dev/null
pg_port=$(free_port)
"${run_as[@]}" "$pg_bin/pg_ctl" -D "$work/pgdata" -l "$work/run/log" \
  -o "-p $pg_port -c listen_addresses=127.0.0.1 -c unix_socket_directories=$work/run -c max_connections=200 -c fsync=off -c max_wal_size=512MB -c checkpoint_timeout=30s" \
  -w start >/dev/null

export TENANT_PLANE_DATABASE_URL="host=127.0.0.1 port=$pg_port user=postgres dbname=catalog"
export TENANT_PLANE_JWT_SECRET=$secret TENANT_PLANE_MASTER_KEY=$key TENANT_PLANE_DATA_DIR="$work/data"
# Sampled by hand below. The service's own first sample, a minute after it
# starts, finds the tenants made by then; the catalog then holds the next
# one back a day.
export TENANT_PLANE_USAGE_SAMPLE_SECS=86400 TENANT_PLANE_ROUTER_RATE_LIMIT_SCALE=0
port=$(free_port)
base="http://127.0.0.1:$port"
serve() {
  : >"$work/serve.out"
  TENANT_PLANE_LISTEN="127.0.0.1:$port" RUST_LOG=warn "$bin" serve >>"$work/serve.out" 2>&1 &
  serve_pid=$!
  until grep -qs '^tenant-plane listening on ' "$work/serve.out"; do
    kill -0 "$serve_pid" 2>/dev/null || { cat "$work/serve.out" >&2; exit 1; }
    sleep 0.05
  done
}
# Stops the service (it flushes first), then waits until its catalog
# sessions are gone.
stop_serving() {
  kill "$serve_pid"
  wait "$serve_pid" 2>/dev/null || true
  serve_pid=
  until [ "$(psql_c catalog -c "SELECT count(*) FROM pg_stat_activity WHERE datname = 'catalog' AND pid <> pg_backend_pid()")" = 0 ]; do
    sleep 0.05
  done
}
serve
token=$("$bin" token --role super_admin --ttl 12h 2>/dev/null | tail -n1)

say "creating $tenants tenants, $parallel at a time"
seq 1 "$tenants" | xargs -P "$parallel" -I{} curl -sf -o /dev/null -X POST \
  -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
  -d '{"name":"Usage {}","slug":"usage-{}"}' "$base/v1/tenants"
psql_c catalog -c "SELECT id FROM tenants WHERE parent_id IS NULL" >"$work/out/ids"
psql_c catalog -c "SELECT db_name FROM tenants WHERE db_name IS NOT NULL" >"$work/out/dbs"
made=$(wc -l <"$work/out/dbs")
say "made $made tenant databases; two requests to each"
# Rows each catalog table gained while the requests are served and
# flushed, counted in the tables themselves. The service restarts first, so
# nothing left of making the tenants is counted.
inserted() {
  psql_c catalog -F ' ' -c "SELECT table_name, (xpath('/row/c/text()', query_to_xml(
      format('SELECT count(*) AS c FROM %I.%I', table_schema, table_name), false, true, '')))[1]::text::int8
    FROM information_schema.tables WHERE table_schema = 'public' AND table_type = 'BASE TABLE' ORDER BY 1"
}
stop_serving
inserted >"$work/out/inserted.before"
serve
for _ in 1 2; do
  xargs -P "$parallel" -I{} curl -sf -o /dev/null -H "Authorization: Bearer $token" \
    -H "X-Tenant-Id: {}" "$base/v1/agents" <"$work/out/ids"
done
stop_serving
read -r rows tenant_hours most counted < <(psql_c catalog -F ' ' -c "SELECT count(*), count(DISTINCT (tenant_id, hour)),
    coalesce(max(n), 0), coalesce(sum(s), 0)
  FROM (SELECT tenant_id, hour, count(*) OVER (PARTITION BY tenant_id, hour) AS n,
               requests_data AS s FROM usage_hourly) x")
inserted >"$work/out/inserted.after"
added=$(join "$work/out/inserted.before" "$work/out/inserted.after" |
  awk '$3 > $2 { printf "%s%s %d", sep, $1, $3 - $2; sep = ", " }')

# Sessions each contender holds on the server, every 100 ms: the watcher's
# own and the catalog's (tenant-plane's own database) left out.
watch_start() {
  printf '%s\n\\watch 0.1\n' "SELECT count(*) FROM pg_stat_activity
     WHERE backend_type = 'client backend' AND pid <> pg_backend_pid() AND datname <> 'catalog'" |
    "$pg_bin/psql" -X -At -h 127.0.0.1 -p "$pg_port" -U postgres -d postgres >"$work/out/sessions.$1" 2>/dev/null &
  watch_pid=$!
  until [ -s "$work/out/sessions.$1" ]; do sleep 0.02; done
}
watch_stop() {
  kill "$watch_pid" 2>/dev/null || true
  wait "$watch_pid" 2>/dev/null || true
  watch_pid=
  awk '$1 > m { m = $1 } END { print m + 0 }' "$work/out/sessions.$1"
}
names=$(paste -sd, "$work/out/dbs")
query="SELECT d.datname, pg_database_size(d.oid), s.tup_returned, s.tup_inserted + s.tup_updated + s.tup_deleted,
  s.active_time, s.session_time, s.stats_reset FROM pg_database d LEFT JOIN pg_stat_database s ON s.datid = d.oid
  WHERE d.datname = ANY('{$names}')"
echo "$query" >"$work/out/one-query.sql"
printf '%s\n' "SELECT pg_database_size(current_database()), tup_returned, tup_inserted + tup_updated + tup_deleted, active_time, session_time, stats_reset FROM pg_stat_database WHERE datname = current_database()" >"$work/out/each.sql"

: >"$work/out/times"
for round in $(seq 1 "$rounds"); do
  # Order alternates between rounds, so drift on a shared machine hits all.
  contenders=(ours loop one)
  [ $((round % 2)) = 0 ] && contenders=(one loop ours)
  for c in "${contenders[@]}"; do
    sync
    watch_start "$c.$round"
    t0=$(now)
    case $c in
      ours) "$bin" usage --sample --limit 1 >"$work/out/ours.$round" 2>&1 ;;
      loop) xargs -P 2 -I{} "$pg_bin/psql" -X -At -q -h 127.0.0.1 -p "$pg_port" -U postgres -d {} \
              -f "$work/out/each.sql" <"$work/out/dbs" >/dev/null ;;
      one) psql_c postgres -f "$work/out/one-query.sql" >/dev/null ;;
    esac
    t1=$(now)
    peak=$(watch_stop "$c.$round")
    echo "$c $(secs "$t0" "$t1") $peak" >>"$work/out/times"
    say "round $round: $c $(secs "$t0" "$t1") s, at most $peak sessions"
  done
done
grep -q "sampled $made tenant databases" "$work/out/ours.1" || { cat "$work/out/ours.1" >&2; exit 1; }
med() { awk -v c="$1" '$1 == c { print $2 }' "$work/out/times" | median; }
peak() { awk -v c="$1" '$1 == c && $3 > m { m = $3 } END { print m + 0 }' "$work/out/times"; }
ours=$(med ours); loop=$(med loop); one=$(med one)
cat <<EOF

catalog rows after two requests to each of $made tenants: $rows usage rows for $tenant_hours tenant-hours (at most $most per tenant and hour), $counted requests counted; rows the catalog's tables gained meanwhile: ${added:-none}

| sampling $made tenant databases (median of $rounds) | seconds | most sessions | ratio |
|---|---|---|---|
| plain script: \`psql\` to each database, 2 at a time (baseline) | $loop | $(peak loop) | 1 (baseline) |
| tenant-plane: \`usage --sample\` (process start, catalog, one session per server) | $ours | $(peak ours) | $(printf '%.3f' "$(echo "$ours / $loop" | bc -l)") |
| one \`psql\` session sending tenant-plane's query (shares its design) | $one | $(peak one) | $(printf '%.3f' "$(echo "$one / $loop" | bc -l)") |
EOF
