#!/bin/sh
# hyper_edge's install step: the public endpoint and each replica's local
# proxy are Caddy (Debian package caddy); Python apps need python3-venv.
# Installed when missing and run as root; otherwise the installation fails
# naming the packages.
set -eu
missing=""
command -v caddy >/dev/null 2>&1 || missing="$missing caddy"
if command -v python3 >/dev/null 2>&1 && ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
  missing="$missing python3-venv"
fi
if [ -z "$missing" ]; then
  echo "caddy found: $(command -v caddy)"
  exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing$missing with apt-get"
  # shellcheck disable=SC2086 # a word list on purpose
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $missing
  # Debian's caddy package starts a system service on port 80; hyper_edge runs its own servers.
  if command -v systemctl >/dev/null 2>&1; then systemctl disable --now caddy 2>/dev/null || true; fi
  exit 0
fi
echo "missing Debian packages:$missing (install them as root: apt-get install$missing)" >&2
exit 1
