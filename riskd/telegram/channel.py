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

import logging
import sys
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


def make_bot(tg: TelegramSettings, *, timeout_s: float = 10.0) -> Bot:
    """A PTB Bot for ``tg`` (token required), with its own request pool for long polling."""
    if tg.token is None:
        raise ValueError("make_bot needs telegram.token")
    token = tg.token.get_secret_value()
    protect_token(token)
    base = bot_base_url(tg.api_base_url)
    req = HTTPXRequest(
        connect_timeout=5.0,
        read_timeout=timeout_s,
        write_timeout=timeout_s,
        media_write_timeout=timeout_s * 2,
        pool_timeout=5.0,
    )
    poll_req = HTTPXRequest(connect_timeout=5.0, read_timeout=timeout_s, pool_timeout=5.0)
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
                )
            else:
                msg = await self.bot.send_message(
                    int(dest),
                    text[:TEXT_LIMIT],
                    disable_notification=silent,
                    parse_mode=ParseMode.HTML,
                    reply_markup=markup,
                    reply_parameters=reply,
                )
        except TelegramError as exc:
            raise self._scrubbed(translate_error(exc)) from None
        return str(msg.message_id)

    async def _ensure_ready(self) -> None:
        """Initialise lazily, so a Telegram outage at start does not stop riskd (the outbox waits)."""
        if not self._ready:
            await self.bot.initialize()
            self._ready = True

    def _scrubbed(self, err: DeliveryError) -> DeliveryError:
        if self._token and self._token in str(err):
            return DeliveryError(
                str(err).replace(self._token, "<token>"), definite=err.definite, retry_after=err.retry_after
            )
        return err

    async def aclose(self) -> None:
        """Close the HTTP pools."""
        if self._ready:
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
