"""The alert outbox in Redis: each state change is one atomic Lua script, so no crash splits it.

Keys under ``{prefix}:alerts:`` (prefix = ``redis.key_prefix``, e.g. ``riskd:v1``):

===========================  ======  ==========================================================
``seen:{fingerprint}``       string  de-duplication: the event was handled (TTL 30 d)
``last:{kind}``              string  as_of (ms) | rank | episode of the last queued alert of a kind, for
                                     the cooldown (30 d)
``rank:{identity}``          string  rank | fingerprint | severity of the strongest alert queued for one
                                     event: weaker corrections drop, stronger ones are upgrades (30 d)
``folded:{kind}``            list    one line per alert the cooldown held; the next message of the kind
                                     carries them (30 d)
``mute:{kind|all}``          string  active mute, value = until (ISO); TTL = the mute's duration
``seq``                      string  counter giving items a FIFO id
``item:{id}``                hash    one delivery: alert JSON, dest, silent, chart key, attempts,
                                     inflight, maybe_sent, owner, enqueued_ms, last_error (no TTL:
                                     deleted when sent)
``due``                      zset    id → when it may be claimed (ms); while claimed, lease expiry
``sent:{id}``                string  receipt (e.g. Telegram message id), written with the delete
                                     of the item (TTL 7 d)
``chart:{sha}``              string  base64 PNG shared by the items of one hour (TTL 7 d)
``thread:{thread}:{dest}``   string  receipt of a thread's first delivered message; later messages of
                                     the thread reply to it (TTL 7 d)
``alert:{fingerprint}``      string  the alert JSON once delivered, to edit or escalate it (TTL 7 d)
``msgs:{fingerprint}``       hash    dest → channel receipt (Telegram message id) of each copy (7 d)
``facts:{fingerprint}``      hash    dest → how that copy was delivered (time, possibly repeated,
                                     escalation), so an edit keeps its banners (7 d)
``pending``                  zset    fingerprint → when its escalation is due (ms): critical alerts
                                     delivered and not yet acknowledged
``ack:{fingerprint}``        string  JSON {by, at}: the first acknowledgement wins (TTL 30 d)
``escalated:{fingerprint}``  string  the escalation was claimed (SET NX): never twice (TTL 30 d)
===========================  ======  ==========================================================

Escalation items carry ``escalation`` = minutes waited; their ids end in ``:esc-{dest}``.

Item ids are ``{seq:012d}:{fingerprint}:{dest}``. The scripts build key names from the prefix, so
the outbox needs a single Redis (not Cluster), as the rest of riskd does.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from riskd.alerting import scripts as lua
from riskd.contract.codec import read_model
from riskd.contract.fence import Fence, fenced
from riskd.contract.models import Alert

if TYPE_CHECKING:
    from redis.asyncio import Redis

MUTE_TYPES = (
    "all",
    "regime_change",
    "cascade_start",
    "cascade_end",
    "data_stale",
    "data_recovered",
    "cascade_developing",
)
DEFER_AFTER_ATTEMPTS = 3
"""After this many failures an item stops holding the head of the queue and waits retry_interval_s."""


@dataclass
class Item:
    """One claimed delivery: an alert for one destination."""

    id: str
    alert: Alert
    dest: str
    silent: bool
    chart_key: str
    attempts: int
    maybe_sent: bool
    copies: int = 0
    """Sends whose outcome is unknown (timed out after the request left, or a crashed holder's)."""
    escalation: float | None = None
    """An escalation copy: the minutes it waited unacknowledged."""
    upgrade_of: str = ""
    """An upgrade: the fingerprint of the weaker alert it corrects (its message is replied to)."""
    upgrade_from: str = ""
    """An upgrade: the severity of the weaker alert."""
    folded: list[str] = field(default_factory=list)
    """One line per alert of this kind the cooldown held back since the last one sent."""


class Outbox:
    """The Redis side of the pipeline; ``owner`` fences this worker's leases."""

    def __init__(
        self,
        redis: Redis,
        prefix: str,
        owner: str,
        *,
        seen_ttl_s: float,
        sent_ttl_s: float,
        fence: Fence | None = None,
    ) -> None:
        self.redis = redis
        self.fence = fence or Fence.off()
        """Submissions, claims, the start of a send and escalations carry it (:mod:`riskd.contract.fence`)."""
        self.p = prefix
        self.owner = owner
        self._seen_ttl_ms = int(seen_ttl_s * 1000)
        self._sent_ttl_ms = int(sent_ttl_s * 1000)
        self._scripts = {
            n: redis.register_script(s)
            for n, s in (
                ("submit", fenced(lua.SUBMIT)),
                ("claim", fenced(lua.CLAIM)),
                ("start", fenced(lua.START)),
                ("mark", lua.MARK),
                ("release", lua.RELEASE),
                ("abandon", lua.ABANDON),
                ("escalate", fenced(lua.ESCALATE)),
                ("ack", lua.ACK),
            )
        }

    async def submit(
        self, alert: Alert, *, silent: bool, chart_key: str, cooldown_ms: int, now_ms: int, dests: list[str]
    ) -> str:
        """De-duplicate, apply the severity rule, mutes and cooldown, queue one item per destination — all
        or nothing. Outcomes: queued, upgrade, duplicate, downgrade, muted, cooldown (see ``_SUBMIT``), and
        ``fenced`` (refused: a newer leader holds the lease)."""
        res = await self._scripts["submit"](
            args=[
                self.p,
                alert.fingerprint,
                alert.kind,
                alert.severity,
                self._seen_ttl_ms,
                cooldown_ms,
                now_ms,
                int(alert.as_of.timestamp() * 1000),
                alert.model_dump_json(),
                "1" if silent else "0",
                chart_key,
                alert.identity,
                alert.rank,
                alert.episode_id or "",
                folded_line(alert),
                *dests,
                *self.fence.args(),
            ]
        )
        self.fence.refused(res, "alerts")
        return _text(res)

    async def claim(self, now_ms: int, lease_ms: int) -> Item | None:
        """Lease the oldest due item (a crashed holder's ``inflight`` becomes ``maybe_sent``)."""
        raw = await self._scripts["claim"](args=[self.p, now_ms, lease_ms, self.owner, *self.fence.args()])
        if not raw or self.fence.refused(raw, "outbox"):
            return None
        vals = [_text(v) for v in raw]
        fields = dict(zip(vals[1::2], vals[2::2], strict=True))
        return Item(
            id=vals[0],
            alert=read_model(Alert, fields["alert"]),
            dest=fields["dest"],
            silent=fields["silent"] == "1",
            chart_key=fields.get("chart", ""),
            attempts=int(fields.get("attempts", "0")),
            maybe_sent=fields.get("maybe_sent") == "1",
            copies=int(fields.get("copies", "0")),
            escalation=float(fields["escalation"]) if fields.get("escalation") else None,
            upgrade_of=fields.get("upgrade_of", ""),
            upgrade_from=fields.get("upgrade_from", ""),
            folded=[line for line in fields.get("folded", "").split("\n") if line],
        )

    async def start(self, item: Item) -> bool:
        """Mark the item in flight just before the request; False when the lease was lost."""
        res = await self._scripts["start"](args=[self.p, item.id, self.owner, *self.fence.args()])
        return not self.fence.refused(res, "outbox") and bool(res)

    async def mark(self, item: Item, receipt: str, *, delivered_ms: int, escalate_at_ms: int = 0) -> bool:
        """Record the channel's receipt (and the copy's message id) and remove the item, atomically;
        False if the lease had lapsed. ``escalate_at_ms`` > 0 puts the alert on the escalation list
        (once, unless acknowledged or escalated already). The alert is kept as delivered (upgrade and
        held lines included), with the copy's delivery facts, so a later edit renders what was sent."""
        facts = Delivery(delivered_ms, item.maybe_sent, item.escalation).to_json()
        return bool(
            await self._scripts["mark"](
                args=[
                    self.p,
                    item.id,
                    self.owner,
                    receipt,
                    self._sent_ttl_ms,
                    item.alert.fingerprint,
                    escalate_at_ms,
                    item.alert.model_dump_json(),
                    facts,
                ]
            )
        )

    async def release(
        self, item: Item, *, now_ms: int, counts: bool, definite: bool, error: str, defer_ms: int
    ) -> int:
        """Give the item back after a failure; returns its attempt count (-1: not ours any more)."""
        res = await self._scripts["release"](
            args=[
                self.p,
                item.id,
                self.owner,
                now_ms,
                "1" if counts else "0",
                "1" if definite else "0",
                error[:300],
                DEFER_AFTER_ATTEMPTS,
                defer_ms,
            ]
        )
        return int(res)

    async def abandon(self, item: Item, reason: str) -> bool:
        """Take the item out without a delivery (see ``ABANDON``); False when the lease was lost."""
        res = await self._scripts["abandon"](args=[self.p, item.id, self.owner, reason, self._sent_ttl_ms])
        return bool(res)

    async def due_escalations(self, now_ms: int) -> list[str]:
        """Fingerprints whose escalation is due."""
        raw = await self.redis.zrangebyscore(f"{self.p}:alerts:pending", "-inf", now_ms)
        return [_text(v) for v in raw]

    async def escalate(self, fingerprint: str, *, now_ms: int, minutes: float, dests: list[str]) -> str:
        """Queue the escalation copies of one alert, atomically and at most once across replicas.

        Outcomes: ``escalated``, ``acknowledged`` (nothing to do), ``already`` (another replica or an
        earlier run did it), ``expired`` (the alert is gone from Redis).
        """
        res = await self._scripts["escalate"](
            args=[self.p, fingerprint, now_ms, self._seen_ttl_ms, f"{minutes:g}", *dests, *self.fence.args()]
        )
        self.fence.refused(res, "escalation")
        return _text(res)

    async def acknowledge(self, fingerprint: str, ack_json: str) -> str:
        """Record an acknowledgement (the first one wins) and cancel the escalation; returns the stored one."""
        return _text(await self._scripts["ack"](args=[self.p, fingerprint, ack_json, self._seen_ttl_ms]))

    async def ack_of(self, fingerprint: str) -> str | None:
        """The stored acknowledgement JSON, or None."""
        raw = await self.redis.get(f"{self.p}:alerts:ack:{fingerprint}")
        return _text(raw) if raw else None

    async def delivered(self, fingerprint: str) -> tuple[Alert | None, dict[str, str]]:
        """The alert as delivered and dest → receipt of each copy (to edit them)."""
        raw = await self.redis.get(f"{self.p}:alerts:alert:{fingerprint}")
        msgs = await self.redis.hgetall(f"{self.p}:alerts:msgs:{fingerprint}")
        alert = read_model(Alert, raw) if raw else None
        return alert, {_text(k): _text(v) for k, v in msgs.items()}

    async def delivery_facts(self, fingerprint: str) -> dict[str, Delivery]:
        """dest → how that copy was delivered (when, possibly repeated, escalation), for edits."""
        raw = await self.redis.hgetall(f"{self.p}:alerts:facts:{fingerprint}")
        return {_text(k): Delivery.from_json(_text(v)) for k, v in raw.items()}

    async def receipt(self, fingerprint: str, dest: str) -> str | None:
        """The channel receipt (message id) of one delivered copy, or None."""
        raw = await self.redis.hget(f"{self.p}:alerts:msgs:{fingerprint}", dest)
        return _text(raw) if raw else None

    async def size(self) -> int:
        """Items waiting or in flight."""
        return int(await self.redis.zcard(f"{self.p}:alerts:due"))

    async def store_chart(self, chart: bytes) -> str:
        """Store a PNG once (base64, so clients with decode_responses work too); returns its key."""
        key = f"{self.p}:alerts:chart:{hashlib.sha256(chart).hexdigest()[:32]}"
        await self.redis.set(key, base64.b64encode(chart), px=self._sent_ttl_ms)
        return key

    async def load_chart(self, key: str) -> bytes | None:
        """The PNG behind ``key``; None when there is none or it expired."""
        raw = await self.redis.get(key) if key else None
        return base64.b64decode(raw) if raw else None

    async def thread_root(self, thread: str, dest: str) -> tuple[str, str] | None:
        """(receipt, alert kind) of the first message delivered in ``thread`` to ``dest``, or None."""
        raw = await self.redis.get(f"{self.p}:alerts:thread:{thread}:{dest}")
        if not raw:
            return None
        receipt, _, kind = _text(raw).partition("|")  # an older riskd stored the receipt alone
        return receipt, kind

    async def set_thread_root(self, thread: str, dest: str, receipt: str, kind: str) -> None:
        """Remember ``receipt`` (an alert of ``kind``) as the root of ``thread`` unless one is set already
        (TTL as ``sent``)."""
        await self.redis.set(
            f"{self.p}:alerts:thread:{thread}:{dest}", f"{receipt}|{kind}", nx=True, px=self._sent_ttl_ms
        )

    async def set_mute(self, kind: str, until_iso: str, seconds: float) -> None:
        """Mute ``kind`` (or ``all``) for ``seconds``."""
        await self.redis.set(f"{self.p}:alerts:mute:{kind}", until_iso, px=int(seconds * 1000))

    async def clear_mutes(self, kinds: tuple[str, ...]) -> int:
        """Lift the given mutes; returns how many existed."""
        return int(await self.redis.delete(*(f"{self.p}:alerts:mute:{k}" for k in kinds)))

    async def mutes(self) -> dict[str, float]:
        """Active mutes: type → seconds left."""
        out = {}
        for kind in MUTE_TYPES:
            ms = await self.redis.pttl(f"{self.p}:alerts:mute:{kind}")
            if ms and ms > 0:
                out[kind] = ms / 1000
        return out


@dataclass(frozen=True)
class Delivery:
    """How one copy of an alert was delivered: an edit (acknowledge, refresh) renders the same banners."""

    delivered_ms: int
    maybe_repeated: bool = False
    escalation: float | None = None

    def to_json(self) -> str:
        """Compact JSON as stored in ``facts:{fingerprint}``."""
        return json.dumps({"at": self.delivered_ms, "repeated": self.maybe_repeated, "esc": self.escalation})

    @classmethod
    def from_json(cls, raw: str) -> Delivery:
        """Tolerant of fields a newer riskd adds."""
        data = json.loads(raw)
        return cls(int(data.get("at", 0)), bool(data.get("repeated")), data.get("esc"))


def folded_line(alert: Alert) -> str:
    """How an alert held by the cooldown is mentioned in the next message of its kind."""
    return f"{alert.as_of:%m-%d %H:%M} UTC · {alert.severity} · {alert.title}"


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
