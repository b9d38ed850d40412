#!/usr/bin/env bash
# Run each given test N times in a row (default 10) with two busy processes beside it, printing
# one line per run; a failed run's whole output is kept in repeat-failure-<time>.out.
# Usage, from the repository root with the venv active:
#   N=10 bash docs/benchmarks/repeat_under_load.sh TEST_ID [TEST_ID ...]
cd "$(dirname "$0")/../.."
N=${N:-10}
yes > /dev/null & B1=$!
yes > /dev/null & B2=$!
trap 'kill $B1 $B2' EXIT
echo "# $(date -u +%FT%TZ) main $(git rev-parse --short HEAD); $(nproc) cores; two busy processes (yes > /dev/null) beside; load at start: $(cut -d' ' -f1-3 /proc/loadavg)"
out=$(mktemp)
for t in "$@"; do
  for i in $(seq 1 "$N"); do
    start=$(date +%s)
    python -m pytest -n0 -q -p no:cacheprovider "$t" > "$out" 2>&1 || cp "$out" "repeat-failure-$(date +%H%M%S).out"
    echo "$(date -u +%T) run $i: $t -> $(tail -1 "$out") (load $(cut -d' ' -f1 /proc/loadavg), $(( $(date +%s) - start )) s)"
  done
done
rm -f "$out"
