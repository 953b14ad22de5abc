"""The fake Bot API's wire: what a delivered message looks like to a test, request parameters, Bot API
replies, and Telegram's HTML ``parse_mode`` as Telegram enforces it (a message whose ``<``, ``>`` or ``&``
is not an entity, or whose tags are not Telegram's or not closed, is refused)."""

from __future__ import annotations

import html
import json
import re
import time
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any

from aiohttp import web

_TAGS = {
    "b",
    "strong",
    "i",
    "em",
    "u",
    "ins",
    "s",
    "strike",
    "del",
    "a",
    "code",
    "pre",
    "tg-spoiler",
    "span",
    "blockquote",
    "tg-emoji",
}
_BARE_AMP = re.compile(r"&(?!(?:lt|gt|amp|quot|#[0-9]+|#x[0-9a-fA-F]+);)")


class _Checker(HTMLParser):
    """Telegram's HTML rules, as far as tests need them: known tags, properly nested."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.error = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in _TAGS:
            self.error = self.error or f'unsupported start tag "{tag}"'
        self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack.pop() != tag:
            self.error = self.error or f'unexpected end tag "{tag}"'


def html_error(params: dict[str, str]) -> str:
    """Why Telegram would refuse this HTML text (empty: it would accept it, or it is not HTML)."""
    if params.get("parse_mode") != "HTML":
        return ""
    text = params.get("text") or params.get("caption") or ""
    if _BARE_AMP.search(text):
        return "bare '&' (not an entity)"
    if re.search(r"<(?![a-zA-Z/])", text):
        return "bare '<'"
    checker = _Checker()
    checker.feed(text)
    checker.close()
    if not checker.error and checker.stack:
        return f'unclosed tag "{checker.stack[-1]}"'
    return checker.error


def plain(text: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", text))


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
    reply_to: int | None = None
    parse_mode: str | None = None
    reply_markup: dict[str, Any] | None = None
    edits: list[str] = field(default_factory=list)
    """Earlier texts, oldest first: ``text`` is what the chat shows now."""

    @property
    def plain(self) -> str:
        """What the reader sees: tags removed and entities decoded (HTML), else the text as sent."""
        return plain(self.text) if self.parse_mode == "HTML" else self.text

    @property
    def buttons(self) -> list[tuple[str, str]]:
        """(label, callback_data) of the inline keyboard, row by row."""
        rows = (self.reply_markup or {}).get("inline_keyboard", [])
        return [(b.get("text", ""), b.get("callback_data", "")) for row in rows for b in row]


def update_id(update: Any) -> int | None:
    """An update's id, None when it has none (garbage a test injected)."""
    uid = update.get("update_id") if isinstance(update, dict) else None
    return uid if isinstance(uid, int) and not isinstance(uid, bool) else None


async def params_of(request: web.Request) -> tuple[dict[str, str], dict[str, bytes]]:
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


def ok(result: Any) -> web.Response:
    return web.json_response({"ok": True, "result": result})


def error(status: int, description: str, parameters: dict[str, Any] | None = None) -> web.Response:
    body: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
    if parameters:
        body["parameters"] = parameters
    return web.json_response(body, status=status)


BOT_USER = {"id": 4242, "is_bot": True, "first_name": "riskd fake", "username": "riskd_fake_bot"}
"""The fake bot's own user (``getMe``, the sender of every message it delivers)."""


@dataclass
class Failure:
    status: int = 500
    retry_after: int | None = None
    hang: bool = False
    record: bool = False


def command_update(update_id: int, message_id: int, from_id: int, chat_id: int, text: str) -> dict[str, Any]:
    """A getUpdates item: ``from_id`` wrote ``text`` in ``chat_id`` (a command when it starts with /)."""
    command = text.split()[0] if text.startswith("/") else ""
    return {
        "update_id": update_id,
        "message": {
            "message_id": message_id,
            "date": int(time.time()),
            "chat": {"id": chat_id, "type": "private" if chat_id > 0 else "group", "title": "riskd"},
            "from": {"id": from_id, "is_bot": False, "first_name": f"user{from_id}"},
            "text": text,
            "entities": [{"type": "bot_command", "offset": 0, "length": len(command)}] if command else [],
        },
    }


def callback_update(
    update_id: int, from_id: int, message: Delivered, data: str, username: str | None
) -> dict[str, Any]:
    """A getUpdates item: ``from_id`` pressed the button carrying ``data`` on ``message``."""
    user: dict[str, Any] = {"id": from_id, "is_bot": False, "first_name": f"user{from_id}"}
    if username:
        user["username"] = username
    chat = {"id": message.chat_id, "type": "private" if message.chat_id > 0 else "group", "title": "riskd"}
    query = {
        "id": f"cb{update_id}",
        "from": user,
        "chat_instance": str(message.chat_id),
        "data": data,
        "message": {
            "message_id": message.message_id,
            "date": int(message.at),
            "chat": chat,
            "from": BOT_USER,
            "text": message.text,
        },
    }
    return {"update_id": update_id, "callback_query": query}


def message_result(msg: Delivered) -> dict[str, Any]:
    """The Bot API's Message object of a delivered message (what sendMessage and the edits return)."""
    chat = {"id": msg.chat_id, "type": "private" if msg.chat_id > 0 else "group", "title": "riskd"}
    result: dict[str, Any] = {
        "message_id": msg.message_id,
        "date": int(msg.at),
        "chat": chat,
        "from": BOT_USER,
    }
    result["caption" if msg.photo is not None else "text"] = msg.text
    return result
