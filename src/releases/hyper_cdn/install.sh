#!/bin/sh
# hyper_cdn's install step: each edge runs Caddy (TLS, HTTP/1.1, 2 and 3) and
# Varnish with varnish-modules (xkey: purges by tag); Varnish compiles its VCL
# with the C compiler its package depends on. Installed when missing and run as
# root; otherwise the installation fails naming the packages.
set -eu
missing=""
command -v caddy >/dev/null 2>&1 || missing="$missing caddy"
command -v varnishd >/dev/null 2>&1 || missing="$missing varnish"
[ -e /usr/share/doc/varnish-modules/copyright ] || missing="$missing varnish-modules"
if [ -z "$missing" ]; then
  echo "caddy: $(command -v caddy); varnishd: $(command -v varnishd); varnish-modules: installed"
  exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing$missing with apt-get"
  # shellcheck disable=SC2086 # a word list on purpose
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $missing
  # The packages start system services (caddy on 80, varnish on 6081); hyper_cdn runs its own in partitions.
  if command -v systemctl >/dev/null 2>&1; then systemctl disable --now caddy varnish varnishncsa 2>/dev/null || true; fi
  exit 0
fi
echo "missing Debian packages:$missing (install them as root: apt-get install$missing)" >&2
exit 1
