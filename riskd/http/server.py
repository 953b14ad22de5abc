"""The HTTP server on the metrics port: ``/metrics`` beside the API (``riskd.http.api``: /regime, /history,
/healthz, /readyz, /schema/…, /openapi.json, /runbooks/…) and the status page at ``/``.

Apart from the collectors (client_python's ``exposition`` apart from its registry): the metrics sink knows
nothing of HTTP, and the API reads the daemon's :class:`riskd.sinks.metrics.LiveState` through here.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime

from aiohttp import web
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from riskd.config import MetricsSettings
from riskd.contract.trading import DEFAULT_TABLE, TradingState
from riskd.http import page
from riskd.http.api import Api, ApiContext, auth_middleware, probe_json
from riskd.http.history import HistorySource
from riskd.sinks.metrics import LiveState, Metrics

log = logging.getLogger("riskd.metrics")


def health(state: LiveState, now: float, max_silence_s: float = 2.5 * 3600) -> tuple[int, dict[str, object]]:
    """/healthz: 200 while cycles complete (``status`` ok, or degraded when a venue is down or the data is
    stale), 503 ``failing`` when none completed for ``max_silence_s``; a fresh process gets one silence
    period to finish its first. The verdicts are ``riskd.contract.freshness.probe``'s."""
    ctx = ApiContext(
        state,
        MetricsSettings(),
        data_clock=lambda: datetime.fromtimestamp(now, UTC),
        wall_clock=lambda: now,
        max_silence_s=max_silence_s,
    )
    p = ctx.probe()
    return (200 if p.live else 503), probe_json(ctx, p)


class MetricsServer:
    """aiohttp app serving /metrics and the API (``riskd.http``: /regime, /history, /healthz, /readyz,
    /schema/…, /openapi.json, /runbooks/…, the status page at /) on the configured address."""

    def __init__(
        self,
        metrics: Metrics,
        host: str,
        port: int,
        clock: Callable[[], float] = time.time,
        *,
        settings: MetricsSettings | None = None,
        history: HistorySource | None = None,
        grace_s: float = 120.0,
        fail_safe: TradingState = DEFAULT_TABLE.fail_safe,
    ) -> None:
        self.metrics = metrics
        self.host = host
        self.port = port
        self.api = ApiContext(
            metrics.state,
            settings or MetricsSettings(host=host, port=port),
            history=history,
            data_clock=lambda: datetime.fromtimestamp(metrics.clock(), UTC),
            wall_clock=clock,
            grace_s=grace_s,
            fail_safe=fail_safe,
        )
        self._runner: web.AppRunner | None = None

    def app(self) -> web.Application:
        """The routes (exposed for tests that want the app without a socket)."""
        token = self.api.settings.api_token
        app = web.Application(middlewares=[auth_middleware(token.get_secret_value() if token else None)])
        app.router.add_get("/metrics", self._metrics)
        Api(self.api, page=page.build).add_routes(app)
        return app

    async def start(self) -> MetricsServer:
        """Listen; with port 0 the chosen port is stored in ``self.port``."""
        self._runner = web.AppRunner(self.app(), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        sockets = site._server.sockets if site._server else []  # type: ignore[attr-defined]
        if sockets:
            self.port = sockets[0].getsockname()[1]
            if self.api.settings.external_url is None:  # links name the port actually bound
                self.api.settings = self.api.settings.model_copy(update={"port": self.port})
        log.info(
            "http on http://%s:%d/ (status page; also /metrics, /regime, /healthz, /readyz)",
            self.host,
            self.port,
        )
        return self

    async def stop(self) -> None:
        """Stop listening."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _metrics(self, request: web.Request) -> web.Response:
        body = self.metrics.exposition()
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})
