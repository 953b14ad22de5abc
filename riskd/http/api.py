"""The HTTP API: /regime, /history, /healthz, /readyz, /schema/…, /openapi.json, /runbooks/…, and /.

Every verdict comes from ``riskd.contract.freshness`` (the same one ``riskd.client`` and the Telegram bot use), so
the API never serves a stale snapshot as current: /regime answers 503 with ``state: unknown`` and the
last snapshot under ``last_snapshot`` instead. An optional bearer token (``metrics.api_token``) protects
everything but the probes and the runbooks (which a pager must be able to open).
"""

from __future__ import annotations

import hmac
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from aiohttp import web

from riskd.contract import schemas as contract
from riskd.contract.freshness import Probe, Verdict, judge, probe
from riskd.contract.models import rfc3339
from riskd.contract.trading import DEFAULT_TABLE, TradingState
from riskd.http import openapi, runbooks
from riskd.http.history import MAX_SPAN, HistorySource

if TYPE_CHECKING:
    from riskd.config import MetricsSettings
    from riskd.sinks.metrics import LiveState

HOUR_S = 3600.0
OPEN_PATHS = ("/healthz", "/readyz", "/runbooks")
"""Paths the bearer token does not protect: probes (load balancers send no token) and runbooks (clicked
from Alertmanager, Grafana or a pager)."""


@dataclass
class ApiContext:
    """What the API reads: the daemon's live state, the history, the settings and two clocks.

    ``data_clock`` judges snapshot age (a replay or the demo runs it simulated); ``wall_clock`` judges
    liveness against ``LiveState.last_cycle_ok``, which the daemon stamps in wall time."""

    state: LiveState
    settings: MetricsSettings
    history: HistorySource | None = None
    data_clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    wall_clock: Callable[[], float] = time.time
    grace_s: float = 120.0
    max_silence_s: float = 2.5 * HOUR_S
    fail_safe: TradingState = DEFAULT_TABLE.fail_safe
    """``trading_state`` served when the regime is not current (``trading.fail_safe``)."""

    @property
    def max_age(self) -> timedelta:
        """Older than this, a snapshot is stale."""
        return timedelta(seconds=self.settings.max_age_s)

    def verdict(self) -> Verdict:
        """The freshness verdict on the last snapshot, now."""
        return judge(self.state.snapshot, now=self.data_clock(), max_age=self.max_age)

    def probe(self) -> Probe:
        """Liveness and readiness, now."""
        last = self.state.last_cycle_ok if self.state.last_cycle_ok is not None else self.state.started_at
        return probe(
            self.state.snapshot,
            now=self.data_clock(),
            cycle_age_s=self.wall_clock() - last,
            venue_health=getattr(self.state, "venue_health", {}),
            max_age=self.max_age,
            max_silence_s=self.max_silence_s,
            services_down=getattr(self.state, "down", {}),
            started=self.state.last_cycle_ok is not None,
        )


def verdict_json(verdict: Verdict) -> dict[str, Any]:
    """The verdict as the API and the status page show it."""
    age = None if verdict.age_seconds is None else round(verdict.age_seconds, 1)
    return {"status": verdict.status, "usable": verdict.usable, "reason": verdict.reason, "age_seconds": age}


def regime_response(ctx: ApiContext) -> web.Response:
    """200 with the snapshot plus ``freshness`` when usable; 503 with ``state: unknown`` and the fail-safe
    ``trading_state`` otherwise (a stale snapshot's own ``trading_state`` is history, not advice).

    The 200 body is a valid v1 snapshot (``freshness`` is an added field readers ignore). ``Age`` is the
    seconds since riskd computed it; ``Cache-Control: max-age`` runs to when the next hour is due, so a
    poller that honours it asks again right after the next publication."""
    snap = ctx.state.snapshot
    verdict = ctx.verdict()
    if snap is None or not verdict.usable:
        body = {
            "state": "unknown",
            "trading_state": ctx.fail_safe,
            "freshness": verdict_json(verdict),
            "last_snapshot": json.loads(snap.to_json()) if snap is not None else None,
        }
        return web.json_response(body, status=503, headers={"Cache-Control": "no-store"})
    now = ctx.data_clock()
    due = snap.as_of + timedelta(seconds=HOUR_S + ctx.grace_s)
    max_age = int(min(HOUR_S, max(0.0, (due - now).total_seconds())))
    headers = {
        "Cache-Control": f"max-age={max_age}",
        "Age": str(max(0, int((now - snap.computed_at).total_seconds()))),
        "Last-Modified": snap.computed_at.astimezone(UTC).strftime("%a, %d %b %Y %H:%M:%S GMT"),
    }
    body = {**json.loads(snap.to_json()), "freshness": verdict_json(verdict)}
    return web.json_response(body, headers=headers, dumps=_compact)


def _compact(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"))


def probe_json(ctx: ApiContext, p: Probe) -> dict[str, Any]:
    """The body of /healthz and /readyz (the same facts; the status code differs)."""
    state = ctx.state
    snap = state.snapshot
    return {
        "status": p.health,
        "live": p.live,
        "ready": p.ready,
        "leader": state.leader,
        "as_of": rfc3339(snap.as_of) if snap is not None else None,
        "seconds_since_last_cycle": (
            round(ctx.wall_clock() - state.last_cycle_ok, 1) if state.last_cycle_ok is not None else None
        ),
        "data": verdict_json(p.verdict),
        "venues": dict(sorted(getattr(state, "venue_health", {}).items())),
        "venues_down": p.venues_down,
        "reasons": p.reasons,
    }


def parse_time(text: str | None, name: str) -> datetime | None:
    """An RFC 3339 / ISO 8601 query parameter (naive means UTC); HTTPBadRequest naming it when unreadable."""
    if text is None or text == "":
        return None
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00").replace(" ", "+"))
    except ValueError:
        raise _bad(f"{name}: not an RFC 3339 time: {text!r} (e.g. 2021-05-19T13:00:00Z)") from None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _bad(message: str) -> web.HTTPBadRequest:
    return web.HTTPBadRequest(text=json.dumps({"error": message}), content_type="application/json")


class Api:
    """The route handlers over one :class:`ApiContext`."""

    def __init__(self, ctx: ApiContext, page: Callable[[ApiContext], Awaitable[str]] | None = None) -> None:
        self.ctx = ctx
        self._page = page

    def add_routes(self, app: web.Application) -> None:
        """Mount every route on ``app``."""
        r = app.router
        r.add_get("/regime", self.regime)
        r.add_get("/history", self.history)
        r.add_get("/healthz", self.healthz)
        r.add_get("/readyz", self.readyz)
        r.add_get("/schema", self.schema_index)
        r.add_get("/schema/", self.schema_index)
        r.add_get("/schema/{name}", self.schema)
        r.add_get("/openapi.json", self.openapi)
        r.add_get("/runbooks", self.runbook_index)
        r.add_get("/runbooks/", self.runbook_index)
        r.add_get("/runbooks/{alert}", self.runbook)
        if self._page is not None:
            r.add_get("/", self.status_page)

    async def regime(self, request: web.Request) -> web.Response:
        """The current regime with its freshness verdict (503 when it is not current)."""
        return regime_response(self.ctx)

    async def history(self, request: web.Request) -> web.Response:
        """Hours in [from, to] (default: the last 24 h), the newest revision of each, oldest first."""
        q = request.query
        now = self.ctx.data_clock()
        end = parse_time(q.get("to"), "to") or now
        start = parse_time(q.get("from"), "from") or end - timedelta(hours=24)
        if start > end:
            raise _bad("from: after to")
        if end - start > MAX_SPAN:
            raise _bad(f"from/to: span longer than {MAX_SPAN.days} days; ask in pieces")
        if self.ctx.history is None:
            return web.json_response({"error": "history not available: no Redis configured"}, status=503)
        snaps = await self.ctx.history.between(start, end)
        body = {
            "from": rfc3339(start),
            "to": rfc3339(end),
            "count": len(snaps),
            "snapshots": [json.loads(s.to_json()) for s in snaps],
        }
        return web.json_response(body, dumps=_compact)

    async def healthz(self, request: web.Request) -> web.Response:
        """Liveness: 200 while cycles complete (``status`` ok or degraded), 503 when they stopped."""
        p = self.ctx.probe()
        return web.json_response(probe_json(self.ctx, p), status=200 if p.live else 503)

    async def readyz(self, request: web.Request) -> web.Response:
        """Readiness: 200 only when the last cycle is recent, no venue is down and the data is usable."""
        p = self.ctx.probe()
        return web.json_response(probe_json(self.ctx, p), status=200 if p.ready else 503)

    async def schema_index(self, request: web.Request) -> web.Response:
        """The shipped schemas, by name and $id."""
        items = [{"name": n, "$id": contract.schema_id(n), "url": f"/schema/{n}"} for n in contract.NAMES]
        return web.json_response({"schemas": items})

    async def schema(self, request: web.Request) -> web.Response:
        """One shipped schema file, byte for byte."""
        name = request.match_info["name"]
        if not name.endswith(".json"):
            name += ".schema.json"
        try:
            text = contract.shipped(name)
        except KeyError:
            raise web.HTTPNotFound(text=f"no schema {name!r}; see /schema/") from None
        return web.Response(text=text, content_type="application/schema+json")

    async def openapi(self, request: web.Request) -> web.Response:
        """The OpenAPI 3.1 document of this API."""
        return web.json_response(openapi.document(self.ctx.settings.base_url()))

    async def runbook_index(self, request: web.Request) -> web.Response:
        """Links to every runbook."""
        return web.Response(text=runbooks.index_html(), content_type="text/html")

    async def runbook(self, request: web.Request) -> web.Response:
        """One alert's runbook as a page (the name is case-insensitive: RiskdDown or riskddown)."""
        html = runbooks.page_html(request.match_info["alert"])
        if html is None:
            raise web.HTTPNotFound(text=runbooks.index_html(), content_type="text/html")
        return web.Response(text=html, content_type="text/html")

    async def status_page(self, request: web.Request) -> web.Response:
        """The built-in status page."""
        assert self._page is not None
        html = await self._page(self.ctx)
        return web.Response(text=html, content_type="text/html", headers={"Cache-Control": "no-store"})


def auth_middleware(token: str | None) -> Any:
    """Requires ``Authorization: Bearer <token>`` except on the open paths; a no-op without a token.

    A browser cannot send the header, so ``?token=`` is accepted once: it sets an HttpOnly cookie and
    redirects to the same path without the token in the address bar (or in history)."""

    @web.middleware
    async def middleware(request: web.Request, handler: Any) -> web.StreamResponse:
        if token is None or request.path.startswith(OPEN_PATHS):
            return await handler(request)
        given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        given = given or request.cookies.get("riskd_token", "")
        query_token = request.query.get("token")
        if query_token is not None and hmac.compare_digest(query_token.encode(), token.encode()):
            rest = {k: v for k, v in request.rel_url.query.items() if k != "token"}
            resp = web.HTTPSeeOther(request.rel_url.with_query(rest))
            resp.set_cookie("riskd_token", token, httponly=True, samesite="Strict")
            raise resp
        if not given or not hmac.compare_digest(given.encode(), token.encode()):
            return web.json_response(
                {"error": "missing or wrong bearer token (Authorization: Bearer …)"},
                status=401,
                headers={"WWW-Authenticate": 'Bearer realm="riskd"'},
            )
        return await handler(request)

    return middleware


__all__ = ["Api", "ApiContext", "auth_middleware", "probe_json", "regime_response", "verdict_json"]
