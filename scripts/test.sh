#!/usr/bin/env bash
# The project's test command: format and lint checks, then every unit and integration test.
# Integration tests need root (they make namespaces, mounts and cgroups).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo fmt --all -- --check
cargo clippy --all-targets -- -D warnings
# The `ci` profile (Cargo.toml) is the release one with unwinding and without LTO: one compilation
# of the dependencies for the lbox binary the integration tests drive and for the tests.
# Built as it ships: static (scripts/static-env.sh), so the tests drive the same kind of binary.
. scripts/static-env.sh
cargo test --profile ci --target "$LBOX_TARGET" --all-targets -- --test-threads=2
