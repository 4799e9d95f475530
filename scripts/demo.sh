#!/usr/bin/env bash
# The main job, as far as LockBox goes today: build lbox, make a busybox bundle offline and run it
# through lbox-runc; import it as an image, push it to a local registry, pull it back and run it as
# containers with lbox run (foreground and detached), one serving on a published port to the host
# and by name to another container on a user network; then builds examples/web from its app.lbox,
# runs it with a published port, and rebuilds it from the cache. Needs root on Debian 12.
set -euo pipefail
cd "$(dirname "$0")/.."
pkgs=(busybox-static libseccomp-dev pkg-config docker-registry nftables iproute2)
if ! dpkg -s "${pkgs[@]}" >/dev/null 2>&1; then
  DEBIAN_FRONTEND=noninteractive apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${pkgs[@]}"
fi
# One static executable (scripts/build.sh).
LBOX=$(realpath "$(scripts/build.sh)")
work=$(mktemp -d /tmp/lbox-demo.XXXXXX)
cleanup() {
  "$LBOX" runtime --root "$work/state" delete --force demo >/dev/null 2>&1 || true
  "$LBOX" --root "$work/lbox" system reset -f >/dev/null 2>&1 || true
  [ -n "${regpid:-}" ] && kill "$regpid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$work/bundle/rootfs"/{bin,proc,sys,dev,etc,tmp,root}
cp /bin/busybox "$work/bundle/rootfs/bin/"
for a in $(/bin/busybox --list); do [ "$a" = busybox ] || ln -s busybox "$work/bundle/rootfs/bin/$a"; done
echo 'root:x:0:0:root:/root:/bin/sh' >"$work/bundle/rootfs/etc/passwd"
rt() { "$LBOX" runtime --root "$work/state" "$@"; }
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

echo "== images: import a rootfs tarball, push it to a local registry, pull it back, run it"
lb() { LBOX_CGROUP_PARENT=lbox-demo "$LBOX" --root "$work/lbox" "$@"; }
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
printf 'version: 0.1\nlog: {level: error}\nstorage: {filesystem: {rootdirectory: %s}}\nhttp: {addr: 127.0.0.1:%s}\n' \
  "$work/registry" "$port" >"$work/registry.yml"
docker-registry serve "$work/registry.yml" >/dev/null 2>&1 &
regpid=$!
for _ in $(seq 100); do (echo >/dev/tcp/127.0.0.1/"$port") 2>/dev/null && break; sleep 0.1; done
tar -C "$work/bundle/rootfs" -czf "$work/busybox.tar.gz" .
lb import --change 'CMD ["sh"]' "$work/busybox.tar.gz" "localhost:$port/demo/busybox:1"
lb push "localhost:$port/demo/busybox:1"
lb rmi "localhost:$port/demo/busybox:1"
lb pull "localhost:$port/demo/busybox:1"
lb images
echo "== lbox run: foreground, detached, logs, stop, rm"
lb run --rm "localhost:$port/demo/busybox:1" sh -c 'echo hello from $(hostname), in a container of the pulled image'
lb run -d --name web --memory 64m --restart on-failure "localhost:$port/demo/busybox:1" \
  sh -c 'echo serving; trap "echo bye; exit 0" TERM; while true; do sleep 0.2; done'
sleep 1
lb ps
lb logs web
lb stop web
lb ps -a --format '{{.Names}}: {{.Status}}'
lb rm web
echo "== networks: a published port, and containers that reach each other by name"
hport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
lb network create demo-net
lb run -d --name site --network demo-net -p "127.0.0.1:$hport:80" "localhost:$port/demo/busybox:1" \
  sh -c 'mkdir -p /www && echo "hello from site, $(hostname -i)" >/www/index.html && exec httpd -f -p 80 -h /www'
lb port site
for _ in $(seq 50); do (echo >/dev/tcp/127.0.0.1/"$hport") 2>/dev/null && break; sleep 0.1; done
echo "host -> 127.0.0.1:$hport: $(python3 -c "import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:$hport/').read().decode().strip())")"
lb run --rm --network demo-net "localhost:$port/demo/busybox:1" sh -c 'echo "client -> site: $(wget -qO- http://site/)"'
lb rm -f site
lb network rm demo-net
echo "== lbox build: examples/web (app.lbox), run it with -p, rebuild from the cache"
lb tag "localhost:$port/demo/busybox:1" busybox
lb build -t web examples/web
wport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
lb run -d --name web -p "127.0.0.1:$wport:8080" web
for _ in $(seq 50); do (echo >/dev/tcp/127.0.0.1/"$wport") 2>/dev/null && break; sleep 0.1; done
echo "host -> web: $(python3 -c "import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:$wport/cgi-bin/hello').read().decode().strip())")"
lb build -t web examples/web | grep -c CACHED | sed 's/^/cached steps on rebuild: /'
lb build -q -f examples/web/Dockerfile -t web-docker examples/web | sed 's/^/the Dockerfile gives the same image: /'
lb rm -f web
find /sys/fs/cgroup -maxdepth 6 -type d -name lbox-demo -exec rmdir {} + 2>/dev/null || true
echo "done"
