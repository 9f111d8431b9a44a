#!/usr/bin/env bash
# The main job: build the host and the built-in plugins, then replay a bundled session
# through `chronicle hook` and show what was recorded and decided.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh
exec target/release/chronicle demo "$@"
