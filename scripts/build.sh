#!/usr/bin/env bash
# Build lbox as one static executable (see scripts/static-env.sh for why) and print its path.
# Usage: scripts/build.sh [PROFILE]   (default: release)
set -euo pipefail
cd "$(dirname "$0")/.."
profile=${1:-release}
. scripts/static-env.sh
cargo build -q --profile "$profile" -p lbox --target "$LBOX_TARGET" >&2
# cargo's output directory is named after the profile, except dev's.
dir=$profile
[ "$profile" = dev ] && dir=debug
echo "target/$LBOX_TARGET/$dir/lbox"
