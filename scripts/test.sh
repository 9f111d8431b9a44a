#!/usr/bin/env bash
# Runs every test: builds the whole workspace (the host, every plugin cdylib and the test
# fixtures the end-to-end tests load), then runs all test suites.
set -euo pipefail
cd "$(dirname "$0")/.."
# The HTML report is checked in a real headless browser: Debian's chromium.
if ! command -v chromium >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
    else
        echo "chromium is missing: install Debian's chromium package (the report test needs it)" >&2
    fi
fi
# The team-sync tests start throwaway PostgreSQL clusters (tests/src/postgres.rs): Debian's
# server binaries, without the cluster the package would create and start.
if [ -z "${CHRONICLE_PG_BIN:-}" ] && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        mkdir -p /etc/postgresql-common
        [ -e /etc/postgresql-common/createcluster.conf ] || echo "create_main_cluster = false" > /etc/postgresql-common/createcluster.conf
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
    else
        echo "PostgreSQL's server binaries are missing: install Debian's postgresql package (the team-sync tests need them)" >&2
    fi
fi
# The real Claude Code client (pinned in tests/claude-code.version), for tests/e2e/claude_code.rs.
scripts/claude-code.sh
# Formatting is part of the test: rustfmt.toml sets the width.
cargo fmt --all -- --check
cargo build --workspace --locked
# Lints are part of the test: clippy's warnings (unwrap outside tests, ...) fail the run.
cargo clippy --workspace --all-targets --locked -q -- -D warnings
if cargo nextest --version >/dev/null 2>&1; then
    cargo nextest run --workspace --locked --no-fail-fast
    # nextest does not run doctests.
    cargo test --workspace --locked --doc
else
    cargo test --workspace --locked --no-fail-fast
fi
