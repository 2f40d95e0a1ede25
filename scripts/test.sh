#!/usr/bin/env bash
# Runs the test suite against real PostgreSQL clusters that the tests start
# themselves. Extra arguments go to `cargo test`.
#
# `--fast` skips the slow groups, by test-name prefix: the crash points and
# the randomized schedule (replicas killed at every failpoint), the
# console's browser tests, kill -9 during provisioning, the user-path
# starts of the real binary, the noisy neighbour's p99 under a flood, and a
# thousand tenants' gateway and HTTP clients behind a budget of fifty.
# CI (.ci/run) runs everything.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib-postgres.sh

# `--skip` matches anywhere in a name, and the library has `api::console::`
# and `tenants::backups::schedule::` tests: those two groups are named whole.
SLOW=(
  crash_points::
  schedule::replicas_killed
  console::a_tenant_admin_in_the_console
  console::an_operator_signs_in
  console::every_page_reads
  console_live::
  sso_console::a_tenant_admin_signs_in
  sso_console::a_tenant_admin_sets_and_removes
  faults::kill_9
  settings_user_path_starts::
  noisy_neighbour::
  gateway_budget::gateway_and_http_sessions_of_a_thousand
  point_in_time::
  point_in_time_console::
  point_in_time_kill::
  point_in_time_s3::
  point_in_time_servers::
)

fast=0
cargo_args=()
test_args=()
seen_separator=0
for arg in "$@"; do
  if [ "$seen_separator" = 1 ]; then
    test_args+=("$arg")
  elif [ "$arg" = "--fast" ]; then
    fast=1
  elif [ "$arg" = "--" ]; then
    seen_separator=1
  else
    cargo_args+=("$arg")
  fi
done

ensure_postgres_server
ensure_promtool
ensure_openssl
ensure_oidc_provider
if [ "$fast" = 1 ]; then
  for group in "${SLOW[@]}"; do
    test_args+=(--skip "$group")
  done
else
  ensure_browser
  ensure_pgbackrest
fi
exec cargo test --features failpoints "${cargo_args[@]}" -- "${test_args[@]}"
