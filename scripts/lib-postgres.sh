# Sourced by run.sh and test.sh: make sure the PostgreSQL server binaries (and,
# for the tests, promtool and the browser) exist.
# Installs the distribution's package where that is possible (root on
# Debian/Ubuntu); otherwise says exactly what to install and stops.

have_postgres_server() {
  if command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1 && command -v postgres >/dev/null 2>&1; then
    return 0
  fi
  for dir in /usr/lib/postgresql/*/bin; do
    [ -x "$dir/initdb" ] && [ -x "$dir/pg_ctl" ] && [ -x "$dir/postgres" ] && return 0
  done
  return 1
}

ensure_postgres_server() {
  if have_postgres_server; then
    return 0
  fi
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "PostgreSQL server binaries are missing; installing the postgresql package..." >&2
    export DEBIAN_FRONTEND=noninteractive
    apt_update_once
    apt-get install -y -qq postgresql postgresql-client >&2
    have_postgres_server && return 0
  fi
  cat >&2 <<'MSG'
PostgreSQL server binaries (initdb, pg_ctl, postgres) were not found.
Install them, then run this command again:
  Debian/Ubuntu:  sudo apt-get install postgresql
  Fedora/RHEL:    sudo dnf install postgresql-server
  macOS:          brew install postgresql@15
MSG
  exit 1
}

# promtool checks the /metrics page in the tests (the Debian package
# `prometheus` ships it). Installed like the server binaries; otherwise the
# message says what to install.
ensure_promtool() {
  apt_install_for promtool prometheus && return 0
  cat >&2 <<'MSG'
promtool (from Prometheus) was not found; the tests check /metrics with it.
Install it, then run this command again:
  Debian/Ubuntu:  sudo apt-get install prometheus
  Other systems:  the promtool binary from a Prometheus release, on PATH
MSG
  exit 1
}

# Installs Debian's package $2 when the command $1 is missing, where that is
# possible (root, with apt). Fails when the command is still missing.
apt_install_for() {
  command -v "$1" >/dev/null 2>&1 && return 0
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "$1 is missing; installing the $2 package..." >&2
    export DEBIAN_FRONTEND=noninteractive
    apt_update_once
    apt-get install -y -qq --no-install-recommends "$2" >&2 || true
    command -v "$1" >/dev/null 2>&1 && return 0
  fi
  return 1
}

# One `apt-get update` per script run, however many packages it installs.
apt_update_once() {
  [ -n "${TENANT_PLANE_APT_UPDATED:-}" ] && return 0
  apt-get update -qq >&2
  TENANT_PLANE_APT_UPDATED=1
}

# Chromium and chromedriver drive the console's browser tests. Installed like
# the rest where possible; where not, the browser tests skip and say why, and
# the rest of the suite runs.
have_browser() {
  command -v chromedriver >/dev/null 2>&1 &&
    { command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; }
}

# Where the browser is there, its tests must run: TENANT_PLANE_TEST_BROWSER
# tells them that a missing browser is a failure, not a reason to skip.
ensure_browser() {
  if have_browser; then
    export TENANT_PLANE_TEST_BROWSER=required
    return 0
  fi
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "Chromium or chromedriver is missing; installing the chromium and chromium-driver packages..." >&2
    export DEBIAN_FRONTEND=noninteractive
    apt_update_once
    apt-get install -y -qq --no-install-recommends chromium chromium-driver >&2 || true
    if have_browser; then
      export TENANT_PLANE_TEST_BROWSER=required
      return 0
    fi
  fi
  # CI sets TENANT_PLANE_TEST_BROWSER=required: there the browser tests must run.
  if [ "${TENANT_PLANE_TEST_BROWSER:-}" = "required" ]; then
    cat >&2 <<'MSG'
Chromium and chromedriver could not be installed, and this run requires the
console's browser tests (TENANT_PLANE_TEST_BROWSER=required). Install both:
  Debian/Ubuntu:  sudo apt-get install chromium chromium-driver
MSG
    exit 1
  fi
  cat >&2 <<'MSG'
Chromium and chromedriver were not found, so the console's browser tests will
skip. To run them, install both, then run this command again:
  Debian/Ubuntu:  sudo apt-get install chromium chromium-driver
MSG
}

# For run.sh: pgBackRest where it can be installed; without it the service
# says that point-in-time restore is off and runs on.
install_pgbackrest() {
  command -v pgbackrest >/dev/null 2>&1 && return 0
  apt_install_for pgbackrest pgbackrest && return 0
  echo "pgBackRest was not found, so point-in-time restore stays off (Debian/Ubuntu: sudo apt-get install pgbackrest)." >&2
}

# pgBackRest archives the embedded cluster's WAL and restores one tenant to a
# time. Installed like the browser: where it cannot be, the point-in-time
# restore tests skip and say why, except where TENANT_PLANE_TEST_PGBACKREST
# is `required` (CI), where that fails the run.
ensure_pgbackrest() {
  if command -v pgbackrest >/dev/null 2>&1; then
    export TENANT_PLANE_TEST_PGBACKREST=required
    return 0
  fi
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "pgBackRest is missing; installing the pgbackrest package..." >&2
    export DEBIAN_FRONTEND=noninteractive
    apt_update_once
    apt-get install -y -qq --no-install-recommends pgbackrest >&2 || true
    if command -v pgbackrest >/dev/null 2>&1; then
      export TENANT_PLANE_TEST_PGBACKREST=required
      return 0
    fi
  fi
  if [ "${TENANT_PLANE_TEST_PGBACKREST:-}" = "required" ]; then
    cat >&2 <<'MSG'
pgBackRest could not be installed, and this run requires the point-in-time
restore tests (TENANT_PLANE_TEST_PGBACKREST=required). Install it:
  Debian/Ubuntu:  sudo apt-get install pgbackrest
MSG
    exit 1
  fi
  cat >&2 <<'MSG'
pgBackRest was not found, so the point-in-time restore tests will skip. To
run them, install it, then run this command again:
  Debian/Ubuntu:  sudo apt-get install pgbackrest
MSG
}

# The token tests make their RSA, EC and Ed25519 keys with `openssl genpkey`.
ensure_openssl() {
  apt_install_for openssl openssl && return 0
  cat >&2 <<'MSG'
openssl was not found; the token tests make their keys with it.
Install it, then run this command again:
  Debian/Ubuntu:  sudo apt-get install openssl
MSG
  exit 1
}

# The single sign-on tests run a real OpenID provider: npm's certified
# `oidc-provider`, pinned in tests/oidc/package-lock.json, under Node.js.
ensure_oidc_provider() {
  if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
      echo "Node.js is missing; installing the nodejs and npm packages..." >&2
      export DEBIAN_FRONTEND=noninteractive
      apt_update_once
      apt-get install -y -qq --no-install-recommends nodejs npm >&2 || true
    fi
  fi
  if ! command -v npm >/dev/null 2>&1; then
    cat >&2 <<'MSG'
Node.js and npm are needed for the single sign-on tests (a real OpenID
provider runs under them). Install Node.js 20 or later, then run this again.
MSG
    exit 1
  fi
  local dir=tests/oidc
  if [ ! -d "$dir/node_modules/oidc-provider" ] || [ "$dir/package-lock.json" -nt "$dir/node_modules/.package-lock.json" ]; then
    echo "Installing the test OpenID provider (npm ci in $dir)..." >&2
    npm ci --prefix "$dir" --no-audit --no-fund --loglevel=error >&2
  fi
}

# `scripts/bench-router.sh SECONDS wrk` drives load with wrk (Debian's package).
ensure_wrk() {
  command -v wrk >/dev/null 2>&1 && return 0
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    apt_update_once
    apt-get install -y -qq --no-install-recommends wrk >&2 || true
  fi
  command -v wrk >/dev/null 2>&1 || { echo "wrk is needed for this bench (Debian: apt-get install wrk)" >&2; exit 1; }
}

# PgBouncer, the peer the gateway benchmark measures against (Debian's
# package; the benchmark runs its own instance with its own settings).
ensure_pgbouncer() {
  command -v pgbouncer >/dev/null 2>&1 && return 0
  [ -x /usr/sbin/pgbouncer ] && { PATH="$PATH:/usr/sbin"; return 0; }
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    apt_update_once
    apt-get install -y -qq --no-install-recommends pgbouncer >&2 || true
    # The package starts a system instance; the benchmark wants none.
    command -v systemctl >/dev/null 2>&1 && systemctl stop pgbouncer >/dev/null 2>&1 || true
    pkill -x pgbouncer 2>/dev/null || true
  fi
  [ -x /usr/sbin/pgbouncer ] && PATH="$PATH:/usr/sbin"
  command -v pgbouncer >/dev/null 2>&1 || { echo "PgBouncer is needed for this bench (Debian: apt-get install pgbouncer)" >&2; exit 1; }
}
