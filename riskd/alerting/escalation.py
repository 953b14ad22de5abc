"""Escalation: a critical alert nobody acknowledged within ``telegram.escalate_after`` minutes is re-sent,
once, to ``telegram.escalation_chat_ids``, headed as an escalation.

The state is in Redis (:mod:`riskd.alerting.outbox`): delivering a critical alert puts its fingerprint on
``<prefix>:alerts:pending`` with the time its wait ends (by the pipeline's injected clock); an
acknowledgement removes it; :meth:`~riskd.alerting.pipeline.AlertPipeline.escalate_due` claims each due
one with ``SET NX`` inside one Lua script and queues the copies in the outbox. So it survives restarts
and fail-over, and nothing is escalated twice even if two replicas run it. This loop only decides
*when to look*: every ``interval_s`` of real time, and only while this replica holds the lease.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from redis.exceptions import RedisError

log = logging.getLogger("riskd.escalation")


class EscalationLoop:
    """Looks for due escalations on the leader; ``lease`` None means "always lead" (single replica, tests)."""

    def __init__(self, pipeline: Any, lease: Any | None, *, interval_s: float = 5.0) -> None:
        self.pipeline = pipeline
        self.lease = lease
        self.interval_s = interval_s

    async def tick(self) -> list[tuple[str, str]]:
        """One look, if this replica leads: (fingerprint, outcome) of each due escalation."""
        if self.lease is not None and not self.lease.is_leader:
            return []
        return list(await self.pipeline.escalate_due())

    async def run(self, stop: asyncio.Event) -> None:
        """Tick until ``stop``; a Redis outage is logged and retried, never fatal."""
        if self.pipeline.escalation is None:
            log.info("escalation off (telegram.escalation_chat_ids empty or telegram.escalate_after 0)")
            return
        while not stop.is_set():
            try:
                await self.tick()
            except RedisError as exc:
                log.warning("escalation check failed (redis): %s", exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.interval_s)
