#!/usr/bin/env bash
# What the test suite uses beyond the virtualenv, for the status page's browser test
# (tests/test_status_page_browser.py):
#   - Debian's chromium + chromium-driver: the test drives /usr/bin/chromium through Selenium and
#     /usr/bin/chromedriver; it never downloads a browser. Needs root or passwordless sudo to install.
#   - axe-core (the accessibility checker the test injects into the page), from the npm registry into
#     .test-deps/ (git-ignored), pinned below; the test reads it from there, so no CDN at test time.
#   - Debian's redis-sentinel, for the Sentinel fail-over scenario (tests/faults/test_sentinel_faults.py;
#     without it the scenario runs the same redis-server binary with --sentinel).
# Idempotent: installs only what is missing, and does nothing when everything is there.
#   scripts/install-test-deps.sh
set -euo pipefail

AXE_VERSION=4.14.1
root="$(cd "$(dirname "$0")/.." && pwd)"
deps="$root/.test-deps"
axe_pkg="$deps/node_modules/axe-core/package.json"

installed_axe() {
    [ -f "$axe_pkg" ] && grep -q "\"version\": \"$AXE_VERSION\"" "$axe_pkg"
}

if installed_axe; then
    echo "install-test-deps: axe-core $AXE_VERSION present"
elif command -v npm >/dev/null 2>&1; then
    echo "install-test-deps: installing axe-core $AXE_VERSION into .test-deps/" >&2
    mkdir -p "$deps"
    npm install --silent --prefix "$deps" --no-audit --no-fund --no-save "axe-core@$AXE_VERSION" >/dev/null
    installed_axe
else
    echo "install-test-deps: npm not found, axe-core not installed; the browser test will skip" >&2
    exit 1
fi

missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v chromedriver >/dev/null 2>&1 || missing+=(chromium-driver)
command -v redis-sentinel >/dev/null 2>&1 || missing+=(redis-sentinel)
if [ ${#missing[@]} -eq 0 ]; then
    echo "install-test-deps: chromium, chromedriver and redis-sentinel present"
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-test-deps: ${missing[*]} missing and apt-get is not available; the browser test will skip" >&2
    exit 1
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || {
        echo "install-test-deps: ${missing[*]} missing; need root or sudo to apt-get install them" >&2
        exit 1
    }
    sudo="sudo -n"
fi
echo "install-test-deps: installing ${missing[*]}" >&2
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1 && command -v redis-sentinel >/dev/null 2>&1
echo "install-test-deps: done"
