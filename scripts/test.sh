#!/usr/bin/env bash
# The test command (README, CI): installs what is needed, then runs every test, lab and Prometheus included.
# pytest's exit code 5 ("no tests collected") fails this script like any other failure.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH"
exec python -m pytest tests -q -p no:cacheprovider "$@"
