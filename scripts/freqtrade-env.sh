#!/usr/bin/env bash
# The freqtrade test environment: a virtualenv of its own (.venv-freqtrade) with freqtrade from the package
# registry and riskd installed into it as a freqtrade user would (`pip install riskd[freqtrade]`, here
# editable). freqtrade pins its own dependency versions (ccxt, pandas, numpy, …), so it lives apart from
# .venv and cannot move riskd's. Idempotent and fast when already there: a stamp holds the hash of
# pyproject.toml and of this script, and nothing runs while it matches. tests/test_freqtrade*.py use it.
#   scripts/freqtrade-env.sh [VENV]        (default .venv-freqtrade)
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${1:-.venv-freqtrade}"
python="${PYTHON:-python3}"
stamp="$venv/.installed"
want="$(cat pyproject.toml "$0" | sha256sum | cut -c1-16)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -x "$venv/bin/freqtrade" ]; then
    echo "freqtrade-env: $venv up to date"
    exit 0
fi
start=$(date +%s)
echo "freqtrade-env: creating $venv (freqtrade from the package registry, riskd editable)" >&2
"$python" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --upgrade pip
"$venv/bin/python" -m pip install --quiet -e '.[freqtrade]'
"$venv/bin/freqtrade" --version >/dev/null
echo "$want" > "$stamp"
echo "freqtrade-env: done in $(( $(date +%s) - start )) s ($("$venv/bin/freqtrade" --version 2>/dev/null | tail -1))"
