#!/usr/bin/env bash
# Installs matplotlib in a virtual environment (idempotent) and draws bench/latency.png
# and bench/throughput.png from bench/results.json (bench/plots.py).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${PLOT_VENV:-$PWD/target/tmp/plot-venv}
if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c "import matplotlib" 2>/dev/null; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check "matplotlib==3.9.2"
fi
"$VENV/bin/python" bench/plots.py bench/results.json bench/
