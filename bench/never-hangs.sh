#!/usr/bin/env bash
# 1,000 back-to-back `lbox-runc run` of /bin/true, each with a 10 s timeout: counts any that hang.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-1000}
LBOX=${LBOX:-target/release/lbox}
[ -x "$LBOX" ] || cargo build --release -q
work=$(mktemp -d /tmp/lbox-hang.XXXXXX)
trap 'rm -rf "$work"' EXIT
ln -s "$(realpath "$LBOX")" "$work/lbox-runc"
mkdir -p "$work/bundle/rootfs"/{bin,proc,sys,dev,etc,tmp}
cp /bin/busybox "$work/bundle/rootfs/bin/"; ln -s busybox "$work/bundle/rootfs/bin/true"
(cd "$work/bundle" && "$work/lbox-runc" spec)
python3 - "$work/bundle/config.json" <<'PY'
import json, sys
p = sys.argv[1]; s = json.load(open(p))
s["process"]["terminal"] = False; s["process"]["args"] = ["/bin/true"]; s["linux"]["cgroupsPath"] = "lbox-hang/c"
json.dump(s, open(p, "w"))
PY
hung=0; failed=0; start=$(date +%s)
for i in $(seq "$N"); do
  rc=0; timeout 10 "$work/lbox-runc" --root "$work/state" run --bundle "$work/bundle" "h$i" >/dev/null 2>&1 || rc=$?
  if [ "$rc" = 124 ]; then hung=$((hung + 1)); elif [ "$rc" != 0 ]; then failed=$((failed + 1)); fi
done
echo "runs: $N  hung: $hung  failed: $failed  seconds: $(( $(date +%s) - start ))"
find /sys/fs/cgroup -maxdepth 6 -type d -name lbox-hang -exec rmdir {} + 2>/dev/null || true
[ "$hung" = 0 ] && [ "$failed" = 0 ]
