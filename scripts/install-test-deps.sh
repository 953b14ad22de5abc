#!/usr/bin/env bash
# System packages the test suite uses beyond the virtualenv: Debian's chromium + chromium-driver for the
# status page's browser test (tests/test_status_page_browser.py drives /usr/bin/chromium through
# Selenium and /usr/bin/chromedriver; it never downloads a browser). Idempotent: installs only what is
# missing, and does nothing when everything is there. Needs root or passwordless sudo to install.
#   scripts/install-test-deps.sh
set -euo pipefail

missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v chromedriver >/dev/null 2>&1 || missing+=(chromium-driver)
if [ ${#missing[@]} -eq 0 ]; then
    echo "install-test-deps: chromium and chromedriver present"
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
command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1
echo "install-test-deps: done"
