"""``riskd validate``: the research's figures re-checked on the stored history (:mod:`riskd.validation`), and
``--intra-hour``: the provisional detector replayed over the stored minute bars (:mod:`.intrahour`)."""

from __future__ import annotations

import argparse
from typing import Any

from riskd.commands._args import symbols_arg
from riskd.settings import Settings


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
    va.add_argument("--intra-hour", action="store_true",
                    help="replay the provisional detector on the stored minute bars (intrahour.md)")  # fmt: skip


def cli_validate(settings: Settings, args: argparse.Namespace) -> int:
    """``riskd validate`` (statsmodels, arch and matplotlib are imported only when it runs)."""
    if getattr(args, "intra_hour", False):
        from riskd.commands.intrahour import cli_intrahour

        return cli_intrahour(settings, args)
    from riskd.validation import cli_validate as run_validation

    return run_validation(settings, args)
