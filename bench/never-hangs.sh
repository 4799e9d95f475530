#!/usr/bin/env bash
# 1,000 back-to-back `lbox-runc run` of /bin/true, each with a 10 s timeout: counts any that hang.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
N=${N:-1000}
work=$(mktemp -d /tmp/lbox-hang.XXXXXX)
trap 'rm -rf "$work"; bench_cleanup_cgroups lbox-hang' EXIT
bench_bundle "$work" lbox-hang
hung=0; failed=0; start=$(date +%s)
for i in $(seq "$N"); do
  rc=0; timeout 10 "$LBOX_RUNC" --root "$work/state" run --bundle "$work/bundle" "h$i" >/dev/null 2>&1 || rc=$?
  if [ "$rc" = 124 ]; then hung=$((hung + 1)); elif [ "$rc" != 0 ]; then failed=$((failed + 1)); fi
done
echo "runs: $N  hung: $hung  failed: $failed  seconds: $(( $(date +%s) - start ))"
[ "$hung" = 0 ] && [ "$failed" = 0 ]
