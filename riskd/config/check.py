"""What a setting may hold, and where a bad one came from.

Two halves that ``riskd.config`` uses. The value checks (:func:`listen_host`, :func:`symbol_name`,
:func:`key_prefix`; the URL ones, :func:`http_url` and :func:`redis_url`, live in :mod:`riskd.config.urls`
and are re-exported here) run as pydantic validators, so a value that cannot work fails when the settings are read, not an hour later inside ccxt, redis-py or
aiohttp. The provenance half (:class:`Provenance`) names the source of a field, the flag, the
environment variable, the TOML file and key, so an error sends the reader to the right place.
Messages never repeat a value that may hold a secret (a Redis URL carries its password).
"""

from __future__ import annotations

import difflib
import errno
import json
import os
import re
import socket
import tomllib
import types
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union, get_args, get_origin

from pydantic import BaseModel

from riskd.config.urls import (
    SENTINEL_SCHEME as SENTINEL_SCHEME,  # re-exported: the value checks live in one place
)
from riskd.config.urls import SentinelTarget as SentinelTarget
from riskd.config.urls import http_url as http_url
from riskd.config.urls import is_hostname as is_hostname
from riskd.config.urls import redis_url as redis_url
from riskd.config.urls import sentinel_target as sentinel_target
from riskd.errors import ConfigError

ENV_PREFIX = "RISKD_"
SYMBOL_RE = re.compile(r"^[A-Z0-9]{1,20}$")
"""A base asset after upper-casing: what the store's file names and the venues' ids are built from."""
_PREFIX_RE = re.compile(r"^[A-Za-z0-9_.:{}/-]{1,100}$")


def listen_host(value: str) -> str:
    """An address to listen on: an IP address or a host name (``0.0.0.0`` for every interface)."""
    if not is_hostname(value.strip()) or value != value.strip():
        raise ValueError(f"{value!r} is neither an IP address nor a host name")
    return value


def symbol_name(value: str) -> str:
    """A base asset, upper-cased: 1-20 letters or digits (BTC, 1000PEPE); anything else never trades."""
    name = value.strip().upper()
    if not SYMBOL_RE.match(name):
        raise ValueError(
            f"{value!r} is not a base asset name (1 to 20 letters or digits, e.g. BTC, 1000PEPE)"
        )
    return name


def key_prefix(value: str) -> str:
    """A Redis key prefix: 1-100 of letters, digits and ``_.:{}/-`` (no spaces or glob characters)."""
    if not _PREFIX_RE.match(value):
        raise ValueError("must be 1 to 100 letters, digits or _ . : { } / - (e.g. riskd:v1)")
    return value


# ---- provenance ---------------------------------------------------------------------------------


def _unwrap(annotation: Any) -> Any:
    """The non-None member of ``X | None``."""
    if get_origin(annotation) in (Union, types.UnionType):
        members = [a for a in get_args(annotation) if a is not type(None)]
        return members[0] if len(members) == 1 else annotation
    return annotation


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _json_example(annotation: Any) -> str | None:
    """An example JSON value when pydantic-settings expects JSON in an environment variable, else None."""
    ann = _unwrap(annotation)
    origin = get_origin(ann) or ann
    if origin in (list, tuple, set, frozenset):
        args = get_args(ann)
        return (
            "a JSON list, e.g. '[1, 2]'" if args and args[0] is int else 'a JSON list, e.g. \'["BTC","ETH"]\''
        )
    if origin is dict:
        return 'a JSON object, e.g. \'{"FTM": "S"}\''
    if _is_model(ann):
        return "a JSON object of this section's settings, or one variable per setting"
    return None


@dataclass
class Provenance:
    """Where each setting's value comes from: a flag, an environment variable, the TOML file, a default."""

    environ: Mapping[str, str]
    config_file: Path | None = None
    config_origin: str = "--config"
    flags: Mapping[str, str] = field(default_factory=dict)
    overrides: Mapping[str, Any] = field(default_factory=dict)
    toml: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def gather(
        cls,
        environ: Mapping[str, str],
        config_file: str | Path | None,
        flags: Mapping[str, str] | None,
        overrides: Mapping[str, Any],
    ) -> Provenance:
        """Note the RISKD_ variables and read the TOML file once; a missing or unparsable file is a ConfigError."""
        environ = {k: v for k, v in environ.items() if k.upper().startswith(ENV_PREFIX)}
        origin = "--config" if config_file else "RISKD_CONFIG_FILE"
        path_text = config_file or next(
            (v for k, v in environ.items() if k.upper() == "RISKD_CONFIG_FILE"), None
        )
        prov = cls(environ, None, origin, dict(flags or {}), dict(overrides))
        if path_text:
            path = Path(path_text)
            if not path.is_file():
                raise ConfigError(f"invalid setting config_file ({origin}): no such file: {path}")
            try:
                prov.toml = tomllib.loads(path.read_text(encoding="utf-8"))
            except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
                raise ConfigError(f"invalid config file {path} ({origin}): not valid TOML: {err}") from None
            except OSError as err:
                raise ConfigError(
                    f"invalid setting config_file ({origin}): cannot read {path}: {err}"
                ) from None
            prov.config_file = path
        return prov

    def env_name(self, loc: tuple[str, ...]) -> str | None:
        """The environment variable that set ``loc`` (itself, or a JSON value of a section above it)."""
        upper = {k.upper(): k for k in self.environ}
        for i in range(len(loc), 0, -1):
            name = ENV_PREFIX + "__".join(p.upper() for p in loc[:i])
            if name in upper:
                return upper[name]
        return None

    def toml_key(self, loc: tuple[str, ...]) -> str | None:
        """The dotted key in the TOML file that set ``loc`` (the deepest one present), or None."""
        node: Any = self.toml
        found: list[str] = []
        for part in loc:
            if not isinstance(node, dict) or part not in node:
                break
            found.append(part)
            node = node[part]
        return ".".join(found) if found else None

    def source(self, loc: tuple[str, ...]) -> str:
        """Human name of where ``loc`` came from, in the order pydantic-settings applies them."""
        dotted = ".".join(loc)
        for key, flag in self.flags.items():
            if dotted == key or dotted.startswith(key + "."):
                return flag
        if loc and loc[0] in self.overrides:
            return "argument"
        env = self.env_name(loc)
        if env:
            return env
        toml = self.toml_key(loc)
        if toml and self.config_file is not None:
            return f"{self.config_file}, key {toml}"
        return "default"

    def check_env_json(self, model: type[BaseModel]) -> None:
        """Environment values of list/dict/section fields must be JSON; say so on the variable itself."""
        for name, value in self.environ.items():
            loc = _field_path(model, name[len(ENV_PREFIX) :].lower().split("__"))
            if loc is None or not value:
                continue
            path, annotation = loc
            example = _json_example(annotation)
            if example is None:
                continue
            try:
                json.loads(value)
            except ValueError:
                raise ConfigError(
                    f"invalid setting {'.'.join(path)} ({name}): not JSON; write {example}"
                ) from None


NOT_SETTINGS: dict[str, str] = {
    "RISKD_CONFIG_FILE": "the TOML file to read (like --config)",
    "RISKD_TEST_REDIS_URL": "the test suite's Redis (tests/conftest.py), not riskd's",
}
"""``RISKD_`` variables that are documented but are not settings, with what they are."""


def env_names(model: type[BaseModel], prefix: str = ENV_PREFIX) -> list[str]:
    """Every environment variable that names a setting of ``model`` (sections by ``__``), sorted."""
    out = []
    for name, info in model.model_fields.items():
        var = f"{prefix}{name.upper()}"
        out.append(var)
        inner = _unwrap(info.annotation)
        if _is_model(inner):
            out += env_names(inner, var + "__")
    return sorted(out)


def unknown_env(environ: Mapping[str, str], model: type[BaseModel]) -> list[str]:
    """One line per ``RISKD_`` variable that names no setting (pydantic-settings ignores such a variable, so
    a typo like ``RISKD_REDIS_URL`` would silently change nothing), with the closest real one."""
    known = env_names(model)
    lines = []
    for var in sorted(v for v in environ if v.upper().startswith(ENV_PREFIX)):
        if var.upper() in NOT_SETTINGS or _names_setting(model, var[len(ENV_PREFIX) :].lower().split("__")):
            continue
        close = difflib.get_close_matches(var.upper(), known, n=1, cutoff=0.6)
        hint = f"; did you mean {close[0]}?" if close else ""
        lines.append(f"environment variable {var} is not a riskd setting and is ignored{hint}")
    return lines


def _names_setting(model: type[BaseModel], parts: list[str]) -> bool:
    """Whether the name parts lead to a setting, or into a mapping setting (any key is allowed there)."""
    for i in range(len(parts), 0, -1):
        found = _field_path(model, parts[:i])
        if found is not None:
            inner = _unwrap(found[1])
            return i == len(parts) or (get_origin(inner) or inner) is dict
    return False


def writable_dir(path: Path) -> Path:
    """A directory riskd can write in: it exists and is writable, or its nearest existing parent is a
    writable directory (so it can be created). Checked without creating anything."""
    probe = path
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if not probe.is_dir():
        if probe == path:
            raise ValueError(f"{path} exists and is not a directory")
        raise ValueError(f"{path} cannot be created: {probe} is not a directory")
    if not os.access(probe, os.W_OK | os.X_OK):
        if probe == path:
            raise ValueError(f"{path} is not writable")
        raise ValueError(f"{path} cannot be created: {probe} is not writable")
    return path


def make_writable_dir(path: Path, source: str) -> None:
    """Create ``path`` (with parents) and prove a file can be written in it, or raise ConfigError naming the
    setting's source: a data dir riskd cannot write must stop it at start (exit 2), not an hour later."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".riskd-write-check-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as err:
        raise ConfigError(
            f"invalid setting data_dir ({source}): {path} is not a writable directory: {err.strerror or err}"
        ) from None


def _field_path(model: type[BaseModel], parts: list[str]) -> tuple[tuple[str, ...], Any] | None:
    """The field an environment variable's name parts lead to, and its annotation (None: no such field)."""
    current: Any = model
    annotation: Any = None
    path: list[str] = []
    for part in parts:
        if not _is_model(current) or part not in current.model_fields:
            return None
        annotation = current.model_fields[part].annotation
        path.append(part)
        current = _unwrap(annotation)
    return tuple(path), annotation


def check_listen(host: str, port: int, *, host_source: str, port_source: str) -> None:
    """Raise ConfigError unless ``host:port`` can be listened on now (port 0: any free one).

    Run before anything else starts, so a metrics port already taken is one line and exit 2 rather
    than a traceback after Redis and the venues were set up (and a systemd restart loop).
    """
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except (socket.gaierror, UnicodeError) as err:
        reason = getattr(err, "strerror", None) or str(err)
        raise ConfigError(
            f"invalid setting metrics.host ({host_source}): cannot resolve {host!r}: {reason}"
        ) from None
    for family, kind, proto, _, addr in infos:
        with socket.socket(family, kind, proto) as sock:
            sock.setsockopt(
                socket.SOL_SOCKET, socket.SO_REUSEADDR, 1
            )  # as the server binds (TIME_WAIT is fine)
            try:
                sock.bind(addr)
            except OSError as err:
                if err.errno == errno.EADDRINUSE:
                    raise ConfigError(
                        f"invalid setting metrics.port ({port_source}): {host}:{port} is already in use "
                        "(another riskd or program listens there; pick another port or 0 for any)"
                    ) from None
                raise ConfigError(
                    f"invalid setting metrics.host ({host_source}): cannot listen on {host}:{port}: {err.strerror}"
                ) from None
