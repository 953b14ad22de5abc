"""The ``riskd`` command line: parses arguments, builds Settings once, hands both to a command.

Each command lives in the module that owns its work (``riskd.backfill:cli_backfill`` …) and is
imported only when chosen, so ``riskd config show`` starts fast and a broken optional part never
stops the others. Exit status: 0 success, 1 the work failed, 2 bad settings or arguments, 3 ``riskd once``
published an unknown or stale snapshot, 4 Redis did not answer at the start of a one-shot command
(``riskd.errors``; README, Exit status).
"""

from __future__ import annotations

import argparse
import contextlib
import faulthandler
import importlib
import json
import logging
import os
import signal
import sys
from collections.abc import Callable, Sequence
from typing import NoReturn

from pydantic import ValidationError

from riskd import __version__
from riskd.arguments import csv_arg, port_arg, symbols_arg
from riskd.config_check import make_writable_dir, unknown_env
from riskd.errors import EXIT_FAILED, EXIT_UNREACHABLE, ConfigError, DataError, RiskdError, Unreachable
from riskd.logs import setup_logging
from riskd.settings import Settings, format_validation_error, load_settings, redacted, source_of

log = logging.getLogger("riskd")

Handler = Callable[[Settings, argparse.Namespace], int]

# command path -> "module:function"; the function takes (settings, args) and returns an exit status.
COMMANDS: dict[str, str] = {
    "config show": "riskd.cli:cmd_config_show",
    "backfill": "riskd.backfill:cli_backfill",
    "data import": "riskd.commands.data:cli_import",
    "data audit": "riskd.commands.data:cli_audit",
    "fake-exchange": "riskd.testing.fake_exchange:cli_fake_exchange",
    "run": "riskd.commands.run:cli_run",
    "once": "riskd.commands.run:cli_once",
    "replay": "riskd.replay:cli_replay",
    "demo": "riskd.commands.demo:cli_demo",
    "validate": "riskd.validation:cli_validate",
    "calibrate": "riskd.calibration:cli_calibrate",
    "origin": "riskd.origin:cli_origin",
    "export regime": "riskd.export:cli_export_regime",
}


NO_DATA_DIR = ("config show", "fake-exchange", "origin")
"""Commands that write nothing under ``data_dir``; every other one needs it writable (checked at start)."""


def cmd_config_show(settings: Settings, args: argparse.Namespace) -> int:
    """Print the effective configuration with secrets redacted."""
    print(json.dumps(redacted(settings), indent=2, default=str))
    return 0


class _Parser(argparse.ArgumentParser):
    """argparse that reports a bad argument in one line (exit 2) instead of usage plus message."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"riskd: invalid argument: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every command (kept in one place so ``--help`` is complete)."""
    p = _Parser(prog="riskd", description=__doc__.splitlines()[0])
    p.add_argument("--version", action="version", version=f"riskd {__version__}")
    p.add_argument("--config", metavar="PATH", help="TOML config file (else RISKD_CONFIG_FILE, else none)")
    p.add_argument("--log-level", choices=["DEBUG", "INFO", "WARNING", "ERROR"], help="override log_level")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    cfg = sub.add_parser("config", help="inspect the configuration")
    cfg_sub = cfg.add_subparsers(dest="subcommand", metavar="SUBCOMMAND")
    cfg_sub.add_parser("show", help="print the effective config, secrets redacted")

    bf = sub.add_parser("backfill", help="fetch history from the venues into the store (resumable)")
    bf.add_argument("--since", help="first hour, ISO date (default: backfill.since)")
    bf.add_argument("--until", help="last hour, exclusive, ISO date (default: the last closed hour)")
    bf.add_argument(
        "--symbols", type=symbols_arg, help="comma-separated base assets (default: universe.symbols)"
    )
    bf.add_argument("--venues", type=csv_arg, help="comma-separated venues (default: all enabled)")
    bf.add_argument("--datasets", type=csv_arg, help="comma-separated: ohlcv,funding,open_interest")
    bf.add_argument("--no-progress", action="store_true", help="no progress bar (logs only)")

    rp = sub.add_parser("replay", help="stored history through compute and publish on a simulated clock")
    rp.add_argument("--from", dest="start", help="first hour (open time, UTC ISO); default: the first stored")
    rp.add_argument("--to", dest="end", help="last hour (open time, UTC ISO); default: the last stored")
    rp.add_argument("--alerts", choices=["configured", "console", "none"], default="configured",
                    help="alert sink: the configured one (Telegram or console), the console, or none")  # fmt: skip
    rp.add_argument("--metrics-port", type=port_arg, help="override metrics.port (0: any free port)")
    keys = rp.add_mutually_exclusive_group()
    keys.add_argument("--prefix", help="Redis key prefix to write under (default: redis.key_prefix's first part "
                      "+ '-replay', riskd:v1 -> riskd-replay:v1, cleared at the start; the production keys are "
                      "never touched)")  # fmt: skip
    keys.add_argument("--production-keys", action="store_true",
                      help="write into the configured redis.key_prefix, as the live daemon does (its consumers "
                      "will read the replay; snapshots say live: false)")  # fmt: skip
    rp.add_argument(
        "--hold", action="store_true", help="keep serving metrics after the last hour until SIGTERM"
    )
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

    for beside in (
        "riskd.calibration",
        "riskd.origin",
        "riskd.commands.data",
        "riskd.commands.demo",
        "riskd.commands.run",
        "riskd.export",
    ):  # these parsers live beside their handlers
        importlib.import_module(beside).add_parser(sub)

    fx = sub.add_parser("fake-exchange", help="serve the loopback fake exchange (for demos and benchmarks)")
    fx.add_argument("--host", default="127.0.0.1")
    fx.add_argument("--port", type=port_arg, default=8900)
    fx.add_argument("--hours", type=int, default=24 * 30, help="hours of synthetic history to serve")
    fx.add_argument("--latency-ms", type=float, default=0.0, help="added latency per request")
    return p


def _resolve(args: argparse.Namespace) -> str | None:
    name = args.command
    if name and getattr(args, "subcommand", None):
        name = f"{name} {args.subcommand}"
    return name if name in COMMANDS else None


def _load_handler(target: str) -> Handler:
    module, func = target.split(":")
    return getattr(importlib.import_module(module), func)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script and ``python -m riskd``."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as done:  # --help, --version, or a bad argument (already reported in one line)
        return done.code if isinstance(done.code, int) else 2
    name = _resolve(args)
    if name is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        overrides = {"log_level": args.log_level} if args.log_level else {}
        settings = load_settings(args.config, flags={"log_level": "--log-level"}, **overrides)
    except ConfigError as err:
        print(f"riskd: {err}", file=sys.stderr)
        return 2
    setup_logging(settings.log_level)
    for line in unknown_env(os.environ, Settings):  # once, at start: a typo must not pass in silence
        log.warning("%s", line)
    if hasattr(signal, "SIGUSR1"):  # `kill -USR1 <pid>` prints every thread's stack: a live riskd, diagnosed
        with contextlib.suppress(AttributeError, ValueError, OSError):  # no real stderr (embedded, captured)
            faulthandler.register(signal.SIGUSR1, file=sys.__stderr__ or sys.stderr, all_threads=True)
    try:
        if name not in NO_DATA_DIR:
            make_writable_dir(settings.data_dir, source_of(settings, "data_dir"))
        return _load_handler(COMMANDS[name])(settings, args)
    except ConfigError as err:
        print(f"riskd: {err}", file=sys.stderr)
        return 2
    except ValidationError as err:  # settings a command derived (demo, replay) that do not validate
        print(f"riskd: {format_validation_error(err)}", file=sys.stderr)
        return 2
    except DataError as err:
        print(f"riskd: {err}", file=sys.stderr)
        return EXIT_FAILED
    except Unreachable as err:
        print(f"riskd: {err}", file=sys.stderr)
        return EXIT_UNREACHABLE
    except RiskdError as err:
        log.error("%s failed: %s", name, err)
        return 1
    except KeyboardInterrupt:
        print("riskd: interrupted", file=sys.stderr)
        return 130
    finally:
        faulthandler.cancel_dump_traceback_later()  # armed by a stop signal (riskd.daemon.wiring)
