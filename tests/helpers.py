"""What the tests share: a snapshot with plausible figures, and Settings pointed at the loopback fakes.

One builder each, so a field added to the contract or a setting renamed is changed in one place
(structlog's ``testing`` module ships its helpers the same way).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from riskd.config import Settings, load_settings
from riskd.contract.models import LEVEL_CODES, STATE_CODES, DataQuality, Snapshot
from riskd.testing.fake_exchange import FakeExchange

VENUES = ("binance", "bybit", "hyperliquid")
FAST_RETRY = {"attempts": 3, "initial_backoff_s": 0.01, "max_backoff_s": 0.02, "jitter_s": 0.0}
"""Retries that never make a test wait."""


def snapshot(as_of: datetime, state: str = "calm", *, dq: str = "ok", **kw: Any) -> Snapshot:
    """A snapshot of the hour ending ``as_of``: CFI 2.41 (p97), BTC -8.4 % in 1 h, the state's code and a
    multiplier of 0.25 in a cascade (else 1); ``dq`` stale or degraded names binance:ohlcv. ``kw`` wins."""
    level = str(kw.get("cascade_level", "none"))
    base: dict[str, Any] = {
        "as_of": as_of,
        "computed_at": as_of,
        "live": True,
        "state": state,
        "state_code": STATE_CODES[state],
        "risk_multiplier": 0.25 if state == "cascade" else 1.0,
        "reasons": ["cfi above p95"],
        "cfi": 2.41,
        "cfi_percentile": 0.97,
        "cfi_quintile": 5,
        "cascade_level": level,
        "cascade_level_code": LEVEL_CODES[level],
        "features": {"btc_return_1h": -0.084, "vol_ratio": 4.2, "funding_z": 2.1},
        "data_quality": DataQuality(
            status=dq,
            coverage=1.0 if dq == "ok" else 0.4,
            stale_sources=["binance:ohlcv"] if dq != "ok" else [],
        ),
    }
    return Snapshot(**{**base, **kw})


def fake_settings(data_dir: Path, fx: FakeExchange | None = None, **sections: Any) -> Settings:
    """Settings for a test: the data dir, every venue on the fake exchange (when given) with no throttle,
    fast retries, metrics on any free port; ``sections`` are merged over these, key by key."""
    base: dict[str, Any] = {"data_dir": data_dir, "metrics": {"port": 0}, "retry": dict(FAST_RETRY)}
    if fx is not None:
        venue = {"api_url": fx.base_url, "rate_limit_ms": 1, "max_concurrency": 8, "timeout_s": 2.0}
        base["venues"] = {v: dict(venue) for v in VENUES}
    return load_settings(**_merge(base, sections))


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        out[key] = (
            _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
        )
    return out
