#!/usr/bin/env bash
# Set up headstart's environment: Debian packages, then a virtual environment in .venv.
# Safe to run again: what is already installed is kept. `make` runs it only when
# pyproject.toml, constraints.txt or this script changed.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages: Fashion-MNIST for the image benchmark and integration tests; Chromium for the
# labeling page's browser tests; PostgreSQL for the labeling store's tests and load benchmark.
DEBIAN_PACKAGES="dataset-fashion-mnist chromium chromium-driver postgresql"
missing=""
for package in $DEBIAN_PACKAGES; do
  dpkg -s "$package" >/dev/null 2>&1 || missing="$missing $package"
done
if [ -n "$missing" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
  else
    echo "note: Debian packages not installed (need root):$missing; the tests that need them will skip" >&2
  fi
fi

PYTHON="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip >/dev/null 2>&1 || true
# headstart with every extra its tests and benchmarks use (label: headstart.labeling), at the exact
# versions of constraints.txt, the set that installs offline here (torch and torchvision come from
# the wheels on local disk where they exist).
# --no-cache-dir: the install is gigabytes and CI's disk once filled during it; a cache would hold a
# second copy of every download.
.venv/bin/python -m pip install -q --no-cache-dir -c constraints.txt -e ".[models,label,serve,dev,bench]"
