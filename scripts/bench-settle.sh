#!/usr/bin/env bash
# Restart to settled: how long after a replica is killed with -9 in the
# middle of 20 tenant creates its restart takes to finish or undo every one
# of them (no operation left unfinished). Each binary given runs the same
# scenario, in turn, on a throwaway cluster of its own, with its default
# settings (a 60 s stale limit):
#   scripts/bench-settle.sh BIN [BIN...] [-- ROUNDS]
# Prints one line per round and a median per binary (docs/BENCHMARKS.md).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib-postgres.sh
. scripts/lib-bench.sh
ensure_postgres_server

bins=()
rounds=3
while [ $# -gt 0 ]; do
  case "$1" in
    --) rounds=$2; shift 2 ;;
    *) bins+=("$(realpath "$1")"); shift ;;
  esac
done
[ ${#bins[@]} -gt 0 ] || { echo "usage: $0 BIN [BIN...] [-- ROUNDS]" >&2; exit 2; }

pg_bin=$(dirname "$(command -v initdb || ls /usr/lib/postgresql/*/bin/initdb | tail -n1)")
run_as=()
[ "$(id -u)" = 0 ] && run_as=(runuser -u postgres --)
secret=tenant-plane-bench-secret-0123456789abcdef
key=00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff

work=$(mktemp -d)
chmod 755 "$work"
cleanup() {
  [ -f "$work/pgdata/postmaster.pid" ] && "${run_as[@]}" "$pg_bin/pg_ctl" -D "$work/pgdata" -m immediate stop >/dev/null 2>&1 || true
  pkill -9 -f "$work/serve" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT


psql_c() { psql -X -At -h 127.0.0.1 -p "$pg_port" -U postgres -d "$@"; }

# Starts BIN serve on the catalog; sets serve_pid and base. A port taken
# between the probe and the bind is tried again with another.
serve() {
  local bin=$1 port attempt
  for attempt in 1 2 3 4 5; do
    port=$(free_port)
    base="http://127.0.0.1:$port"
    TENANT_PLANE_DATABASE_URL="host=127.0.0.1 port=$pg_port user=postgres dbname=catalog" \
      TENANT_PLANE_JWT_SECRET=$secret TENANT_PLANE_MASTER_KEY=$key \
      TENANT_PLANE_LISTEN="127.0.0.1:$port" RUST_LOG=off \
      "$bin" serve >"$work/serve.out" 2>&1 &
    serve_pid=$!
    until grep -q '^tenant-plane listening on ' "$work/serve.out"; do
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

round() {
  local bin=$1 token start end unfinished
  rm -rf "$work/pgdata" "$work/creates.out"
  mkdir -p "$work/pgdata" "$work/run"
  chown -R postgres "$work/pgdata" "$work/run" 2>/dev/null || true
  "${run_as[@]}" "$pg_bin/initdb" -D "$work/pgdata" -U postgres --auth=trust --no-sync >/dev/null
  pg_port=$(free_port)
  "${run_as[@]}" "$pg_bin/pg_ctl" -D "$work/pgdata" -l "$work/run/log" \
    -o "-p $pg_port -c listen_addresses=127.0.0.1 -c unix_socket_directories=$work/run -c max_connections=300" \
    -w start >/dev/null
  serve "$bin"
  token=$(TENANT_PLANE_JWT_SECRET=$secret "$bin" token --role super_admin)
  for i in $(seq 1 20); do
    curl -s -o /dev/null -w '%{http_code}\n' -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
      -d "{\"name\":\"Killed $i\",\"slug\":\"killed-$i\"}" "$base/v1/tenants" >>"$work/creates.out" &
  done
  local waited=0
  until [ "$(psql_c postgres -c "SELECT count(*) FROM pg_database WHERE datname LIKE 'ai_care_tenant_%' AND datname <> 'ai_care_tenant_template'")" -ge 3 ]; do
    sleep 0.005
    waited=$((waited + 1))
    if [ "$waited" -gt 6000 ]; then
      echo "the creates made no databases; their answers:" >&2
      sort "$work/creates.out" | uniq -c >&2
      exit 1
    fi
  done
  kill -9 "$serve_pid"
  wait "$serve_pid" 2>/dev/null || true
  wait 2>/dev/null || true
  unfinished=$(psql_c catalog -c "SELECT count(*) FROM operations WHERE state IN ('pending', 'running')")
  start=$(date +%s.%N)
  serve "$bin"
  while [ "$(psql_c catalog -c "SELECT count(*) FROM operations WHERE state IN ('pending', 'running')")" != 0 ]; do
    sleep 0.05
  done
  end=$(date +%s.%N)
  kill -9 "$serve_pid"; wait "$serve_pid" 2>/dev/null || true
  "${run_as[@]}" "$pg_bin/pg_ctl" -D "$work/pgdata" -m immediate stop >/dev/null
  echo "$(echo "$end - $start" | bc) $unfinished"
}

for bin in "${bins[@]}"; do
  times=()
  for r in $(seq 1 "$rounds"); do
    read -r secs cut <<<"$(round "$bin")"
    printf '%s  round %d: %d creates cut off, settled %.2f s after the restart\n' "$bin" "$r" "$cut" "$secs"
    times+=("$secs")
  done
  median=$(printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
  printf '%s  median: %.2f s\n' "$bin" "$median"
done
