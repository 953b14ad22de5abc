"""The contract every snapshot sink keeps, shaped like prometheus client_python's ``Collector``.

Anything with a ``name``, a ``leader_only`` flag and ``async publish(snapshot)`` can be handed to the
daemon, which loops over its sinks inside its one broad ``except``: a sink that raises fails alone, is
logged once per change of error and counted as ``riskd_stage_failures_total{stage=<name>}``, and the
other sinks still get the hour. A leader-only sink on a standby is skipped, unless it can ``hold`` the
snapshot for a takeover (the Redis sink spools it).
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from riskd.contract.models import Snapshot


@runtime_checkable
class SnapshotSink(Protocol):
    """Receives every hour's snapshot (and every revision of one) in hour order."""

    name: str
    leader_only: bool

    async def publish(self, snapshot: Snapshot) -> object: ...


@runtime_checkable
class HoldingSink(SnapshotSink, Protocol):
    """A leader-only sink that keeps what a standby computed, to publish it if this replica takes over."""

    def hold(self, snapshot: Snapshot) -> None: ...


class HookSink:
    """A plain callable (the demo's printer) as a sink on every replica."""

    leader_only = False

    def __init__(self, name: str, hook: object) -> None:
        self.name = name
        self._hook = hook

    async def publish(self, snapshot: Snapshot) -> None:
        self._hook(snapshot)  # type: ignore[operator]
