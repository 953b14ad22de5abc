"""Every ``riskd`` command: one module each, with its parser (``add_parser(sub)``) beside its handler.

:data:`PARSERS` builds ``--help`` and the parser in this order; :data:`COMMANDS` dispatches a command path
to ``module:function`` (imported only when chosen, so ``riskd config show`` starts fast and a broken
optional part never stops the others). Nothing below the commands imports them.
"""

from __future__ import annotations

PARSERS: tuple[str, ...] = (
    "riskd.commands.run",
    "riskd.commands.demo",
    "riskd.commands.replay",
    "riskd.commands.validate",
    "riskd.commands.calibrate",
    "riskd.commands.export",
    "riskd.commands.backfill",
    "riskd.commands.data",
    "riskd.commands.origin",
    "riskd.commands.config",
    "riskd.commands.fake_exchange",
)
"""Modules whose ``add_parser(sub)`` registers their sub-commands, in ``--help`` order."""

COMMANDS: dict[str, str] = {
    "run": "riskd.commands.run:cli_run",
    "once": "riskd.commands.run:cli_once",
    "demo": "riskd.commands.demo:cli_demo",
    "replay": "riskd.commands.replay:cli_replay",
    "validate": "riskd.commands.validate:cli_validate",
    "calibrate": "riskd.commands.calibrate:cli_calibrate",
    "export regime": "riskd.commands.export:cli_export_regime",
    "backfill": "riskd.commands.backfill:cli_backfill",
    "data import": "riskd.commands.data:cli_import",
    "data audit": "riskd.commands.data:cli_audit",
    "origin": "riskd.commands.origin:cli_origin",
    "config show": "riskd.commands.config:cli_config_show",
    "fake-exchange": "riskd.commands.fake_exchange:cli_fake_exchange",
}
"""Command path → the handler: ``(settings, args) -> exit status``."""

NO_DATA_DIR: tuple[str, ...] = ("config show", "fake-exchange", "origin")
"""Commands that write nothing under ``data_dir``; every other one needs it writable (checked at start)."""
