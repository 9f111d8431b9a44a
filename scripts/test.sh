#!/usr/bin/env bash
# Runs every test: builds the whole workspace (the host, every plugin cdylib and the test
# fixtures the end-to-end tests load), then runs all test suites.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --workspace --locked
if cargo nextest --version >/dev/null 2>&1; then
    cargo nextest run --workspace --locked --no-fail-fast
    # nextest does not run doctests.
    cargo test --workspace --locked --doc
else
    cargo test --workspace --locked --no-fail-fast
fi
