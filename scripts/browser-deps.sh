#!/usr/bin/env bash
# Installs the browser tests' JavaScript (axe-core, the accessibility engine
# that tests/browser_demo.rs injects into every page) into
# tests/browser-deps/node_modules, exactly as pinned in
# tests/browser-deps/package-lock.json. Needs npm (Debian: apt-get install npm).
set -euo pipefail
cd "$(dirname "$0")/.."
npm ci --prefix tests/browser-deps --no-audit --no-fund --loglevel=error
test -f tests/browser-deps/node_modules/axe-core/axe.min.js
