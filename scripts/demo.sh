#!/usr/bin/env bash
# The demo: the seed scenario on the embedded lab (real OVS/OVN/PostgreSQL in network namespaces),
# checked by segcheck. Leaves the lab running for you to explore; `segcheck lab down` removes it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH"
run() { echo; echo "\$ $*"; "$@" || echo "(exit code $?)"; }
run segcheck lab up
run segcheck matrix -f examples/seed
run segcheck probe vm-server db:5432 --lab
run segcheck probe podclient vm-server:8080 --lab
run segcheck verify --lab
echo
echo "The lab is still up: try 'segcheck explain podclient db:5432 -f examples/seed', 'segcheck agent --lab ...',"
echo "or edit examples/seed and run 'segcheck lab apply -f examples/seed'. Remove it with: segcheck lab down"
