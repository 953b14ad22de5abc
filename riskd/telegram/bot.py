"""The Telegram command bot: long-polls getUpdates, answers commands and button presses from allowed ids.

A hand loop over ``Bot.get_updates`` rather than ``telegram.ext.Application``: no conversation state,
no job queue; the loop is ~40 lines we own, whose lifecycle is a plain asyncio task the daemon starts
and cancels next to its other tasks (Application wants to own initialise/start/stop/shutdown and its
own Updater). The allow-list check runs before anything else, so a stranger's command costs one log
line and gets no answer at all; a stranger's button press is answered empty (the spinner stops) and
logged, never honoured.

Roles: ``telegram.allowed_ids`` (users or whole chats) read; ``telegram.admin_ids`` (users) also act —
mute, unmute, acknowledge. Commands come from the one table in :mod:`riskd.telegram.commands`; button
presses are handled by :mod:`riskd.telegram.callbacks`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import warnings
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError
from redis.exceptions import RedisError
from telegram import Bot, Message, Update
from telegram.constants import ParseMode
from telegram.error import Conflict, InvalidToken, TelegramError
from telegram.warnings import PTBUserWarning

from riskd.telegram import callbacks
from riskd.telegram.commands import BY_NAME, MuteControl, Reply, StatusSource, help_text, menu
from riskd.telegram.format import Links, esc

if TYPE_CHECKING:
    from riskd.alerting.outbox import Outbox
    from riskd.config import TelegramSettings

log = logging.getLogger("riskd.commands")
# We poll getUpdates raw on purpose (see CommandBot._poll); PTB suggests its parsing wrapper each call.
warnings.filterwarnings("ignore", message=r"Please use 'Bot\.getUpdates'", category=PTBUserWarning)

MAX_REPLY_CHARS = 4096
"""Telegram refuses a message longer than this (counted in UTF-16 code units, as Telegram does)."""
TRUNCATED = "\n… (truncated)"


def cap_reply(text: str, limit: int = MAX_REPLY_CHARS) -> str:
    """``text`` cut to fit one Telegram message, ending in a visible "… (truncated)" when it was cut.

    The cut falls on a line boundary when there is one, so an HTML tag (always opened and closed on one
    line) is never split."""
    if _utf16_len(text) <= limit:
        return text
    room = limit - _utf16_len(TRUNCATED)
    cut = text[:room]
    while _utf16_len(cut) > room:  # characters outside the BMP count twice
        cut = cut[:-1]
    if "\n" in cut:
        cut = cut[: cut.rindex("\n")]
    return cut + TRUNCATED


def _utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def failure_reply(command: str, exc: BaseException) -> str:
    """What the user reads when a command failed: the reason in plain words, never Python's text."""
    if isinstance(exc, RedisError | OSError | TimeoutError):
        why = "riskd cannot reach its Redis right now"
    elif isinstance(exc, ValidationError | ValueError):
        why = "the published state could not be read (an unexpected format)"
    else:
        why = "an internal error"
    return f"{esc(command)} failed: {why}. Try again in a minute; the details are in riskd's log."


class CommandBot:
    """Answers commands and buttons from ``allowed_ids`` and ``admin_ids``; everyone else: silence and a log line.

    ``mutes`` is the alert pipeline (mutes; its ``outbox`` holds acknowledgements and the delivered
    alerts' message ids); ``clock`` is the injected time (acknowledgement stamps, freshness).
    """

    def __init__(
        self,
        bot: Bot,
        tg: TelegramSettings,
        source: StatusSource,
        mutes: MuteControl,
        *,
        poll_timeout_s: float = 25.0,
        links: Links | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.bot = bot
        self.admins = set(tg.admin_ids)
        self.allowed = set(tg.allowed_ids)
        self.readers = self.allowed | self.admins
        self.source = source
        self.mutes = mutes
        self.outbox: Outbox | None = getattr(mutes, "outbox", None)
        self.links = links or Links(grafana_url=tg.grafana_url)
        self._clock = clock
        self.poll_timeout_s = poll_timeout_s
        self.offset: int | None = None
        self._task: asyncio.Task[None] | None = None
        self._batch: asyncio.Future[int] | None = None  # the updates being answered (a stop lets it finish)

    def now(self) -> datetime:
        """The injected clock's time (UTC)."""
        return self._clock()

    def may_read(self, user_id: int | None, chat_id: int | None) -> bool:
        """Allowed user, allowed chat, or admin."""
        return user_id in self.readers or chat_id in self.allowed

    def may_act(self, user_id: int | None) -> bool:
        """Only admins (by user id, never by chat) mute, unmute and acknowledge."""
        return user_id in self.admins

    def start(self) -> asyncio.Task[None]:
        """Run the polling loop as a task; ``await stop()`` ends it."""
        self._task = asyncio.create_task(self.run(), name="riskd-command-bot")
        return self._task

    async def stop(self) -> None:
        """Cancel the loop, let the batch in hand finish (an update is never left half-answered, so its
        offset moves), and confirm the last update to Telegram, so a restart does not re-answer."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._batch is not None:
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(self._batch, 10)
            self._batch = None
        if self.offset is not None:  # raw, like polling: the next update may be one PTB cannot parse
            confirm = {"offset": self.offset, "timeout": 0, "limit": 1}
            with contextlib.suppress(TelegramError, TimeoutError, ValueError):
                await asyncio.wait_for(self.bot.do_api_request("getUpdates", api_kwargs=confirm), 3)

    async def run(self) -> None:
        """Poll forever (until cancelled); network trouble backs off, a bad update is skipped, never fatal."""
        if not self.readers:
            log.warning("telegram.allowed_ids and admin_ids are empty: every command will be ignored")
        await self._prepare()
        backoff = 1.0
        while True:
            try:
                raw = await self._poll()
                backoff = 1.0
            except (Conflict, InvalidToken) as exc:
                log.error("command bot cannot poll (%s): %s", type(exc).__name__, exc)
                await asyncio.sleep(30)
                continue
            except (TelegramError, ValueError) as exc:  # ValueError: a reply that is not JSON
                log.warning("command bot poll failed: %s; retrying in %.0fs", _one_line(exc), backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 30)
                continue
            self._batch = asyncio.ensure_future(
                self.process(raw)
            )  # a stop waits for it: no half-answered update
            handled = await asyncio.shield(self._batch)
            self._batch = None
            if handled == 0 and raw:  # only updates without an id: nothing to confirm
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 30)

    async def _poll(self) -> list[Any]:
        """getUpdates as raw JSON: PTB's ``get_updates`` parses the whole batch at once, so one malformed
        update would fail every poll, forever, without our learning which id to confirm."""
        kwargs: dict[str, Any] = {
            "timeout": int(self.poll_timeout_s),
            "allowed_updates": ["message", "callback_query"],
        }
        if self.offset is not None:
            kwargs["offset"] = self.offset
        raw = await self.bot.do_api_request(
            "getUpdates", api_kwargs=kwargs, read_timeout=self.poll_timeout_s + 10
        )
        return raw if isinstance(raw, list) else []

    async def process(self, raw: list[Any]) -> int:
        """Handle a batch one update at a time and move the offset past each, answered or not.

        A bad update (not an object, a message that is a string, a text that is a number, missing
        fields) is logged in one line and confirmed with the next poll, so it is never fetched again.
        Returns how many updates had an id (0: nothing could be confirmed).
        """
        with_id = 0
        for item in raw:
            update_id = item.get("update_id") if isinstance(item, dict) else None
            if not isinstance(update_id, int) or isinstance(update_id, bool):
                update_id = None
            try:
                await self.handle(Update.de_json(item, self.bot))
            except Exception as exc:  # anything Telegram (or a fake) sends must not stop the bot
                log.warning(
                    "command bot skipped a malformed update id=%s: %s: %s",
                    update_id,
                    type(exc).__name__,
                    _one_line(exc),
                )
            if update_id is not None:
                with_id += 1
                self.offset = max(self.offset or 0, update_id + 1)
        return with_id

    async def _prepare(self) -> None:
        """Drop a webhook (getUpdates refuses to work with one) and publish the command menu."""
        try:
            await self.bot.delete_webhook(drop_pending_updates=False)
            await self.bot.set_my_commands(menu())
        except TelegramError as exc:
            log.warning("command bot set-up call failed (continuing): %s", exc)

    async def handle(self, update: Update) -> str | None:
        """Answer one update (a command or a button press); returns the reply sent (None: ignored)."""
        if update.callback_query is not None:
            return await callbacks.handle_press(self, update.callback_query)
        msg = update.message
        text = getattr(msg, "text", None)
        if msg is None or not isinstance(text, str) or not text.startswith("/"):
            return None
        user_id = msg.from_user.id if msg.from_user else None
        chat_id = msg.chat.id
        command = text.split()[0].split("@")[0].lower()
        if not self.may_read(user_id, chat_id):
            log.warning(
                "ignored command %s from non-allowed id user=%s chat=%s", command[:32], user_id, chat_id
            )
            return None
        entry = BY_NAME.get(command)
        if entry is not None and entry.admin and not self.may_act(user_id):
            log.warning(
                "refused admin command %s from read-only id user=%s chat=%s", command, user_id, chat_id
            )
            reply = Reply(f"{esc(command)} is for admins (telegram.admin_ids); you may read only.")
        else:
            try:
                reply = await entry.handler(self, text.split()[1:]) if entry else Reply(help_text())
            except Exception as exc:  # a failing source must not kill the bot; the user gets the reason
                log.warning("command %s failed: %s: %s", command, type(exc).__name__, _one_line(exc))
                reply = Reply(failure_reply(command, exc))
        await self.send(chat_id, reply)
        return reply.text

    async def send(self, chat_id: int, reply: Reply) -> Message | None:
        """Send a reply (HTML, capped to Telegram's limit); a failure is logged, never raised."""
        try:
            if reply.photo is not None:
                return await self.bot.send_photo(
                    chat_id,
                    reply.photo,
                    caption=cap_reply(reply.text, 1024),
                    parse_mode=ParseMode.HTML,
                    reply_markup=reply.markup,
                )
            return await self.bot.send_message(
                chat_id, cap_reply(reply.text), parse_mode=ParseMode.HTML, reply_markup=reply.markup
            )
        except TelegramError as exc:
            log.warning("command reply to chat=%s failed: %s", chat_id, _one_line(exc))
            return None


def _one_line(exc: BaseException, limit: int = 200) -> str:
    """An exception's text for a log line: one line, bounded (it may quote a stranger's input)."""
    text = " ".join(str(exc).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
