#!/bin/sh
# hyper_db's install step: the members need PostgreSQL 15's server binaries
# (Debian package postgresql-15). Installed when missing and run as root;
# otherwise the installation fails naming the package.
set -eu
BIN=/usr/lib/postgresql/15/bin
if [ -x "$BIN/postgres" ] && [ -x "$BIN/pg_rewind" ] && [ -x "$BIN/pg_basebackup" ]; then
  echo "PostgreSQL 15 found in $BIN"
  exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing postgresql-15 with apt-get"
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends postgresql-15
  # Debian creates and starts a default cluster; hyper_db runs its own servers.
  if command -v pg_dropcluster >/dev/null 2>&1; then pg_dropcluster --stop 15 main 2>/dev/null || true; fi
  exit 0
fi
echo "PostgreSQL 15 server binaries not found in $BIN: install the Debian package postgresql-15 (apt-get install postgresql-15) as root" >&2
exit 1
