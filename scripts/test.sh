#!/usr/bin/env bash
# The project's test command: format and lint checks, then every unit and integration test.
# Integration tests need root (they make namespaces, mounts and cgroups).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo fmt --all -- --check
cargo clippy --all-targets -- -D warnings
cargo build --release
cargo test --all-targets -- --test-threads=2
