#!/bin/sh
# Installs the Debian packages HyperOpenX needs for tests and benchmarks, when
# they are missing. Safe to run repeatedly.
#
# To add a package, append a "package:path" pair to PACKAGES: the package is
# considered installed when the path exists.
#
# Note: installing postgresql-15 may create and start a default cluster on port
# 5432, and caddy a system service on port 80. Neither is used nor disturbed:
# the tests and hyper_db / hyper_edge run their own servers on their own ports.
# python3-flask and python3-psycopg2 are for the Flask example app (its test).
# pgbouncer is hyper_db's read-write endpoint (run by the router, in its
# partition): Debian's own pgbouncer service is stopped and disabled after
# install, so nothing of it listens on 6432.
# util-linux (unshare, setpriv), mount and perl-base start partition processes
# isolated (src/agent/isolate/partition-launch.ts); Debian installs them anyway.
# varnish and varnish-modules (vmod xkey, purges by tag) are hyper_cdn's cache, run by
# each edge in its partition on unix sockets: Debian's own varnish service is stopped and
# disabled after install, so nothing of it listens on 6081.
# pebble (with pebble-challtestsrv, its mock DNS) is Let's Encrypt's ACME test server: the
# tests get hyper_cdn's site certificates from it (test/hyper-cdn-acme.test.ts). Nothing of
# it runs as a service.
# prometheus is the time-series store of the hyper_monitor release, run in its partition on its
# own address: Debian's own prometheus service is stopped and disabled after install, so
# nothing of it listens on 9090.
# chromium (with fonts-liberation, which installing without recommends leaves out)
# renders the pilot CRM at a phone's width (test/crm-mobile.test.ts).
set -eu

PACKAGES="
postgresql-15:/usr/lib/postgresql/15/bin/initdb
nftables:/usr/sbin/nft
caddy:/usr/bin/caddy
python3-venv:/usr/lib/python3.11/ensurepip/__init__.py
python3-flask:/usr/lib/python3/dist-packages/flask/__init__.py
python3-psycopg2:/usr/lib/python3/dist-packages/psycopg2/__init__.py
util-linux:/usr/bin/setpriv
mount:/usr/bin/mount
perl-base:/usr/bin/perl
pgbouncer:/usr/sbin/pgbouncer
chromium:/usr/bin/chromium
fonts-liberation:/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf
varnish:/usr/sbin/varnishd
varnish-modules:/usr/share/doc/varnish-modules/copyright
pebble:/usr/bin/pebble-challtestsrv
prometheus:/usr/bin/prometheus
"

missing=""
for entry in $PACKAGES; do
  pkg=${entry%%:*}
  check=${entry#*:}
  if [ -e "$check" ]; then
    echo "$pkg: already installed"
  else
    missing="$missing $pkg"
  fi
done
missing=${missing# }

if [ -z "$missing" ]; then
  exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
  SUDO=""
elif command -v sudo >/dev/null 2>&1; then
  SUDO="sudo"
else
  echo "error: missing Debian packages: $missing" >&2
  echo "Run as root, or install them yourself: apt-get install -y --no-install-recommends $missing" >&2
  exit 1
fi

if ! command -v apt-get >/dev/null 2>&1; then
  echo "error: apt-get not found; install these Debian packages (or your system's equivalent): $missing" >&2
  exit 1
fi

for pkg in $missing; do
  echo "installing $pkg…"
done

apt_install() {
  # shellcheck disable=SC2086 # $missing is a word list on purpose
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $missing
}

# Refresh the package lists first only when they are empty; otherwise only
# after a failed install.
if [ -z "$(ls -A /var/lib/apt/lists 2>/dev/null | grep -v -e '^lock$' -e '^partial$' || true)" ]; then
  echo "apt package lists are empty: running apt-get update…"
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update
  apt_install
elif ! apt_install; then
  echo "install failed: running apt-get update and retrying…"
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update
  apt_install
fi

case " $missing " in
*" pgbouncer "*)
  # The package enables (and may start) a system-wide pgbouncer on 6432: hyper_db runs its own.
  if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
    $SUDO systemctl disable --now pgbouncer >/dev/null 2>&1 || true
  elif command -v service >/dev/null 2>&1; then
    $SUDO service pgbouncer stop >/dev/null 2>&1 || true
  fi
  if [ -f /var/run/postgresql/pgbouncer.pid ]; then
    $SUDO kill "$(cat /var/run/postgresql/pgbouncer.pid)" 2>/dev/null || true
  fi
  ;;
esac

case " $missing " in
*" varnish "*)
  # The package may enable a system-wide varnishd on 6081: hyper_cdn's edges run their own.
  if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
    $SUDO systemctl disable --now varnish varnishncsa >/dev/null 2>&1 || true
  elif command -v service >/dev/null 2>&1; then
    $SUDO service varnish stop >/dev/null 2>&1 || true
  fi
  ;;
esac

case " $missing " in
*" prometheus "*)
  # The package enables (and may start) a system-wide Prometheus on 9090: hyper_monitor runs its own.
  if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
    $SUDO systemctl disable --now prometheus >/dev/null 2>&1 || true
  elif command -v service >/dev/null 2>&1; then
    $SUDO service prometheus stop >/dev/null 2>&1 || true
  fi
  if command -v update-rc.d >/dev/null 2>&1; then
    $SUDO update-rc.d prometheus disable >/dev/null 2>&1 || true
  fi
  ;;
esac

status=0
for entry in $PACKAGES; do
  pkg=${entry%%:*}
  check=${entry#*:}
  if [ ! -e "$check" ]; then
    echo "error: $pkg installed but $check is still missing" >&2
    status=1
  fi
done
exit $status
