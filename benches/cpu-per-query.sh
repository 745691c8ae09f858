#!/usr/bin/env bash
# cpu-per-query.sh: CPU time each server spends per answered query, at a fixed offered rate.
#
#   bash benches/cpu-per-query.sh [-Q QPS] [-l SECS] [-r PAIRS] [-M udp|tcp] NAME=BINARY...
#
# On a shared, busy machine queries per second swing with the neighbours; the CPU time a
# server uses for the same queries does not. Each round starts Knot DNS (one UDP worker)
# and each k8s-gateway binary (on ../shared/perf/home.example.yaml) pinned
# to CPU 0, offers them the same dnsperf load (queries.txt, -Q QPS for -l seconds, from
# CPU 1), and reads the server's user+system CPU time from /proc before and after. Prints
# per round the microseconds of CPU per answered query, and last the median over rounds of
# each binary's ratio to Knot (below 1: less CPU per query than Knot).
#
# Needs: knotd, dnsperf, dig, taskset. Traffic goes to 127.0.0.1 only.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
perf_dir=${PERF_DIR:-$here/../../shared/perf}
# shellcheck source=/dev/null
source "$perf_dir/servers.sh"
QPS=20000 SECS=10 PAIRS=3 PROTO=udp
while getopts "Q:l:r:M:" o; do
  case $o in Q) QPS=$OPTARG ;; l) SECS=$OPTARG ;; r) PAIRS=$OPTARG ;; M) PROTO=$OPTARG ;; *) exit 2 ;; esac
done
shift $((OPTIND - 1))
[ $# -ge 1 ] || { echo "usage: cpu-per-query.sh [-Q QPS] [-l SECS] [-r PAIRS] [-M udp|tcp] NAME=BINARY..." >&2; exit 2; }
work=$(mktemp -d)
knot_port=${KNOT_PORT:-53640} port=${PORT:-5484}
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"' EXIT

ticks=$(getconf CLK_TCK)
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# Offers the load to 127.0.0.1:$1 (server pid $2); prints CPU microseconds per answer.
measure() {
  local before after answered
  before=$(cpu_ticks "$2")
  answered=$(taskset -c 1 dnsperf -s 127.0.0.1 -p "$1" -m "$PROTO" -d "$perf_dir/queries.txt" \
    -l "$SECS" -Q "$QPS" -c 1 2>&1 | awk '/Queries completed:/ {print $3}')
  after=$(cpu_ticks "$2")
  awk -v b="$before" -v a="$after" -v n="$answered" -v t="$ticks" \
    'BEGIN { if (n > 0) printf "%.2f\n", (a - b) / t * 1e6 / n; else print "nan" }'
}

start_knot "$work" "$knot_port" 1 0 >/dev/null
knot_pid=$(cat "$work/knot.pid")
pids+=("$knot_pid")
declare -A ratios
for ((round = 1; round <= PAIRS; round++)); do
  knot=$(measure "$knot_port" "$knot_pid")
  echo "round $round knot us_per_query=$knot"
  for spec in "$@"; do
    name=${spec%%=*} bin=${spec#*=}
    taskset -c 0 "$bin" serve --domain home.example --manifests "$perf_dir/home.example.yaml" \
      --listen 127.0.0.1:"$port" --http-listen 127.0.0.1:0 --debug-listen off \
      2>"$work/$name.log" &
    pid=$!
    pids+=("$pid")
    wait_ready "$port" "$name"
    ours=$(measure "$port" "$pid")
    kill "$pid"
    wait "$pid" 2>/dev/null || true
    ratio=$(awk -v o="$ours" -v k="$knot" 'BEGIN { printf "%.3f", o / k }')
    ratios[$name]="${ratios[$name]:-} $ratio"
    echo "round $round $name us_per_query=$ours ratio_to_knot=$ratio"
  done
done
for spec in "$@"; do
  name=${spec%%=*}
  # shellcheck disable=SC2086
  median=$(printf '%s\n' ${ratios[$name]} | sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }')
  echo "median CPU per query $name/knot: $median"
done
