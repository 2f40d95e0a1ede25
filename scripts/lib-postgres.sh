# Sourced by run.sh and test.sh: make sure the PostgreSQL server binaries (and,
# for the tests, promtool) exist.
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
    apt-get update -qq >&2
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
  command -v promtool >/dev/null 2>&1 && return 0
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "promtool is missing; installing the prometheus package..." >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq --no-install-recommends prometheus >&2
    command -v promtool >/dev/null 2>&1 && return 0
  fi
  cat >&2 <<'MSG'
promtool (from Prometheus) was not found; the tests check /metrics with it.
Install it, then run this command again:
  Debian/Ubuntu:  sudo apt-get install prometheus
  Other systems:  the promtool binary from a Prometheus release, on PATH
MSG
  exit 1
}
