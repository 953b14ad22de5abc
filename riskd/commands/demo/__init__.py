"""``riskd demo``: the live daemon through the May 2021 crash on the bundled real sample, hour by hour
(:mod:`.hourly`) or, with ``--minutes``, the crash day at minute resolution (:mod:`.minutes`)."""

from __future__ import annotations

import argparse
import asyncio
import math
from typing import Any

from riskd.commands._args import hour_arg
from riskd.config import Settings
from riskd.errors import ConfigError


def add_parser(sub: Any) -> None:
    """The ``demo`` sub-command's arguments."""
    dm = sub.add_parser("demo", help="the live daemon through the May 2021 crash on the bundled sample")
    dm.add_argument("--hours-per-second", type=float, default=4.0, help="simulated hours per second")
    dm.add_argument("--from", dest="start", help="first simulated hour (default 2021-05-16)")
    dm.add_argument("--to", dest="end", help="last simulated hour (default 2021-05-21)")
    dm.add_argument("--hold", action="store_true", help="keep Redis and metrics up at the end until Ctrl-C")
    dm.add_argument(
        "--minutes",
        action="store_true",
        help="the crash day at minute resolution through the minute streams (real 1 m/5 m bars, "
        "synthetic liquidations): the provisional alert before the hour close",
    )


def cli_demo(settings: Settings, args: argparse.Namespace) -> int:
    """``riskd demo``: exit 0 once the crash has been replayed live (``--minutes``: at minute resolution)."""
    if getattr(args, "minutes", False):
        from riskd.commands.demo.minutes import run_minute_demo

        return asyncio.run(run_minute_demo(settings))
    if not math.isfinite(args.hours_per_second) or args.hours_per_second <= 0:
        raise ConfigError("invalid argument --hours-per-second: must be a positive number")
    from riskd.commands.demo.hourly import DEMO_END, DEMO_START, run_demo

    start = hour_arg(args.start, "--from") or DEMO_START
    end = hour_arg(args.end, "--to") or DEMO_END
    return asyncio.run(
        run_demo(settings, start=start, end=end, hours_per_second=args.hours_per_second, hold=args.hold)
    )
