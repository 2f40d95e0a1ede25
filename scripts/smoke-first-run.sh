#!/usr/bin/env bash
# The first run, exactly as the README tells a new user, from a fresh clone:
#   1. git clone this checkout into a new temporary folder (mode 700, as
#      `mktemp -d` makes it; the build directory is shared through
#      CARGO_TARGET_DIR to keep CI fast);
#   2. scripts/run.sh there, with no TENANT_PLANE_* variable but a free
#      TENANT_PLANE_LISTEN;
#   3. every command of the README's "Your first calls" block, read out of
#      README.md, with the printed token and that address;
#   4. `tenant-plane tenant list` from the same folder: the new tenant is there;
#   5. SIGTERM: the service and its PostgreSQL stop, leaving no postmaster.pid;
#   6. scripts/run.sh again: same tenant, same secret, the first token works.
# Called by .ci/run. Exits non-zero, saying which step failed.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$repo/target}
# Seconds to wait for the service to print its banner (the first run may
# compile the release build).
start_timeout=${SMOKE_START_TIMEOUT:-1800}

# A newcomer's shell has none of our settings.
while IFS= read -r name; do unset "$name"; done < <(compgen -e | grep '^TENANT_PLANE_' || true)

work=$(mktemp -d)
clone="$work/tenant-plane"
server_pid=""

step() { printf 'smoke: %s\n' "$*"; }
fail() {
  printf 'smoke: FAILED: %s\n' "$*" >&2
  for log in "$work"/serve-*.log; do
    [ -f "$log" ] && { echo "--- $log (last 30 lines)" >&2; tail -n 30 "$log" >&2; }
  done
  exit 1
}

cleanup() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  # A cluster kept outside the data directory (the postgres user cannot
  # enter a mode-700 folder) is removed with the clone.
  if [ -L "$clone/.tenant-plane/cluster" ]; then
    rm -rf "$(readlink -f "$clone/.tenant-plane/cluster")"
  fi
  rm -rf "$work"
}
trap cleanup EXIT

free_port() {
  local port
  for _ in $(seq 1 200); do
    port=$((20000 + RANDOM % 40000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "$port"
      return 0
    fi
  done
  return 1
}

# Starts scripts/run.sh in the clone; sets server_pid. The log is $1.
start_service() {
  local log=$1
  (cd "$clone" && exec env TENANT_PLANE_LISTEN="$listen" scripts/run.sh) >"$log" 2>&1 &
  server_pid=$!
  local waited=0
  until grep -q '^tenant-plane listening on ' "$log"; do
    kill -0 "$server_pid" 2>/dev/null || fail "scripts/run.sh exited before it listened"
    [ "$waited" -lt $((start_timeout * 10)) ] || fail "no banner after ${start_timeout}s"
    waited=$((waited + 1))
    sleep 0.1
  done
}

stop_service() {
  kill -TERM "$server_pid"
  local status=0
  wait "$server_pid" || status=$?
  server_pid=""
  [ "$status" -eq 0 ] || fail "the service exited with status $status after SIGTERM"
  local pgdata="$clone/.tenant-plane/postgres"
  [ -L "$clone/.tenant-plane/cluster" ] && pgdata="$clone/.tenant-plane/cluster/postgres"
  [ -d "$pgdata" ] || fail "no embedded cluster at $pgdata"
  [ ! -e "$pgdata/postmaster.pid" ] || fail "postmaster.pid is left in $pgdata"
}

# The README's "Your first calls" block, with continuation lines joined.
first_calls() {
  awk '
    /^Your first calls:/ { seen = 1; next }
    seen && /^```sh/ { inside = 1; next }
    inside && /^```/ { exit }
    inside {
      line = $0
      if (sub(/\\[[:space:]]*$/, "", line)) { pending = pending line; next }
      print pending line
      pending = ""
    }
  ' "$clone/README.md"
}

step "cloning $repo into a new folder"
git clone --quiet "$repo" "$clone"
cd "$clone"
listen="127.0.0.1:$(free_port)" || fail "no free port"

step "scripts/run.sh (first start) on $listen"
start_service "$work/serve-1.log"
token=$(sed -n 's/^super_admin token ([^)]*): //p' "$work/serve-1.log" | head -n 1)
[ -n "$token" ] || fail "the first start printed no super_admin token"
step "the service printed a super_admin token (${#token} characters)"

calls=$(first_calls)
[ -n "$calls" ] || fail "README.md has no \"Your first calls\" block"
ran=0
while IFS= read -r command; do
  case "$command" in
    TOKEN=*) export TOKEN="$token"; continue ;;
    "" | "#"*) continue ;;
  esac
  command=${command//127.0.0.1:8080/$listen}
  step "README: $(printf '%s' "$command" | tr -s ' ' | cut -c1-110)"
  output=$(bash -c "set -euo pipefail; $command" 2>"$work/call.err") \
    || fail "the command failed: $command: $(cat "$work/call.err")"
  printf '        -> %s\n' "$(printf '%s' "$output" | cut -c1-160)"
  case "$output" in
    *'"error"'*) fail "the command answered an error: $output" ;;
  esac
  ran=$((ran + 1))
done <<<"$calls"
[ "$ran" -ge 3 ] || fail "only $ran commands ran from the README's block"
echo "$output" | grep -q '"slug":"acme"' || fail "the last call did not create tenant acme"

step "tenant-plane tenant list (from the same folder)"
listing=$(cargo run --release --quiet --locked -- tenant list 2>&1) || fail "tenant list failed: $listing"
printf '%s\n' "$listing" | sed 's/^/        /'
echo "$listing" | grep -q 'acme' || fail "tenant list does not show acme"

if [ -L .tenant-plane/cluster ]; then
  step "the postgres user cannot enter this folder; the cluster lives in $(readlink .tenant-plane/cluster)"
  grep -q 'its cluster lives in a directory it can reach' "$work/serve-1.log" \
    || fail "the start-up log does not say where the cluster is"
fi

step "SIGTERM"
stop_service
step "the service stopped with status 0, and PostgreSQL left no postmaster.pid"

step "scripts/run.sh (second start) in the same folder"
start_service "$work/serve-2.log"
tenants=$(curl -fsS -H "Authorization: Bearer $token" "http://$listen/v1/tenants") \
  || fail "the first token no longer works after a restart"
echo "$tenants" | grep -q '"slug":"acme"' || fail "tenant acme is gone after a restart: $tenants"
step "the first token still works, and tenant acme is still there"
stop_service
step "passed"
