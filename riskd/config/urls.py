"""The URL and host checks of the settings (:func:`http_url`, :func:`redis_url`, the Sentinel form), kept
apart from :mod:`riskd.config.check`, which re-exports them: a URL is checked where it is read, and its
message never repeats the URL (a Redis URL carries its password)."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

_LABEL_RE = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")
_REDIS_SCHEMES = ("redis", "rediss", "unix", "redis+sentinel")
SENTINEL_SCHEME = "redis+sentinel"


@dataclass(frozen=True)
class SentinelTarget:
    """A ``redis+sentinel://[user:password@]host:port[,host:port…]/service[/db][?sentinel_password=…]`` URL,
    parsed: the sentinels to ask, the monitored service, and the credentials of the primary (and of the
    sentinels, when they have their own). ``repr`` hides the passwords."""

    sentinels: tuple[tuple[str, int], ...]
    service: str
    db: int = 0
    username: str | None = field(default=None, repr=False)
    password: str | None = field(default=None, repr=False)
    sentinel_password: str | None = field(default=None, repr=False)


def sentinel_target(value: str) -> SentinelTarget:
    """Parse a Sentinel URL (see :class:`SentinelTarget`); ValueError says what is wrong, never echoing it."""
    from urllib.parse import parse_qs, unquote

    rest = value[len(SENTINEL_SCHEME) + 3 :]
    auth, _, rest = rest.rpartition("@") if "@" in rest.split("/", 1)[0] else ("", "", rest)
    hosts, _, path = rest.partition("/")
    path, _, query = path.partition("?")
    sentinels = []
    for item in hosts.split(","):
        host, _, port = item.rpartition(":")
        if not host or not is_hostname(host.strip("[]")) or not port.isdigit() or not 1 <= int(port) <= 65535:
            raise ValueError("each sentinel must be HOST:PORT (redis+sentinel://h1:26379,h2:26379/SERVICE)")
        sentinels.append((host.strip("[]"), int(port)))
    service, _, db = path.partition("/")
    if not service:
        raise ValueError("needs the monitored service name after the hosts (…:26379/SERVICE[/DB])")
    if db and not db.isdigit():
        raise ValueError("database (after the service name) must be a number, e.g. /0")
    user, _, password = auth.partition(":")
    extra = parse_qs(query)
    unknown = sorted(set(extra) - {"sentinel_password"})
    if unknown:
        raise ValueError(f"unknown query parameter(s) {unknown}: only sentinel_password is read")
    return SentinelTarget(
        tuple(sentinels),
        unquote(service),
        int(db or 0),
        unquote(user) or None,
        unquote(password) or None,
        extra["sentinel_password"][0] if "sentinel_password" in extra else None,
    )


# ---- value checks ------------------------------------------------------------------------------


def _port_of(parts: Any) -> int | None:
    try:
        port = parts.port
    except ValueError:
        raise ValueError("port must be a whole number from 1 to 65535") from None
    if port is not None and not 1 <= port <= 65535:
        raise ValueError("port must be a whole number from 1 to 65535")
    return port


def is_hostname(text: str) -> bool:
    """True for an IP address or a syntactically valid DNS name (RFC 1123 labels)."""
    host = text[1:-1] if text.startswith("[") and text.endswith("]") else text
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        pass
    name = host[:-1] if host.endswith(".") else host
    return 0 < len(name) <= 253 and all(_LABEL_RE.match(label) for label in name.split("."))


def http_url(value: str | None) -> str | None:
    """An http(s) URL with a host and, if given, a port 1-65535; None passes (the default applies)."""
    if value is None:
        return None
    if not value.strip() or any(c.isspace() for c in value):
        raise ValueError("must be an http:// or https:// URL without spaces")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https"):
        raise ValueError(f"must be an http:// or https:// URL (scheme is {parts.scheme or 'missing'!r})")
    if not parts.hostname or not is_hostname(parts.hostname):
        raise ValueError("must name a valid host (http://HOST[:PORT][/path])")
    _port_of(parts)
    return value


def redis_url(value: str) -> str:
    """redis://, rediss:// (TLS) with a host and port 1-65535, or unix:///path; the URL is never echoed."""
    if any(c.isspace() for c in value):
        raise ValueError("must be a redis://, rediss:// or unix:// URL without spaces")
    parts = urlsplit(value)
    if parts.scheme not in _REDIS_SCHEMES:
        shown = parts.scheme if parts.scheme.replace("+", "").isalnum() else "missing"
        raise ValueError(f"scheme must be redis, rediss, unix or redis+sentinel (got {shown!r})")
    if parts.scheme == SENTINEL_SCHEME:
        sentinel_target(value)
        return value
    if parts.scheme == "unix":
        if not parts.path:
            raise ValueError("unix:// URL needs a socket path (unix:///run/redis.sock)")
        return value
    if not parts.hostname or not is_hostname(parts.hostname):
        raise ValueError("must name a valid host (redis://[user:password@]HOST[:PORT][/DB])")
    _port_of(parts)
    db = parts.path.lstrip("/")
    if db and not db.isdigit():
        raise ValueError("database (the path after the host) must be a number, e.g. /0")
    return value
