"""What every settings section shares: unknown keys and non-finite numbers are errors, assignments are
checked; and the universe every section defaults from."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from riskd.sources.registry import VENUES as VENUE_SPECS

DEFAULT_UNIVERSE: tuple[str, ...] = (
    "BTC", "ETH", "SOL", "XRP", "DOGE", "BNB", "ADA", "AVAX", "LINK", "DOT",
    "LTC", "UNI", "ATOM", "NEAR", "FIL", "FTM",
)  # fmt: skip # the universe as the research lists it, two lines to read
"""The research's universe (RESEARCH.md, Data): BTC plus liquid alts, as base assets."""

VENUES: tuple[str, ...] = tuple(VENUE_SPECS)
"""Every registered venue (riskd/sources/registry.py), in registration order."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)
