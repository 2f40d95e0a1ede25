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
#   6. scripts/run.sh again: same tenant, same secret, the first token works;
#   7. the catalog over TLS, as the README's "TLS to PostgreSQL" says: a
#      throwaway CA and a certificate for localhost, a PostgreSQL that
#      accepts only TLS, and the release binary's `serve` with
#      TENANT_PLANE_DATABASE_URL='postgres://…?sslmode=verify-full&sslrootcert=…'
#      (then in the key=value form): a tenant is created and listed, and the
#      server shows the sessions as SSL.
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
# Step 7's folder (the postgres user must enter it) and cluster.
tls_work=""
tls_pgdata=""

step() { printf 'smoke: %s\n' "$*"; }
fail() {
  printf 'smoke: FAILED: %s\n' "$*" >&2
  for log in "$work"/serve-*.log ${tls_work:+"$tls_work/postgres.log"}; do
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
  if [ -n "$tls_pgdata" ]; then
    as_postgres "$pg_bin/pg_ctl" -D "$tls_pgdata" -m immediate -w stop >/dev/null 2>&1 || true
  fi
  [ -z "$tls_work" ] || rm -rf "$tls_work"
  rm -rf "$work"
}
trap cleanup EXIT

# free_port: a port below the kernel's ephemeral range (lib-bench.sh).
. "$repo/scripts/lib-bench.sh"

# Starts scripts/run.sh in the clone; sets server_pid. The log is $1.
start_service() {
  local log=$1
  (cd "$clone" && exec env TENANT_PLANE_LISTEN="$listen" scripts/run.sh) >"$log" 2>&1 &
  server_pid=$!
  await_banner "$log" scripts/run.sh
}

# Waits until the service started as server_pid, logging to $1, listens.
await_banner() {
  local log=$1 what=$2
  local waited=0
  until grep -q '^tenant-plane listening on ' "$log"; do
    kill -0 "$server_pid" 2>/dev/null || fail "$what exited before it listened"
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

# Runs a command as the postgres user when this script runs as root (the
# server refuses to run as root), else as this user.
as_postgres() {
  # From /: the postgres user may not enter the folder this runs in.
  if [ "$(id -u)" = "0" ]; then (cd / && runuser -u postgres -- "$@"); else "$@"; fi
}

# The folder of pg_ctl and initdb: on PATH, else the distribution's.
find_pg_bin() {
  if command -v pg_ctl >/dev/null 2>&1 && command -v initdb >/dev/null 2>&1; then
    dirname "$(command -v pg_ctl)"
    return 0
  fi
  local dir
  for dir in /usr/lib/postgresql/*/bin; do
    [ -x "$dir/pg_ctl" ] && [ -x "$dir/initdb" ] && { echo "$dir"; return 0; }
  done
  return 1
}

# A CA, and a certificate for localhost (only) it signs, in $tls_work.
make_certificates() {
  local ec=(-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes)
  openssl req -x509 "${ec[@]}" -days 2 -subj "/CN=smoke CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -keyout "$tls_work/ca.key" -out "$tls_work/ca.pem" 2>/dev/null
  openssl req -x509 "${ec[@]}" -days 2 -subj "/CN=another CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -keyout "$tls_work/other-ca.key" -out "$tls_work/other-ca.pem" 2>/dev/null
  openssl req -new "${ec[@]}" -subj "/CN=localhost" \
    -keyout "$tls_work/server.key" -out "$tls_work/server.csr" 2>/dev/null
  printf '%s\n' "subjectAltName=DNS:localhost" "basicConstraints=CA:FALSE" \
    "keyUsage=critical,digitalSignature" "extendedKeyUsage=serverAuth" >"$tls_work/server.ext"
  openssl x509 -req -in "$tls_work/server.csr" -CA "$tls_work/ca.pem" -CAkey "$tls_work/ca.key" \
    -set_serial "0x$(openssl rand -hex 8)" -days 2 -extfile "$tls_work/server.ext" \
    -out "$tls_work/server.crt" 2>/dev/null
}

# A throwaway cluster on $tls_port that takes TLS only, with the certificate
# made above; sets tls_pgdata.
start_tls_postgres() {
  tls_pgdata="$tls_work/pgdata"
  mkdir -m 700 "$tls_pgdata"
  touch "$tls_work/postgres.log"
  [ "$(id -u)" != "0" ] || chown postgres: "$tls_pgdata" "$tls_work/postgres.log"
  as_postgres "$pg_bin/initdb" -D "$tls_pgdata" -U postgres -E UTF8 --locale=C --auth=trust \
    --no-sync >/dev/null || fail "initdb failed"
  install -m 600 "$tls_work/server.key" "$tls_pgdata/server.key"
  install -m 644 "$tls_work/server.crt" "$tls_pgdata/server.crt"
  [ "$(id -u)" != "0" ] || chown postgres: "$tls_pgdata/server.key" "$tls_pgdata/server.crt"
  cat >>"$tls_pgdata/postgresql.conf" <<CONF
port = $tls_port
listen_addresses = 'localhost'
unix_socket_directories = ''
ssl = on
CONF
  # hostssl only: a session without TLS is refused.
  cat >"$tls_pgdata/pg_hba.conf" <<'HBA'
hostssl all postgres 127.0.0.1/32 trust
hostssl all postgres ::1/128 trust
hostssl all all 127.0.0.1/32 scram-sha-256
hostssl all all ::1/128 scram-sha-256
HBA
  as_postgres "$pg_bin/pg_ctl" -D "$tls_pgdata" -l "$tls_work/postgres.log" -w -t 60 start \
    >/dev/null || fail "the TLS PostgreSQL did not start"
}

# Starts the release binary's `serve` with the catalog $1; the log is $2.
start_tls_serve() {
  env TENANT_PLANE_DATA_DIR="$tls_work/data" TENANT_PLANE_LISTEN="$tls_listen" \
    TENANT_PLANE_DATABASE_URL="$1" "$bin" serve >"$2" 2>&1 &
  server_pid=$!
  await_banner "$2" "serve with the TLS catalog"
}

stop_tls_serve() {
  kill -TERM "$server_pid"
  local status=0
  wait "$server_pid" || status=$?
  server_pid=""
  [ "$status" -eq 0 ] || fail "serve exited with status $status after SIGTERM"
}

# The CLI with the catalog $1.
tls_cli() {
  local url=$1
  shift
  env TENANT_PLANE_DATA_DIR="$tls_work/data" TENANT_PLANE_DATABASE_URL="$url" "$bin" "$@"
}

# Client sessions to the catalog database that use TLS, as the server sees them.
ssl_sessions() {
  local psql
  psql=$(command -v psql || echo "$pg_bin/psql")
  as_postgres "$psql" -X -At \
    "host=localhost port=$tls_port user=postgres dbname=postgres sslmode=verify-full sslrootcert=$tls_work/ca.pem" \
    -c "SELECT count(*) FILTER (WHERE s.ssl), count(*) FILTER (WHERE NOT s.ssl)
        FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid)
        WHERE a.datname = 'tenant_plane'"
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

step "TLS catalog: a throwaway CA, a certificate for localhost, a PostgreSQL that takes TLS only"
bin="$CARGO_TARGET_DIR/release/tenant-plane"
[ -x "$bin" ] || fail "no release binary at $bin"
pg_bin=$(find_pg_bin) || fail "no PostgreSQL server binaries"
# shellcheck source=lib-postgres.sh
. "$repo/scripts/lib-postgres.sh"
ensure_openssl
tls_work=$(mktemp -d)
chmod 755 "$tls_work"
make_certificates || fail "openssl could not make the certificates"
tls_port=$(free_port) || fail "no free port"
start_tls_postgres
tls_listen="127.0.0.1:$(free_port)" || fail "no free port"
# As the README's "TLS to PostgreSQL" section writes it.
tls_url="postgres://postgres@localhost:$tls_port/tenant_plane?sslmode=verify-full&sslrootcert=$tls_work/ca.pem"

step "serve with TENANT_PLANE_DATABASE_URL=$tls_url"
start_tls_serve "$tls_url" "$work/serve-tls-url.log"
tls_token=$(tls_cli "$tls_url" token --role super_admin) || fail "tenant-plane token failed: $tls_token"
created=$(curl -fsS -H "Authorization: Bearer $tls_token" -H 'Content-Type: application/json' \
  -d '{"name":"Over TLS","slug":"over-tls"}' "http://$tls_listen/v1/tenants") \
  || fail "creating a tenant over the TLS catalog failed"
echo "$created" | grep -q '"slug":"over-tls"' || fail "the create answered: $created"
tenants=$(curl -fsS -H "Authorization: Bearer $tls_token" "http://$tls_listen/v1/tenants") \
  || fail "listing tenants over the TLS catalog failed"
echo "$tenants" | grep -q '"slug":"over-tls"' || fail "tenant over-tls is not listed: $tenants"
listing=$(tls_cli "$tls_url" tenant list 2>&1) || fail "tenant list with the TLS catalog failed: $listing"
echo "$listing" | grep -q 'over-tls' || fail "tenant list does not show over-tls: $listing"
sessions=$(ssl_sessions) || fail "psql could not read pg_stat_ssl"
[ "${sessions%%|*}" -ge 1 ] && [ "${sessions##*|}" -eq 0 ] \
  || fail "the catalog's sessions with and without TLS: $sessions"
step "a tenant was created and listed; the catalog's sessions (TLS|plain): $sessions"
stop_tls_serve

step "a CA that did not sign the server's certificate is refused, with the reason"
refused=$(tls_cli "${tls_url/ca.pem/other-ca.pem}" tenant list 2>&1) \
  && fail "tenant list trusted a certificate from another CA: $refused"
echo "$refused" | grep -q 'not signed by a CA in sslrootcert' || fail "the refusal does not say why: $refused"
printf '        -> %s\n' "$refused"
step "a certificate for localhost is refused for 127.0.0.1 under verify-full, with the reason"
refused=$(tls_cli "${tls_url/@localhost:/@127.0.0.1:}" tenant list 2>&1) \
  && fail "verify-full accepted a certificate that does not name 127.0.0.1: $refused"
echo "$refused" | grep -q 'certificate not valid for name "127.0.0.1"' || fail "the refusal does not say why: $refused"
printf '        -> %s\n' "$refused"

tls_kv="host=localhost port=$tls_port user=postgres dbname=tenant_plane sslmode=verify-full sslrootcert=$tls_work/ca.pem"
step "serve with TENANT_PLANE_DATABASE_URL='$tls_kv'"
start_tls_serve "$tls_kv" "$work/serve-tls-kv.log"
tenants=$(curl -fsS -H "Authorization: Bearer $tls_token" "http://$tls_listen/v1/tenants") \
  || fail "listing tenants over the TLS catalog (key=value) failed"
echo "$tenants" | grep -q '"slug":"over-tls"' || fail "tenant over-tls is not listed: $tenants"
stop_tls_serve
as_postgres "$pg_bin/pg_ctl" -D "$tls_pgdata" -m fast -w stop >/dev/null || fail "pg_ctl stop failed"
tls_pgdata=""
step "the TLS catalog works in both forms"
step "passed"
