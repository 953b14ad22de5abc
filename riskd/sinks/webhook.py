"""Signed webhooks: every snapshot and every alert, POSTed as JSON to configured URLs.

The way in for Slack/Teams/Discord relays and in-house bots. Each body is signed with HMAC-SHA256 over
``<timestamp>.<body>`` with ``webhook.secret``; the receiver recomputes it from the
``X-Riskd-Timestamp`` (integer Unix seconds) and ``X-Riskd-Signature: sha256=<hex>`` headers
(:func:`verify` is the reference) and rejects an old timestamp to stop replays.

Receivers are isolated from one another: a failing or dead one never delays another, the cycle or the
Redis key (three receivers, one answering 500 and one down, once held the healthy third to 2 snapshots of
121; issue 19).

- Snapshots (:class:`WebhookSink`, a :class:`~riskd.sinks.base.SnapshotSink`) go to one bounded in-memory
  queue and one background worker *per receiver*, each retrying with its own exponential back-off:
  ``publish`` only enqueues. When a receiver's queue is full its oldest snapshot is dropped and counted
  (the newest state matters most).
- Alerts (:class:`WebhookChannel`, an alert :class:`~riskd.alerting.pipeline.Channel`) go through a Redis
  outbox per receiver (``<prefix>:webhook:<url id>``), like Telegram's: exactly-once delivery, retries
  and de-duplication, never dropped. Each carries ``alert_id`` (also the ``X-Riskd-Alert-Id`` header),
  the same on every retry and from every replica, for the receiver to de-duplicate on.
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
ALERT_ID_HEADER = "X-Riskd-Alert-Id"


def url_id(url: str) -> str:
    """A receiver's short stable name (its outbox key, its log lines): 8 hex digits of the URL's SHA-256,
    so neither the order of ``webhook.urls`` nor a secret in the URL shows."""
    return hashlib.sha256(url.encode()).hexdigest()[:8]


def sign(secret: bytes, timestamp: str, body: bytes) -> str:
    """``sha256=<hex>`` of HMAC-SHA256(secret, ``timestamp.body``)."""
    mac = hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify(
    secret: bytes,
    timestamp: str,
    body: bytes,
    signature: str,
    *,
    max_age_s: float = 300.0,
    now: float | None = None,
) -> bool:
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

    async def post(self, url: str, event: str, body: bytes, *, alert_id: str | None = None) -> int:
        """POST once; returns the HTTP status (raises aiohttp/timeout errors)."""
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        ts = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            TIMESTAMP_HEADER: ts,
            SIGNATURE_HEADER: sign(self._secret, ts, body),
            EVENT_HEADER: event,
        }
        if alert_id is not None:
            headers[ALERT_ID_HEADER] = alert_id
        async with self._session.post(url, data=body, headers=headers) as resp:
            await resp.read()
            return resp.status

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()


class _Queue:
    """One receiver's snapshots: a bounded queue and the worker that posts them in order."""

    def __init__(self, url: str, size: int) -> None:
        self.url = url
        self.items: deque[bytes] = deque(maxlen=size)
        self.wake = asyncio.Event()
        self.empty = asyncio.Event()
        self.task: asyncio.Task[None] | None = None
        self.dropped = 0


class WebhookSink:
    """Snapshots to the webhook URLs, off the cycle's path, one queue per receiver (module docstring)."""

    name = "webhook"
    leader_only = True

    def __init__(
        self,
        urls: list[str],
        secret: bytes,
        *,
        timeout_s: float = 5.0,
        attempts: int = 5,
        initial_backoff_s: float = 1.0,
        max_backoff_s: float = 60.0,
        queue_size: int = 500,
        on_result: Callable[[str], None] | None = None,
    ) -> None:
        self._poster = _Poster(urls, secret, timeout_s)
        self._attempts = attempts
        self._backoff = (initial_backoff_s, max_backoff_s)
        self._queues = [_Queue(url, queue_size) for url in urls]
        self._on_result = on_result or (lambda outcome: None)

    @property
    def dropped(self) -> int:
        """Snapshots dropped, oldest first, from the queues of receivers that fell behind."""
        return sum(q.dropped for q in self._queues)

    async def publish(self, snapshot: Snapshot) -> None:
        """Enqueue for every receiver; returns at once (each receiver's worker posts)."""
        body = snapshot.to_json().encode()
        for q in self._queues:
            if len(q.items) == q.items.maxlen:
                q.dropped += 1
                self._on_result("dropped")
                log.warning("webhook %s: queue full, oldest snapshot dropped", url_id(q.url))
            q.items.append(body)
            q.empty.clear()
            q.wake.set()
            if q.task is None or q.task.done():
                q.task = asyncio.create_task(self._run(q), name=f"riskd-webhook-{url_id(q.url)}")

    @property
    def pending(self) -> int:
        """Snapshots not yet accepted by the receiver furthest behind."""
        return max((len(q.items) for q in self._queues), default=0)

    def pending_for(self, url: str) -> int:
        """Snapshots waiting for one receiver."""
        return next(len(q.items) for q in self._queues if q.url == url)

    async def _run(self, q: _Queue) -> None:
        while True:
            if not q.items:
                q.empty.set()
                q.wake.clear()
                await q.wake.wait()
                continue
            await self._deliver(q.url, q.items[0])
            q.items.popleft()

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
            log.debug("webhook %s attempt %d failed: %s", url_id(url), attempt, detail)
            await asyncio.sleep(delay)
            delay = min(delay * 2, self._backoff[1])
        self._on_result("failed")
        log.warning("webhook %s: snapshot not delivered after %d attempt(s)", url_id(url), attempt)

    async def drain(self, timeout_s: float, url: str | None = None) -> bool:
        """Wait until every queue (or ``url``'s) is empty (tests, ``riskd once``); False on time-out."""
        queues = [q for q in self._queues if url is None or q.url == url]
        waits = [q.empty.wait() for q in queues if q.items]
        if waits:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.gather(*waits), timeout_s)
        return not any(q.items for q in queues)

    async def aclose(self) -> None:
        tasks = [q.task for q in self._queues if q.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self._poster.aclose()


class WebhookChannel:
    """Alerts to webhook URLs through a Redis outbox; the daemon builds one per receiver, so one
    receiver's retries never hold another's alerts (one destination per URL)."""

    name = "webhook"
    max_per_minute: int | None = None
    structured = True  # the pipeline passes the Alert itself: receivers get its JSON, not only the text

    def __init__(self, urls: list[str], secret: bytes, *, timeout_s: float = 5.0, by_id: bool = True) -> None:
        self._poster = _Poster(urls, secret, timeout_s)
        self._urls = {url_id(u) if by_id else u: u for u in urls}
        self.destinations = list(self._urls)
        """Each receiver's :func:`url_id` (``by_id``; the outbox and the logs never hold a URL, which may
        carry a secret, as Slack's do) or, for the outbox of earlier versions, the URL itself."""

    async def send(
        self,
        dest: str,
        text: str,
        *,
        silent: bool,
        chart: bytes | None,
        reply_to: str | None = None,
        alert: Alert | None = None,
    ) -> str:
        """POST ``{"type": "alert", "alert_id", "text", "silent", "alert": {…}}``; a 2xx is the receipt."""
        alert_id = alert.fingerprint if alert is not None else hashlib.sha256(text.encode()).hexdigest()[:16]
        payload = {
            "type": "alert",
            "alert_id": alert_id,
            "text": text,
            "silent": silent,
            "alert": alert.model_dump(mode="json") if alert is not None else None,
        }
        body = json.dumps(payload, sort_keys=True).encode()
        url, name = self._urls[dest], url_id(self._urls[dest])
        try:
            status = await self._poster.post(url, "alert", body, alert_id=alert_id)
        except aiohttp.ClientConnectorError as err:
            raise DeliveryError(
                f"webhook {name}: cannot connect ({type(err).__name__})", definite=True
            ) from err
        except (aiohttp.ClientError, TimeoutError) as err:
            raise DeliveryError(f"webhook {name}: {type(err).__name__}", definite=False) from err
        if not 200 <= status < 300:
            raise DeliveryError(f"webhook {name}: HTTP {status}", definite=True)
        return f"http-{status}"

    async def aclose(self) -> None:
        await self._poster.aclose()
