# Helpers the benchmark scripts share (sourced, not run).

# A TCP port on 127.0.0.1 nothing listens on (as far as a connect tells),
# below the kernel's ephemeral range: one inside it may be taken meanwhile
# as the local port of an outgoing connection.
free_port() {
  local port low
  low=$(awk '{ print $1 }' /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
  [ "$low" -gt 11000 ] || low=32768
  for _ in $(seq 1 200); do
    port=$((10000 + RANDOM % (low - 10000)))
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || { echo "$port"; return; }
  done
}
# Now, in seconds with nanoseconds; the seconds from $1 to $2, to $3 places
# (default: $SECS_PLACES, else 2).
now() { date +%s.%N; }
secs() { printf "%.${3:-${SECS_PLACES:-2}}f" "$(echo "$2 - $1" | bc)"; }
# A line on standard error, with the time.
say() { printf '%s %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }

# CPU time, read from /proc (fields counted from the end of the process
# name, which may hold spaces), in seconds with two places.
clk_tck=$(getconf CLK_TCK)
# A running process's threads and the children it has reaped; "-" for no
# process (an empty $1).
proc_cpu_secs() {
  if [ -z "$1" ]; then echo -; return; fi
  sed 's/.*) //' "/proc/$1/stat" | awk -v t="$clk_tck" '{ printf "%.2f", ($12 + $13 + $14 + $15) / t }'
}
# The PostgreSQL server of data directory $1: the postmaster with every
# backend it has reaped, plus the processes still running.
pg_cpu_secs() {
  local pm child stat
  pm=$(head -n1 "$1/postmaster.pid")
  { sed 's/.*) //' "/proc/$pm/stat" | awk '{ print $12 + $13 + $14 + $15 }'
    for child in $(pgrep -P "$pm"); do
      # A backend may end between the listing and the read: then its time
      # is the postmaster's already.
      stat=$(cat "/proc/$child/stat" 2>/dev/null) || continue
      sed 's/.*) //' <<<"$stat" | awk '{ print $12 + $13 }'
    done
  } | awk -v t="$clk_tck" '{ s += $1 } END { printf "%.2f", s / t }'
}
# The CPU seconds in the last line of `times` (on standard input): those
# of the children a shell waited for.
times_cpu_secs() {
  tail -n1 | awk '{ for (i = 1; i <= 2; i++) { split($i, a, /[ms]/); s += a[1] * 60 + a[2] } } END { printf "%.2f", s }'
}

# A system-wide `perf` profile into file $1 while BENCH_PERF is set, until
# perf_stop. The caller's clean-up stops it too (`perf_pid`).
perf_pid=
perf_start() {
  [ -n "${BENCH_PERF:-}" ] || return 0
  perf record -a -q -o "$1" >/dev/null 2>&1 &
  perf_pid=$!
}
perf_stop() {
  [ -n "$perf_pid" ] || return 0
  kill -INT "$perf_pid" 2>/dev/null || true
  wait "$perf_pid" 2>/dev/null || true
  perf_pid=
}
