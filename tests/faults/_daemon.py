"""Launch the real riskd daemon on the fault suite's shared file clock (a subprocess the tests can kill -9).

    python tests/faults/_daemon.py --settings settings.json --clock clock-file --ready ready.json \
        [--clock-offset-s 90]

Settings come from the JSON through ``riskd.config.load_settings`` (so they are validated exactly
as riskd validates them); ``ready.json`` gets the pid and the metrics port once the daemon is up.
``--clock-offset-s``: the daemon's clock reads the shared clock plus that many seconds (a host whose
clock is off the venues'; the fake exchange keeps the shared clock).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

from faultkit import FileClock

from riskd.commands.run import run
from riskd.config import load_settings
from riskd.logs import setup_logging


def main() -> int:
    """Parse the three paths (and the clock offset), build Settings, run the daemon until SIGTERM."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--settings", required=True)
    parser.add_argument("--clock", required=True)
    parser.add_argument("--ready", required=True)
    parser.add_argument("--clock-offset-s", type=float, default=0.0)
    args = parser.parse_args()
    settings = load_settings(**json.loads(Path(args.settings).read_text()))
    setup_logging(settings.log_level)
    ready_path = Path(args.ready)

    def ready(rt: Any) -> None:
        port = rt.server.port if rt.server is not None else None
        tmp = ready_path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"pid": os.getpid(), "metrics_port": port}))
        os.replace(tmp, ready_path)

    return asyncio.run(
        run(settings, once=False, clock=FileClock(args.clock, args.clock_offset_s), ready=ready)
    )


if __name__ == "__main__":
    sys.exit(main())
