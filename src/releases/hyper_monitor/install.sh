#!/bin/sh
# hyper_monitor's install step: its partition runs Prometheus (the time-series store). Installed
# when missing and run as root; otherwise the installation fails naming the package.
set -eu
if command -v prometheus >/dev/null 2>&1; then
  echo "prometheus: $(command -v prometheus)"
  exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing prometheus with apt-get"
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends prometheus
  # The package starts a system-wide Prometheus on 9090; hyper_monitor runs its own in its partition.
  if command -v systemctl >/dev/null 2>&1; then systemctl disable --now prometheus 2>/dev/null || true; fi
  if command -v service >/dev/null 2>&1; then service prometheus stop >/dev/null 2>&1 || true; fi
  exit 0
fi
echo "missing Debian package: prometheus (install it as root: apt-get install prometheus)" >&2
exit 1
