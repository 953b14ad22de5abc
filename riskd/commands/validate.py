"""``riskd validate``: the research's figures re-checked on the stored history (the loading is
:mod:`riskd.market.offline`, the statistics :mod:`riskd.research`), and ``--intra-hour``: the provisional
detector replayed over the stored minute bars (:mod:`.intrahour`)."""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from riskd.commands._args import hour_arg, symbols_arg
from riskd.config import Settings
from riskd.errors import ConfigError
from riskd.market.offline import config_from_settings, validate_store
from riskd.research.config import ValidationConfig
from riskd.research.validate import PARTS


def add_parser(sub: Any) -> None:
    """``riskd validate``'s arguments."""
    va = sub.add_parser("validate", help="the research's figures re-checked on the stored history: a report")
    va.add_argument("--from", dest="start", help="first hour validated (UTC ISO; default 2020-01-01)")
    va.add_argument("--to", dest="end", help="last hour validated (UTC ISO; default: the last stored)")
    va.add_argument("--out", required=True, metavar="DIR", help="folder for report.md, PNGs, results.json")
    va.add_argument(
        "--symbols", type=symbols_arg, help="comma-separated base assets (default: universe.symbols)"
    )
    va.add_argument("--cost-bps", type=float, help="round-trip cost per leg, bps (default 30)")
    va.add_argument("--reps", type=int, help="bootstrap resamples for the CIs (default 1000)")
    va.add_argument("--no-progress", action="store_true", help="no progress bar")
    va.add_argument(
        "--intra-hour",
        action="store_true",
        help="replay the provisional detector on the stored minute bars (intrahour.md)",
    )


def config_from(settings: Settings, args: argparse.Namespace | None = None) -> ValidationConfig:
    """The validation's choices from the settings (:func:`riskd.market.offline.config_from_settings`), with
    ``--cost-bps`` and ``--reps`` on top."""
    cfg = config_from_settings(settings)
    if args is not None and getattr(args, "cost_bps", None) is not None:
        if args.cost_bps < 0:
            raise ConfigError("invalid argument --cost-bps: must be >= 0")
        cfg = replace(cfg, cost_bps=float(args.cost_bps))
    if args is not None and getattr(args, "reps", None) is not None:
        if args.reps < 10:
            raise ConfigError("invalid argument --reps: at least 10 bootstrap resamples")
        cfg = replace(cfg, bootstrap_reps=args.reps, component_reps=min(cfg.component_reps, args.reps))
    return cfg


def cli_validate(settings: Settings, args: argparse.Namespace) -> int:
    """``riskd validate [--from …] [--to …] --out DIR``: exit 0 when the report was written."""
    if getattr(args, "intra_hour", False):
        from riskd.commands.intrahour import cli_intrahour  # only the minute replay needs it

        return cli_intrahour(settings, args)
    start, end = hour_arg(args.start, "--from"), hour_arg(args.end, "--to")
    if start is not None and end is not None and start > end:
        raise ConfigError("invalid argument --from: after --to")
    cfg = config_from(settings, args)
    console = Console(stderr=True)
    steps = ["store → panel", "core (batch path)", "inputs", *PARTS, "report"]
    with Progress(
        TextColumn("{task.description:<24}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        disable=getattr(args, "no_progress", False) or not console.is_terminal,
        transient=True,
    ) as bar:
        task = bar.add_task("validate", total=len(steps))
        seen: list[str] = []

        def say(name: str) -> None:
            if seen:
                bar.advance(task)
            seen.append(name)
            bar.update(task, description=name)

        result, paths, times = validate_store(
            settings, Path(args.out), start=start, end=end, symbols=args.symbols, cfg=cfg, say=say
        )
        bar.advance(task)
    for name, secs in times.seconds.items():
        console.print(f"  {name:<24} {secs:6.2f} s")
    counts = result.findings["verdict"].value_counts()
    console.print(
        f"validated {result.span} in {times.total:.1f} s: "
        + ", ".join(f"{v} {k}" for k, v in counts.items())
        + f"\nreport: {paths[0]}"
    )
    return 0
