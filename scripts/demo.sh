#!/usr/bin/env bash
# The main job, as far as LockBox goes today: build lbox, make a busybox bundle offline, and run it
# through lbox-runc (foreground, then create/start/exec/delete). Needs root on Debian 12.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! dpkg -s busybox-static libseccomp-dev pkg-config >/dev/null 2>&1; then
  DEBIAN_FRONTEND=noninteractive apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends busybox-static libseccomp-dev pkg-config
fi
cargo build --release -q
work=$(mktemp -d /tmp/lbox-demo.XXXXXX)
trap 'target/release/lbox runtime --root "$work/state" delete --force demo >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
mkdir -p "$work/bundle/rootfs"/{bin,proc,sys,dev,etc,tmp,root}
cp /bin/busybox "$work/bundle/rootfs/bin/"
for a in $(/bin/busybox --list); do [ "$a" = busybox ] || ln -s busybox "$work/bundle/rootfs/bin/$a"; done
echo 'root:x:0:0:root:/root:/bin/sh' >"$work/bundle/rootfs/etc/passwd"
rt() { target/release/lbox runtime --root "$work/state" "$@"; }
rt spec --bundle "$work/bundle"
python3 - "$work/bundle/config.json" <<'PY'
import json, sys
p = sys.argv[1]; s = json.load(open(p))
s["process"]["terminal"] = False
s["process"]["args"] = ["sh", "-c", "echo hello from $(hostname), pid $$ in its own namespaces; cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max"]
s["linux"]["cgroupsPath"] = "lbox-demo/demo"
s["linux"]["resources"]["memory"] = {"limit": 64 * 1024 * 1024}
json.dump(s, open(p, "w"))
PY
echo "== lbox-runc run (64 MiB memory limit)"
rt run --bundle "$work/bundle" demo
echo "== create / start / exec / state / delete"
python3 - "$work/bundle/config.json" <<'PY'
import json, sys
p = sys.argv[1]; s = json.load(open(p)); s["process"]["args"] = ["sleep", "30"]; json.dump(s, open(p, "w"))
PY
rt create --bundle "$work/bundle" demo
rt start demo
rt exec demo sh -c 'echo "exec sees: $(ps | wc -l) lines of ps inside the container"'
rt state demo | grep -E '"(id|status)"'
rt delete --force demo
find /sys/fs/cgroup -maxdepth 6 -type d -name lbox-demo -exec rmdir {} + 2>/dev/null || true
echo "done"
