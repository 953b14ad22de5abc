"""The Telegram command bot: long-polls getUpdates and answers allow-listed ids only.

A hand loop over ``Bot.get_updates`` rather than ``telegram.ext.Application``: we need five
commands, no conversation state, no job queue; the loop is ~40 lines we own, whose lifecycle is a
plain asyncio task the daemon starts and cancels next to its other tasks (Application wants to own
initialise/start/stop/shutdown and its own Updater). The allow-list check runs before anything
else, so a stranger's command costs one log line and gets no answer at all.

The data comes through :class:`StatusSource` (the daemon implements it; :class:`RedisStatusSource`
reads what the Redis sink publishes) and mutes through :class:`MuteControl` (the alert pipeline).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from telegram import Bot, BotCommand, Update
from telegram.error import Conflict, InvalidToken, TelegramError

from riskd.alerts import figures_line, figures_of
from riskd.models import Snapshot
from riskd.sinks.outbox import MUTE_TYPES

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from riskd.settings import TelegramSettings

log = logging.getLogger("riskd.commands")

HELP = (
    """riskd commands
/status — regime, risk multiplier, CFI, cascade, data quality
/cfi — Composite Fragility Index and its components
/cascade — cascade level and episode
/funding [symbol] — funding figures
/history [n] — the last n hours (default 12, max 48)
/health — is riskd publishing, how fresh, outbox
/mute <type> <duration> — e.g. /mute regime_change 2h; types: """
    + ", ".join(MUTE_TYPES)
    + """
/unmute [type] — lift mutes
/help — this text"""
)
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
MAX_MUTE_S = 30 * 86400


class StatusSource(Protocol):
    """What the commands read; the daemon implements it from its own state."""

    async def latest(self) -> Snapshot | None: ...
    async def history(self, n: int) -> list[Snapshot]: ...
    async def health(self) -> dict[str, Any]: ...
    async def funding(self, symbol: str | None) -> dict[str, Any]: ...


class MuteControl(Protocol):
    """Mutes (implemented by ``AlertPipeline``)."""

    async def mute(self, kind: str, seconds: float) -> datetime: ...
    async def unmute(self, kind: str | None = None) -> int: ...
    async def mutes(self) -> dict[str, float]: ...


class RedisStatusSource:
    """Reads ``{prefix}:regime`` (Snapshot JSON) and stream ``{prefix}:regime:history`` (field ``json``)."""

    def __init__(self, redis: Redis, key_prefix: str, *, outbox: Any = None) -> None:
        self._redis = redis
        self._p = key_prefix
        self._outbox = outbox

    async def latest(self) -> Snapshot | None:
        """The published snapshot, or None when the key is absent (expired: riskd is not publishing)."""
        raw = await self._redis.get(f"{self._p}:regime")
        return Snapshot.model_validate_json(raw) if raw else None

    async def history(self, n: int) -> list[Snapshot]:
        """The last ``n`` hours from the stream, oldest first."""
        entries = await self._redis.xrevrange(f"{self._p}:regime:history", count=n)
        out = []
        for _id, fields in reversed(entries):
            raw = fields.get(b"json") or fields.get("json")
            if raw:
                out.append(Snapshot.model_validate_json(raw))
        return out

    async def health(self) -> dict[str, Any]:
        """Key presence and TTL, snapshot age and data quality, outbox size."""
        snap = await self.latest()
        ttl = await self._redis.ttl(f"{self._p}:regime")
        info: dict[str, Any] = {"redis": "ok", "regime_key": "present" if snap else "missing (expired)"}
        if snap is not None:
            info["as_of"] = snap.as_of.isoformat()
            info["age_s"] = round((datetime.now(UTC) - snap.as_of).total_seconds())
            info["key_ttl_s"] = ttl
            info["data_quality"] = snap.data_quality.status
        if self._outbox is not None:
            info["alert_outbox"] = await self._outbox.outbox_size()
        return info

    async def funding(self, symbol: str | None) -> dict[str, Any]:
        """Funding features of the latest snapshot (per-symbol ones when the core publishes them)."""
        snap = await self.latest()
        if snap is None:
            return {}
        feats = {k: v for k, v in snap.features.items() if "funding" in k}
        if symbol:
            feats = {k: v for k, v in feats.items() if symbol.lower() in k.lower()}
        return feats


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


def format_status(snap: Snapshot | None, *, now: datetime) -> str:
    """The /status answer; an absent snapshot is UNKNOWN, never an old state."""
    if snap is None:
        return "Regime UNKNOWN: nothing published (riskd down or key expired). Treat as unknown."
    age = (now - snap.as_of).total_seconds() / 60
    since = f" since {snap.state_since:%m-%d %H:%M}" if snap.state_since else ""
    lines = [
        f"Regime {snap.state.upper()}{since} · risk multiplier {snap.risk_multiplier:g}",
        f"Hour ending {snap.as_of:%Y-%m-%d %H:%M} UTC ({age:.0f} min ago{'' if snap.live else ', catch-up'})",
        figures_line(figures_of(snap)),
        f"Cascade: {snap.cascade_level}" + (f" (episode {snap.episode_id})" if snap.episode_id else ""),
        f"Data: {snap.data_quality.status} (coverage {snap.data_quality.coverage:.0%})",
    ]
    if snap.reasons:
        lines.append("Reasons: " + "; ".join(snap.reasons))
    return "\n".join(lines)


def format_cfi(snap: Snapshot | None) -> str:
    """The /cfi answer: value, percentile, quintile and components."""
    if snap is None or snap.cfi is None:
        return "CFI unknown (nothing published or not computable this hour)."
    pct = f"p{snap.cfi_percentile * 100:.0f}" if snap.cfi_percentile is not None else "p?"
    lines = [
        f"CFI {snap.cfi:.2f} ({pct}, quintile {snap.cfi_quintile or '?'}) at {snap.as_of:%m-%d %H:%M} UTC"
    ]
    lines += [f"  {k}: {_num(v)}" for k, v in sorted(snap.components.items())]
    return "\n".join(lines)


def format_cascade(snap: Snapshot | None) -> str:
    """The /cascade answer: level, episode, multi-asset flag and the BTC figures."""
    if snap is None:
        return "Cascade state unknown (nothing published)."
    figs = figures_of(snap)
    lines = [
        f"Cascade level {snap.cascade_level} at {snap.as_of:%m-%d %H:%M} UTC",
        f"Episode: {snap.episode_id or 'none'} · multi-asset: {'yes' if snap.multi_asset_cascade else 'no'}",
        f"BTC 1h {_pct(figs['btc_return_1h'])} · 4h {_pct(figs['btc_return_4h'])} · vol ratio "
        f"{_num(figs['vol_ratio'])}",
    ]
    return "\n".join(lines)


def format_history(snaps: list[Snapshot]) -> str:
    """The /history answer: one line per hour, oldest first."""
    if not snaps:
        return "No history published."
    return "\n".join(
        f"{s.as_of:%m-%d %H:%M} {s.state:<9} CFI {_num(s.cfi)} ×{s.risk_multiplier:g} {s.cascade_level}"
        for s in snaps
    )


def format_mapping(title: str, data: dict[str, Any]) -> str:
    """A titled key: value list (for /health and /funding)."""
    if not data:
        return f"{title}: nothing available."
    return "\n".join([title, *(f"  {k}: {_num(v)}" for k, v in data.items())])


def _num(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def _pct(v: float | None) -> str:
    return "n/a" if v is None else f"{v * 100:+.1f}%"


class CommandBot:
    """Answers commands from ``allowed_ids``; everyone else gets silence and a log line."""

    def __init__(self, bot: Bot, tg: TelegramSettings, source: StatusSource, mutes: MuteControl, *,
                 poll_timeout_s: float = 25.0) -> None:  # fmt: skip
        self.bot = bot
        self.allowed = set(tg.allowed_ids)
        self.source = source
        self.mutes = mutes
        self.poll_timeout_s = poll_timeout_s
        self.offset: int | None = None
        self._task: asyncio.Task[None] | None = None

    def start(self) -> asyncio.Task[None]:
        """Run the polling loop as a task; ``await stop()`` ends it."""
        self._task = asyncio.create_task(self.run(), name="riskd-command-bot")
        return self._task

    async def stop(self) -> None:
        """Cancel the loop and confirm the last update to Telegram, so a restart does not re-answer."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self.offset is not None:
            with contextlib.suppress(TelegramError, TimeoutError):
                await asyncio.wait_for(self.bot.get_updates(offset=self.offset, timeout=0, limit=1), 3)

    async def run(self) -> None:
        """Poll forever (until cancelled); network trouble backs off, never ends the loop."""
        if not self.allowed:
            log.warning("telegram.allowed_ids is empty: every command will be ignored")
        await self._prepare()
        backoff = 1.0
        while True:
            try:
                updates = await self.bot.get_updates(
                    offset=self.offset, timeout=int(self.poll_timeout_s), allowed_updates=["message"]
                )
                backoff = 1.0
            except (Conflict, InvalidToken) as exc:
                log.error("command bot cannot poll (%s): %s", type(exc).__name__, exc)
                await asyncio.sleep(30)
                continue
            except TelegramError as exc:
                log.warning("command bot poll failed: %s; retrying in %.0fs", exc, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 30)
                continue
            for update in updates:
                await self.handle(update)
                self.offset = update.update_id + 1

    async def _prepare(self) -> None:
        """Drop a webhook (getUpdates refuses to work with one) and publish the command menu."""
        try:
            await self.bot.delete_webhook(drop_pending_updates=False)
            await self.bot.set_my_commands([BotCommand(c, d) for c, d in _MENU])
        except TelegramError as exc:
            log.warning("command bot set-up call failed (continuing): %s", exc)

    async def handle(self, update: Update) -> str | None:
        """Answer one update; returns the reply sent (None: ignored)."""
        msg = update.message
        if msg is None or not msg.text or not msg.text.startswith("/"):
            return None
        user_id = msg.from_user.id if msg.from_user else None
        command = msg.text.split()[0].split("@")[0].lower()
        if user_id not in self.allowed and msg.chat.id not in self.allowed:
            log.warning(
                "ignored command %s from non-allowed id user=%s chat=%s", command, user_id, msg.chat.id
            )
            return None
        args = msg.text.split()[1:]
        try:
            reply = await self.answer(command, args)
        except Exception as exc:  # a failing source must not kill the bot; the user gets the reason
            log.warning("command %s failed: %s", command, exc)
            reply = f"{command} failed: {exc}"
        try:
            await self.bot.send_message(msg.chat.id, reply)
        except TelegramError as exc:
            log.warning("command reply to chat=%s failed: %s", msg.chat.id, exc)
        return reply

    async def answer(self, command: str, args: list[str]) -> str:
        """The reply text for one allowed command."""
        now = datetime.now(UTC)
        if command == "/status":
            return format_status(await self.source.latest(), now=now)
        if command == "/cfi":
            return format_cfi(await self.source.latest())
        if command == "/cascade":
            return format_cascade(await self.source.latest())
        if command == "/funding":
            symbol = args[0].upper() if args else None
            return format_mapping(
                f"Funding{' ' + symbol if symbol else ''}", await self.source.funding(symbol)
            )
        if command == "/history":
            n = max(1, min(48, int(args[0]))) if args and args[0].isdigit() else 12
            return format_history(await self.source.history(n))
        if command == "/health":
            return format_mapping("Health", await self.source.health())
        if command == "/mute":
            return await self._mute(args)
        if command == "/unmute":
            kind = args[0] if args else None
            lifted = await self.mutes.unmute(kind)
            return f"Unmuted {kind or 'all alert types'} ({lifted} mute(s) lifted)."
        return HELP

    async def _mute(self, args: list[str]) -> str:
        if len(args) != 2:
            active = await self.mutes.mutes()
            listing = ", ".join(f"{k} ({v / 60:.0f} min left)" for k, v in active.items()) or "none"
            return f"Usage: /mute <type> <duration>, types: {', '.join(MUTE_TYPES)}\nActive mutes: {listing}"
        kind, duration = args
        try:
            until = await self.mutes.mute(kind, parse_duration(duration))
        except ValueError as exc:
            return str(exc)
        return f"Muted {kind} until {until:%Y-%m-%d %H:%M} UTC."


_MENU = [
    ("status", "Regime and risk multiplier"),
    ("cfi", "Composite Fragility Index"),
    ("cascade", "Cascade level and episode"),
    ("funding", "Funding figures [symbol]"),
    ("history", "Last n hours [n]"),
    ("health", "Is riskd publishing"),
    ("mute", "Mute an alert type <type> <duration>"),
    ("unmute", "Lift mutes [type]"),
    ("help", "Commands"),
]
