"""Fault switches and the request log of the fake exchange.

A fault is a rule: *what* goes wrong (``kind``), *where* (venue, path, symbol) and *how often*
(the next ``times`` matching requests, each with ``probability``, drawn from a seeded RNG so a
flaky run replays). The log lets tests assert that a client retried, backed off or gave up.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter, deque
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, get_args

import pandas as pd

HOUR_MS = 3_600_000

FaultKind = Literal[
    "rate_limit",  # HTTP 429 with Retry-After and the venue's own rate-limit body
    "ban",  # HTTP 418 with Retry-After and Binance's "IP banned until <ms>" body (``retry_after`` from now)
    "server_error",  # HTTP 500/502/503 with a gateway's HTML page
    "timeout",  # hold the request ``seconds`` (longer than the client's timeout), then answer
    "hang",  # hold the request until the server stops: a venue that accepts and never answers
    "malformed",  # HTTP 200 whose body is not the JSON promised (``body``: truncated, html, empty, cut)
    "missing",  # drop the rows of the given ``hours`` from candle/funding/OI answers
    "duplicate",  # repeat rows in a page (the given ``hours``, else the first and last)
    "stale",  # answer as if now were ``behind_hours`` earlier
    "latency",  # wait ``latency_ms`` before answering
]
FAULT_KINDS: tuple[str, ...] = get_args(FaultKind)
ERROR_KINDS = ("rate_limit", "ban", "server_error")
MARKETS = "markets"
"""A ``path`` that scopes a fault to every venue's market-list endpoints (what ccxt's load_markets asks)."""
MARKET_ENDPOINTS = (
    "/fapi/v1/exchangeInfo",
    "/v5/market/instruments-info",
    "/info:meta",
    "/info:spotMeta",
    "/api/v5/public/instruments",
)
_DEFAULT_STATUS = {"rate_limit": 429, "ban": 418, "server_error": 503}


@dataclass
class Fault:
    """One fault switch; see ``FaultKind`` for what each kind does. Scope fields None match all.

    ``path`` matches when it occurs in the request's endpoint: the URL path (``/fapi/v1/klines``)
    or, for Hyperliquid, ``/info:<type>`` (``candleSnapshot`` matches); ``"markets"`` matches every
    venue's market-list endpoints (``MARKET_ENDPOINTS``). ``symbol`` is a base asset.
    """

    kind: FaultKind
    venue: str | None = None
    path: str | None = None
    symbol: str | None = None
    times: int | None = None
    probability: float = 1.0
    status: int | None = None
    retry_after: float | None = 1.0
    retry_after_date: bool = False  # send Retry-After as an HTTP-date (the fake's now + retry_after)
    seconds: float = 30.0
    latency_ms: float = 0.0
    behind_hours: float = 0.0
    hours: tuple[int, ...] | None = None
    body: Literal["truncated", "html", "empty", "cut"] = "truncated"
    fired: int = 0
    id: int = 0

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; choose from {', '.join(FAULT_KINDS)}")
        if not 0.0 <= self.probability <= 1.0:
            raise ValueError("probability must be within [0, 1]")
        if self.status is None:
            self.status = _DEFAULT_STATUS.get(self.kind)
        if self.symbol:
            self.symbol = self.symbol.upper()
        if self.hours is not None:
            self.hours = tuple(_hour_ms(h) for h in self.hours)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Fault:
        """Build from JSON (the control endpoint); unknown keys are an error, not silently ignored."""
        allowed = set(cls.__dataclass_fields__) - {"fired", "id"}
        unknown = set(data) - allowed
        if unknown:
            raise ValueError(f"unknown fault field(s): {', '.join(sorted(unknown))}")
        fields: dict[str, Any] = {
            k: tuple(v) if k == "hours" and v is not None else v for k, v in data.items()
        }
        return cls(**fields)

    def to_dict(self) -> dict[str, Any]:
        """Plain data for the control endpoint's listing."""
        return asdict(self)

    @property
    def exhausted(self) -> bool:
        """True once it has fired ``times`` times."""
        return self.times is not None and self.fired >= self.times

    def matches(self, venue: str, endpoint: str, symbol: str | None) -> bool:
        """Whether this fault's scope covers the request (ignoring ``times`` and ``probability``)."""
        return (
            (self.venue is None or self.venue == venue)
            and (self.path is None or _path_matches(self.path, endpoint))
            and (self.symbol is None or self.symbol == symbol)
        )


def _path_matches(path: str, endpoint: str) -> bool:
    if path == MARKETS:
        return any(endpoint.startswith(m) for m in MARKET_ENDPOINTS)
    return path in endpoint


def _hour_ms(value: Any) -> int:
    """Milliseconds of the hour containing ``value`` (ms since the epoch, or anything pandas reads)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        ms = int(value)
    else:
        ts = pd.Timestamp(value)
        ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts
        ms = ts.value // 1_000_000  # .value is in ns whatever the unit
    return ms - ms % HOUR_MS


class FaultSet:
    """The active faults, safe to change from another thread while the server runs."""

    def __init__(self, seed: int = 0) -> None:
        self._faults: list[Fault] = []
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._next_id = 1

    def add(self, fault: Fault) -> Fault:
        """Activate ``fault``; it gets an id for listing."""
        with self._lock:
            fault.id = self._next_id
            self._next_id += 1
            self._faults.append(fault)
        return fault

    def clear(self) -> None:
        """Deactivate every fault."""
        with self._lock:
            self._faults.clear()

    def active(self) -> list[Fault]:
        """The faults that may still fire."""
        with self._lock:
            return [f for f in self._faults if not f.exhausted]

    def take(self, venue: str, endpoint: str, symbol: str | None) -> list[Fault]:
        """The faults that fire for this request, in the order added; their counters advance."""
        fired: list[Fault] = []
        with self._lock:
            for f in self._faults:
                if f.exhausted or not f.matches(venue, endpoint, symbol):
                    continue
                if f.probability < 1.0 and self._rng.random() >= f.probability:
                    continue
                f.fired += 1
                fired.append(f)
        return fired


@dataclass(frozen=True)
class RequestRecord:
    """One answered request. ``fault`` is the kind that shaped the answer, if any."""

    venue: str
    endpoint: str
    symbol: str | None
    status: int
    fault: str | None
    elapsed_ms: float
    at: float = field(default_factory=time.time)


class RequestLog:
    """The last ``maxlen`` requests in full plus totals that never roll over."""

    def __init__(self, maxlen: int = 100_000) -> None:
        self.records: deque[RequestRecord] = deque(maxlen=maxlen)
        self._totals: Counter[tuple[str, str, int, str | None]] = Counter()
        self._lock = threading.Lock()

    def add(self, record: RequestRecord) -> None:
        """Record an answered request."""
        with self._lock:
            self.records.append(record)
            self._totals[(record.venue, record.endpoint, record.status, record.fault)] += 1

    def clear(self) -> None:
        """Forget everything (between test phases)."""
        with self._lock:
            self.records.clear()
            self._totals.clear()

    def count(
        self,
        venue: str | None = None,
        path: str | None = None,
        status: int | None = None,
        fault: str | None = None,
    ) -> int:
        """Requests answered so far matching every filter given (``path`` as a substring)."""
        with self._lock:
            items = list(self._totals.items())
        return sum(n for key, n in items if _key_matches(key, venue, path, status, fault))

    def totals(self) -> list[dict[str, Any]]:
        """Counts per (venue, endpoint, status, fault), for the control endpoint."""
        with self._lock:
            items = sorted(self._totals.items(), key=lambda kv: (kv[0][0], kv[0][1], kv[0][2]))
        keys = ("venue", "endpoint", "status", "fault")
        return [{**dict(zip(keys, key, strict=True)), "count": n} for key, n in items]


def _key_matches(
    key: tuple[str, str, int, str | None],
    venue: str | None,
    path: str | None,
    status: int | None,
    fault: str | None,
) -> bool:
    v, endpoint, s, f = key
    return (
        (venue is None or v == venue)
        and (path is None or path in endpoint)
        and (status is None or s == status)
        and (fault is None or f == fault)
    )


def faults_from_json(payload: Any) -> Iterable[Fault]:
    """One fault or a list of them from the control endpoint's JSON body."""
    items = payload if isinstance(payload, list) else [payload]
    if not all(isinstance(i, dict) for i in items):
        raise ValueError("expected a JSON object or a list of objects")
    return [Fault.from_dict(i) for i in items]
