"""The ten-line JavaScript poller in docs/api.md, run as written with Node against a real riskd HTTP server:
it uses the multiplier when the regime is current and its fallback when it is stale or riskd is down."""

from __future__ import annotations

import asyncio
import re
import shutil
from datetime import timedelta
from pathlib import Path

import pytest
from _contract import T0, make_snapshot

from riskd.http.server import MetricsServer
from riskd.sinks.metrics import Metrics

NODE = shutil.which("node")
DOC = Path(__file__).resolve().parents[1] / "docs" / "api.md"
AS_OF = T0 + timedelta(hours=13)

pytestmark = pytest.mark.skipif(NODE is None, reason="node is not installed (Node.js >= 18 runs the example)")


async def _run(example: str, base: str) -> str:
    script = f"{example}\nriskMultiplier({base!r}).then((m) => console.log(`multiplier=${{m}}`));\n"
    proc = await asyncio.create_subprocess_exec(
        NODE, "--input-type=module", "-e", script,  # type: ignore[arg-type]
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0, err.decode()
    return out.decode().strip() + "|" + err.decode().strip()


async def test_documented_poller_follows_the_polling_contract() -> None:
    """Fresh → the snapshot's multiplier; stale → 0.5 with the reason; unreachable → 0.5."""
    (example,) = re.findall(r"```js\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.DOTALL)
    assert len(example.strip().splitlines()) <= 10
    now = [AS_OF + timedelta(minutes=2)]
    metrics = Metrics(clock=lambda: now[0].timestamp())
    metrics.state.snapshot = make_snapshot(AS_OF, "fragile")
    server = await MetricsServer(metrics, "127.0.0.1", 0).start()
    base = f"http://127.0.0.1:{server.port}"
    try:
        assert (await _run(example, base)).startswith("multiplier=0.5|")  # fragile's multiplier is 0.5 too
        metrics.state.snapshot = make_snapshot(AS_OF, "elevated")
        assert await _run(example, base) == "multiplier=0.75|"
        now[0] = AS_OF + timedelta(hours=3)
        stale = await _run(example, base)
        assert stale == "multiplier=0.5|regime not current: last state is for 2021-05-19T13:00:00Z, 3.0 h old"
    finally:
        await server.stop()
    down = await _run(example, base)
    assert down.startswith("multiplier=0.5|riskd unreachable:")
