#!/usr/bin/env bash
# `lbox run --rm --network none IMG true` against `podman run --rm --network none IMG true` on the same busybox
# image (imported into lbox, loaded into podman from lbox's docker-archive), interleaved, N runs
# each (default 20), with a pause between runs: medians and the ratio podman/lbox (issue 4's target: >= 20x). Then
# `lbox ps -a` with 100 containers, and a detached container's monitor resident memory.
# Needs root, podman, runc, busybox-static.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-20}
. bench/lib.sh
LBOX=$(realpath "$LBOX")
work=$(mktemp -d /tmp/lbox-runbench.XXXXXX)
# Each tool's run directory (what does not survive a reboot) on tmpfs, where both keep it by
# default (/run/lbox, /run/containers/storage); their stores on disk. With the run directories
# on this machine's ext4 as well, both paid for metadata writes that no installation makes.
run=$(mktemp -d /run/lbox-runbench.XXXXXX)
podman_runroot=$run/podman-run
export LBOX_ROOT=$work/lbox LBOX_RUN=$run/lbox-run LBOX_CGROUP_PARENT=lbox-bench-$$
cleanup() {
  "$LBOX" system reset -f >/dev/null 2>&1 || true
  podman_ rm -af >/dev/null 2>&1 || true
  umount -R "$work/podman/overlay" 2>/dev/null || true
  umount "$podman_runroot"/* 2>/dev/null || true
  find /sys/fs/cgroup -maxdepth 8 -depth -type d -name "$LBOX_CGROUP_PARENT" -exec rmdir {} + 2>/dev/null || true
  rm -rf "$work" "$run"
}
trap cleanup EXIT

bench_podman_conf "$work"
bench_busybox_image "$work"
# Warm both (first-run caches: seccomp programs, podman's storage setup).
"$LBOX" run --rm --network none busybox:bench true
podman_ run --rm --network none busybox:bench true

: >"$work/lbox.txt"; : >"$work/podman.txt"
# Each run starts on a quiet machine: both leave work behind when their command returns (podman's
# conmon and cleanup process, lbox's background clone that deletes the container's files and makes
# the network namespace the next run takes from its pool), which on 2 cores would be charged to the next
# run of the other tool. SETTLE (seconds) is not part of any measurement.
SETTLE=${SETTLE:-0.3}
for _ in $(seq "$N"); do
  sleep "$SETTLE"
  us "$LBOX" run --rm --network none busybox:bench true >>"$work/lbox.txt"
  sleep "$SETTLE"
  us podman_ run --rm --network none busybox:bench true >>"$work/podman.txt"
done
l=$(median "$work/lbox.txt"); p=$(median "$work/podman.txt")
echo "run --rm true, runs each: $N (interleaved)"
echo "lbox median:   ${l} ms"
echo "podman median: ${p} ms"
awk -v l="$l" -v p="$p" 'BEGIN { printf "ratio podman/lbox: %.1fx (target >= 20x)\n", p / l }'
# For reference, back to back (no settle): each tool's background work from one run then competes
# with its next run.
: >"$work/lbox-b2b.txt"; : >"$work/podman-b2b.txt"
for _ in $(seq "$N"); do us "$LBOX" run --rm --network none busybox:bench true >>"$work/lbox-b2b.txt"; done
for _ in $(seq "$N"); do us podman_ run --rm --network none busybox:bench true >>"$work/podman-b2b.txt"; done
l=$(median "$work/lbox-b2b.txt"); p=$(median "$work/podman-b2b.txt")
awk -v l="$l" -v p="$p" 'BEGIN { printf "back to back: lbox %.2f ms, podman %.2f ms, ratio %.1fx\n", l, p, p / l }'

for i in $(seq 100); do "$LBOX" create --name "c$i" busybox:bench true >/dev/null; done
: >"$work/ps.txt"
for _ in $(seq 20); do us "$LBOX" ps -a >>"$work/ps.txt"; done
echo "lbox ps -a, 100 containers, median of 20: $(median "$work/ps.txt") ms (target < 20 ms)"

"$LBOX" run -d --name mon busybox:bench sleep 600 >/dev/null
mpid=$("$LBOX" inspect -f '{{.State.MonitorPid}}' mon)
rss=$(awk '/VmRSS/ {print $2}' "/proc/$mpid/status")
echo "monitor resident memory: ${rss} KiB (target < 4096 KiB)"
