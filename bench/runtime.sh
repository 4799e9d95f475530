#!/usr/bin/env bash
# lbox-runc run vs runc run on the same busybox bundle, interleaved, N runs each (default 30).
# Prints each runtime's median and the ratio runc/lbox-runc. Needs root, runc and busybox-static.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-30}
LBOX=${LBOX:-target/release/lbox}
[ -x "$LBOX" ] || cargo build --release -q
work=$(mktemp -d /tmp/lbox-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
ln -s "$(realpath "$LBOX")" "$work/lbox-runc"
mkdir -p "$work/bundle/rootfs"/{bin,proc,sys,dev,etc,tmp}
cp /bin/busybox "$work/bundle/rootfs/bin/"
for a in true sh; do ln -s busybox "$work/bundle/rootfs/bin/$a"; done
(cd "$work/bundle" && "$work/lbox-runc" spec)
python3 - "$work/bundle/config.json" <<'PY'
import json, sys
p = sys.argv[1]; s = json.load(open(p))
s["process"]["terminal"] = False
s["process"]["args"] = ["/bin/true"]
s["linux"]["cgroupsPath"] = "lbox-bench/c"
json.dump(s, open(p, "w"))
PY
ms() { local s e; s=$(date +%s%N); "$@" >/dev/null; e=$(date +%s%N); echo $(( (e - s) / 1000 )); }
: >"$work/lbox.txt"; : >"$work/runc.txt"
for i in $(seq "$N"); do
  ms "$work/lbox-runc" --root "$work/lbox-state" run --bundle "$work/bundle" "b$i" >>"$work/lbox.txt"
  ms runc --root "$work/runc-state" run --bundle "$work/bundle" "r$i" >>"$work/runc.txt"
done
median() { sort -n "$1" | awk '{a[NR]=$1} END {m = (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2; printf "%.2f", m/1000}'; }
l=$(median "$work/lbox.txt"); r=$(median "$work/runc.txt")
echo "runs each:        $N (interleaved)"
echo "lbox-runc median: ${l} ms"
echo "runc median:      ${r} ms"
awk -v l="$l" -v r="$r" 'BEGIN { printf "ratio runc/lbox-runc: %.2fx (target >= 4x)\n", r / l }'
# Both runtimes leave the (empty) parent cgroup they created; remove ours.
find /sys/fs/cgroup -maxdepth 6 -type d -name lbox-bench -exec rmdir {} + 2>/dev/null || true
