"""``riskd origin``: show or move the history origin the replicas share (``<prefix>:history:origin``).

CFI v2 ranks against the whole past from this hour on, so every replica must start from the same one
(docs/operations.md, Replicas and the history origin). After a ``riskd data import`` of older history the
local store holds hours before it; ``riskd origin --from-store`` moves the origin to the store's first hour
and every running replica rebuilds its statistics from it at its next cycle. Hours published before the
move keep the values they were published with.
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

import pandas as pd

from riskd.commands._args import hour_arg
from riskd.config import Settings, redact_url
from riskd.errors import ConfigError, SinkError, Unreachable


def add_parser(sub: Any) -> None:
    """The ``origin`` sub-command's arguments (registered by riskd.cli)."""
    og = sub.add_parser("origin", help="show or move the history origin every replica ranks from")
    move = og.add_mutually_exclusive_group()
    move.add_argument("--set", dest="to", metavar="WHEN", help="move it to this hour (UTC ISO)")
    move.add_argument(
        "--from-store", action="store_true", help="move it to the first hour the local store holds"
    )


def redis_url(settings: Settings) -> str:
    """The configured Redis, else the one on localhost (a command never starts an embedded one)."""
    url = settings.redis.url
    return url.get_secret_value() if url is not None else "redis://127.0.0.1:6379/0"


async def _origin(settings: Settings, target: pd.Timestamp | None, from_store: bool) -> int:
    from riskd.contract.keys import Keys
    from riskd.daemon.wiring import redis_answers
    from riskd.market import store_first_hour
    from riskd.sinks.redis import client_from_settings, read_origin, write_origin
    from riskd.store import HistoryStore

    url = redis_url(settings)
    client = client_from_settings(settings.redis, url)
    try:
        down = await redis_answers(client, url, settings.redis.socket_timeout_s)
        if down is not None:
            raise Unreachable(down)
        keys = Keys(settings.redis.key_prefix)
        store = HistoryStore(settings.store_dir)
        local = store_first_hour(store, settings.fragility, settings.universe.symbols)
        try:
            shared = await read_origin(client, keys)
        except SinkError as err:
            print(f"riskd: {err}; --set or --from-store replaces it")
            shared = None
        print(f"shared history origin ({keys.history_origin} at {redact_url(url)}): {_when(shared)}")
        print(f"first hour of the local store ({settings.store_dir}): {_when(local)}")
        if from_store:
            if local is None:
                raise ConfigError(
                    f"invalid argument --from-store: the store at {settings.store_dir} is empty"
                )
            target = local
        if target is None:
            return 0
        await write_origin(client, keys, target)
        print(f"history origin moved to {_when(target)}: every replica rebuilds from it at its next cycle")
        return 0
    finally:
        await client.aclose()


def _when(ts: pd.Timestamp | None) -> str:
    return "none" if ts is None else f"{ts:%Y-%m-%dT%H:%M}Z"


def cli_origin(settings: Settings, args: argparse.Namespace) -> int:
    """``riskd origin [--set WHEN | --from-store]``."""
    target = hour_arg(getattr(args, "to", None), "--set")
    return asyncio.run(_origin(settings, target, bool(getattr(args, "from_store", False))))
