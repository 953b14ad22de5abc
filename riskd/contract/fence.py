"""Fencing: a deposed leader's writes are refused by Redis itself.

A lease alone cannot stop a leader that paused past it (a long GC, SIGSTOP, a VM freeze) from writing
when it resumes, before its next renewal tells it that it lost: it once overwrote ``<prefix>:funding``
with a table two hours old and moved the alert cursor back (issue 19). So every acquisition of the lease
increments ``<prefix>:leader:epoch`` in the same script (:mod:`riskd.daemon.lease`), the leader carries
that number as its *fencing token*, and each write to shared state is a script that first compares the
token with the key: a write whose token is older than the newest epoch is refused (``'fenced'``) and
writes nothing. The refusing replica learns it at once (:meth:`Fence.refused`): it stops leading, logs
it, and counts ``riskd_fenced_writes_total{kind}``.

Token ``-1`` means "not fenced": a component that writes without ever having led (a delivery-only
process, a replay in its own namespace, a test) writes as before.

Which writes are fenced, and why not the others: the regime key/stream/events, the funding table, the
history origin, the alert cursor and submissions, outbox claims and the start of a send, escalations.
Not fenced: recording a delivery's receipt or giving a claimed item back (facts about a send that
already happened; refusing them would turn one message into a duplicate), mutes and acknowledgements
(an operator's act, honoured on any replica), and the minute side's live key (every replica writes it,
newer minutes only).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

FENCED = "fenced"

_PRELUDE = """
local fence_epoch = tonumber(table.remove(ARGV))
local fence_key = table.remove(ARGV)
if fence_epoch >= 0 and tonumber(redis.call('GET', fence_key) or '0') > fence_epoch then
  return 'fenced'
end
"""


def fenced(script: str) -> str:
    """``script`` behind the fence: it takes two more ARGV at the end (:meth:`Fence.args`), which the
    prelude removes, so the body reads ARGV as it did (variadic scripts included)."""
    return _PRELUDE + script


FENCED_SET = fenced(
    """
local args = {'SET', KEYS[1], ARGV[1]}
for i = 2, #ARGV do table.insert(args, ARGV[i]) end
local ok = redis.call(unpack(args))
if ok then return 1 end
return 0
"""
)
"""``SET key value [options…]`` behind the fence: 1 written, 0 not (``NX`` and the key existed)."""


class Fence:
    """This replica's fencing token and what to do when a write is refused."""

    def __init__(self, key: str, epoch: int = -1) -> None:
        self.key = key
        self.epoch = epoch
        self.on_fenced: list[Callable[[str], None]] = []

    @classmethod
    def off(cls) -> Fence:
        """No fencing (token -1): for writers that never lead."""
        return cls("", -1)

    def args(self) -> list[str | int]:
        """The two ARGV a fenced script takes last."""
        return [self.key, self.epoch]

    def refused(self, result: object, kind: str) -> bool:
        """True when ``result`` is a script's refusal; tells every listener ``kind`` (what was refused)."""
        if result not in (FENCED, FENCED.encode()):
            return False
        for listener in self.on_fenced:
            listener(kind)
        return True


async def fenced_set(
    client: object, fence: Fence, kind: str, key: str, value: str, *options: str | int
) -> bool | None:
    """``SET key value options…`` behind ``fence``: True written, False not (``NX``), None refused."""
    script = client.register_script(FENCED_SET)  # type: ignore[attr-defined]
    res = await script(keys=[key], args=[value, *options, *fence.args()])
    if fence.refused(res, kind):
        return None
    return bool(res)


Arg = str | int | float | bytes
"""What a Redis script takes as an argument."""


def with_fence(args: Sequence[Arg], fence: Fence) -> list[Arg]:
    """``args`` followed by the fence's two."""
    return [*args, *fence.args()]
