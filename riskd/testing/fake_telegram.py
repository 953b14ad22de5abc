"""A loopback fake of the Telegram Bot API, for driving the real python-telegram-bot client in tests.

It answers the methods PTB calls (getMe, sendMessage, sendPhoto with multipart upload, getUpdates
with long polling, deleteWebhook, setMyCommands, getWebhookInfo, close, logOut, editMessageText,
editMessageCaption, editMessageReplyMarkup, answerCallbackQuery), checks HTML ``parse_mode`` text as
Telegram does (an unknown tag, an unbalanced one or a bare ``&`` is a 400 "can't parse entities"),
records every message it delivered with its buttons and edits (``events``, :meth:`transcript`),
serves button presses (``push_callback``) and updates that tests inject (``push_command``; ``push_raw`` for any JSON at
all, as a broken or future Telegram might send: a message that is a string, a text that is a number,
missing fields, unknown update types), and plays scripted
failures on the send methods: ``fail_next(429, retry_after=1)``, ``fail_next(500)``,
``hang_next()`` (never answers, never delivers: the request was lost) and
``hang_next(record=True)`` (delivers, then never answers: the crash window of any non-idempotent API).

    async with FakeTelegram() as tg:
        bot = telegram.Bot(token, base_url=tg.base_url)

``start_in_thread()`` runs it on its own event loop for synchronous code.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import threading
import time
from collections.abc import Callable
from typing import Any

from aiohttp import web

from riskd.testing.telegram_wire import (
    BOT_USER,
    Delivered,
    Failure,
    callback_update,
    command_update,
    error,
    html_error,
    message_result,
    ok,
    params_of,
    update_id,
)

_SEND_METHODS = frozenset({"sendmessage", "sendphoto"})


class FakeTelegram:
    """The fake server; ``base_url`` is PTB's format (``http://127.0.0.1:PORT/bot``)."""

    def __init__(self, *, token: str | None = None) -> None:
        self.expected_token = token
        self.delivered: list[Delivered] = []
        self.calls: list[str] = []
        self.failures_served: list[int] = []
        self.tokens_seen: set[str] = set()
        self.confirmed_offset = 0
        self.events: list[dict[str, Any]] = []
        self.answered: list[dict[str, Any]] = []
        self.menu: list[dict[str, Any]] = []
        self.hanging = 0
        self.delay_s = 0.0
        """Every Bot API call is answered this many seconds late (a slow Telegram): what a call does — a
        message delivered, a command read — happens on arrival, only the answer waits."""
        self.port = 0
        self._script: list[Failure] = []
        self._updates: list[Any] = []
        self.served_updates: list[Any] = []
        self._update_ids = itertools.count(1)
        self._message_ids = itertools.count(1)
        self._new_update: asyncio.Event | None = None
        self._closing: asyncio.Event | None = None
        self._runner: web.AppRunner | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        """PTB ``base_url``: the token is appended to it."""
        return f"http://127.0.0.1:{self.port}/bot"

    # -- scripting ---------------------------------------------------------------------------------

    def fail_next(self, status: int, *, retry_after: int | None = None, times: int = 1) -> None:
        """The next ``times`` send calls answer ``status`` (429 carries ``parameters.retry_after``)."""
        self._script += [Failure(status=status, retry_after=retry_after) for _ in range(times)]

    def pass_next(self, times: int = 1) -> None:
        """The next ``times`` send calls succeed (to place failures after some deliveries)."""
        self._script += [Failure(status=200) for _ in range(times)]

    def hang_next(self, *, record: bool = False) -> None:
        """The next send call never answers; with ``record`` the message is delivered first."""
        self._script.append(Failure(hang=True, record=record))

    def clear_failures(self) -> None:
        """Forget the scripted failures not served yet."""
        self._script.clear()

    def push_command(self, from_id: int, chat_id: int, text: str) -> int:
        """Queue an incoming message (a command) for getUpdates; returns its update_id (thread-safe)."""
        update_id = next(self._update_ids)
        self._queue(command_update(update_id, next(self._message_ids), from_id, chat_id, text))
        return update_id

    def push_raw(self, payload: Any, *, with_id: bool = True) -> int | None:
        """Queue ``payload`` as one getUpdates item, as it is (thread-safe). An object without an
        ``update_id`` gets the next one unless ``with_id`` is False; returns the id it carries, if any.
        Items without an id are served once (nothing can confirm them)."""
        update_id: int | None = None
        if isinstance(payload, dict):
            payload = dict(payload)
            if with_id and "update_id" not in payload:
                payload["update_id"] = next(self._update_ids)
            raw_id = payload.get("update_id")
            update_id = raw_id if isinstance(raw_id, int) else None
        self._queue(payload)
        return update_id

    def push_callback(
        self, from_id: int, message: Delivered, data: str, *, username: str | None = None
    ) -> int:
        """Queue a button press on ``message`` by ``from_id`` (thread-safe); returns its update_id."""
        update_id = next(self._update_ids)
        self._queue(callback_update(update_id, from_id, message, data, username))
        return update_id

    def message(self, chat_id: int, message_id: int) -> Delivered | None:
        """The delivered message ``message_id`` of ``chat_id``, as it reads now."""
        return next((m for m in self.delivered if m.chat_id == chat_id and m.message_id == message_id), None)

    def transcript(self) -> str:
        """What the chats saw, in order: each message, edit and callback answer as readable lines."""
        out = []
        for e in self.events:
            where = f" chat={e['chat_id']} msg={e['message_id']}" if "chat_id" in e else ""
            head = f"[{e['method']}]{where}"
            body = e.get("plain") or e.get("text") or ""
            buttons = " ".join(f"[{label}]" for label, _ in e.get("buttons", []))
            out.append("\n".join(x for x in (head, body, buttons) if x))
        return "\n\n".join(out)

    def next_update_id(self) -> int:
        """Reserve the next update id (for raw payloads that should carry a real one)."""
        return next(self._update_ids)

    def _queue(self, update: Any) -> None:
        if self._loop is not None and self._in_other_thread():
            self._loop.call_soon_threadsafe(self._add_update, update)
        else:
            self._add_update(update)

    def messages_to(self, chat_id: int) -> list[Delivered]:
        """Messages delivered to one chat, oldest first."""
        return [m for m in self.delivered if m.chat_id == chat_id]

    async def wait_for(self, predicate: Callable[[], bool], within_s: float = 10.0) -> None:
        """Poll ``predicate`` until true; AssertionError after ``within_s`` seconds."""
        deadline = time.monotonic() + within_s
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError(f"condition not met within {within_s}s; delivered={len(self.delivered)}")
            await asyncio.sleep(0.02)

    # -- lifecycle ---------------------------------------------------------------------------------

    async def start(self) -> FakeTelegram:
        """Listen on a free loopback port."""
        self._loop = asyncio.get_running_loop()
        self._new_update = asyncio.Event()
        self._closing = asyncio.Event()
        app = web.Application()
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        self._runner = web.AppRunner(app, shutdown_timeout=1.0, access_log=None)  # URLs carry the token
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = int(self._runner.addresses[0][1])
        return self

    async def close(self) -> None:
        """Release hung requests and stop listening."""
        if self._closing is not None:
            self._closing.set()
        if self._new_update is not None:
            self._new_update.set()  # wake long polls so they see the closing
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeTelegram:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def start_in_thread(self) -> FakeTelegram:
        """Run the server on its own loop in a daemon thread (for synchronous tests)."""
        ready = threading.Event()
        loop = asyncio.new_event_loop()

        def serve() -> None:
            asyncio.set_event_loop(loop)
            loop.run_until_complete(self.start())
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self.close())
            loop.close()

        self._thread = threading.Thread(target=serve, name="fake-telegram", daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("fake Telegram did not start")
        return self

    def stop_thread(self) -> None:
        """Stop a server started with ``start_in_thread``."""
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
            self._thread = None

    # -- the API -----------------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.Response:
        answer = await self._answer(request)
        if self.delay_s > 0 and request.match_info["method"].lower() != "getupdates":
            assert self._closing is not None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closing.wait(), self.delay_s)
        return answer

    async def _answer(self, request: web.Request) -> web.Response:
        token = request.match_info["token"]
        method = request.match_info["method"]
        self.tokens_seen.add(token)
        self.calls.append(method)
        if self.expected_token is not None and token != self.expected_token:
            return error(401, "Unauthorized")
        params, files = await params_of(request)
        name = method.lower()
        bad = html_error(params)
        if bad and (name in _SEND_METHODS or name.startswith("editmessage")):
            return error(400, f"Bad Request: can't parse entities: {bad}")
        if name.startswith("editmessage"):
            return self._edit(method, params)
        if name == "answercallbackquery":
            self.answered.append(dict(params))
            self.events.append({"method": method, "text": params.get("text", "")})
            return ok(True)
        if name == "setmycommands":
            self.menu = json.loads(params.get("commands", "[]"))
        if name in _SEND_METHODS and self._script:
            return await self._fail(self._script.pop(0), method, params, files)
        if name in _SEND_METHODS:
            return ok(self._deliver(method, params, files))
        if name == "getupdates":
            return ok(await self._get_updates(params))
        simple: dict[str, Any] = {
            "getme": BOT_USER,
            "deletewebhook": True,
            "setmycommands": True,
            "getmycommands": [],
            "close": True,
            "logout": True,
            "getwebhookinfo": {"url": "", "has_custom_certificate": False, "pending_update_count": 0},
        }
        if name in simple:
            return ok(simple[name])
        return error(404, "Not Found: method not found")

    async def _fail(
        self, failure: Failure, method: str, params: dict[str, str], files: dict[str, bytes]
    ) -> web.Response:
        if failure.status == 200 and not failure.hang:
            return ok(self._deliver(method, params, files))
        self.failures_served.append(0 if failure.hang else failure.status)
        if failure.hang:
            if failure.record:
                self._deliver(method, params, files)
            self.hanging += 1
            assert self._closing is not None
            await self._closing.wait()
            return error(500, "Internal Server Error: shutting down")
        if failure.status == 429:
            ra = failure.retry_after or 1
            return error(429, f"Too Many Requests: retry after {ra}", {"retry_after": ra})
        return error(failure.status, "Internal Server Error")

    def _deliver(self, method: str, params: dict[str, str], files: dict[str, bytes]) -> dict[str, Any]:
        chat_id = int(params["chat_id"])
        text = params.get("text") or params.get("caption") or ""
        photo = next(iter(files.values()), None) if method.lower() == "sendphoto" else None
        msg_id = next(self._message_ids)
        silent = params.get("disable_notification", "false").lower() in ("true", "1")
        markup = json.loads(params["reply_markup"]) if params.get("reply_markup") else None
        reply = (
            json.loads(params["reply_parameters"]).get("message_id")
            if params.get("reply_parameters")
            else None
        )
        msg = Delivered(
            method,
            chat_id,
            text,
            silent,
            photo,
            msg_id,
            reply_to=reply,
            parse_mode=params.get("parse_mode"),
            reply_markup=markup,
        )
        self.delivered.append(msg)
        self._event(method, msg)
        result: dict[str, Any] = {
            "message_id": msg_id,
            "date": int(time.time()),
            "chat": {"id": chat_id, "type": "private" if chat_id > 0 else "group", "title": "riskd"},
            "from": BOT_USER,
        }
        if photo is not None:
            result["caption"] = text
            result["photo"] = [
                {
                    "file_id": f"p{msg_id}",
                    "file_unique_id": f"u{msg_id}",
                    "width": 600,
                    "height": 320,
                    "file_size": len(photo),
                }
            ]
        else:
            result["text"] = text
        return result

    def _edit(self, method: str, params: dict[str, str]) -> web.Response:
        """editMessageText / editMessageCaption / editMessageReplyMarkup, with Telegram's refusals."""
        name = method.lower()
        msg = self.message(int(params.get("chat_id") or 0), int(params.get("message_id") or 0))
        if msg is None:
            return error(400, "Bad Request: message to edit not found")
        markup = json.loads(params["reply_markup"]) if params.get("reply_markup") else None
        if name == "editmessagetext" and msg.photo is not None:
            return error(400, "Bad Request: there is no text in the message to edit")
        if name == "editmessagecaption" and msg.photo is None:
            return error(400, "Bad Request: there is no caption in the message to edit")
        new = params.get("text") or params.get("caption") or ""
        text = msg.text if name == "editmessagereplymarkup" else new
        if text == msg.text and markup == msg.reply_markup:
            return error(400, "Bad Request: message is not modified")
        if text != msg.text:
            msg.edits.append(msg.text)
            msg.text = text
            msg.parse_mode = params.get("parse_mode", msg.parse_mode)
        msg.reply_markup = markup
        self._event(method, msg)
        return ok(message_result(msg))

    def _event(self, method: str, msg: Delivered) -> None:
        self.events.append(
            {
                "method": method,
                "chat_id": msg.chat_id,
                "message_id": msg.message_id,
                "text": msg.text,
                "plain": msg.plain,
                "buttons": msg.buttons,
            }
        )

    async def _get_updates(self, params: dict[str, str]) -> list[Any]:
        offset = int(params.get("offset") or 0)
        limit = int(params.get("limit") or 100)
        timeout = float(params.get("timeout") or 0)
        if offset:
            self.confirmed_offset = max(self.confirmed_offset, offset)
            self._updates = [u for u in self._updates if (uid := update_id(u)) is None or uid >= offset]
        assert self._new_update is not None
        assert self._closing is not None
        deadline = time.monotonic() + timeout
        while not self._updates and time.monotonic() < deadline and not self._closing.is_set():
            self._new_update.clear()
            try:
                await asyncio.wait_for(self._new_update.wait(), deadline - time.monotonic())
            except TimeoutError:
                break
        batch = self._updates[:limit]
        self.served_updates.extend(batch)
        self._updates = [
            u for u in self._updates if update_id(u) is not None or u not in batch
        ]  # served once
        return batch

    def _add_update(self, update: Any) -> None:
        self._updates.append(update)
        if self._new_update is not None:
            self._new_update.set()

    def _in_other_thread(self) -> bool:
        try:
            return asyncio.get_running_loop() is not self._loop
        except RuntimeError:
            return True
