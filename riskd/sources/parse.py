"""Strict readers of raw venue replies.

ccxt hands a body that is not JSON back as text and its unified parsers then quietly return ``[]``
or rows of None; riskd calls the raw endpoints and checks the shape itself, so a malformed reply
raises here, inside the retried call, instead of passing as "no data".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


class MalformedReply(ValueError):
    """The venue answered, but not with what its API documents (translated to TemporaryError)."""


def expect_list(raw: Any, what: str) -> list[Any]:
    """``raw`` as a list, or MalformedReply naming the endpoint."""
    if not isinstance(raw, list):
        raise MalformedReply(f"{what}: expected a JSON list, got {type(raw).__name__}: {str(raw)[:80]!r}")
    return raw


def expect_result_list(raw: Any, what: str) -> tuple[list[Any], Mapping[str, Any]]:
    """Bybit v5's ``{"retCode": 0, "result": {"list": [...]}}`` -> (list, result)."""
    if not isinstance(raw, Mapping) or not isinstance(raw.get("result"), Mapping):
        raise MalformedReply(f"{what}: expected a v5 result object, got {str(raw)[:80]!r}")
    items = raw["result"].get("list")
    return expect_list(items, what), raw["result"]


def number(value: Any, what: str) -> float:
    """A finite float from a JSON number or numeric string."""
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise MalformedReply(f"{what}: not a number: {value!r}") from None
    if out != out:  # NaN in a price or a rate is never valid venue data
        raise MalformedReply(f"{what}: NaN")
    return out


def millis(value: Any, what: str) -> int:
    """An epoch-milliseconds integer from a JSON number or numeric string."""
    try:
        return int(value)
    except (TypeError, ValueError):
        raise MalformedReply(f"{what}: not a timestamp: {value!r}") from None


def candle(row: Sequence[Any], cols: Sequence[int], what: str) -> list[float]:
    """[ms, o, h, l, c, v, quote_v] from an array row; ``cols`` says where o..quote_v sit."""
    if not isinstance(row, Sequence) or isinstance(row, str) or len(row) <= max(cols):
        raise MalformedReply(f"{what}: bad candle row {str(row)[:80]!r}")
    return [millis(row[0], what), *(number(row[i], what) for i in cols)]
