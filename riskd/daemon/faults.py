"""A stage that fails (a sink, the store, the state file) is logged once per change of error and counted
every time; its recovery is logged once. The daemon keeps going either way."""

from __future__ import annotations

import logging

from riskd.sinks.metrics import Metrics

log = logging.getLogger("riskd.daemon")


class Faults:
    """stage → the kind of error it is failing with; ``metrics`` counts and shows them."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics
        self.failing: dict[str, str] = {}

    def fault(self, stage: str, message: str, kind: str | None = None) -> None:
        """A stage failing: logged when it starts or its kind of error changes (``kind``, default the
        message: an OSError names a fresh temp file each time, so its kind is its errno), counted every time."""
        self.metrics.failure(stage)
        if stage == "redis":  # /healthz says degraded until Redis answers again
            self.metrics.state.down["redis"] = message
        kind = kind or message
        if self.failing.get(stage) != kind:
            log.error("%s (logged once until it changes)", message)
            self.failing[stage] = kind

    def recovered(self, stage: str) -> None:
        """A stage worked: its last success moves, and a fault it had is logged as over."""
        self.metrics.success(stage)
        if stage == "redis":
            self.metrics.service_up("redis")
        if self.failing.pop(stage, None) is not None:
            log.warning("%s: working again", stage)


def kind_of(err: BaseException) -> str:
    """What makes two disk errors "the same fault" for logging: the type and errno, not the path."""
    return f"{type(err).__name__}:{getattr(err, 'errno', None)}"
