#!/usr/bin/env bash
# scale.sh: start-up time, resident memory and the time for one change to reach the
# answers, with N LoadBalancer Services from a manifests file (benches/gen-services.py).
#
#   bash benches/scale.sh [-b BINARY] [-f documents|list|json] COUNT...
#
# -f picks the file's shape (default documents: one YAML document per Service; list: one
# `kind: List` as `kubectl get -A -o yaml` prints it; json: that list as `-o json`).
# For each COUNT: writes the Services file, starts `k8s-gateway serve --manifests` on
# loopback, asks for the last Service's name until it answers (start-up), reads VmRSS
# (serving) and VmHWM (peak) from /proc, then changes that Service's address in the file
# and times until the new address is answered. Prints one line per COUNT:
#
#   count=100000 start_s=1.273 rss_mib=121.9 peak_mib=185.1 peak_after_change_mib=218.2 change_s=0.640
#
# Needs: python3, dig. Traffic goes to 127.0.0.1 only.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
bin=${CARGO_TARGET_DIR:-$here/../target}/release/k8s-gateway
format=documents
while getopts "b:f:" o; do
  case $o in b) bin=$OPTARG ;; f) format=$OPTARG ;; *) exit 2 ;; esac
done
shift $((OPTIND - 1))
usage="usage: scale.sh [-b BINARY] [-f documents|list|json] COUNT..."
[ $# -ge 1 ] || { echo "$usage" >&2; exit 2; }
case $format in
  documents) gen=() file=services.yaml ;;
  list) gen=(--list) file=services.yaml ;;
  json) gen=(--json) file=services.json ;;
  *) echo "$usage" >&2; exit 2 ;;
esac
command -v dig >/dev/null || { echo "scale.sh: dig not found" >&2; exit 2; }
port=${PORT:-55353}
work=$(mktemp -d)
trap 'kill "${pid:-}" 2>/dev/null || true; rm -rf "$work"' EXIT

now() { date +%s.%N; }
answer() { dig +short +tries=1 +time=1 @127.0.0.1 -p "$port" "$1" A 2>/dev/null || true; }
# Gives up (with the server's log) when the server died or the answer never came.
check() {
  if ! kill -0 "$pid" 2>/dev/null || [ "$(date +%s)" -gt "$deadline" ]; then
    echo "scale.sh: no answer for $name" >&2; cat "$work/log" >&2; exit 1
  fi
}

for count in "$@"; do
  python3 "$here/gen-services.py" "${gen[@]}" "$count" >"$work/$file"
  last=$((count - 1))
  if [ $((last % 10)) -eq 0 ]; then name=app$last.home.example; else name=app$last.ns$((last % 100)).home.example; fi
  ip=10.$((64 + last / 65536)).$((last / 256 % 256)).$((last % 256))
  start=$(now)
  "$bin" serve --domain home.example --manifests "$work/$file" \
    --listen 127.0.0.1:"$port" --http-listen 127.0.0.1:0 --debug-listen off 2>"$work/log" &
  pid=$! deadline=$(($(date +%s) + 300))
  until [ "$(answer "$name")" = "$ip" ]; do check; done
  ready=$(now)
  rss=$(awk '/^VmRSS/ {print $2}' /proc/$pid/status)
  hwm=$(awk '/^VmHWM/ {print $2}' /proc/$pid/status)
  # One object changed: the last Service's address.
  if [ "$format" = json ]; then
    sed -i "s/\"ip\": \"$ip\"/\"ip\": \"192.0.2.1\"/" "$work/$file"
  else
    sed -i "s/- ip: $ip\$/- ip: 192.0.2.1/" "$work/$file"
  fi
  changed=$(now) deadline=$(($(date +%s) + 300))
  until [ "$(answer "$name")" = "192.0.2.1" ]; do check; done
  seen=$(now)
  hwm2=$(awk '/^VmHWM/ {print $2}' /proc/$pid/status)
  kill "$pid"; wait "$pid" 2>/dev/null || true; pid=
  awk -v c="$count" -v s="$start" -v r="$ready" -v rss="$rss" -v hwm="$hwm" -v hwm2="$hwm2" -v ch="$changed" -v se="$seen" \
    'BEGIN { printf "count=%d start_s=%.3f rss_mib=%.1f peak_mib=%.1f peak_after_change_mib=%.1f change_s=%.3f\n", c, r - s, rss / 1024, hwm / 1024, hwm2 / 1024, se - ch }'
done
