#!/usr/bin/env bash
# `lbox build` against `podman build` (buildah) on the same Dockerfile (examples/web) and the same
# busybox base (imported into lbox, loaded into podman from lbox's docker-archive), interleaved:
#   1. a fully cached rebuild (issue 6's targets: under 100 ms, and >= 10x faster than podman),
#   2. a rebuild after one source file changed (the COPY and the steps after it run again),
#   3. a cold build (--no-cache).
# Medians of N runs (default 10; cold builds N/2) and the ratios podman/lbox.
# Needs root, podman, runc, busybox-static.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-10}
. bench/lib.sh
LBOX=$(realpath "$LBOX")
work=$(mktemp -d /tmp/lbox-buildbench.XXXXXX)
export LBOX_ROOT=$work/lbox LBOX_RUN=$work/lbox-run LBOX_CGROUP_PARENT=lbox-bench-$$
cleanup() {
  "$LBOX" system reset -f >/dev/null 2>&1 || true
  podman_ rm -af >/dev/null 2>&1 || true
  podman_ system reset -f >/dev/null 2>&1 || true
  umount -R "$work/podman/overlay" 2>/dev/null || true
  umount "$work/podman-run"/* 2>/dev/null || true
  bench_cleanup_cgroups "$LBOX_CGROUP_PARENT"
  bench_cleanup_cgroups "lbox-bench-podman-$$"
  rm -rf "$work"
}
trap cleanup EXIT

bench_podman_conf "$work"
bench_busybox_image "$work"

cp -r examples/web "$work/ctx"
sed -i 's/^FROM busybox$/FROM busybox:bench/' "$work/ctx/Dockerfile"
lb() { "$LBOX" build -q --network none -f "$work/ctx/Dockerfile" -t web:bench "$@" "$work/ctx"; }
pb() {
  podman_ build -q --network none --pull=never --cgroup-parent "/lbox-bench-podman-$$" -f "$work/ctx/Dockerfile" \
    -t web:bench "$@" "$work/ctx"
}
# Warm both caches.
lb >/dev/null
pb >/dev/null

ratio() { awk -v l="$1" -v p="$2" 'BEGIN { printf "%.1fx", p / l }'; }
report() { # title lbox.txt podman.txt target
  local l p
  l=$(median "$1"); p=$(median "$2")
  printf '%-40s lbox %8.2f ms   podman %8.2f ms   podman/lbox %s%s\n' "$3" "$l" "$p" "$(ratio "$l" "$p")" "$4"
}

: >"$work/c-lbox.txt"; : >"$work/c-podman.txt"
for _ in $(seq "$N"); do
  us lb >>"$work/c-lbox.txt"
  us pb >>"$work/c-podman.txt"
done
report "$work/c-lbox.txt" "$work/c-podman.txt" "fully cached rebuild (N=$N):" "   (targets: lbox < 100 ms, ratio >= 10x)"

: >"$work/e-lbox.txt"; : >"$work/e-podman.txt"
for i in $(seq "$N"); do
  echo "<p>edit $i</p>" >>"$work/ctx/www/index.html"
  us lb >>"$work/e-lbox.txt"
  us pb >>"$work/e-podman.txt"
done
report "$work/e-lbox.txt" "$work/e-podman.txt" "rebuild after a one-file edit (N=$N):" ""

M=$(( (N + 1) / 2 ))
: >"$work/n-lbox.txt"; : >"$work/n-podman.txt"
for _ in $(seq "$M"); do
  us lb --no-cache >>"$work/n-lbox.txt"
  us pb --no-cache >>"$work/n-podman.txt"
done
report "$work/n-lbox.txt" "$work/n-podman.txt" "cold build, --no-cache (N=$M):" ""
