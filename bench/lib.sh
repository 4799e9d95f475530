# Shared by the bench scripts: build lbox if needed and make a busybox bundle that runs /bin/true.
# Usage: . bench/lib.sh; bench_bundle WORKDIR CGROUP_PARENT   (sets LBOX_RUNC to the runtime's path)

# The static lbox that scripts/build.sh makes (it rebuilds only what changed), unless LBOX names one.
LBOX=${LBOX:-$(scripts/build.sh)}

bench_bundle() {
  local work=$1 cgroup=$2
  ln -s "$(realpath "$LBOX")" "$work/lbox-runc"
  LBOX_RUNC=$work/lbox-runc
  mkdir -p "$work/bundle/rootfs"/{bin,proc,sys,dev,etc,tmp}
  cp /bin/busybox "$work/bundle/rootfs/bin/"
  for a in true sh; do ln -s busybox "$work/bundle/rootfs/bin/$a"; done
  (cd "$work/bundle" && "$LBOX_RUNC" spec)
  python3 - "$work/bundle/config.json" "$cgroup" <<'PY'
import json, sys
p, cg = sys.argv[1], sys.argv[2]
s = json.load(open(p))
s["process"]["terminal"] = False
s["process"]["args"] = ["/bin/true"]
s["linux"]["cgroupsPath"] = cg + "/c"
json.dump(s, open(p, "w"))
PY
}

# Remove the (empty) parent cgroups the runtimes leave, in every hierarchy.
bench_cleanup_cgroups() {
  find /sys/fs/cgroup -maxdepth 7 -depth -type d -path "*/$1*" -exec rmdir {} + 2>/dev/null || true
}

# Run a command, print how long it took in microseconds. The clock is bash's own
# $EPOCHREALTIME: forking `date` around the command would add about 1 ms to every figure.
us() {
  local s e
  s=${EPOCHREALTIME/./}; "$@" >/dev/null; e=${EPOCHREALTIME/./}
  echo $(( e - s ))
}
# Median of a file of microsecond figures, in milliseconds.
median() { sort -n "$1" | awk '{a[NR]=$1} END {m = (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2; printf "%.2f", m/1000}'; }

# A private podman for the comparisons: its containers.conf (no network, runc, cgroupfs, the
# ulimits this machine allows) in WORK, its store and run directory there. Call podman_ ARGS.
bench_podman_conf() {
  local work=$1
  mkdir -p "$work/tmp"
  cat >"$work/containers.conf" <<CONF
[containers]
netns="none"
default_ulimits=["nofile=1024:1024","nproc=1000:1000"]
[engine]
runtime="runc"
cgroup_manager="cgroupfs"
events_logger="file"
tmp_dir="$work/tmp"
CONF
}
# Its run root is $podman_runroot when the caller sets one (run.sh: on tmpfs, as podman's default
# /run/containers/storage is).
podman_() {
  CONTAINERS_CONF=$work/containers.conf podman --root "$work/podman" --runroot "${podman_runroot:-$work/podman-run}" "$@"
}

# The same busybox image in both stores: a rootfs made offline, imported into lbox as
# busybox:bench (CMD sh), saved as a docker-archive and loaded into podman from it.
bench_busybox_image() {
  local work=$1
  mkdir -p "$work/rootfs"/{bin,etc,tmp,root}
  cp /bin/busybox "$work/rootfs/bin/"
  for a in $(/bin/busybox --list); do [ "$a" = busybox ] || ln -s busybox "$work/rootfs/bin/$a"; done
  printf 'root:x:0:0:root:/root:/bin/sh\n' >"$work/rootfs/etc/passwd"
  tar -C "$work/rootfs" -cf "$work/rootfs.tar" .
  "$LBOX" import -q "$work/rootfs.tar" busybox:bench --change 'CMD ["sh"]' >/dev/null
  "$LBOX" save -o "$work/busybox.tar" busybox:bench
  podman_ load -q -i "$work/busybox.tar" >/dev/null
}
