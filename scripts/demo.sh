#!/usr/bin/env bash
# Runs the offline steemgate demo (gateway + simulated chain + embedded
# store + demo apps). Installs the build packages first when they are
# missing (see install-deps.sh). Builds in the dev profile: it shares its
# build with `scripts/test.sh` and starts in a few minutes; build with
# `cargo build --release` for real use.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh --build
exec cargo run --quiet -- demo "$@"
