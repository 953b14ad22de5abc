"""The docs name only what exists: every ``riskd …`` command (and its flags) in README.md and docs/*.md is
in the CLI's own table, and every ``RISKD_…`` variable and ``section.setting`` name is a setting.

The commands are read from ``riskd.commands.COMMANDS`` and ``build_parser()``, the settings from
``riskd.config.Settings`` (its env prefix and nested delimiter), so a command or setting added in code
passes here as soon as it is registered, and one renamed in code fails here until the docs follow.
"""

from __future__ import annotations

import argparse
import fnmatch
import re
import types
from pathlib import Path
from typing import Any, Union, get_args, get_origin

import pytest
from pydantic import BaseModel

from riskd.cli import build_parser
from riskd.commands import COMMANDS
from riskd.config import RedisSettings, Settings
from riskd.config import check as config_check

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

NOT_SETTINGS = {
    **config_check.NOT_SETTINGS,  # the documented non-settings riskd itself knows (it warns about the rest)
    "RISKD_RETRY__FOO": "operations.md's example of an unknown variable, which riskd rejects at start",
    "RISKD_REDIS_URL": "README's example of a misspelt variable, which riskd warns about at start",
}
"""``RISKD_…`` names the docs rightly use that are not fields of Settings, each with why."""

NOT_SETTING_NAMES = {
    "redis.asyncio": "redis-py's asyncio client module (docs/redis.md), not the redis section",
    "funding.rate_per_hour": "a column of the funding dataset (docs/features.md's input table), not a setting",
}
"""Dotted names in code spans that start like a Settings section but are something else, each with why."""

_FENCE = re.compile(r"^```([a-z]*)\n(.*?)^```", re.MULTILINE | re.DOTALL)
_SPAN = re.compile(r"`([^`\n]+)`")
_COMMAND = re.compile(r"(?:^|[;&|(]\s*|\$ |\bexec |/bin/|-m )riskd((?: [a-z][a-z-]*)+)((?: [^\s|]+)*)")
"""``riskd`` in a command position (start of the code, after a shell separator, ``exec``, ``…/bin/`` or
``python -m``) and its words; not ``sudo -u riskd sh`` nor a sentence in a JSON or JS block."""
_SHELL = ("bash", "sh", "shell", "console")
_FLAG = re.compile(r"(?<![\w-])--[a-z][a-z-]*")
_ENV = re.compile(r"\bRISKD_[A-Z0-9_]*")
_DOTTED = re.compile(r"^[a-z][a-z0-9_]*(?:\.(?:[a-z0-9_*]+|<[a-z]+>))+$")
_FILE_SUFFIXES = (".md", ".py", ".json", ".yml", ".yaml", ".toml", ".txt", ".csv", ".html", ".png")


def _commands_code(text: str) -> list[str]:
    """Where a Markdown text writes commands: its shell blocks line by line, and its inline code spans."""
    shell = [line for lang, body in _FENCE.findall(text) if lang in _SHELL for line in body.splitlines()]
    return shell + _SPAN.findall(_FENCE.sub("", text))


def _each_doc() -> list[tuple[str, str]]:
    return [(str(p.relative_to(ROOT)), p.read_text(encoding="utf-8")) for p in DOCS]


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:  # argparse keeps them here; no public accessor
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _command_parser(name: str) -> argparse.ArgumentParser:
    parser = build_parser()
    for word in name.split():
        parser = _subparsers(parser)[word]
    return parser


def _flags(parser: argparse.ArgumentParser) -> set[str]:
    return {opt for action in parser._actions for opt in action.option_strings}


def _mentions() -> list[tuple[str, str, str, list[str]]]:
    """(doc, the code it was found in, the command words, the flags after them), for every ``riskd …``."""
    out = []
    for doc, text in _each_doc():
        for code in _commands_code(text):
            for m in _COMMAND.finditer(code):
                out.append((doc, code, m.group(1).strip(), _FLAG.findall(m.group(2) + " " + m.group(1))))
    return out


def _resolve(words: str) -> str | None:
    """The registered command a mention names: its first two words, else its first word (the rest are
    arguments: ``riskd data import PATH``, ``riskd validate --out DIR``)."""
    parts = words.split()
    for n in (2, 1):
        if len(parts) >= n and " ".join(parts[:n]) in COMMANDS:
            return " ".join(parts[:n])
    return None


def test_the_docs_name_commands() -> None:
    """The scan finds the commands the README's table lists (so an empty scan cannot pass vacuously)."""
    named = {_resolve(words) for _, _, words, _ in _mentions()}
    assert {"run", "once", "replay", "demo", "validate", "data import", "config show"} <= named


def test_every_named_command_exists() -> None:
    """Every ``riskd …`` in README.md and docs/*.md is a command in riskd.commands.COMMANDS (``riskd import``
    is not: the command is ``riskd data import``)."""
    unknown = [
        f"{doc}: riskd {words}  (in `{code}`)" for doc, code, words, _ in _mentions() if not _resolve(words)
    ]
    assert not unknown, "commands the CLI does not have:\n" + "\n".join(unknown)


def test_every_named_flag_exists() -> None:
    """Every ``--flag`` written after a ``riskd <command>`` is an option of that command's parser."""
    wrong = []
    for doc, code, words, flags in _mentions():
        name = _resolve(words)
        if name is None:
            continue  # reported by test_every_named_command_exists
        known = _flags(_command_parser(name)) | _flags(build_parser())
        wrong += [f"{doc}: riskd {name} {flag}  (in `{code}`)" for flag in flags if flag not in known]
    assert not wrong, "flags the command does not take:\n" + "\n".join(wrong)


def _model_of(annotation: Any) -> type[BaseModel] | None:
    """The pydantic model inside ``annotation`` (``Model``, ``Model | None``), else None."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if get_origin(annotation) in (Union, types.UnionType):
        models = [m for a in get_args(annotation) if (m := _model_of(a)) is not None]
        return models[0] if len(models) == 1 else None
    return None


def _is_setting(path: list[str], model: type[BaseModel] = Settings) -> bool:
    """Whether ``path`` (lower-case field names; ``<name>`` stands for any field, ``*`` for any part of one:
    ``zscore.*_std_floor``) names a setting or a section of ``model``. A mapping setting
    (``streams.ws_urls``) takes any key below it."""
    if not path:
        return True
    head, rest = path[0], path[1:]
    fields = model.model_fields
    pattern = "*" if head.startswith("<") else head
    for name in fnmatch.filter(fields, pattern):
        annotation = fields[name].annotation
        inner = _model_of(annotation)
        if not rest or get_origin(annotation) is dict or (inner is not None and _is_setting(rest, inner)):
            return True
    return False


def _env_path(name: str) -> list[str] | None:
    """``RISKD_VENUES__OKX__ENABLED`` → ["venues", "okx", "enabled"]; a section prefix (``RISKD_VALIDATION__``)
    → ["validation"]; None for a name outside the prefix."""
    prefix = Settings.model_config.get("env_prefix") or ""
    delimiter = Settings.model_config.get("env_nested_delimiter") or "__"
    if not name.startswith(prefix) or name == prefix:
        return None
    rest = name[len(prefix) :].rstrip("_") if name.endswith(delimiter) else name[len(prefix) :]
    return [part.lower() for part in rest.split(delimiter)]


def test_every_named_environment_variable_is_a_setting() -> None:
    """Every ``RISKD_…`` in README.md and docs/*.md is a field of Settings (prefix RISKD_, sections split by
    ``__``) or one of the documented non-settings; ``RISKD_REDIS_URL`` (one underscore) would fail."""
    wrong = []
    seen = set()
    for doc, text in _each_doc():
        for name in _ENV.findall(text):
            seen.add(name)
            path = _env_path(name)
            if name != "RISKD_" and name not in NOT_SETTINGS and (not path or not _is_setting(path)):
                wrong.append(f"{doc}: {name}")
    assert not wrong, "environment variables that are not settings:\n" + "\n".join(sorted(set(wrong)))
    assert {"RISKD_REDIS__URL", "RISKD_CONFIG_FILE"} <= seen  # the scan reads what the README says


def test_every_dotted_setting_name_exists() -> None:
    """Every code span ``section.setting`` whose first part is a Settings section names a real setting
    (``validation.component_reps`` would fail: that one is fixed in code, not a setting). docs/features.md
    names the core's settings relative to ``fragility`` (``regime.signal``), so a name may resolve there."""
    fragility = _model_of(Settings.model_fields["fragility"].annotation)
    assert fragility is not None
    sections = set(Settings.model_fields) | set(fragility.model_fields)
    wrong = []
    for doc, text in _each_doc():
        for code in _SPAN.findall(text):
            path = code.split(".")
            if not _DOTTED.match(code) or code.endswith(_FILE_SUFFIXES) or path[0] not in sections:
                continue
            if code not in NOT_SETTING_NAMES and not (_is_setting(path) or _is_setting(path, fragility)):
                wrong.append(f"{doc}: {code}")
    assert not wrong, "setting names that Settings does not have:\n" + "\n".join(sorted(set(wrong)))


@pytest.mark.parametrize(
    ("name", "ok"),
    [
        ("RISKD_VENUES__OKX__ENABLED", True),
        ("RISKD_VALIDATION__", True),
        ("RISKD_STREAMS__WS_URLS", True),
        ("RISKD_REDIS_URL", False),
        ("RISKD_VALIDATION__COMPONENT_REPS", False),
    ],
)
def test_the_setting_check_itself(name: str, ok: bool) -> None:
    """The walk over Settings accepts real settings and sections and rejects near misses."""
    path = _env_path(name)
    assert path is not None
    assert _is_setting(path) is ok


def test_replay_help_names_the_prefix_replay_writes_under() -> None:
    """``riskd replay --help`` and docs/operations.md give the default prefix the code uses
    (``riskd-replay:v1`` for ``riskd:v1``), not ``riskd:v1:replay``."""
    from riskd.commands.replay import replay_prefix

    default = RedisSettings().key_prefix
    actual = replay_prefix(default)
    help_text = " ".join(_command_parser("replay").format_help().split())
    assert f"{default} -> {actual}" in help_text
    assert f"{default}:replay" not in help_text
    ops = (ROOT / "docs" / "operations.md").read_text(encoding="utf-8")
    assert f"`{actual}:regime`" in ops
    assert f"{default}:replay" not in ops
