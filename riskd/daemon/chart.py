"""The alert chart's data: BTC's close and the CFI of the recent hours, kept as the hours are computed."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

import pandas as pd

from riskd.core.schedule import HOUR

log = logging.getLogger("riskd.daemon")


class ChartRows:
    """The last ``hours`` hours' (BTC close, CFI), by the hour's close."""

    def __init__(self, hours: int) -> None:
        self.hours = hours
        self.rows: dict[pd.Timestamp, tuple[float, float]] = {}

    def remember(self, hour: pd.Timestamp, panel: Any, row: Mapping[str, Any]) -> None:
        """Keep the hour opened at ``hour`` (its one-row panel and its core row)."""
        symbols = list(panel.symbols)
        btc = float(panel.close[0, symbols.index("BTC")]) if "BTC" in symbols else float("nan")
        cfi = row.get("cfi")
        self.rows[hour + HOUR] = (btc, float(cfi) if cfi is not None else float("nan"))
        for ts in sorted(self.rows)[: -self.hours]:
            del self.rows[ts]

    def frame(self) -> pd.DataFrame:
        """``btc_close`` and ``cfi`` by hour, oldest first."""
        if not self.rows:
            return pd.DataFrame(columns=["btc_close", "cfi"])
        ts = sorted(self.rows)
        btc, cfi = zip(*(self.rows[t] for t in ts), strict=True)
        return pd.DataFrame({"btc_close": btc, "cfi": cfi}, index=pd.DatetimeIndex(ts, name="ts"))

    async def png(self) -> bytes | None:
        """The PNG (drawn in a thread; matplotlib is imported only here), or None when it fails."""
        from riskd.alerting.chart import render_chart

        try:
            return await asyncio.to_thread(render_chart, self.frame(), hours=self.hours)
        except Exception as err:  # a chart is a nicety: the alert goes out without it, whatever broke
            log.warning("alert chart not drawn: %s", err)
            return None
