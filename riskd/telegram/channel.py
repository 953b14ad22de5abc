"""Telegram delivery through python-telegram-bot, the console fallback, and the token's protection.

The channel formats alerts as HTML (:mod:`riskd.telegram.format`) with their inline keyboard, routes
them by severity (``telegram.routes``, default every alert to ``chat_ids``) and names the escalation
chats. It transports: text plus an optional PNG, silent or not, and translates PTB's errors
into :class:`~riskd.alerting.pipeline.DeliveryError` with the one fact the outbox needs — was the
message surely *not* delivered (the server answered with an error, or we never connected), or is it
unknown (the connection broke or timed out after the request left)? Retries, backoff, 429 pauses
and the rate limit live in the channel-agnostic pipeline.

The bot token sits in every request URL, and PTB itself writes it into ``InvalidToken`` messages,
and httpx logs URLs at INFO. :func:`protect_token` installs a logging filter that scrubs it from the
records of riskd's, PTB's and httpx's loggers, so no log line carries it.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
import warnings
from datetime import timedelta
from typing import TYPE_CHECKING, Any, TextIO

import httpx
from telegram import Bot, InlineKeyboardMarkup, ReplyParameters
from telegram.constants import ParseMode
from telegram.error import BadRequest, Forbidden, InvalidToken, NetworkError, RetryAfter, TelegramError
from telegram.request import HTTPXRequest

from riskd.alerting.channel import DeliveryError
from riskd.contract.models import Alert
from riskd.telegram.format import Links, alert_html
from riskd.telegram.keyboards import alert_keyboard

if TYPE_CHECKING:
    from datetime import datetime

    from riskd.config import TelegramSettings

log = logging.getLogger("riskd.telegram")

CAPTION_LIMIT = 1024
"""Telegram caps photo captions at 1024 characters; longer alerts go as text without the chart."""
TEXT_LIMIT = 4096
PATIENCE_FACTOR = 3.0
PATIENCE_CAP_S = 30.0
"""After a send times out with its outcome unknown, the next ones wait ``PATIENCE_FACTOR`` times longer for
Telegram's answer, up to ``PATIENCE_CAP_S`` (or ``telegram.read_timeout_s`` when larger; below the outbox
lease's send cut-off): a Telegram answering in 20 s confirms the one "possibly repeated" copy instead of
every copy timing out. A quick answer brings the time-out back to ``telegram.read_timeout_s``."""
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
"""Transport errors raised before the request left: the message surely was not delivered."""
_SCRUBBED_LOGGERS = ("riskd", "httpx", "httpcore", "telegram")


class _Redact(logging.Filter):
    """Replaces the secret in a record's message and traceback with ``<token>``."""

    def __init__(self, secret: str) -> None:
        super().__init__()
        self.secret = secret

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.getMessage()
        if self.secret in msg:
            record.msg, record.args = msg.replace(self.secret, "<token>"), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text and self.secret in record.exc_text:
            record.exc_text = record.exc_text.replace(self.secret, "<token>")
        return True


def protect_token(token: str) -> None:
    """Scrub ``token`` from every record of riskd's, PTB's and httpx's loggers (idempotent).

    A filter on a logger only sees records created by that very logger, so it is attached to every
    existing logger of those families (PTB creates its loggers at import time).
    """
    names = [n for n in logging.root.manager.loggerDict if n.split(".")[0] in _SCRUBBED_LOGGERS]
    for name in {*names, *_SCRUBBED_LOGGERS}:
        logger = logging.getLogger(name)
        if not any(isinstance(f, _Redact) and f.secret == token for f in logger.filters):
            logger.addFilter(_Redact(token))
    logging.getLogger("httpx").setLevel(max(logging.WARNING, logging.getLogger("httpx").level))


def bot_base_url(api_base_url: str | None) -> str:
    """PTB's base URL (``…/bot``, the token is appended); accepts the override with or without ``/bot``."""
    if not api_base_url:
        return "https://api.telegram.org/bot"
    url = api_base_url.rstrip("/")
    return url if url.endswith("/bot") else f"{url}/bot"


def make_bot(tg: TelegramSettings) -> Bot:
    """A PTB Bot for ``tg`` (token required; time-outs from ``telegram.*_timeout_s``), with its own
    request pool for long polling."""
    if tg.token is None:
        raise ValueError("make_bot needs telegram.token")
    token = tg.token.get_secret_value()
    protect_token(token)
    base = bot_base_url(tg.api_base_url)
    timeout_s, connect_s = tg.read_timeout_s, tg.connect_timeout_s
    req = HTTPXRequest(
        connect_timeout=connect_s,
        read_timeout=timeout_s,
        write_timeout=timeout_s,
        media_write_timeout=timeout_s * 2,
        pool_timeout=5.0,
    )
    poll_req = HTTPXRequest(connect_timeout=connect_s, read_timeout=timeout_s, pool_timeout=5.0)
    return Bot(
        token,
        base_url=base,
        base_file_url=base[: -len("/bot")] + "/file/bot",
        request=req,
        get_updates_request=poll_req,
    )


def _retry_after_s(exc: RetryAfter) -> float:
    with warnings.catch_warnings():  # PTB 22 warns that the attribute will become a timedelta
        warnings.simplefilter("ignore")
        value: Any = exc.retry_after
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


def translate_error(exc: TelegramError) -> DeliveryError:
    """PTB error → DeliveryError, deciding whether the message surely did not arrive."""
    if isinstance(exc, RetryAfter):
        return DeliveryError(
            f"rate limited by Telegram ({exc})", definite=True, retry_after=_retry_after_s(exc)
        )
    if isinstance(exc, BadRequest | Forbidden | InvalidToken):
        return DeliveryError(f"{type(exc).__name__}: {exc}", definite=True)
    cause = exc.__cause__
    if (
        isinstance(exc, NetworkError)
        and isinstance(cause, httpx.HTTPError)
        and not isinstance(cause, _NOT_SENT)
    ):
        return DeliveryError(f"{type(exc).__name__}: {exc} (delivery unknown)", definite=False)
    # Server answered with an error status, or we never connected.
    return DeliveryError(f"{type(exc).__name__}: {exc}", definite=True)


class TelegramChannel:
    """Sends alerts as HTML with buttons (the chart as a photo when it fits) to the chats of their severity."""

    name = "telegram"
    structured = True  # the pipeline passes the Alert: its buttons carry the fingerprint and kind

    def __init__(self, tg: TelegramSettings, *, bot: Bot | None = None, links: Links | None = None) -> None:
        self.bot = bot or make_bot(tg)
        self._token = tg.token.get_secret_value() if tg.token else ""
        self.links = links or Links(grafana_url=tg.grafana_url)
        self.routes = {sev: [str(c) for c in chats] for sev, chats in tg.routes.items()}
        self.default_dests = [str(c) for c in tg.chat_ids]
        esc_dests = [str(c) for c in tg.escalation_chat_ids]
        self.escalation = (esc_dests, tg.escalate_after) if esc_dests and tg.escalate_after > 0 else None
        every = [*self.default_dests, *(c for chats in self.routes.values() for c in chats), *esc_dests]
        self.destinations = list(dict.fromkeys(every))
        self.max_per_minute: int | None = tg.max_messages_per_minute
        self._ready = False
        self._identify: asyncio.Task[None] | None = None
        self._base_read_s = tg.read_timeout_s
        self._read_s = tg.read_timeout_s

    def __repr__(self) -> str:
        return f"TelegramChannel(chats={self.destinations})"

    def destinations_for(self, alert: Alert) -> list[str]:
        """The chats of the alert's severity (``telegram.routes``), else ``chat_ids``."""
        return self.routes.get(alert.severity, self.default_dests)

    def render(
        self, alert: Alert, *, now: datetime, maybe_repeated: bool = False, escalation: float | None = None
    ) -> str:
        """The alert as Telegram HTML (see :func:`riskd.telegram.format.alert_html`)."""
        return alert_html(
            alert, links=self.links, now=now, maybe_repeated=maybe_repeated, escalated_after_min=escalation
        )

    async def send(
        self,
        dest: str,
        text: str,
        *,
        silent: bool,
        chart: bytes | None,
        alert: Alert | None = None,
        reply_to: str | None = None,
    ) -> str:
        """Deliver one message (HTML, with the alert's buttons; a reply to message ``reply_to`` when given,
        which need not exist any more); returns Telegram's message id once confirmed."""
        markup: InlineKeyboardMarkup | None = alert_keyboard(alert) if alert is not None else None
        reply = ReplyParameters(int(reply_to), allow_sending_without_reply=True) if reply_to else None
        started = time.monotonic()
        try:
            await self._ensure_ready()
            if chart and len(text) <= CAPTION_LIMIT:
                msg = await self.bot.send_photo(
                    int(dest),
                    photo=chart,
                    caption=text,
                    disable_notification=silent,
                    parse_mode=ParseMode.HTML,
                    reply_markup=markup,
                    reply_parameters=reply,
                    read_timeout=self._read_s,
                )
            else:
                msg = await self.bot.send_message(
                    int(dest),
                    text[:TEXT_LIMIT],
                    disable_notification=silent,
                    parse_mode=ParseMode.HTML,
                    reply_markup=markup,
                    reply_parameters=reply,
                    read_timeout=self._read_s,
                )
        except TelegramError as exc:
            err = self._scrubbed(translate_error(exc))
            if not err.definite:  # the request left and no answer came in time: wait longer next time
                self._read_s = min(self._read_s * PATIENCE_FACTOR, max(self._base_read_s, PATIENCE_CAP_S))
            raise err from None
        if time.monotonic() - started < self._base_read_s / 2:
            self._read_s = self._base_read_s  # Telegram is quick again
        return str(msg.message_id)

    async def _ensure_ready(self) -> None:
        """Start the bot's identification (``getMe``) in the background and return at once: a send needs
        only the HTTP pools, which exist from construction, so a slow or failing ``getMe`` never holds an
        alert back (it once did for 3.5 simulated hours, CRITICAL included; issue 19)."""
        if self._identify is None:
            self._identify = asyncio.create_task(self._identify_until_done(), name="riskd-telegram-getme")

    async def _identify_until_done(self) -> None:
        """``Bot.initialize`` until it succeeds, backing off 5 s → 5 min; said once per failing spell."""
        pause, failing = 5.0, False
        while True:
            try:
                await self.bot.initialize()
            except TelegramError as exc:
                if not failing:
                    log.warning(
                        "Telegram getMe failed (%s): alerts are still sent; retrying", self._scrub(exc)
                    )
                failing = True
                await asyncio.sleep(pause)
                pause = min(pause * 2, 300.0)
                continue
            self._ready = True
            if failing:
                log.info("Telegram getMe answered: the bot is identified")
            return

    def _scrub(self, exc: BaseException) -> str:
        text = str(exc)
        return text.replace(self._token, "<token>") if self._token else text

    def _scrubbed(self, err: DeliveryError) -> DeliveryError:
        if self._token and self._token in str(err):
            return DeliveryError(
                str(err).replace(self._token, "<token>"), definite=err.definite, retry_after=err.retry_after
            )
        return err

    async def aclose(self) -> None:
        """Stop identifying and close the HTTP pools."""
        if self._identify is not None:
            self._identify.cancel()
            await asyncio.gather(self._identify, return_exceptions=True)
            self._identify = None
        await self.bot.shutdown()
        self._ready = False


class ConsoleChannel:
    """Prints alerts to a stream (stdout by default): the channel when no token is configured."""

    name = "console"
    max_per_minute: int | None = None

    def __init__(self, stream: TextIO | None = None) -> None:
        self.destinations = ["console"]
        self._stream = stream
        self._count = 0

    async def send(
        self, dest: str, text: str, *, silent: bool, chart: bytes | None, reply_to: str | None = None
    ) -> str:
        """Print the alert between rules; never fails."""
        stream = self._stream or sys.stdout
        extra = f"(chart {len(chart)} bytes not shown)" if chart else ""
        extra += f"(in reply to {reply_to})" if reply_to else ""
        stream.write(f"{'─' * 60}\n{text}\n{extra}{' (silent)' if silent else ''}\n")
        stream.flush()
        self._count += 1
        return f"console-{self._count}"

    async def aclose(self) -> None:
        """Nothing to close."""


def build_channel(tg: TelegramSettings, links: Links | None = None) -> TelegramChannel | ConsoleChannel:
    """Telegram when a token and chats are configured, else the console — and say so in the log."""
    if tg.token is None or not tg.token.get_secret_value():
        log.warning("no Telegram token configured (telegram.token): alerts go to the console")
        return ConsoleChannel()
    if not tg.chat_ids and not any(tg.routes.values()):
        log.warning("Telegram token set but telegram.chat_ids is empty: alerts go to the console")
        return ConsoleChannel()
    channel = TelegramChannel(tg, links=links)
    log.info("Telegram alerts to %d chat(s) via %s", len(tg.chat_ids), bot_base_url(tg.api_base_url))
    return channel
