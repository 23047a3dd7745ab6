#!/usr/bin/env bash
# Resolve every package's dependencies (and the dev group) in a scratch
# virtualenv and pin the result, host-free, in requirements.lock.
#
# The current pins are kept (passed to pip as constraints), so that a new
# dependency adds its own lines and moves nothing else; with --upgrade,
# everything is resolved afresh to the newest versions the pyproject files allow.
set -euo pipefail
cd "$(dirname "$0")/../.."

keep=(--constraint requirements.lock)
case "${1:-}" in
  "") [ -f requirements.lock ] || keep=() ;;
  --upgrade) keep=() ;;
  *)
    echo "usage: $0 [--upgrade]" >&2
    exit 2
    ;;
esac

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
python3 -m venv "$scratch/venv"
pip="$scratch/venv/bin/python -m pip"
$pip install --quiet --upgrade pip
if ! $pip install --quiet "${keep[@]}" --group dev \
  -e libs/contracts -e libs/platform -e libs/testkit \
  -e services/auth -e services/message -e services/gateway -e bench; then
  if [ ${#keep[@]} -gt 0 ]; then
    echo "lock: the current pins conflict with the pyproject files; 'make lock UPGRADE=1' resolves afresh" >&2
  fi
  exit 1
fi
{
  echo "# Pinned versions of every third-party dependency; regenerate with 'make lock'."
  $pip freeze --exclude-editable --all | grep -vE '^(pip|setuptools)==' | sort -f
} > "$scratch/requirements.lock"
mv "$scratch/requirements.lock" requirements.lock
echo "wrote requirements.lock ($(grep -c '==' requirements.lock) packages)"
