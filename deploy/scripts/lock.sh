#!/usr/bin/env bash
# Resolve every package's dependencies (and the dev group) in a scratch
# virtualenv and pin the result, host-free, in requirements.lock.
set -euo pipefail
cd "$(dirname "$0")/../.."
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
python3 -m venv "$scratch/venv"
pip="$scratch/venv/bin/python -m pip"
$pip install --quiet --upgrade pip
$pip install --quiet --group dev \
  -e libs/contracts -e libs/platform -e libs/testkit \
  -e services/auth -e services/message -e services/gateway -e bench
{
  echo "# Pinned versions of every third-party dependency; regenerate with 'make lock'."
  $pip freeze --exclude-editable --all | grep -vE '^(pip|setuptools)==' | sort -f
} > requirements.lock
echo "wrote requirements.lock ($(grep -c '==' requirements.lock) packages)"
