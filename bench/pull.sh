#!/usr/bin/env bash
# Cold pull of a ~200 MB, 10-layer image from a local docker-registry: lbox pull against podman pull
# (and skopeo copy to a directory: download only), interleaved, N runs each (default 3). Prints the
# medians, MB/s (of unpacked data) and the ratio podman/lbox. Needs root, docker-registry, podman,
# skopeo, python3. The image is made from files of this host's /usr, so nothing is downloaded.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-3}
SIZE_MB=${SIZE_MB:-200}
. bench/lib.sh
LBOX=$(realpath "$LBOX")
work=$(mktemp -d /tmp/lbox-pullbench.XXXXXX)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cleanup() {
  [ -n "${regpid:-}" ] && kill "$regpid" 2>/dev/null || true
  for d in "$work"/podman-*; do [ -d "$d" ] && umount -R "$d/storage/overlay" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

cat >"$work/reg.yml" <<YML
version: 0.1
log: {level: error}
storage: {filesystem: {rootdirectory: $work/regdata}}
http: {addr: 127.0.0.1:$port}
YML
docker-registry serve "$work/reg.yml" >/dev/null 2>&1 &
regpid=$!
for _ in $(seq 100); do (echo >/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done

echo "building a ${SIZE_MB} MB image in 10 layers from /usr ..."
python3 - "$work/oci" "$SIZE_MB" <<'PY'
import hashlib, io, json, os, sys, tarfile, gzip
out, size_mb = sys.argv[1], int(sys.argv[2])
files = []
for root, dirs, names in os.walk("/usr"):
    dirs.sort()
    for n in sorted(names):
        p = os.path.join(root, n)
        if os.path.isfile(p) and not os.path.islink(p):
            files.append((p, os.path.getsize(p)))
target = size_mb * 1000 * 1000
per = target // 10
os.makedirs(f"{out}/blobs/sha256", exist_ok=True)
def blob(data):
    d = hashlib.sha256(data).hexdigest()
    open(f"{out}/blobs/sha256/{d}", "wb").write(data)
    return "sha256:" + d, len(data)
layers, diffs, i, total = [], [], 0, 0
for n in range(10):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        acc = 0
        while i < len(files) and acc < per:
            p, s = files[i]; i += 1
            if s > per // 4:
                continue
            try:
                t.add(p, arcname=p.lstrip("/"), recursive=False)
                acc += s
            except OSError:
                pass
        total += acc
    raw = buf.getvalue()
    diffs.append("sha256:" + hashlib.sha256(raw).hexdigest())
    d, s = blob(gzip.compress(raw, 6, mtime=0))
    layers.append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": d, "size": s})
cfg = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Cmd": ["/bin/sh"]},
                  "rootfs": {"type": "layers", "diff_ids": diffs}}).encode()
cd, cs = blob(cfg)
man = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                  "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": cs},
                  "layers": layers}).encode()
md, ms = blob(man)
json.dump({"imageLayoutVersion": "1.0.0"}, open(f"{out}/oci-layout", "w"))
json.dump({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
           "digest": md, "size": ms, "annotations": {"org.opencontainers.image.ref.name": "big"}}]},
          open(f"{out}/index.json", "w"))
print(f"{total/1e6:.0f} MB in 10 layers, {sum(l['size'] for l in layers)/1e6:.0f} MB compressed")
open(f"{out}/../unpacked_mb", "w").write(f"{total/1e6:.1f}")
PY
img=127.0.0.1:$port/bench/big:1
skopeo copy -q --dest-tls-verify=false "oci:$work/oci:big" "docker://$img"
mb=$(cat "$work/unpacked_mb")

bench_podman_conf "$work"
ms() {
  local s e
  s=$(date +%s%N)
  if ! "$@" >/dev/null 2>"$work/err.txt"; then echo "failed: $*" >&2; cat "$work/err.txt" >&2; exit 1; fi
  e=$(date +%s%N)
  echo $(( (e - s) / 1000000 ))
}
cold() { sync; echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || true; }
: >"$work/lbox.txt"; : >"$work/podman.txt"; : >"$work/skopeo.txt"
for i in $(seq "$N"); do
  # Every tool starts from the same cold page cache (the registry's blobs included), not only
  # the first one of each round.
  cold
  ms env LBOX_ROOT="$work/lbox-$i" "$LBOX" pull "$img" >>"$work/lbox.txt"
  cold
  ms env CONTAINERS_CONF="$work/containers.conf" podman --root "$work/podman-$i/storage" --runroot "$work/podman-$i/run" \
    pull --tls-verify=false "$img" >>"$work/podman.txt"
  cold
  ms skopeo copy --src-tls-verify=false "docker://$img" "dir:$work/skopeo-$i" >>"$work/skopeo.txt"
done
# Stores are removed only now: deleting thousands of files between runs makes the next run's file
# creation slow on ext4 (inode allocation skips recently deleted inodes), whoever runs next.
for i in $(seq "$N"); do
  CONTAINERS_CONF="$work/containers.conf" podman --root "$work/podman-$i/storage" --runroot "$work/podman-$i/run" system reset -f >/dev/null 2>&1 || true
done
echo "lbox runs (ms):   $(tr "\n" " " <"$work/lbox.txt")"; echo "podman runs (ms): $(tr "\n" " " <"$work/podman.txt")"
median() { sort -n "$1" | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
l=$(median "$work/lbox.txt"); p=$(median "$work/podman.txt"); s=$(median "$work/skopeo.txt")
echo "runs each:      $N (interleaved, cold stores)"
awk -v t="$l" -v mb="$mb" 'BEGIN { printf "lbox pull:      %d ms  (%.0f MB/s unpacked)\n", t, mb / (t / 1000) }'
awk -v t="$p" -v mb="$mb" 'BEGIN { printf "podman pull:    %d ms  (%.0f MB/s unpacked)\n", t, mb / (t / 1000) }'
awk -v t="$s" 'BEGIN { printf "skopeo to dir:  %d ms  (download only)\n", t }'
awk -v l="$l" -v p="$p" -v s="$s" 'BEGIN { printf "ratio podman/lbox: %.2fx (target >= 3x); lbox/skopeo-download: %.2fx\n", p / l, l / s }'
