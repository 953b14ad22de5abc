"""The configuration reference, generated from the Settings model so it never drifts from the code.

Two renderings of the same walk over ``riskd.config.Settings`` (field order, descriptions, types,
constraints and defaults): :func:`config_reference_markdown` for ``docs/operations.md`` and
:func:`env_example` for ``deploy/riskd.env.example``. ``python -m riskd.commands.reference --write`` rewrites
both; ``--check`` (what tests/test_deploy.py does) exits 1 when either is out of date. The same command
regenerates the shipped JSON Schemas (``riskd/schemas``, from ``riskd.contract.schemas``), the schema block of
docs/redis.md and the runbook section of docs/operations.md (from ``riskd/http/runbooks/runbooks.md``).
"""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
import types
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, Union, cast, get_args, get_origin

import annotated_types
from pydantic import BaseModel, SecretStr
from pydantic.fields import FieldInfo

from riskd.config import Settings

ENV_PREFIX = "RISKD_"
BEGIN_MARKER = "<!-- BEGIN GENERATED CONFIG REFERENCE: python -m riskd.commands.reference --write -->"
END_MARKER = "<!-- END GENERATED CONFIG REFERENCE -->"
ENV_EXAMPLE = Path("deploy/riskd.env.example")
OPERATIONS_DOC = Path("docs/operations.md")


@dataclass(frozen=True)
class Setting:
    """One leaf setting: where it lives, how to set it, what it is."""

    path: tuple[str, ...]
    type: str
    default: Any
    description: str
    secret: bool

    @property
    def key(self) -> str:
        """Dotted name as in ``riskd config show`` and the TOML file (``venues.binance.enabled``)."""
        return ".".join(self.path)

    @property
    def env(self) -> str:
        """Environment variable (``RISKD_VENUES__BINANCE__ENABLED``)."""
        return ENV_PREFIX + "__".join(p.upper() for p in self.path)


@dataclass(frozen=True)
class Section:
    """A settings section (a nested model) and its leaf settings, in declaration order."""

    path: tuple[str, ...]
    title: str
    doc: str
    settings: tuple[Setting, ...]


def sections(model: type[BaseModel] = Settings) -> list[Section]:
    """Every section of ``model``, depth first in declaration order; the top level first."""
    return list(_walk(model, (), "Top-level settings.", _doc(model), model.model_construct()))


def _walk(
    model: type[BaseModel], path: tuple[str, ...], title: str, doc: str, instance: BaseModel
) -> Iterator[Section]:
    """Defaults are read from the default *instance*: a section's fields may have no default of their
    own and get their values from the parent's default factory (the cascade levels do)."""
    leaves, children = [], []
    for name, info in model.model_fields.items():
        if _is_model(info.annotation):
            children.append((name, info))
        else:
            leaves.append(_setting((*path, name), info, getattr(instance, name)))
    yield Section(path, title, doc, tuple(leaves))
    for name, info in children:
        sub = cast(type[BaseModel], info.annotation)  # _is_model said so
        yield from _walk(
            sub,
            (*path, name),
            info.description or "",
            _doc(sub),
            getattr(instance, name),
        )


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _doc(model: type[BaseModel]) -> str:
    return " ".join((model.__doc__ or "").split())


def _setting(path: tuple[str, ...], info: FieldInfo, default: Any) -> Setting:
    return Setting(
        path=path,
        type=_type_name(info.annotation) + _constraints(info.metadata),
        default=default,
        description=" ".join((info.description or "").split()),
        secret=_is_secret(info.annotation),
    )


def _is_secret(annotation: Any) -> bool:
    return annotation is SecretStr or SecretStr in get_args(annotation)


def _type_name(annotation: Any) -> str:
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Literal:
        return "one of " + ", ".join(str(a) for a in args)
    if origin in (Union, types.UnionType):
        inner = [a for a in args if a is not type(None)]
        name = " or ".join(_type_name(a) for a in inner)
        return f"{name}, optional" if len(inner) < len(args) else name
    if origin is list:
        return f"list of {_type_name(args[0])} (JSON)"
    if origin is dict:
        return f"map of {_type_name(args[0])} to {_type_name(args[1])} (JSON)"
    names = {SecretStr: "secret string", Path: "path", datetime: "datetime (ISO 8601)"}
    return names.get(annotation, getattr(annotation, "__name__", str(annotation)))


def _constraints(metadata: Sequence[Any]) -> str:
    signs = {"gt": ">", "ge": "≥", "lt": "<", "le": "≤"}
    parts = []
    for item in metadata:
        if isinstance(
            item, annotated_types.Gt | annotated_types.Ge | annotated_types.Lt | annotated_types.Le
        ):
            attr = type(item).__name__.lower()
            parts.append(f"{signs[attr]} {getattr(item, attr)}")
    return f" ({', '.join(parts)})" if parts else ""


def env_value(value: Any) -> str:
    """A default written as an environment value: JSON for collections, ISO 8601 for times."""
    if value is None or isinstance(value, SecretStr):
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, list | tuple | dict):
        # Single quotes keep the JSON intact through systemd's EnvironmentFile and compose's env_file.
        return "'" + json.dumps(value, separators=(",", ":")) + "'"
    return str(value)


def _markdown_default(s: Setting) -> str:
    if s.secret:
        return "*unset* (secret)"
    if s.default is None:
        return "*none*"
    value = env_value(s.default).strip("'")
    return f"`{value}`" if value else '`""`'


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def config_reference_markdown(model: type[BaseModel] = Settings) -> str:
    """The configuration reference as Markdown: one table per section, in declaration order."""
    out = [
        f"Every setting, its environment variable, type and default (generated from `{model.__module__}`).",
        "In a TOML file (`--config PATH` or `RISKD_CONFIG_FILE`) a section is a table: `[venues.binance]`.",
        'Lists and maps are JSON in the environment, e.g. `RISKD_UNIVERSE__SYMBOLS=\'["BTC","ETH"]\'`.',
    ]
    for sec in sections(model):
        name = ".".join(sec.path) or "top level"
        out += ["", f"#### `{name}`" if sec.path else "#### Top level", ""]
        out.append(" ".join(p for p in (sec.title if sec.path else "", sec.doc) if p))
        if not sec.settings:
            continue
        out += [
            "",
            "| setting | environment variable | type | default | description |",
            "|---|---|---|---|---|",
        ]
        for s in sec.settings:
            cells = (f"`{s.key}`", f"`{s.env}`", _cell(s.type), _markdown_default(s), _cell(s.description))
            out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out) + "\n"


def env_example(model: type[BaseModel] = Settings) -> str:
    """An environment file naming every setting with its default, each line commented out."""
    out = [
        "# riskd settings as environment variables: every setting, with its default.",
        "# GENERATED from riskd/config.py by `python -m riskd.commands.reference --write`: do not edit by hand;",
        "# tests/test_deploy.py fails when this file and the Settings model drift apart.",
        "#",
        "# Copy it to /etc/riskd/riskd.env (systemd) or deploy/riskd.env (compose) and uncomment what you",
        "# change. Precedence: environment > TOML file (RISKD_CONFIG_FILE) > these defaults.",
        '# Lists and maps are JSON in single quotes. An empty value is not "unset": keep an optional',
        "# setting commented out to leave it unset. Secrets: keep this file readable by riskd only.",
        "",
        "# Optional TOML file with the same settings (sections as [tables]); same as --config PATH.",
        "# RISKD_CONFIG_FILE=",
    ]
    for sec in sections(model):
        heading = f"[{'.'.join(sec.path)}] {sec.title}" if sec.path else "top level"
        out += ["", f"# ---- {heading} ----"]
        for s in sec.settings:
            what = f"{s.description} [{s.type}]"
            out += textwrap.wrap(what, 108, initial_indent="# ", subsequent_indent="#   ")
            out.append(f"# {s.env}={env_value(s.default)}")
    return "\n".join(out) + "\n"


def splice(document: str, generated: str) -> str:
    """``document`` with the text between the two markers replaced by ``generated``."""
    head, sep, rest = document.partition(BEGIN_MARKER)
    _, sep2, tail = rest.partition(END_MARKER)
    if not sep or not sep2:
        raise ValueError(f"markers not found: {BEGIN_MARKER} … {END_MARKER}")
    return f"{head}{BEGIN_MARKER}\n{generated}{END_MARKER}{tail}"


REDIS_DOC = Path("docs/redis.md")
SCHEMA_BEGIN = "<!-- BEGIN GENERATED: snapshot schema -->"
SCHEMA_END = "<!-- END GENERATED: snapshot schema -->"


def snapshot_schema_markdown() -> str:
    """The shipped regime schema (what ``riskd:v1:regime`` holds), as a fenced block."""
    from riskd.contract import schemas as contract

    return f"```json\n{contract.render(contract.build_schemas()[contract.REGIME]).rstrip()}\n```\n"


TRADING_BEGIN = "<!-- BEGIN GENERATED: trading-state table (riskd/contract/trading.py) -->"
TRADING_END = "<!-- END GENERATED: trading-state table -->"


def _between(document: str, begin: str, end: str, generated: str) -> str:
    """``document`` with the text between ``begin`` and ``end`` replaced by ``generated`` (unchanged when
    the markers are absent)."""
    head, sep, rest = document.partition(begin)
    _, sep2, tail = rest.partition(end)
    return f"{head}{begin}\n{generated}{end}{tail}" if sep and sep2 else document


SCHEMA_DIR = Path("riskd/schemas")
RUNBOOKS_BEGIN = "<!-- BEGIN GENERATED RUNBOOKS: riskd/http/runbooks/runbooks.md -->"
RUNBOOKS_END = "<!-- END GENERATED RUNBOOKS -->"


def expected_files(root: Path) -> dict[Path, str]:
    """What the generated files must contain, by path under ``root``."""
    from riskd.contract import schemas as contract
    from riskd.contract.trading import table_markdown

    doc = (root / OPERATIONS_DOC).read_text(encoding="utf-8")
    redis_doc = (root / REDIS_DOC).read_text(encoding="utf-8")
    head, _, rest = redis_doc.partition(SCHEMA_BEGIN)
    _, _, tail = rest.partition(SCHEMA_END)
    from riskd.http import runbooks

    head_rb, _, rest_rb = splice(doc, config_reference_markdown()).partition(RUNBOOKS_BEGIN)
    _, _, tail_rb = rest_rb.partition(RUNBOOKS_END)
    files = {
        root / ENV_EXAMPLE: env_example(),
        root / OPERATIONS_DOC: f"{head_rb}{RUNBOOKS_BEGIN}\n{runbooks.docs_section()}{RUNBOOKS_END}{tail_rb}",
        root / REDIS_DOC: _between(
            f"{head}{SCHEMA_BEGIN}\n{snapshot_schema_markdown()}{SCHEMA_END}{tail}",
            TRADING_BEGIN,
            TRADING_END,
            table_markdown(),
        ),
    }
    for name, schema in contract.build_schemas().items():
        files[root / SCHEMA_DIR / name] = contract.render(schema)
    return files


def stale_files(root: Path) -> list[Path]:
    """Generated files whose content differs from what the Settings model gives now."""
    return [p for p, text in expected_files(root).items() if _read(p) != text]


def _read(path: Path) -> str | None:
    return path.read_text(encoding="utf-8") if path.is_file() else None


def main(argv: Sequence[str] | None = None) -> int:
    """``--write`` regenerates the files, ``--check`` (default) exits 1 when they drifted."""
    p = argparse.ArgumentParser(
        prog="python -m riskd.commands.reference", description=__doc__.splitlines()[0]
    )
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--write", action="store_true", help="rewrite the generated files")
    mode.add_argument("--check", action="store_true", help="exit 1 when they are out of date (default)")
    p.add_argument("--root", type=Path, default=Path(__file__).resolve().parents[2], help="repository root")
    args = p.parse_args(argv)
    if args.write:
        for path, text in expected_files(args.root).items():
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path}")
        return 0
    stale = stale_files(args.root)
    for path in stale:
        print(f"out of date: {path} (run: python -m riskd.commands.reference --write)", file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
