"""The daemon's data: the recent-market cache, the incremental fetch, data quality, the stored history."""

from riskd.market.cache import HOUR, PANEL_DATASETS, MarketCache
from riskd.market.fetch import FetchReport, datasets_for, fetch_recent, persist
from riskd.market.funding import funding_table
from riskd.market.history import liquidation_minutes, store_first_hour, store_panel
from riskd.market.quality import assess, assess_row

__all__ = [
    "HOUR",
    "PANEL_DATASETS",
    "FetchReport",
    "MarketCache",
    "assess",
    "assess_row",
    "datasets_for",
    "fetch_recent",
    "funding_table",
    "liquidation_minutes",
    "persist",
    "store_first_hour",
    "store_panel",
]
