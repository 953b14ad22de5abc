#!/usr/bin/env bash
# Validate the Prometheus side of deploy/: promtool check config, check rules, test rules, and
# (when amtool is available) the Alertmanager config. Exits non-zero on the first failure.
#
# When promtool is missing it installs Debian's `prometheus` package (which also ships the
# `prometheus` server binary the end-to-end test uses) and `prometheus-alertmanager` (amtool).
#   scripts/promtool-check.sh                 install if needed, then check everything
#   scripts/promtool-check.sh --install-only  install if needed, check nothing
set -euo pipefail
cd "$(dirname "$0")/.."

PROM_DIR=deploy/prometheus
AM_CONFIG=deploy/alertmanager/alertmanager.yml

install_tools() {
    command -v promtool >/dev/null 2>&1 && return 0
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "promtool-check: promtool is missing and apt-get is not available: install Prometheus" >&2
        return 1
    fi
    local sudo=""
    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null 2>&1 || {
            echo "promtool-check: promtool is missing; need root or sudo to apt-get install prometheus" >&2
            return 1
        }
        sudo="sudo -n"
    fi
    echo "promtool-check: promtool not found, installing Debian's prometheus package" >&2
    $sudo apt-get update -qq
    # --no-install-recommends: skip prometheus-node-exporter; the daemons are never started here.
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
        prometheus prometheus-alertmanager >/dev/null
    command -v promtool >/dev/null 2>&1
}

install_tools
[ "${1:-}" = "--install-only" ] && exit 0

promtool --version | head -n 1
promtool check config "$PROM_DIR/prometheus.yml"
promtool check rules "$PROM_DIR"/rules/*.yml
promtool test rules "$PROM_DIR"/tests/*.yml
if command -v amtool >/dev/null 2>&1; then
    amtool check-config "$AM_CONFIG"
else
    echo "promtool-check: amtool not found, $AM_CONFIG not checked" >&2
fi
echo "promtool-check: all checks passed"
