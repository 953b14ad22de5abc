"""``riskd config show``: the effective configuration, secrets redacted."""

from __future__ import annotations

import argparse
import json
from typing import Any

from riskd.config import Settings, redacted


def add_parser(sub: Any) -> None:
    """``riskd config show``."""
    cfg = sub.add_parser("config", help="inspect the configuration")
    cfg_sub = cfg.add_subparsers(dest="subcommand", metavar="SUBCOMMAND")
    cfg_sub.add_parser("show", help="print the effective config, secrets redacted")


def cli_config_show(settings: Settings, args: argparse.Namespace) -> int:
    """Print the effective configuration with secrets redacted."""
    print(json.dumps(redacted(settings), indent=2, default=str))
    return 0
