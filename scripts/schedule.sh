#!/usr/bin/env bash
# The randomized schedule test, for longer than CI runs it: three replicas
# on one catalog, killed, paused and cut from their catalog at random while
# random operations run; every invariant is checked at the end.
#   scripts/schedule.sh [SECONDS] [SEED]
# A failure prints its seed; passing it again replays the same schedule.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib-postgres.sh
ensure_postgres_server
export SCHEDULE_SECS=${1:-300}
if [ -n "${2:-}" ]; then
  export SCHEDULE_SEED=$2
fi
exec cargo test --features failpoints --test api schedule -- --nocapture
