#!/usr/bin/env bash
# Page weight and time to interactive of the stale-follows page in Chromium
# for accounts following 5,000 and 10,000 (issue 16); see bench/report_page.rs.
# Results: bench/results/report-page.md and .json. Needs chromium
# (CHROMIUM=/path overrides /usr/bin/chromium).
#
# Usage: bench/report_page.sh [--release]   (default: the dev profile; the
# browser-side figures do not depend on it, the server's time does)
set -euo pipefail
cd "$(dirname "$0")/.."
profile=(--profile dev)
if [[ "${1:-}" == "--release" ]]; then profile=(); fi
cargo bench --bench report_page "${profile[@]}"
