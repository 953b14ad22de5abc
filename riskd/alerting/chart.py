"""The small PNG attached to alerts: BTC price and CFI over the last hours.

Drawn with matplotlib's object API on the Agg canvas (no pyplot: no global figure state, safe off
the main thread, no display needed). Kept small (~600×320 px) so it uploads fast on a bad day.
"""

from __future__ import annotations

import io

import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from riskd.errors import DataError

REQUIRED = ("btc_close", "cfi")


def render_chart(frame: pd.DataFrame, *, hours: int = 72, title: str | None = None) -> bytes:
    """PNG bytes of BTC close (left axis) and CFI (right axis) for the last ``hours`` rows.

    ``frame`` is indexed by hour (UTC) with columns ``btc_close`` (price) and ``cfi`` (standardised
    units). Raises DataError when a column is missing or no row has data.
    """
    missing = [c for c in REQUIRED if c not in frame.columns]
    if missing:
        raise DataError(f"chart frame lacks column(s) {', '.join(missing)}")
    data = frame.sort_index().loc[:, list(REQUIRED)].tail(hours)
    if data.dropna(how="all").empty:
        raise DataError("chart frame has no data in the last hours")
    fig = Figure(figsize=(6.0, 3.2), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.plot(data.index, data["btc_close"], color="#f7931a", linewidth=1.4, label="BTC")
    ax.set_ylabel("BTC (USD)", color="#f7931a", fontsize=8)
    ax.tick_params(labelsize=7)
    ax.grid(alpha=0.25)
    ax2 = ax.twinx()
    ax2.plot(data.index, data["cfi"], color="#1f4e9c", linewidth=1.2, label="CFI")
    ax2.axhline(0.0, color="#1f4e9c", linewidth=0.5, alpha=0.4)
    ax2.set_ylabel("CFI", color="#1f4e9c", fontsize=8)
    ax2.tick_params(labelsize=7)
    span = f"last {len(data)} h to {data.index[-1]:%Y-%m-%d %H:%M} UTC"
    ax.set_title(f"{title} · {span}" if title else f"BTC and CFI, {span}", fontsize=8)
    fig.autofmt_xdate(rotation=0, ha="center")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    return buf.getvalue()
