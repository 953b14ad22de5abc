"""What both demos share: the bundled real sample served as a market, the user's settings pointed at the
fake exchange, and a run's keys removed from a shared Redis at the end."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from riskd.config import Settings, VenueSettings, VenuesSettings
from riskd.daemon.embedded import answers


def sample_history(root: Path) -> tuple[Any, list[str]]:
    """The bundled real sample as a market the fake exchange serves (MarketHistory), and its perps."""
    from riskd.testing.sample import load_sample_store
    from riskd.testing.synthetic import MarketHistory

    store = load_sample_store(root)
    perps = sorted({s for d, v, s in store.partitions("ohlcv", "binance")})
    ohlcv = {"binance": {s: store.read("ohlcv", "binance", s) for s in perps}}
    funding = {"binance": {s: store.read("funding", "binance", s) for s in perps}}
    return MarketHistory.from_frames(ohlcv, funding), perps


def demo_settings(settings: Settings, data_dir: Path, base_url: str, symbols: list[str]) -> Settings:
    """The user's settings, pointed at the fake exchange (Binance only: the sample has no other venue)."""
    venues = VenuesSettings.model_validate(  # the venue fields come from the registry: not known statically
        {
            "binance": VenueSettings(api_url=base_url, rate_limit_ms=1, max_concurrency=8),
            "bybit": VenueSettings(enabled=False),
            "hyperliquid": VenueSettings(enabled=False),
        }
    )
    redis = settings.redis
    if redis.url is not None or answers("127.0.0.1", 6379):
        # A shared Redis: a prefix of this run's own, never a real riskd's keys nor an earlier demo's
        # (whose alert fingerprints would rightly suppress this run's identical alerts as duplicates).
        redis = redis.model_copy(update={"key_prefix": f"riskd-demo-{uuid.uuid4().hex[:8]}:v1"})
    universe = settings.universe.model_copy(update={"symbols": symbols})
    daemon = settings.daemon.model_copy(update={"warmup_hours": 24 * 20})
    return settings.model_copy(
        update={
            "data_dir": data_dir,
            "venues": venues,
            "redis": redis,
            "universe": universe,
            "daemon": daemon,
        }
    )


async def forget(client: Any, prefix: str) -> None:
    """Delete this demo run's keys from a shared Redis."""
    keys = [k async for k in client.scan_iter(match=f"{prefix}:*", count=500)]
    if keys:
        await client.delete(*keys)
