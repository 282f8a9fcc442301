#!/usr/bin/env bash
# The whole test suite on a busy machine: the README's `pytest` while two CPU-bound processes run beside it
# (issue 10, section 2). Extra arguments go to pytest. Prints pytest's own summary, then a report: the exit
# status, the wall time, the CPU time each busy process got (proof that they ran throughout) and the load
# average before and after. Exits with pytest's status.
#     bash scripts/test_under_load.sh
set -u
cd "$(dirname "$0")/.."

busy() { python3 -c 'while True: pass' >/dev/null 2>&1 & echo $!; }
hog1=$(busy)
hog2=$(busy)
trap 'kill "$hog1" "$hog2" 2>/dev/null' EXIT
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
sleep 1
start=$SECONDS

pytest "$@"
rc=$?

wall=$((SECONDS - start))
cpu1=$(ps -o times= -p "$hog1" | tr -d ' ')
cpu2=$(ps -o times= -p "$hog2" | tr -d ' ')
echo "=== test_under_load: pytest exit status ${rc} after ${wall} s, beside two busy processes"
echo "    busy processes' CPU time: ${cpu1} s and ${cpu2} s (of ${wall} s wall each)"
echo "    load average before: ${load_before}; after: $(cut -d' ' -f1-3 /proc/loadavg); CPUs: $(nproc)"
exit "$rc"
