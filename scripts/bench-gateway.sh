#!/usr/bin/env bash
# The PostgreSQL-protocol gateway against PgBouncer (Debian's package, in
# transaction mode) and direct connections, pgbench in one run (issue 33).
#
# 1. One tenant: `pgbench -S` (select-only) and the built-in TPC-B-like
#    read-write mix, CLIENTS clients each, through the gateway (the tenant's
#    pool: 10 sessions), PgBouncer (pool_size 10 for that database) and
#    direct (one session per client).
# 2. TENANTS tenants (default 1,000) under a Zipf spread (s = 1): tenant i is
#    offered RATE * (1/i) / H(TENANTS) transactions a second by its own
#    pgbench client (one client connection per tenant, as one application
#    instance each), 80% reads and 20% writes of a small table. tenant-plane
#    holds the server to a budget of 50 sessions; PgBouncer has a wildcard
#    database, default_pool_size 2 and max_db_connections 2 (it has no limit
#    per server); PostgreSQL's max_connections is MAX_CONNECTIONS (100).
#
# Each row: transactions a second done, p99 latency (from pgbench's
# per-transaction logs), clients that could not connect or failed ("too
# many clients" among them), and the most sessions on the server (sampled
# every 100 ms). Prints markdown tables for docs/BENCHMARKS.md.
#
#   scripts/bench-gateway.sh [TENANTS]
#
# Environment: BENCH_BIN (default: the release build), BENCH_SECS (20),
# BENCH_CLIENTS (20), BENCH_RATE (1500), BENCH_MAX_CONNECTIONS (100),
# BENCH_CREATE_PARALLEL (8), BENCH_WORK_DIR, BENCH_KEEP, BENCH_PHASES ("solo
# fleet": which of the two to run), BENCH_TARGETS ("gateway pgbouncer direct"),
# BENCH_ROUNDS (3: rounds of the one-tenant phase), BENCH_FLEET_TARGETS (the
# targets, with pgbouncer-budget after pgbouncer: PgBouncer held to the
# budget by max_user_connections), BENCH_SOLO_WORKLOADS ("select-only
# tpcb-like"), BENCH_PERF (set: a system-wide `perf record` of each
# one-tenant run, perf.solo-WORKLOAD-TARGET-ROUND.data, kept with BENCH_KEEP).
#
# The one-tenant table also gives the CPU time each transaction cost the
# pooler's process, the server (the postmaster with every backend it
# reaped, and its running processes) and pgbench.
set -Eeuo pipefail
cd "$(dirname "$0")/.."
. scripts/lib-postgres.sh
. scripts/lib-bench.sh
ensure_postgres_server
ensure_pgbouncer

tenants=${1:-1000}
secs=${BENCH_SECS:-20}
clients=${BENCH_CLIENTS:-20}
rate=${BENCH_RATE:-1500}
max_connections=${BENCH_MAX_CONNECTIONS:-100}
parallel=${BENCH_CREATE_PARALLEL:-8}
budget=50
phases=${BENCH_PHASES:-solo fleet}
targets=${BENCH_TARGETS:-gateway pgbouncer direct}
rounds=${BENCH_ROUNDS:-3}
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
pgbench=$pg_bin/pgbench
[ -x "$pgbench" ] || pgbench=$(command -v pgbench)
run_as=()
[ "$(id -u)" = 0 ] && run_as=(runuser -u postgres --)
# A client connection per tenant, at each of the service, PgBouncer and the server.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
secret=tenant-plane-bench-secret-0123456789abcdef
key=00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff

work=$(mktemp -d "${BENCH_WORK_DIR:-${TMPDIR:-/tmp}}/tp-bench-gateway.XXXXXX")
chmod 755 "$work"
serve_pid=
bouncer_pid=
watch_pid=
cleanup() {
  [ -n "$watch_pid" ] && kill "$watch_pid" 2>/dev/null || true
  [ -n "$perf_pid" ] && kill -INT "$perf_pid" 2>/dev/null || true
  [ -n "$serve_pid" ] && kill -9 "$serve_pid" 2>/dev/null || true
  [ -n "$bouncer_pid" ] && kill "$bouncer_pid" 2>/dev/null || true
  pkill -f "$work/" 2>/dev/null || true
  [ -f "$work/pgdata/postmaster.pid" ] &&
    "${run_as[@]}" "$pg_bin/pg_ctl" -D "$work/pgdata" -m immediate stop >/dev/null 2>&1 || true
  if [ -n "${BENCH_KEEP:-}" ]; then echo "kept: $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT
psql_c() { "$pg_bin/psql" -X -At -q -h 127.0.0.1 -p "$pg_port" -U postgres -v ON_ERROR_STOP=1 -d "$@"; }

need_kib=$(((tenants + 1) * 8192 * 3 / 2 + 1048576))
free_kib=$(df -Pk "$work" | awk 'NR == 2 { print $4 }')
[ "$free_kib" -ge "$need_kib" ] || { echo "$tenants tenants need about $((need_kib / 1048576)) GiB free under $work" >&2; exit 1; }
mkdir -p "$work/pgdata" "$work/run" "$work/data" "$work/out" "$work/bouncer" "$work/logs"
chown -R postgres "$work/pgdata" "$work/run" "$work/bouncer" "$work/logs" 2>/dev/null || true
"${run_as[@]}" "$pg_bin/initdb" -D "$work/pgdata" -U postgres --auth=trust --no-sync >/dev/null
pg_port=$(free_port)
"${run_as[@]}" "$pg_bin/pg_ctl" -D "$work/pgdata" -l "$work/run/log" \
  -o "-p $pg_port -c listen_addresses=127.0.0.1 -c unix_socket_directories=$work/run -c max_connections=$max_connections -c fsync=off -c synchronous_commit=off -c max_wal_size=1GB" \
  -w start >/dev/null

# --- the service, its gateway on ----------------------------------------------
export TENANT_PLANE_DATABASE_URL="host=127.0.0.1 port=$pg_port user=postgres dbname=catalog"
export TENANT_PLANE_JWT_SECRET=$secret TENANT_PLANE_MASTER_KEY=$key TENANT_PLANE_DATA_DIR="$work/data"
export TENANT_PLANE_ROUTER_RATE_LIMIT_SCALE=0 TENANT_PLANE_ROUTER_CONNECTION_BUDGET=$budget
export TENANT_PLANE_USAGE_SAMPLE_SECS=86400 TENANT_PLANE_TENANTS_MAX_API_KEYS=100
gport=$(free_port)
export TENANT_PLANE_GATEWAY_LISTEN="127.0.0.1:$gport"
port=$(free_port)
base="http://127.0.0.1:$port"
serve_start() {
  : >"$work/serve.out"
  TENANT_PLANE_LISTEN="127.0.0.1:$port" RUST_LOG=warn "$bin" serve >>"$work/serve.out" 2>&1 &
  serve_pid=$!
  until grep -qs '^tenant-plane listening on ' "$work/serve.out"; do
    kill -0 "$serve_pid" 2>/dev/null || { cat "$work/serve.out" >&2; exit 1; }
    sleep 0.05
  done
}
# Each contender runs alone: the others' sessions are closed first.
serve_stop() {
  kill "$serve_pid" 2>/dev/null || true
  wait "$serve_pid" 2>/dev/null || true
  serve_pid=
}
quiet() {
  until [ "$(psql_c postgres -c "SELECT count(*) FROM pg_stat_activity
      WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()")" = 0 ]; do
    sleep 0.05
  done
}
serve_start
token=$("$bin" token --role super_admin --ttl 12h 2>/dev/null | tail -n1)
api() { curl -sf -H "Authorization: Bearer $token" -H 'Content-Type: application/json' "$@"; }

# A tenant (slug, tier) and a tenant_admin key for it: "slug db key".
make_tenant() {
  local t k
  t=$(api -X POST -d "{\"name\":\"$1\",\"slug\":\"$1\",\"tier\":\"$2\"}" "$base/v1/tenants")
  k=$(api -X POST -d '{"name":"bench","role":"tenant_admin"}' \
    "$base/v1/tenants/$(jq -r .id <<<"$t")/api-keys" | jq -r .key)
  echo "$1 $(jq -r .database <<<"$t") $k"
}
export -f make_tenant api
export base token

say "one tenant: pgbench -i in its database"
read -r solo solo_db solo_key < <(make_tenant gw-solo enterprise)
"$pgbench" -i -q -s 10 -h 127.0.0.1 -p "$pg_port" -U postgres "$solo_db" >/dev/null 2>&1
psql_c "$solo_db" -c "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO ai_care_tenant_app"

say "creating $tenants tenants with a key each, $parallel at a time"
seq 1 "$tenants" | xargs -P "$parallel" -I{} bash -c 'make_tenant gw-{} free' >"$work/out/tenants"
made=$(awk '$3 != "null" && $3 != ""' "$work/out/tenants" | wc -l)
[ "$made" = "$tenants" ] || { echo "made $made of $tenants tenants" >&2; exit 1; }
# Tenant i's line, i from 1 (the order xargs finished in is not i's).
sort -t- -k2 -n "$work/out/tenants" -o "$work/out/tenants"
say "a small table in each tenant database"
cat >"$work/out/table.sql" <<'SQL'
CREATE TABLE bench (id int PRIMARY KEY, v int NOT NULL);
INSERT INTO bench SELECT g, 0 FROM generate_series(1, 1000) g;
GRANT SELECT, UPDATE ON bench TO ai_care_tenant_app;
SQL
awk '{ print $2 }' "$work/out/tenants" |
  xargs -P 4 -I{} "$pg_bin/psql" -X -q -h 127.0.0.1 -p "$pg_port" -U postgres -v ON_ERROR_STOP=1 -d {} -f "$work/out/table.sql"
printf '%s\n' '\set id random(1, 1000)' 'SELECT v FROM bench WHERE id = :id;' >"$work/out/read.sql"
printf '%s\n' '\set id random(1, 1000)' 'BEGIN;' 'UPDATE bench SET v = v + 1 WHERE id = :id;' \
  'SELECT v FROM bench WHERE id = :id;' 'END;' >"$work/out/write.sql"

# --- PgBouncer: transaction mode, a wildcard database ----------------------------
bport=$(free_port)
cat >"$work/bouncer/pgbouncer.ini" <<INI
[databases]
$solo_db = host=127.0.0.1 port=$pg_port pool_size=10
* = host=127.0.0.1 port=$pg_port

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $bport
unix_socket_dir =
auth_type = trust
auth_file = $work/bouncer/users.txt
pool_mode = transaction
default_pool_size = 2
max_db_connections = 10
max_client_conn = $((tenants + clients + 100))
logfile = $work/bouncer/pgbouncer.log
pidfile = $work/bouncer/pgbouncer.pid
INI
# The like-for-like peer: PgBouncer held to the same budget of server
# sessions (all of them are the one user's), which it frees by closing
# another database's idle session, as the gateway does.
sed -e "s/^pidfile = .*/&\nmax_user_connections = $budget/" "$work/bouncer/pgbouncer.ini" >"$work/bouncer/budget.ini"
echo '"postgres" ""' >"$work/bouncer/users.txt"
chown -R postgres "$work/bouncer" 2>/dev/null || true
bouncer_start() {
  # Its pid is read from the file it writes: not a last run's.
  rm -f "$work/bouncer/pgbouncer.pid"
  "${run_as[@]}" pgbouncer "$work/bouncer/${1:-pgbouncer}.ini" >/dev/null 2>&1 &
  bouncer_pid=$!
  until (exec 3<>"/dev/tcp/127.0.0.1/$bport") 2>/dev/null; do
    kill -0 "$bouncer_pid" 2>/dev/null || { cat "$work/bouncer/pgbouncer.log" >&2; exit 1; }
    sleep 0.05
  done
}
bouncer_stop() {
  kill "$bouncer_pid" 2>/dev/null || true
  wait "$bouncer_pid" 2>/dev/null || true
  bouncer_pid=
}
serve_stop

# --- measuring ---------------------------------------------------------------------
# Client sessions on the server, every 100 ms: the watcher's own and the
# catalog's (tenant-plane's own database) left out.
watch_start() {
  printf '%s\n\\watch 0.1\n' "SELECT count(*) FROM pg_stat_activity
     WHERE backend_type = 'client backend' AND pid <> pg_backend_pid() AND datname <> 'catalog'
       AND datname <> 'postgres'" |
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
# "tps p99_ms failed too_many" from a run's logs and outputs in $1.
summarize() {
  local dir=$1 n p99 failed many
  n=$(cat "$dir"/log.* 2>/dev/null | wc -l)
  p99=$(cat "$dir"/log.* 2>/dev/null | awk '{ print $3 }' | sort -n |
    awk '{ v[NR] = $1 } END { i = int(NR * 0.99); if (i < 1) i = 1; if (NR) printf "%.2f", v[i] / 1000; else print "-" }')
  failed=$(grep -l -E 'connection to server|FATAL|error' "$dir"/out.* 2>/dev/null | wc -l)
  many=$(grep -l 'too many' "$dir"/out.* 2>/dev/null | wc -l)
  echo "$(echo "scale=0; $n / $secs" | bc) $p99 $failed $many"
}
delta() { if [ "$1" = - ]; then echo -; else echo "$1 - $2" | bc; fi; }
# Sessions the server has started in the tenants' databases, ever (counted
# by PostgreSQL itself; each backend flushes its count by its exit).
backends_started() {
  psql_c postgres -c "SELECT coalesce(sum(sessions), 0) FROM pg_stat_database
     WHERE datname NOT IN ('catalog', 'postgres', 'template0', 'template1')"
}
# The pooler's process: the service, PgBouncer (its pidfile), none for direct.
pooler_pid() {
  case $1 in
    gateway) echo "$serve_pid" ;;
    pgbouncer*)
      until [ -s "$work/bouncer/pgbouncer.pid" ]; do sleep 0.02; done
      cat "$work/bouncer/pgbouncer.pid" ;;
    *) echo ;;
  esac
}
contender_start() {
  quiet
  case $1 in
    gateway) serve_start ;;
    pgbouncer) bouncer_start ;;
    pgbouncer-budget) bouncer_start budget ;;
  esac
}
contender_stop() {
  case $1 in
    gateway) serve_stop ;;
    pgbouncer*) bouncer_stop ;;
  esac
}
target_args() {
  case $1 in
    gateway) echo "-h 127.0.0.1 -p $gport -U $2 $2" ;;
    pgbouncer*) echo "-h 127.0.0.1 -p $bport -U postgres $3" ;;
    direct) echo "-h 127.0.0.1 -p $pg_port -U postgres $3" ;;
  esac
}

# Phase 1: one tenant, ROUNDS rounds; each round runs every target once,
# in an order that rotates, so drift in the machine falls on all alike.
: >"$work/out/solo"
[[ " $phases " == *" solo "* ]] || solo_workloads=
read -ra order <<<"$targets"
for workload in ${solo_workloads-${BENCH_SOLO_WORKLOADS:-select-only tpcb-like}}; do
  for round in $(seq 1 "$rounds"); do
    for n in "${!order[@]}"; do
      target=${order[$(((n + round - 1) % ${#order[@]}))]}
      dir="$work/logs/solo-$workload-$target-$round"
      mkdir -p "$dir" && chown postgres "$dir" 2>/dev/null || true
      contender_start "$target"
      watch_start "solo-$workload-$target-$round"
      pooler=$(pooler_pid "$target")
      cpu_pooler=$(proc_cpu_secs "$pooler")
      cpu_server=$(pg_cpu_secs "$work/pgdata")
      perf_start "$work/out/perf.solo-$workload-$target-$round.data"
      # shellcheck disable=SC2046
      cpu_client=$( (cd "$dir" && PGPASSWORD=$solo_key "$pgbench" -n -b "$workload" -c "$clients" -j 2 -T "$secs" \
        --log --log-prefix=log $(target_args "$target" "$solo" "$solo_db") >out.1 2>&1 || true; times) | times_cpu_secs)
      cpu_pooler=$(delta "$(proc_cpu_secs "$pooler")" "$cpu_pooler")
      perf_stop
      peak=$(watch_stop "solo-$workload-$target-$round")
      contender_stop "$target"
      # The server's CPU once the pooler's sessions have ended.
      quiet
      cpu_server=$(delta "$(pg_cpu_secs "$work/pgdata")" "$cpu_server")
      echo "$workload $target $round $(summarize "$dir") $peak $cpu_pooler $cpu_server $cpu_client" >>"$work/out/solo"
      say "one tenant, $workload, round $round, $target: $(tail -n1 "$work/out/solo")"
    done
  done
done

# Phase 2: every tenant, one client each, Zipf rates.
harmonic=$(awk -v n="$tenants" 'BEGIN { for (i = 1; i <= n; i++) h += 1 / i; printf "%.6f", h }')
: >"$work/out/fleet"
fleet_targets=${BENCH_FLEET_TARGETS:-${targets/pgbouncer/pgbouncer pgbouncer-budget}}
[[ " $phases " == *" fleet "* ]] || fleet_targets=
for target in $fleet_targets; do
  dir="$work/logs/fleet-$target"
  mkdir -p "$dir" && chown postgres "$dir" 2>/dev/null || true
  quiet
  started=$(backends_started)
  contender_start "$target"
  watch_start "fleet-$target"
  i=0
  pids=()
  while read -r slug db k; do
    i=$((i + 1))
    r=$(awk -v t="$rate" -v i="$i" -v h="$harmonic" 'BEGIN { printf "%.4f", t / i / h }')
    # shellcheck disable=SC2046
    (cd "$dir" && PGPASSWORD=$k exec "$pgbench" -n -c 1 -j 1 -T "$secs" -R "$r" \
      -f "$work/out/read.sql@8" -f "$work/out/write.sql@2" --log --log-prefix="log.$i" \
      $(target_args "$target" "$slug" "$db") >"out.$i" 2>&1) &
    pids+=($!)
  done <"$work/out/tenants"
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  peak=$(watch_stop "fleet-$target")
  contender_stop "$target"
  quiet
  started=$(($(backends_started) - started))
  echo "$target $(summarize "$dir") $peak $started" >>"$work/out/fleet"
  say "$tenants tenants, $target: $(tail -n1 "$work/out/fleet")"
done

# --- the tables ----------------------------------------------------------------------
ratio() { if [ "$2" = 0 ] || [ "$2" = - ]; then echo -; else printf '%.2f' "$(echo "$1 / $2" | bc -l)"; fi; }
row() {
  # $1 label, $2.. tps p99 failed many peak started, then the peer's tps p99
  echo "| $1 | $2 | $3 | $4 ($5) | $6 | $(echo "$7 / $secs" | bc) | $(ratio "$2" "$8") | $(ratio "$3" "$9") |"
}
echo
echo "pgbench, $secs s a run, PostgreSQL max_connections $max_connections; ratios against PgBouncer"
echo
echo "| one tenant, $clients clients, median of $rounds rounds | tps | p99 ms | clients failed (too many clients) | most sessions | tps / PgBouncer | p99 / PgBouncer | CPU µs a transaction: pooler / server / pgbench |"
echo "|---|---|---|---|---|---|---|---|"
# Medians over the rounds; each ratio is the median of the rounds' ratios
# against PgBouncer's run of the same round.
awk -v peer=pgbouncer -v secs="$secs" '
  function median(list,   v, n, i, j, t) {
    n = split(list, v, " ")
    for (i = 2; i <= n; i++) { t = v[i]; for (j = i - 1; j >= 1 && v[j] + 0 > t + 0; j--) v[j + 1] = v[j]; v[j + 1] = t }
    if (n == 0) return "-"
    return n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
  }
  function us(cpu, n) { return (cpu == "-" || n <= 0) ? "-" : sprintf("%.0f", cpu * 1000000 / n) }
  { key = $1 SUBSEP $2; tps[key] = tps[key] " " $4; p99[key] = p99[key] " " $5
    n = $4 * secs; cpool[key] = cpool[key] " " us($9, n); cserv[key] = cserv[key] " " us($10, n); ccli[key] = ccli[key] " " us($11, n)
    failed[key] += $6; many[key] += $7; if ($8 > peak[key]) peak[key] = $8
    run[$1, $2, $3] = $4 " " $5; if (!(key in seen)) { seen[key] = 1; keys[++k] = key } }
  END {
    for (i = 1; i <= k; i++) {
      split(keys[i], kv, SUBSEP); rt = ""; rp = ""
      for (r = 1; (kv[1], kv[2], r) in run; r++) {
        if (!((kv[1], peer, r) in run)) continue
        split(run[kv[1], kv[2], r], mine, " "); split(run[kv[1], peer, r], theirs, " ")
        if (theirs[1] > 0) rt = rt " " mine[1] / theirs[1]
        if (theirs[2] > 0) rp = rp " " mine[2] / theirs[2]
      }
      mt = median(rt); mp = median(rp)
      printf "| %s, %s | %d | %.2f | %d (%d) | %d | %s | %s | %s / %s / %s |\n", kv[1], kv[2], median(tps[keys[i]]), median(p99[keys[i]]),
        failed[keys[i]], many[keys[i]], peak[keys[i]], mt == "-" ? "-" : sprintf("%.2f", mt), mp == "-" ? "-" : sprintf("%.2f", mp),
        median(cpool[keys[i]]), median(cserv[keys[i]]), median(ccli[keys[i]])
    }
  }' "$work/out/solo"
echo
echo "| $tenants tenants, Zipf, one client each, $rate tps offered | tps | p99 ms | clients failed (too many clients) | most sessions | backends started a second | tps / PgBouncer | p99 / PgBouncer |"
echo "|---|---|---|---|---|---|---|---|"
btps=0 bp99=-
read -r _ btps bp99 _ _ _ _ < <(awk '$1 == "pgbouncer"' "$work/out/fleet") || true
btps=${btps:-0} bp99=${bp99:--}
while read -r target tps p99 failed many peak started; do
  row "$target" "$tps" "$p99" "$failed" "$many" "$peak" "$started" "$btps" "$bp99"
done <"$work/out/fleet"
