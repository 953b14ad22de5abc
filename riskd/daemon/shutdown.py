"""Orderly shutdown: SIGTERM/SIGINT set a stop event; every part winds down within its own deadline, and a
stop that overruns ``daemon.shutdown_deadline_s`` prints every thread's stack and exits 1."""

from __future__ import annotations

import asyncio
import contextlib
import faulthandler
import logging
import signal
import sys
from collections.abc import Awaitable
from typing import Any

log = logging.getLogger("riskd")


async def shutdown(rt: Any, sources: Any) -> None:
    """Stop every part in order. Each step has its own deadline so one stuck peer (a Redis that stopped
    answering, a Telegram call hanging in TLS) cannot keep a SIGTERMed riskd alive until systemd or
    the orchestrator kills it; a step that runs out is logged by name and skipped."""
    for task in rt.tasks:
        task.cancel()
    if rt.tasks:
        _, pending = await asyncio.wait(rt.tasks, timeout=5.0)
        for task in pending:
            log.warning("shutdown: task %s ignored cancellation for 5s; leaving it behind", task.get_name())
    if rt.commands is not None:
        await _step("telegram commands", rt.commands.stop(), 5.0)
    await _step("alert delivery", rt.pipeline.stop(grace_s=5), 7.0)
    for extra in rt.extra:
        await _step(f"alert delivery ({extra.channel.name})", extra.stop(grace_s=2), 3.0)
        await _step(f"alert channel ({extra.channel.name})", extra.channel.aclose(), 3.0)
    for sink in rt.daemon.sinks.publishers:
        if hasattr(sink, "aclose"):
            await _step(f"sink {sink.name}", sink.aclose(), 3.0)
    if rt.daemon.sinks.lease is not None:
        await _step("leader lease release", rt.daemon.sinks.lease.release(), 3.0)
    await _step("alert channel", rt.channel.aclose(), 5.0)
    for source in sources:
        await _step(f"source {getattr(source, 'venue', source)}", source.close(), 3.0)
    await _step("redis client", rt.client.aclose(), 3.0)
    if rt.server is not None:
        await _step("metrics server", rt.server.stop(), 3.0)
    if rt.embedded is not None:
        rt.embedded.stop()
    log.debug("shutdown complete")


async def _step(name: str, aw: Awaitable[Any], timeout_s: float) -> None:
    """Await one shutdown step for at most ``timeout_s``; its failure is logged, never raised."""
    try:
        await asyncio.wait_for(aw, timeout_s)
    except TimeoutError:
        log.warning("shutdown: %s did not finish within %.0fs; leaving it behind", name, timeout_s)
    except Exception as exc:
        log.warning("shutdown: %s failed: %s", name, exc)


def install_signal_handlers(stop: asyncio.Event, deadline_s: float) -> None:
    """SIGTERM and SIGINT end the run cleanly (exit status 0). A shutdown that is still going after
    ``deadline_s`` is diagnosed, not waited out: faulthandler prints every thread's stack and exits 1."""
    loop = asyncio.get_running_loop()

    def on_signal() -> None:
        if not stop.is_set():
            log.info("stop requested; shutting down (deadline %.0fs)", deadline_s)
            with contextlib.suppress(AttributeError, ValueError, OSError):  # no real stderr: no deadline
                faulthandler.dump_traceback_later(deadline_s, exit=True, file=sys.__stderr__ or sys.stderr)
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, on_signal)
