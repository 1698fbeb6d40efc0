#!/usr/bin/env bash
# Installs what segcheck, its lab and its tests need on a Debian machine (run as root), into .venv.
# Idempotent: re-running only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(ovn-central ovn-host openvswitch-switch postgresql prometheus iproute2 ethtool procps python3-venv nftables)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "==> apt-get install ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # Keep the packages' own services from starting: the lab runs its daemons itself, inside namespaces.
  policy=/usr/sbin/policy-rc.d
  created_policy=0
  if [ ! -e "$policy" ]; then printf '#!/bin/sh\nexit 101\n' > "$policy"; chmod +x "$policy"; created_policy=1; fi
  apt-get install -y -qq "${missing[@]}" >/dev/null
  if [ "$created_policy" = 1 ]; then rm -f "$policy"; fi
fi

if [ ! -x .venv/bin/python ]; then
  echo "==> python3 -m venv .venv"
  python3 -m venv .venv
fi
if ! .venv/bin/python -c "import segcheck.agent, pytest, hypothesis, jsonschema" 2>/dev/null \
   || [ pyproject.toml -nt .venv/.installed ]; then
  echo "==> pip install -e .[test]"
  .venv/bin/pip install -q --upgrade pip
  .venv/bin/pip install -q -e ".[test]"
  touch .venv/.installed
fi
