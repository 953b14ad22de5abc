"""The bot's commands: ONE table (:data:`COMMANDS`) builds /help, the command menu and the dispatch.

Adding a command is one handler function plus one row. A row says who may run it: readers
(``telegram.allowed_ids`` and admins) or admins only (``telegram.admin_ids``: anything that changes
state, like /mute). Handlers get a :class:`Context` (what the bot can read and do) and the arguments,
and return a :class:`Reply` in Telegram HTML; errors in the user's input are answered in plain words.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from telegram import BotCommand, InlineKeyboardMarkup

import riskd
from riskd.alerting.outbox import MUTE_TYPES
from riskd.contract.freshness import judge
from riskd.contract.models import Snapshot
from riskd.telegram import format as fmt
from riskd.telegram.keyboards import status_keyboard

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
MAX_MUTE_S = 30 * 86400
HISTORY_DEFAULT, HISTORY_MAX = 12, 48
CHART_DEFAULT, CHART_MAX = 24, 168


class StatusSource(Protocol):
    """What the commands read (:class:`riskd.telegram.status.RedisStatusSource`)."""

    async def latest(self) -> Snapshot | None: ...
    async def history(self, n: int) -> list[Snapshot]: ...
    async def health(self) -> dict[str, Any]: ...
    async def funding_table(self) -> dict[str, Any] | None: ...
    async def chart(self, hours: int) -> bytes | None: ...


class MuteControl(Protocol):
    """Mutes (implemented by ``AlertPipeline``)."""

    async def mute(self, kind: str, seconds: float) -> datetime: ...
    async def unmute(self, kind: str | None = None) -> int: ...
    async def mutes(self) -> dict[str, float]: ...


class Context(Protocol):
    """What a handler may use: the data, the mutes, the links and the (injected) clock."""

    source: StatusSource
    mutes: MuteControl
    links: fmt.Links

    def now(self) -> datetime: ...


@dataclass(frozen=True)
class Reply:
    """An answer: HTML text, optionally with buttons or as the caption of a photo."""

    text: str
    markup: InlineKeyboardMarkup | None = None
    photo: bytes | None = None


Handler = Callable[[Context, list[str]], Awaitable[Reply]]


@dataclass(frozen=True)
class Command:
    """One row of the table: name, argument synopsis, one-line description, handler, who may run it."""

    name: str
    args: str
    description: str
    handler: Handler
    admin: bool = False


def parse_duration(text: str) -> float:
    """'90s', '30m', '2h', '1d', '1h30m' or plain minutes → seconds; ValueError when unreadable."""
    text = text.strip().lower()
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return float(text) * 60
    parts = re.findall(r"(\d+(?:\.\d+)?)([smhd])", text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"cannot read duration {text!r}; use e.g. 30m, 2h, 1d")
    seconds = sum(float(n) * _UNITS[u] for n, u in parts)
    if not 0 < seconds <= MAX_MUTE_S:
        raise ValueError("duration must be between 1s and 30d")
    return seconds


def parse_count(args: list[str], *, default: int, most: int, usage: str) -> int:
    """A whole number 1..``most`` from the first argument (``default`` without one); ValueError in words."""
    if not args:
        return default
    if not re.fullmatch(r"[0-9]{1,4}", args[0]) or not 1 <= int(args[0]) <= most:
        raise ValueError(f"n must be a whole number from 1 to {most}, e.g. {usage}")
    return int(args[0])


def parse_history_n(args: list[str]) -> int:
    """``/history [n]``'s n; ValueError in plain words for anything but a whole number 1..48."""
    return parse_count(args, default=HISTORY_DEFAULT, most=HISTORY_MAX, usage="/history 24")


async def status_reply(ctx: Context) -> Reply:
    """/status (also what its Refresh button shows)."""
    snap, now = await ctx.source.latest(), ctx.now()
    return Reply(fmt.status_html(snap, judge(snap, now=now), now=now, links=ctx.links), status_keyboard())


async def _status(ctx: Context, args: list[str]) -> Reply:
    return await status_reply(ctx)


async def _cfi(ctx: Context, args: list[str]) -> Reply:
    snap = await ctx.source.latest()
    return Reply(fmt.cfi_html(snap, judge(snap, now=ctx.now())))


async def _cascade(ctx: Context, args: list[str]) -> Reply:
    return Reply(fmt.cascade_html(await ctx.source.latest()))


async def _funding(ctx: Context, args: list[str]) -> Reply:
    symbol = args[0].upper()[:32] if args else None
    return Reply(fmt.funding_html(await ctx.source.funding_table(), symbol))


async def _history(ctx: Context, args: list[str]) -> Reply:
    try:
        n = parse_history_n(args)
    except ValueError as exc:
        return Reply(fmt.esc(exc))
    return Reply(fmt.history_html(await ctx.source.history(n)))


async def _chart(ctx: Context, args: list[str]) -> Reply:
    try:
        hours = parse_count(args, default=CHART_DEFAULT, most=CHART_MAX, usage="/chart 48")
    except ValueError as exc:
        return Reply(fmt.esc(exc))
    png = await ctx.source.chart(hours)
    if png is None:
        return Reply("No chart: this riskd has no recent hours in memory yet.")
    snap = await ctx.source.latest()
    state = f"Regime <b>{fmt.esc(snap.state.upper())}</b> · ×{snap.risk_multiplier:g} · " if snap else ""
    return Reply(f"{state}BTC and CFI, last {hours} h", photo=png)


async def _health(ctx: Context, args: list[str]) -> Reply:
    return Reply(fmt.mapping_html("Health", await ctx.source.health()))


async def _mutes(ctx: Context, args: list[str]) -> Reply:
    return Reply(fmt.mutes_html(await ctx.mutes.mutes(), now=ctx.now()))


async def _mute(ctx: Context, args: list[str]) -> Reply:
    if len(args) != 2:
        usage = f"Usage: /mute &lt;type&gt; &lt;duration&gt;, types: {', '.join(MUTE_TYPES)}"
        return Reply(usage + "\n" + fmt.mutes_html(await ctx.mutes.mutes(), now=ctx.now()))
    kind, duration = args
    try:
        until = await ctx.mutes.mute(kind, parse_duration(duration))
    except ValueError as exc:
        return Reply(fmt.esc(exc))
    return Reply(f"Muted {fmt.esc(kind)} until {until:%Y-%m-%d %H:%M} UTC.")


async def _unmute(ctx: Context, args: list[str]) -> Reply:
    kind = args[0] if args else None
    if kind is not None and kind not in MUTE_TYPES:
        return Reply(f"unknown alert type {fmt.esc(kind)}; one of {', '.join(MUTE_TYPES)}")
    lifted = await ctx.mutes.unmute(kind)
    return Reply(f"Unmuted {fmt.esc(kind or 'all alert types')} ({lifted} mute(s) lifted).")


async def _version(ctx: Context, args: list[str]) -> Reply:
    return Reply(f"riskd {fmt.esc(riskd.__version__)}")


async def _help(ctx: Context, args: list[str]) -> Reply:
    return Reply(help_text())


COMMANDS: tuple[Command, ...] = (
    Command("status", "", "Regime, risk multiplier, freshness, CFI, cascade", _status),
    Command("cfi", "", "Composite Fragility Index and its components", _cfi),
    Command("cascade", "", "Cascade level and episode", _cascade),
    Command(
        "funding", "[symbol]", "Funding per venue for a symbol; without one the top and bottom 5", _funding
    ),
    Command("chart", "[hours]", f"BTC and CFI chart (default {CHART_DEFAULT} h)", _chart),
    Command("history", "[n]", f"The last n hours (default {HISTORY_DEFAULT}, max {HISTORY_MAX})", _history),
    Command("health", "", "Is riskd publishing, how fresh, outbox", _health),
    Command("mutes", "", "Active mutes and when they end", _mutes),
    Command(
        "mute", "<type> <duration>", "Mute an alert type, e.g. /mute regime_change 2h", _mute, admin=True
    ),
    Command("unmute", "[type]", "Lift mutes", _unmute, admin=True),
    Command("version", "", "riskd's version", _version),
    Command("help", "", "This list", _help),
)
BY_NAME = {f"/{c.name}": c for c in COMMANDS}


def help_text() -> str:
    """/help, from the table (admin-only commands marked)."""
    lines = ["<b>riskd commands</b>"]
    for c in COMMANDS:
        synopsis = fmt.esc(f"/{c.name} {c.args}".strip())
        lines.append(f"{synopsis} — {fmt.esc(c.description)}{' (admins)' if c.admin else ''}")
    lines.append("Alert types: " + ", ".join(MUTE_TYPES))
    return "\n".join(lines)


def menu() -> list[BotCommand]:
    """The command menu (setMyCommands), from the table."""
    return [BotCommand(c.name, f"{c.description} {c.args}".strip()[:256]) for c in COMMANDS]
