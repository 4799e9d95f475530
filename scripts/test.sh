#!/usr/bin/env bash
# The project's test command: format and lint checks, then every unit and integration test.
# Integration tests need root (they make namespaces, mounts and cgroups).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo fmt --all -- --check
cargo clippy --all-targets -- -D warnings
cargo build --release
# Tests build with the release profile too: one compilation of the dependencies instead of two
# (this keeps CI well under its time limit), and the integration tests drive the binary users get.
cargo test --release --all-targets -- --test-threads=2
