"""Button presses: every callback query is answered; it is honoured only from an allowed user.

Acknowledge and the mutes change state, so they need an admin (``telegram.admin_ids``); Refresh only
reads. An acknowledgement is stored in Redis first (the first one wins, the escalation is cancelled in
the same script), then every delivered copy of the alert is edited to say who acknowledged it and when,
with the Acknowledge button gone. A press from anyone else is answered empty and logged.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Protocol

from telegram import Bot, CallbackQuery, InlineKeyboardMarkup
from telegram.constants import ParseMode
from telegram.error import BadRequest, TelegramError

from riskd.alerting.outbox import Delivery, Outbox
from riskd.contract.freshness import judge
from riskd.contract.models import Alert
from riskd.telegram.commands import Context, status_reply
from riskd.telegram.format import Ack, alert_html, banner, esc
from riskd.telegram.keyboards import Press, alert_keyboard, parse_press


class ButtonContext(Context, Protocol):
    """What a button press may use beyond a command's context: the Bot (to edit and answer), the outbox
    (acknowledgements, delivered alerts) and the roles. :class:`riskd.telegram.bot.ButtonContext` is one."""

    bot: Bot
    outbox: Outbox | None

    def may_read(self, user_id: int | None, chat_id: int | None) -> bool: ...

    def may_act(self, user_id: int | None) -> bool: ...


log = logging.getLogger("riskd.commands")


async def handle_press(bot: ButtonContext, query: CallbackQuery) -> str | None:
    """Answer one button press; returns what was answered (None: ignored)."""
    user = query.from_user.id if query.from_user else None
    msg = query.message
    chat = msg.chat.id if msg is not None else None
    press = parse_press(query.data)
    if not bot.may_read(user, chat):
        log.warning("ignored button %r from non-allowed id user=%s chat=%s", str(query.data)[:32], user, chat)
        await _answer(bot, query, None)
        return None
    if press is None:
        log.warning("ignored an unknown button %r from user=%s", str(query.data)[:32], user)
        await _answer(bot, query, "This button is no longer valid.")
        return None
    if press.writes and not bot.may_act(user):
        log.warning("refused button %s from read-only id user=%s chat=%s", press.action, user, chat)
        await _answer(bot, query, "Only admins (telegram.admin_ids) may acknowledge or mute.")
        return None
    try:
        text = await _honour(bot, query, press)
    except Exception as exc:  # a failing Redis must not kill the bot; the presser learns it failed
        log.warning(
            "button %s failed: %s: %s", press.action, type(exc).__name__, " ".join(str(exc).split())[:200]
        )
        text = "That did not work (riskd cannot reach its Redis?). Try again in a minute."
    await _answer(bot, query, text)
    return text


async def _honour(bot: ButtonContext, query: CallbackQuery, press: Press) -> str:
    if press.action == "ack":
        return await acknowledge(bot, press.fingerprint, _who(query))
    if press.action == "mute":
        until = await bot.mutes.mute(press.kind, press.seconds)
        log.info("muted %s until %s by %s (button)", press.kind, until.isoformat(), _who(query))
        return f"Muted {press.kind} until {until:%Y-%m-%d %H:%M} UTC."
    if press.action == "status" and query.message is not None:
        reply = await status_reply(bot)
        await edit(bot, query.message.chat.id, query.message.message_id, reply.text, reply.markup)
        return "Refreshed."
    return await _refresh_alert(bot, query, press.fingerprint)


async def acknowledge(bot: ButtonContext, fingerprint: str, who: str) -> str:
    """Store the acknowledgement (first wins) and edit every copy of the alert to show it."""
    if bot.outbox is None:
        return "Acknowledgements need the alert outbox."
    mine = json.dumps({"by": who, "at": bot.now().isoformat()})
    stored = json.loads(await bot.outbox.acknowledge(fingerprint, mine))
    ack = Ack(stored["by"], datetime.fromisoformat(stored["at"]))
    alert, copies = await bot.outbox.delivered(fingerprint)
    if alert is None:
        return "Acknowledged (the alert itself has expired)."
    facts = await bot.outbox.delivery_facts(fingerprint)
    for dest, message_id in copies.items():
        text = as_sent(bot, alert, facts.get(dest), ack=ack)  # the copy's own banners, nothing added
        await edit(bot, int(dest), int(message_id), text, alert_keyboard(alert, acknowledged=True))
    log.info("alert %s acknowledged by %s", fingerprint, ack.by)
    if json.loads(mine)["by"] != ack.by or stored["at"] != json.loads(mine)["at"]:
        return f"Already acknowledged by {ack.by} at {ack.at:%H:%M} UTC."
    return "Acknowledged."


async def _refresh_alert(bot: ButtonContext, query: CallbackQuery, fingerprint: str) -> str:
    """The alert as delivered, its acknowledgement if any, and the regime now, in place."""
    if bot.outbox is None or query.message is None:
        return "Nothing to refresh."
    alert, _ = await bot.outbox.delivered(fingerprint)
    if alert is None:
        return "This alert has expired."
    raw = await bot.outbox.ack_of(fingerprint)
    ack = Ack(**{**json.loads(raw), "at": datetime.fromisoformat(json.loads(raw)["at"])}) if raw else None
    snap, now = await bot.source.latest(), bot.now()
    state = (
        f"Regime <b>{esc(snap.state.upper())}</b> · ×{snap.risk_multiplier:g}" if snap else "Regime UNKNOWN"
    )
    facts = await bot.outbox.delivery_facts(fingerprint)
    text = as_sent(bot, alert, facts.get(str(query.message.chat.id)), ack=ack)
    text += f"\n🔄 Now ({now:%H:%M} UTC): {state} · {banner(judge(snap, now=now))}"
    await edit(bot, query.message.chat.id, query.message.message_id, text,
               alert_keyboard(alert, acknowledged=ack is not None))  # fmt: skip
    return "Refreshed."


def as_sent(bot: ButtonContext, alert: Alert, facts: Delivery | None, *, ack: Ack | None) -> str:
    """The alert's HTML as that copy was delivered: its delay, "possibly repeated" and escalation banners
    are the delivery's (an edit an hour later must not claim the delivery was held up), plus ``ack``."""
    if facts is None:  # delivered by a riskd that kept no facts: judge the delay at the hour, not now
        return alert_html(alert, links=bot.links, now=alert.as_of, ack=ack)
    at = datetime.fromtimestamp(facts.delivered_ms / 1000, UTC)
    return alert_html(alert, links=bot.links, now=at, maybe_repeated=facts.maybe_repeated,
                      escalated_after_min=facts.escalation, ack=ack)  # fmt: skip


async def edit(
    bot: ButtonContext, chat_id: int, message_id: int, text: str, markup: InlineKeyboardMarkup | None
) -> None:
    """Edit a message's text, or its caption when it is a photo; 'not modified' and failures are logged only."""
    try:
        try:
            await bot.bot.edit_message_text(text, chat_id=chat_id, message_id=message_id,
                                            parse_mode=ParseMode.HTML, reply_markup=markup)  # fmt: skip
        except BadRequest as exc:
            if "no text in the message" not in str(exc).lower():
                raise
            await bot.bot.edit_message_caption(chat_id=chat_id, message_id=message_id, caption=text[:1024],
                                               parse_mode=ParseMode.HTML, reply_markup=markup)  # fmt: skip
    except TelegramError as exc:
        if "not modified" not in str(exc).lower():
            log.warning("edit of message %s in chat %s failed: %s", message_id, chat_id, exc)


async def _answer(bot: ButtonContext, query: CallbackQuery, text: str | None) -> None:
    try:
        await bot.bot.answer_callback_query(query.id, text=text)
    except TelegramError as exc:
        log.warning("answerCallbackQuery failed: %s", exc)


def _who(query: CallbackQuery) -> str:
    """'@name (id)' or 'First (id)': who pressed, for the acknowledgement line and the log."""
    u = query.from_user
    if u is None:
        return "unknown"
    return f"@{u.username} ({u.id})" if u.username else f"{u.first_name} ({u.id})"
