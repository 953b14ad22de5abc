"""The ``riskd`` command line: parses arguments, builds Settings once, hands both to a command.

Each command is a module of :mod:`riskd.commands` with its parser beside its handler; this module is the
registry's front: it builds the parser from them, loads Settings once and dispatches. Exit status: 0 success, 1 the work failed, 2 bad settings or arguments, 3 ``riskd once``
published an unknown or stale snapshot, 4 Redis did not answer at the start of a one-shot command
(``riskd.errors``; README, Exit status).
"""

from __future__ import annotations

import argparse
import contextlib
import faulthandler
import importlib
import logging
import os
import signal
import sys
from collections.abc import Callable, Sequence
from typing import NoReturn

from pydantic import ValidationError

from riskd import __version__
from riskd.commands import COMMANDS, NO_DATA_DIR, PARSERS
from riskd.config import Settings, format_validation_error, load_settings, source_of
from riskd.config.check import make_writable_dir, unknown_env
from riskd.errors import EXIT_FAILED, EXIT_UNREACHABLE, ConfigError, DataError, RiskdError, Unreachable
from riskd.logs import setup_logging

log = logging.getLogger("riskd")

Handler = Callable[[Settings, argparse.Namespace], int]


class _Parser(argparse.ArgumentParser):
    """argparse that reports a bad argument in one line (exit 2) instead of usage plus message."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"riskd: invalid argument: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every command (:data:`riskd.commands.PARSERS`, so ``--help`` is complete)."""
    p = _Parser(prog="riskd", description=__doc__.splitlines()[0])
    p.add_argument("--version", action="version", version=f"riskd {__version__}")
    p.add_argument("--config", metavar="PATH", help="TOML config file (else RISKD_CONFIG_FILE, else none)")
    p.add_argument("--log-level", choices=["DEBUG", "INFO", "WARNING", "ERROR"], help="override log_level")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    for module in PARSERS:  # each command's parser lives beside its handler
        importlib.import_module(module).add_parser(sub)
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
