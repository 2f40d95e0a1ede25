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
