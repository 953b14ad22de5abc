"""A loopback fake of the Telegram Bot API, for driving the real python-telegram-bot client in tests.

It answers the methods PTB calls (getMe, sendMessage, sendPhoto with multipart upload, getUpdates
with long polling, deleteWebhook, setMyCommands, getWebhookInfo, close, logOut), records every
message it delivered, serves updates that tests inject (``push_command``), and plays scripted
failures on the send methods: ``fail_next(429, retry_after=1)``, ``fail_next(500)``,
``hang_next()`` (never answers, never delivers: the request was lost) and
``hang_next(record=True)`` (delivers, then never answers: the crash window of any non-idempotent API).

    async with FakeTelegram() as tg:
        bot = telegram.Bot(token, base_url=tg.base_url)

``start_in_thread()`` runs it on its own event loop for synchronous code.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

BOT_USER = {"id": 4242, "is_bot": True, "first_name": "riskd fake", "username": "riskd_fake_bot"}
_SEND_METHODS = frozenset({"sendmessage", "sendphoto"})


@dataclass
class Delivered:
    """One message the fake accepted (what the chat would show)."""

    method: str
    chat_id: int
    text: str
    disable_notification: bool
    photo: bytes | None
    message_id: int
    at: float = field(default_factory=time.time)


@dataclass
class _Failure:
    status: int = 500
    retry_after: int | None = None
    hang: bool = False
    record: bool = False


class FakeTelegram:
    """The fake server; ``base_url`` is PTB's format (``http://127.0.0.1:PORT/bot``)."""

    def __init__(self, *, token: str | None = None) -> None:
        self.expected_token = token
        self.delivered: list[Delivered] = []
        self.calls: list[str] = []
        self.failures_served: list[int] = []
        self.tokens_seen: set[str] = set()
        self.confirmed_offset = 0
        self.hanging = 0
        self.port = 0
        self._script: list[_Failure] = []
        self._updates: list[dict[str, Any]] = []
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
        self._script += [_Failure(status=status, retry_after=retry_after) for _ in range(times)]

    def pass_next(self, times: int = 1) -> None:
        """The next ``times`` send calls succeed (to place failures after some deliveries)."""
        self._script += [_Failure(status=200) for _ in range(times)]

    def hang_next(self, *, record: bool = False) -> None:
        """The next send call never answers; with ``record`` the message is delivered first."""
        self._script.append(_Failure(hang=True, record=record))

    def clear_failures(self) -> None:
        """Forget the scripted failures not served yet."""
        self._script.clear()

    def push_command(self, from_id: int, chat_id: int, text: str) -> int:
        """Queue an incoming message (a command) for getUpdates; returns its update_id (thread-safe)."""
        update_id = next(self._update_ids)
        command = text.split()[0] if text.startswith("/") else ""
        update = {
            "update_id": update_id,
            "message": {
                "message_id": next(self._message_ids),
                "date": int(time.time()),
                "chat": {"id": chat_id, "type": "private" if chat_id > 0 else "group", "title": "riskd"},
                "from": {"id": from_id, "is_bot": False, "first_name": f"user{from_id}"},
                "text": text,
                "entities": [{"type": "bot_command", "offset": 0, "length": len(command)}] if command else [],
            },
        }
        if self._loop is not None and self._in_other_thread():
            self._loop.call_soon_threadsafe(self._add_update, update)
        else:
            self._add_update(update)
        return update_id

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
        token = request.match_info["token"]
        method = request.match_info["method"]
        self.tokens_seen.add(token)
        self.calls.append(method)
        if self.expected_token is not None and token != self.expected_token:
            return _error(401, "Unauthorized")
        params, files = await _params(request)
        name = method.lower()
        if name in _SEND_METHODS and self._script:
            return await self._fail(self._script.pop(0), method, params, files)
        if name in _SEND_METHODS:
            return _ok(self._deliver(method, params, files))
        if name == "getupdates":
            return _ok(await self._get_updates(params))
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
            return _ok(simple[name])
        return _error(404, "Not Found: method not found")

    async def _fail(
        self, failure: _Failure, method: str, params: dict[str, str], files: dict[str, bytes]
    ) -> web.Response:
        if failure.status == 200 and not failure.hang:
            return _ok(self._deliver(method, params, files))
        self.failures_served.append(0 if failure.hang else failure.status)
        if failure.hang:
            if failure.record:
                self._deliver(method, params, files)
            self.hanging += 1
            assert self._closing is not None
            await self._closing.wait()
            return _error(500, "Internal Server Error: shutting down")
        if failure.status == 429:
            ra = failure.retry_after or 1
            return _error(429, f"Too Many Requests: retry after {ra}", {"retry_after": ra})
        return _error(failure.status, "Internal Server Error")

    def _deliver(self, method: str, params: dict[str, str], files: dict[str, bytes]) -> dict[str, Any]:
        chat_id = int(params["chat_id"])
        text = params.get("text") or params.get("caption") or ""
        photo = next(iter(files.values()), None) if method.lower() == "sendphoto" else None
        msg_id = next(self._message_ids)
        silent = params.get("disable_notification", "false").lower() in ("true", "1")
        self.delivered.append(Delivered(method, chat_id, text, silent, photo, msg_id))
        result: dict[str, Any] = {
            "message_id": msg_id,
            "date": int(time.time()),
            "chat": {"id": chat_id, "type": "private" if chat_id > 0 else "group", "title": "riskd"},
            "from": BOT_USER,
        }
        if photo is not None:
            result["caption"] = text
            result["photo"] = [{"file_id": f"p{msg_id}", "file_unique_id": f"u{msg_id}", "width": 600,
                                "height": 320, "file_size": len(photo)}]  # fmt: skip
        else:
            result["text"] = text
        return result

    async def _get_updates(self, params: dict[str, str]) -> list[dict[str, Any]]:
        offset = int(params.get("offset") or 0)
        limit = int(params.get("limit") or 100)
        timeout = float(params.get("timeout") or 0)
        if offset:
            self.confirmed_offset = max(self.confirmed_offset, offset)
            self._updates = [u for u in self._updates if u["update_id"] >= offset]
        assert self._new_update is not None
        assert self._closing is not None
        deadline = time.monotonic() + timeout
        while not self._updates and time.monotonic() < deadline and not self._closing.is_set():
            self._new_update.clear()
            try:
                await asyncio.wait_for(self._new_update.wait(), deadline - time.monotonic())
            except TimeoutError:
                break
        return self._updates[:limit]

    def _add_update(self, update: dict[str, Any]) -> None:
        self._updates.append(update)
        if self._new_update is not None:
            self._new_update.set()

    def _in_other_thread(self) -> bool:
        try:
            return asyncio.get_running_loop() is not self._loop
        except RuntimeError:
            return True


async def _params(request: web.Request) -> tuple[dict[str, str], dict[str, bytes]]:
    """Form fields (PTB sends urlencoded or multipart; JSON accepted too) and uploaded files."""
    if request.content_type == "application/json":
        body = await request.json()
        return {k: v if isinstance(v, str) else json.dumps(v) for k, v in body.items()}, {}
    params: dict[str, str] = dict(request.query)
    files: dict[str, bytes] = {}
    if request.can_read_body:
        for key, value in (await request.post()).items():
            if isinstance(value, web.FileField):
                files[key] = value.file.read()
            else:
                params[key] = str(value)
    return params, files


def _ok(result: Any) -> web.Response:
    return web.json_response({"ok": True, "result": result})


def _error(status: int, description: str, parameters: dict[str, Any] | None = None) -> web.Response:
    body: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
    if parameters:
        body["parameters"] = parameters
    return web.json_response(body, status=status)
