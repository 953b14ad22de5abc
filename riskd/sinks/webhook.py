"""Signed webhooks: every snapshot and every alert, POSTed as JSON to configured URLs.

The way in for Slack/Teams/Discord relays and in-house bots. Each body is signed with HMAC-SHA256 over
``<timestamp>.<body>`` with ``webhook.secret``; the receiver recomputes it from the
``X-Riskd-Timestamp`` and ``X-Riskd-Signature: sha256=<hex>`` headers (:func:`verify` is the reference)
and rejects an old timestamp to stop replays.

- Snapshots (:class:`WebhookSink`, a :class:`~riskd.sinks.base.SnapshotSink`) go through a bounded
  in-memory queue and a background worker that retries with exponential back-off: ``publish`` only
  enqueues, so a slow or dead receiver never delays the cycle or the Redis key. If the queue is full the
  oldest snapshot is dropped and counted (the newest state matters most).
- Alerts (:class:`WebhookChannel`, an alert :class:`~riskd.alerting.pipeline.Channel`) go through their own
  Redis outbox like Telegram's, so they get the same exactly-once delivery, retries and de-duplication.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import time
from collections import deque
from collections.abc import Callable

import aiohttp

from riskd.alerting.channel import DeliveryError
from riskd.contract.models import Alert, Snapshot

log = logging.getLogger("riskd.webhook")

SIGNATURE_HEADER = "X-Riskd-Signature"
TIMESTAMP_HEADER = "X-Riskd-Timestamp"
EVENT_HEADER = "X-Riskd-Event"


def sign(secret: bytes, timestamp: str, body: bytes) -> str:
    """``sha256=<hex>`` of HMAC-SHA256(secret, ``timestamp.body``)."""
    mac = hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify(secret: bytes, timestamp: str, body: bytes, signature: str, *, max_age_s: float = 300.0,
           now: float | None = None) -> bool:  # fmt: skip
    """What a receiver does: recompute the signature (constant time) and refuse a stale timestamp."""
    try:
        age = abs((now if now is not None else time.time()) - float(timestamp))
    except ValueError:
        return False
    return age <= max_age_s and hmac.compare_digest(sign(secret, timestamp, body), signature)


class _Poster:
    """One aiohttp session that signs and POSTs a body to every URL."""

    def __init__(self, urls: list[str], secret: bytes, timeout_s: float) -> None:
        self.urls = urls
        self._secret = secret
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session: aiohttp.ClientSession | None = None

    async def post(self, url: str, event: str, body: bytes) -> int:
        """POST once; returns the HTTP status (raises aiohttp/timeout errors)."""
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        ts = f"{time.time():.3f}"
        headers = {
            "Content-Type": "application/json",
            TIMESTAMP_HEADER: ts,
            SIGNATURE_HEADER: sign(self._secret, ts, body),
            EVENT_HEADER: event,
        }
        async with self._session.post(url, data=body, headers=headers) as resp:
            await resp.read()
            return resp.status

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()


class WebhookSink:
    """Snapshots to the webhook URLs, off the cycle's path (see the module docstring)."""

    name = "webhook"
    leader_only = True

    def __init__(self, urls: list[str], secret: bytes, *, timeout_s: float = 5.0, attempts: int = 5,
                 initial_backoff_s: float = 1.0, max_backoff_s: float = 60.0, queue_size: int = 500,
                 on_result: Callable[[str], None] | None = None) -> None:  # fmt: skip
        self._poster = _Poster(urls, secret, timeout_s)
        self._attempts = attempts
        self._backoff = (initial_backoff_s, max_backoff_s)
        self._queue: deque[bytes] = deque(maxlen=queue_size)
        self._wake = asyncio.Event()
        self._empty = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._on_result = on_result or (lambda outcome: None)
        self.dropped = 0

    async def publish(self, snapshot: Snapshot) -> None:
        """Enqueue; returns at once (the worker posts)."""
        if len(self._queue) == self._queue.maxlen:
            self.dropped += 1
            self._on_result("dropped")
        self._queue.append(snapshot.to_json().encode())
        self._wake.set()
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="riskd-webhook")

    @property
    def pending(self) -> int:
        """Snapshots not yet accepted by every receiver."""
        return len(self._queue)

    async def _run(self) -> None:
        while True:
            if not self._queue:
                self._empty.set()
                self._wake.clear()
                await self._wake.wait()
                continue
            body = self._queue[0]
            for url in self._poster.urls:
                await self._deliver(url, body)
            self._queue.popleft()

    async def _deliver(self, url: str, body: bytes) -> None:
        delay = self._backoff[0]
        for attempt in range(1, self._attempts + 1):
            try:
                status = await self._poster.post(url, "snapshot", body)
            except (aiohttp.ClientError, TimeoutError) as err:
                status, detail = 0, str(err) or type(err).__name__
            else:
                detail = f"HTTP {status}"
            if 200 <= status < 300:
                self._on_result("ok")
                return
            if 400 <= status < 500 and status not in (408, 429):
                break  # the receiver refuses this body: retrying will not change its mind
            log.debug("webhook %s attempt %d failed: %s", url, attempt, detail)
            await asyncio.sleep(delay)
            delay = min(delay * 2, self._backoff[1])
        self._on_result("failed")
        log.warning("webhook %s: snapshot not delivered after %d attempt(s)", url, attempt)

    async def drain(self, timeout_s: float) -> bool:
        """Wait until the queue is empty (tests, ``riskd once``); False on time-out."""
        if self._queue:
            self._empty.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._empty.wait(), timeout_s)
        return not self._queue

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._poster.aclose()


class WebhookChannel:
    """Alerts to the webhook URLs through a Redis outbox (one destination per URL)."""

    name = "webhook"
    max_per_minute: int | None = None
    structured = True  # the pipeline passes the Alert itself: receivers get its JSON, not only the text

    def __init__(self, urls: list[str], secret: bytes, *, timeout_s: float = 5.0) -> None:
        self._poster = _Poster(urls, secret, timeout_s)
        self.destinations = list(urls)

    async def send(self, dest: str, text: str, *, silent: bool, chart: bytes | None,
                   reply_to: str | None = None, alert: Alert | None = None) -> str:  # fmt: skip
        """POST ``{"type": "alert", "text", "silent", "alert": {…}}``; a 2xx is the receipt."""
        payload = {"type": "alert", "text": text, "silent": silent,
                   "alert": alert.model_dump(mode="json") if alert is not None else None}  # fmt: skip
        body = json.dumps(payload, sort_keys=True).encode()
        try:
            status = await self._poster.post(dest, "alert", body)
        except aiohttp.ClientConnectorError as err:
            raise DeliveryError(f"webhook {dest}: {err}", definite=True) from err
        except (aiohttp.ClientError, TimeoutError) as err:
            raise DeliveryError(f"webhook {dest}: {err or type(err).__name__}", definite=False) from err
        if not 200 <= status < 300:
            raise DeliveryError(f"webhook {dest}: HTTP {status}", definite=True)
        return f"http-{status}"

    async def aclose(self) -> None:
        await self._poster.aclose()
