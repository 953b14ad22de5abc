"""Running the real freqtrade (``.venv-freqtrade``, made by scripts/freqtrade-env.sh) against riskd's fake
exchange, for tests/test_freqtrade*.py and the docs' example table: its config, the subprocess, and the
trades it exported (never its exit code alone: freqtrade exits 0 on some configuration errors)."""

from __future__ import annotations

import json
import os
import subprocess
import zipfile
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from riskd.sources.endpoints import api_urls

ROOT = Path(__file__).resolve().parents[1]
VENV = ROOT / ".venv-freqtrade"
FREQTRADE = VENV / "bin" / "freqtrade"
SAMPLE = ROOT / "tests" / "data" / "freqtrade"
STRATEGIES = SAMPLE / "strategies"
REGIME_FILE = SAMPLE / "regime.parquet"
PAIRS = ["BTC/USDT:USDT", "ETH/USDT:USDT"]
STAKE = 1000.0
FEE = 0.0005
TIMERANGE = "20240101-20240301"


def need_freqtrade() -> None:
    """Skip (naming the script) when the freqtrade environment is not there; `make test` makes it."""
    if not FREQTRADE.exists():
        pytest.skip("no .venv-freqtrade: run scripts/freqtrade-env.sh (make test does)")


def config(base_url: str, user_data: Path, **extra: Any) -> dict[str, Any]:
    """A futures config whose exchange is the fake at ``base_url`` (every Binance URL rebased onto it)."""
    ccxt = {
        "urls": {"api": api_urls("binance", base_url)},
        "options": {"fetchMarkets": {"types": ["linear"]}},
    }
    user_data.mkdir(parents=True, exist_ok=True)
    cfg: dict[str, Any] = {
        "max_open_trades": len(PAIRS),
        "stake_currency": "USDT",
        "stake_amount": STAKE,
        "dry_run": True,
        "dry_run_wallet": 1_000_000,
        "trading_mode": "futures",
        "margin_mode": "isolated",
        "timeframe": "1h",
        "user_data_dir": str(user_data),
        "dataformat_ohlcv": "feather",
        "exchange": {
            "name": "binance",
            "key": "",
            "secret": "",
            "pair_whitelist": PAIRS,
            "ccxt_config": ccxt,
            "ccxt_async_config": ccxt,
        },
        "pairlists": [{"method": "StaticPairList"}],
        "entry_pricing": {"price_side": "other", "use_order_book": True, "order_book_top": 1},
        "exit_pricing": {"price_side": "other", "use_order_book": True, "order_book_top": 1},
        "internals": {"process_throttle_secs": 1},
    }
    cfg.update(extra)
    return cfg


def env() -> dict[str, str]:
    """The subprocess environment: no proxies (the fake is on loopback), no RISKD_* of the caller, and
    unbuffered output (a test reads freqtrade's log while it runs)."""
    drop = ("RISKD_", "HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy")
    return {**{k: v for k, v in os.environ.items() if not k.startswith(drop)}, "PYTHONUNBUFFERED": "1"}


def backtest(cfg: dict[str, Any], strategy: str, workdir: Path, timeout: float = 300) -> pd.DataFrame:
    """``freqtrade backtesting`` of ``strategy`` over the shipped sample; its exported trades."""
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / f"{strategy}.json"
    path.write_text(json.dumps(cfg))
    results = workdir / f"results-{strategy}"
    results.mkdir(exist_ok=True)  # else freqtrade takes the path as a file name prefix
    cmd = [str(FREQTRADE), "backtesting", "-c", str(path), "--strategy", strategy,
           "--strategy-path", str(STRATEGIES), "--datadir", str(SAMPLE / "binance"), "--timerange", TIMERANGE,
           "--fee", str(FEE), "--cache", "none", "--export", "trades", "--backtest-directory", str(results)]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env(), cwd=workdir)
    (workdir / f"{strategy}.log").write_text(done.stdout + done.stderr)
    trades = exported_trades(results, strategy)
    assert trades is not None, (
        f"freqtrade exported no result (exit {done.returncode}):\n{done.stderr[-3000:]}"
    )
    return trades


def exported_trades(results: Path, strategy: str) -> pd.DataFrame | None:
    """The trades of ``strategy`` in the newest result freqtrade wrote under ``results`` (None: none)."""
    zips = sorted(results.glob("backtest-result-*.zip")) if results.exists() else []
    if not zips:
        return None
    with zipfile.ZipFile(zips[-1]) as z:
        name = next(
            n for n in z.namelist() if n.endswith(".json") and "_config" not in n and "market" not in n
        )
        body = json.loads(z.read(name))
    trades = pd.DataFrame(body["strategy"][strategy]["trades"])
    for col in ("open_date", "close_date"):
        if col in trades:
            trades[col] = pd.to_datetime(trades[col], utc=True)
    return trades


def summary(trades: pd.DataFrame) -> dict[str, float]:
    """Trades, net profit (USDT), max drawdown of the closed-trade equity curve (USDT) and worst day."""
    ordered = trades.sort_values("close_date")
    equity = ordered["profit_abs"].cumsum()
    drawdown = float((equity.cummax().clip(lower=0) - equity).max()) if len(equity) else 0.0
    daily = ordered.groupby(ordered["close_date"].dt.floor("D"))["profit_abs"].sum()
    return {
        "trades": float(len(trades)),
        "profit": float(trades["profit_abs"].sum()),
        "mean_pct": float(trades["profit_ratio"].mean() * 100),
        "drawdown": drawdown,
        "worst_day": float(daily.min()) if len(daily) else 0.0,
    }


def results_table(plain: pd.DataFrame, filtered: pd.DataFrame) -> str:
    """The example table of docs/integrations.md (tests/test_freqtrade_backtest.py checks it is current)."""
    rows = [("plain", summary(plain)), ("with riskd's filter", summary(filtered))]
    lines = [
        "| run | trades | net profit (USDT) | mean per trade | max drawdown (USDT) | worst day (USDT) |",
        "|---|---|---|---|---|---|",
    ]
    for name, s in rows:
        lines.append(
            f"| {name} | {s['trades']:.0f} | {s['profit']:+,.2f} | {s['mean_pct']:+.3f} % | "
            f"{s['drawdown']:,.2f} | {s['worst_day']:+,.2f} |"
        )
    return "\n".join(lines) + "\n"
