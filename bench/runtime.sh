#!/usr/bin/env bash
# lbox-runc run vs runc run on the same busybox bundle, interleaved, N runs each (default 30).
# Prints each runtime's median and the ratio runc/lbox-runc. Needs root, runc and busybox-static.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
N=${N:-30}
work=$(mktemp -d /tmp/lbox-bench.XXXXXX)
trap 'rm -rf "$work"; bench_cleanup_cgroups lbox-bench' EXIT
bench_bundle "$work" lbox-bench
: >"$work/lbox.txt"; : >"$work/runc.txt"
for i in $(seq "$N"); do
  us "$LBOX_RUNC" --root "$work/lbox-state" run --bundle "$work/bundle" "b$i" >>"$work/lbox.txt"
  us runc --root "$work/runc-state" run --bundle "$work/bundle" "r$i" >>"$work/runc.txt"
done
l=$(median "$work/lbox.txt"); r=$(median "$work/runc.txt")
echo "runs each:        $N (interleaved)"
echo "lbox-runc median: ${l} ms"
echo "runc median:      ${r} ms"
awk -v l="$l" -v r="$r" 'BEGIN { printf "ratio runc/lbox-runc: %.2fx (target >= 4x)\n", r / l }'
