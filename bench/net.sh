#!/usr/bin/env bash
# Issue 5's network figures, in one run:
# 1. What the default bridge network adds to `lbox run --rm IMG true` over --network none
#    (target < 5 ms), N interleaved runs each (default 20) with a pause between runs, then N
#    back-to-back runs each.
# 2. TCP throughput (MB/s) and connections per second to a container's port, sent straight to
#    the container's address and through its published host port, on 127.0.0.1 and on the
#    host's own address (both DNAT in the kernel): each as a ratio of direct (target >= 90%),
#    the median over ROUNDS short rounds of the ratio within each round.
#    bench/netbench.c is the load tool, built static so it also runs inside the busybox image.
# Needs root, busybox-static, a C compiler with static libc (libc6-dev). Traffic stays on this
# host: loopback, the host's own address, and the container's bridge.
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${SECS:-0.5}
ROUNDS=${ROUNDS:-15}
N=${N:-20}
. bench/lib.sh
LBOX=$(realpath "$LBOX")
work=$(mktemp -d /tmp/lbox-netbench.XXXXXX)
export LBOX_ROOT=$work/lbox LBOX_RUN=$work/lbox-run LBOX_CGROUP_PARENT=lbox-bench-$$
cleanup() {
  "$LBOX" system reset -f >/dev/null 2>&1 || true
  bench_cleanup_cgroups "$LBOX_CGROUP_PARENT"
  rm -rf "$work"
}
trap cleanup EXIT

cc -static -O2 -o "$work/netbench" bench/netbench.c
mkdir -p "$work/rootfs"/{bin,etc,tmp,root}
cp /bin/busybox "$work/rootfs/bin/"
for a in $(/bin/busybox --list); do [ "$a" = busybox ] || ln -s busybox "$work/rootfs/bin/$a"; done
tar -C "$work/rootfs" -cf "$work/rootfs.tar" .
"$LBOX" import -q "$work/rootfs.tar" busybox:bench --change 'CMD ["sh"]' >/dev/null

# The run figures first: the throughput part leaves thousands of connections in TIME_WAIT and
# in conntrack, which every network namespace's teardown then walks. The first bridge run also
# makes the default network: warm both first.
"$LBOX" run --rm busybox:bench true
"$LBOX" run --rm --network none busybox:bench true
: >"$work/bridge.txt"; : >"$work/none.txt"
# Each run starts on a quiet machine, as in bench/run.sh: the previous run's network namespace
# is torn down by the kernel after it returns. SETTLE (seconds) is not part of any measurement.
SETTLE=${SETTLE:-0.3}
for _ in $(seq "$N"); do
  sleep "$SETTLE"
  us "$LBOX" run --rm busybox:bench true >>"$work/bridge.txt"
  sleep "$SETTLE"
  us "$LBOX" run --rm --network none busybox:bench true >>"$work/none.txt"
done
b=$(median "$work/bridge.txt"); n=$(median "$work/none.txt")
echo "run --rm true, runs each: $N (interleaved)"
echo "default bridge network median: ${b} ms"
echo "--network none median:         ${n} ms"
awk -v b="$b" -v n="$n" 'BEGIN { printf "the bridge network adds: %.2f ms (target < 5 ms)\n", b - n }'
# Back to back, the kernel is still tearing down the previous run's network namespace (its veth
# pair) when the next run makes its own: that work holds the rtnl lock the next run needs.
: >"$work/bridge-b2b.txt"; : >"$work/none-b2b.txt"
for _ in $(seq "$N"); do us "$LBOX" run --rm busybox:bench true >>"$work/bridge-b2b.txt"; done
for _ in $(seq "$N"); do us "$LBOX" run --rm --network none busybox:bench true >>"$work/none-b2b.txt"; done
b=$(median "$work/bridge-b2b.txt"); n=$(median "$work/none-b2b.txt")
echo "back to back, $N runs each: bridge ${b} ms, none ${n} ms"
awk -v b="$b" -v n="$n" 'BEGIN { printf "the bridge network adds back to back: %.2f ms\n", b - n }'

# The server on one CPU, the client on the other (a container keeps its caller's affinity): both
# paths then get the same placement, rather than whatever the scheduler picks in each round.
pin_server=() pin_client=()
if [ "$(nproc)" -ge 2 ]; then pin_server=(taskset -c 1); pin_client=(taskset -c 0); fi
"${pin_server[@]}" "$LBOX" run -d --name sink -v "$work/netbench:/netbench:ro" -p 5201 busybox:bench /netbench server 5201 >/dev/null
hport=$("$LBOX" port sink 5201/tcp | cut -d: -f2)
ctr=$("$LBOX" inspect -f '{{.NetworkSettings.IPAddress}}' sink)
host=$(ip -4 -o addr show scope global | awk '{split($4, a, "/"); print a[1]; exit}')
for _ in $(seq 100); do
  timeout 1 bash -c "</dev/tcp/$ctr/5201" 2>/dev/null && break
  sleep 0.05
done

paths=("direct $ctr 5201" "loopback 127.0.0.1 $hport")
[ -n "$host" ] && paths+=("host-address $host $hport")
for p in "${paths[@]}"; do : >"$work/tput-${p%% *}"; : >"$work/cps-${p%% *}"; done
# Each round starts at a different path, so that none of them always runs first (on a fresh
# connection-tracking table and right after a pause) or always last.
for r in $(seq "$ROUNDS"); do
  for k in $(seq 0 $((${#paths[@]} - 1))); do
    p=${paths[$(( (k + r) % ${#paths[@]} ))]}
    set -- $p
    "${pin_client[@]}" "$work/netbench" tput "$2" "$3" "$SECS" >>"$work/tput-$1"
    "${pin_client[@]}" "$work/netbench" cps "$2" "$3" "$SECS" >>"$work/cps-$1"
  done
done
med() { sort -n "$1" | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
# The ratio is the median of each round's ratio (a path against direct in the same round, seconds
# apart), not a ratio of medians: on a shared VM the rates drift from round to round.
ratio() { paste "$1" "$2" | awk '{print 100 * $1 / $2}' >"$work/ratio"; med "$work/ratio"; }
echo "TCP to a container, ${ROUNDS} rounds of ${SECS} s each (median), published port $hport -> $ctr:5201"
printf '%-14s %12s %8s %10s %8s\n' path MB/s "vs dir" conn/s "vs dir"
for p in "${paths[@]}"; do
  n=${p%% *}; t=$(med "$work/tput-$n"); c=$(med "$work/cps-$n")
  rt=$(ratio "$work/tput-$n" "$work/tput-direct"); rc=$(ratio "$work/cps-$n" "$work/cps-direct")
  awk -v n="$n" -v t="$t" -v c="$c" -v rt="$rt" -v rc="$rc" \
    'BEGIN { printf "%-14s %12d %7.0f%% %10d %7.0f%%\n", n, t, rt, c, rc }'
done
echo "(target: published >= 90% of direct)"
"$LBOX" rm -f sink >/dev/null
