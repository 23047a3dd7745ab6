#!/usr/bin/env bash
# Fetch the web client's one third-party library (socket.io-client, from npm,
# pinned by services/gateway/npm/package-lock.json) and copy its browser build
# next to the static files the gateway serves. The copy lands in web/vendor/,
# which git ignores: the library is installed at build time, never committed.
# node_modules stays in services/gateway/npm for the Node tests that use it.
set -euo pipefail
cd "$(dirname "$0")/../.."

project=services/gateway/npm
vendor=services/gateway/src/chat_gateway/static/vendor

command -v npm >/dev/null || {
  echo "build-web: npm is missing (apt-get install nodejs npm)" >&2
  exit 1
}

(
  cd "$project"
  if [ -f package-lock.json ]; then
    npm ci --no-audit --no-fund --loglevel=error >/dev/null
  else
    npm install --no-audit --no-fund --loglevel=error >/dev/null
  fi
)

dist="$project/node_modules/socket.io-client/dist"
mkdir -p "$vendor"
cp "$dist/socket.io.min.js" "$vendor/socket.io.min.js"
if [ -f "$dist/socket.io.min.js.map" ]; then
  cp "$dist/socket.io.min.js.map" "$vendor/socket.io.min.js.map"
fi
echo "build-web: $vendor/socket.io.min.js (socket.io-client $(node -p "require('./$project/node_modules/socket.io-client/package.json').version"))"
