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
# The end-to-end tests run the client that ships (scripts/build.sh): the musl build, beside
# hard links to the host and the built-in plugins, as in target/release (symbolic links would
# resolve to another directory: the resident host's socket is keyed by the two binaries beside
# the running one, `install` takes the plugins from beside the host). CI insists on it;
# elsewhere cargo's client stands in.
if musl="$(scripts/musl-client.sh debug)"; then
    for f in target/debug/chronicle-host target/debug/lib*.so; do
        ln -f "$f" "$(dirname "$musl")/"
    done
    export CHRONICLE_E2E_CLIENT="$PWD/$musl"
elif [ -n "${CI:-}" ]; then
    echo "CI needs the musl client the release ships (see above)" >&2
    exit 1
else
    echo "warning: the end-to-end tests run cargo's glibc client, not the musl one the release ships" >&2
fi
# Lints are part of the test: clippy's warnings (unwrap outside tests, ...) fail the run.
cargo clippy --workspace --all-targets --locked -q -- -D warnings
# The client's own configuration of the library (no `host` feature), as musl-client.sh builds it.
cargo clippy -p chronicle --no-default-features --lib --bin chronicle --locked -q -- -D warnings
# The docs build without broken links (private items included: the host library is internals).
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --document-private-items --locked -q
if cargo nextest --version >/dev/null 2>&1; then
    cargo nextest run --workspace --locked --no-fail-fast
    # nextest does not run doctests.
    cargo test --workspace --locked --doc
else
    cargo test --workspace --locked --no-fail-fast
fi
