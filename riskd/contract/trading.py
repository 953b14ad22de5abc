"""The trading state every bot understands: ``active``, ``reducing`` or ``halted``, from one table.

A regime (calm … cascade), a multiplier and a freshness verdict are riskd's words; a bot wants to know
whether it may open positions. This module is the one place that answers, so the snapshot riskd
publishes (``trading_state``), ``/regime``, :mod:`riskd.client` and the integrations
(:mod:`riskd.integrations.freqtrade`) cannot disagree. docs/redis.md shows :data:`DEFAULT_TABLE` as
generated text (``python -m riskd.commands.reference --write``); the ``trading`` settings change it.

What each state asks of a bot:

- ``active``: trade as usual, sized by ``risk_multiplier``;
- ``reducing``: add no risk beyond ``risk_multiplier`` (smaller stakes; stricter bots open nothing new
  and trim: nautilus_trader's REDUCING);
- ``halted``: open nothing new; exits and stop-losses keep working (riskd never closes a position).

**Fail-safe.** When riskd cannot vouch for the regime (no snapshot, a snapshot older than the freshness
limit, one computed from stale primary data, or ``state: unknown``), the state is the table's
``fail_safe``, ``halted`` by default and never ``active``. Why halted rather than reducing: riskd goes blind
exactly when exchanges are overloaded, which is when cascades happen (a cascade and a data outage are
correlated, not independent), and halted only stops new entries, so what a blind hour costs is entries
missed, never a forced exit. A deployment that prefers trading on through an outage at reduced size sets
``RISKD_TRADING__FAIL_SAFE=reducing``.

Pure: no I/O, no clock; the freshness verdict comes in as its status word.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

TradingState = Literal["active", "reducing", "halted"]
SEVERITY: dict[str, int] = {"active": 0, "reducing": 1, "halted": 2}
"""Order of caution: a rule may only make the state stricter than another rule made it."""

BLIND_FRESHNESS = ("stale", "unknown")
"""Freshness verdicts (``riskd.contract.freshness.judge``) under which riskd cannot vouch for the regime."""


def _default_states() -> dict[str, TradingState]:
    return {
        "calm": "active",
        "elevated": "active",
        "recovery": "reducing",
        "fragile": "reducing",
        "cascade": "halted",
    }


@dataclass(frozen=True)
class TradingTable:
    """The mapping, in the order it is applied (first the fail-safe, then the strictest of the rest).

    ``states``: regime state → trading state. ``halt_at_or_below``: a ``risk_multiplier`` at or below this
    halts whatever the state. ``reduce_below``: a multiplier below this is at least ``reducing``.
    ``fail_safe``: the state when blind. Degraded data (a secondary source stale or missing) is usable, as
    every riskd reader treats it: it changes nothing here."""

    states: Mapping[str, TradingState] = field(default_factory=_default_states)
    halt_at_or_below: float = 0.0
    reduce_below: float = 0.75
    fail_safe: Literal["reducing", "halted"] = "halted"

    def __post_init__(self) -> None:
        if self.fail_safe not in ("reducing", "halted"):  # a fail-safe of "active" defeats its purpose
            raise ValueError(f"fail_safe must be reducing or halted, not {self.fail_safe!r}")


DEFAULT_TABLE = TradingTable()


def blind_reason(state: str, quality_status: str, freshness: str | None) -> str | None:
    """Why riskd cannot vouch for the regime (the fail-safe applies), or None when it can."""
    if freshness in BLIND_FRESHNESS:
        return f"freshness {freshness}"
    if quality_status == "stale":
        return "computed from stale data"
    if state == "unknown":
        return "state unknown"
    return None


def derive(
    state: str,
    risk_multiplier: float,
    quality_status: str = "ok",
    freshness: str | None = None,
    table: TradingTable = DEFAULT_TABLE,
) -> TradingState:
    """The trading state of a regime ``state`` with its ``risk_multiplier``, its data quality status
    (ok / degraded / stale) and, for a reader, the freshness verdict now (None: as published)."""
    if blind_reason(state, quality_status, freshness) is not None:
        return table.fail_safe
    by_state: TradingState = table.states.get(state, table.fail_safe)
    if risk_multiplier <= table.halt_at_or_below:
        by_multiplier: TradingState = "halted"
    elif risk_multiplier < table.reduce_below:
        by_multiplier = "reducing"
    else:
        by_multiplier = "active"
    return max(by_state, by_multiplier, key=SEVERITY.__getitem__)


def table_markdown(table: TradingTable = DEFAULT_TABLE) -> str:
    """The table as docs/redis.md shows it (generated: ``python -m riskd.commands.reference --write``)."""
    fs = table.fail_safe
    lines = [
        "| # | when | trading_state |",
        "|---|---|---|",
        f"| 1 | no snapshot, older than the freshness limit, Redis unreachable (a reader's verdict "
        f"`stale`/`unknown`), `data_quality.status: stale`, or `state: unknown` | `{fs}` (the fail-safe) |",
        f"| 2 | `risk_multiplier` ≤ {table.halt_at_or_below:g} | `halted` |",
        f"| 3 | `risk_multiplier` < {table.reduce_below:g} | at least `reducing` |",
    ]
    for i, (state, trading) in enumerate(table.states.items(), start=4):
        lines.append(f"| {i} | `state: {state}` | `{trading}` |")
    lines.append("")
    lines.append(
        "Row 1 decides alone; otherwise the strictest of rows 2 to the last applies "
        "(`active` < `reducing` < `halted`)."
    )
    return "\n".join(lines) + "\n"
