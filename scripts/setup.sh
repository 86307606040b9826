#!/bin/sh
# Installs everything HyperOpenX needs on a fresh Debian 12 machine with Node 20:
# Debian packages (when missing), npm packages, then builds. Safe to run again.
set -eu
cd "$(dirname "$0")/.."

sh scripts/install-system-deps.sh

# An install cut short (or run beside another) can leave the lock file without better-sqlite3's compiled module.
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ] ||
  [ ! -f node_modules/better-sqlite3/build/Release/better_sqlite3.node ]; then
  echo "npm packages: installing (better-sqlite3 compiles, about 3 minutes)…"
  npm ci --no-audit --no-fund
else
  echo "npm packages: up to date"
fi

echo "building…"
npm run --silent build
echo "setup done"
