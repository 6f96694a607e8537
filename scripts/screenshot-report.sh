#!/usr/bin/env bash
# Renders `landscape verify --report` in headless Chromium (Debian's chromium package) and writes
# screenshots of the page to docs/screenshots/. Usage: scripts/screenshot-report.sh [OUT_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-out/verify-report}"
command -v chromium >/dev/null || { echo "chromium is missing: installing Debian's chromium package (apt-get update && apt-get install -y chromium; needs root)" >&2; apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; }
dotnet run --project src/LossLandscape.Cli -c Release -- verify --report "$out"
page="file://$(realpath "$out")/index.html"
shoot() { chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size="$2" --screenshot="$1" "$page" 2>/dev/null; }
shoot docs/screenshots/verify-report-top.png 1366,900
shoot docs/screenshots/verify-report-full.png 1366,3300
echo "wrote docs/screenshots/verify-report-top.png and docs/screenshots/verify-report-full.png"
