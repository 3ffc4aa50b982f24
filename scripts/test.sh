#!/usr/bin/env bash
# The test suite from a fresh clone: installs the build packages when they
# are missing (see install-deps.sh), then runs `cargo test` with any
# arguments given. Tests that need a system program (redis-server, nginx,
# chromium, ...) print SKIPPED when it is missing; `install-deps.sh --test`
# installs them, and STEEMGATE_REQUIRE_SYSTEM_DEPS=1 turns a skip into a
# failure (CI).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh --build
exec cargo test "$@"
