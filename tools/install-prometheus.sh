#!/usr/bin/env bash
# Prometheus and promtool from Debian's `prometheus` package: the alert-rule tests
# (`promtool test rules deploy/prometheus/alerts_test.yml`) and the integration test that
# has a real Prometheus scrape `streamrules run` need them. Called by `make install`.
#
# Idempotent: nothing to do when both are on PATH. Installs with apt-get when run as root
# (CI machines); elsewhere it says what to install and leaves the choice to you (the tests
# that need them are then skipped, except under CI=true, where they fail).
set -euo pipefail

if command -v promtool >/dev/null && command -v prometheus >/dev/null; then
    exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    echo "install-prometheus: promtool and prometheus not found; install Debian's package:" \
        "sudo apt-get install --no-install-recommends prometheus" >&2
    exit 0
fi
running_before=0
if pgrep -x prometheus >/dev/null; then running_before=1; fi
echo "install-prometheus: apt-get install prometheus (for promtool and the scrape test)"
# Other sessions may hold the dpkg lock: wait for it rather than fail.
apt-get -o DPkg::Lock::Timeout=600 update -qq
DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq \
    --no-install-recommends prometheus >/dev/null
# The package's own service (Prometheus on :9090, every interface) is not what the tests
# want: where the installation started it, stop it again.
if [ "$running_before" = 0 ] && [ -x /etc/init.d/prometheus ] && pgrep -x prometheus >/dev/null; then
    /etc/init.d/prometheus stop >/dev/null 2>&1 || true
fi
command -v promtool >/dev/null && command -v prometheus >/dev/null
