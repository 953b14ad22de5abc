"""The ONE way riskd reads what it (or a newer riskd) published: tolerant of added fields, strict on the rest.

Writers are strict (``extra="forbid"``: riskd never writes a field its model does not declare); every
reader in riskd — the alert feed, the HTTP history, Telegram's /status, the minute side, the spool, the
saved state, the outbox, ``riskd.client`` — decodes here, so a field added by a newer v1 writer never
breaks an older reader during a rolling upgrade.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, TypeVar

from pydantic import BaseModel

from riskd.contract.models import Snapshot

M = TypeVar("M", bound=BaseModel)


def _known(model: type[BaseModel], data: Any) -> Any:
    """``data`` with the keys ``model`` does not declare dropped, at every nested model."""
    if not isinstance(data, dict):
        return data
    out = {}
    for name, value in data.items():
        field = model.model_fields.get(name)
        if field is None:
            continue
        sub = field.annotation
        out[name] = _known(sub, value) if isinstance(sub, type) and issubclass(sub, BaseModel) else value
    return out


def read_model(model: type[M], raw: str | bytes | dict[str, Any]) -> M:
    """Validate ``raw`` as ``model`` the way a reader should: unknown fields (added by a newer v1 writer)
    are ignored, everything declared is checked strictly as JSON types (a retyped field, such as a number
    sent as a string, is a v2 change and fails). Raises ``pydantic.ValidationError`` or ``ValueError``."""
    data = json.loads(raw) if isinstance(raw, str | bytes) else raw
    return model.model_validate_json(json.dumps(_known(model, data)), strict=True)


def read_snapshot(raw: str | bytes | dict[str, Any]) -> Snapshot:
    """A snapshot as a tolerant v1 reader sees it (see :func:`read_model`): the regime key, a spooled or
    saved snapshot. Every reader in riskd decodes snapshots here or through :func:`read_entry`."""
    return read_model(Snapshot, raw)


def read_entry(fields: Mapping[Any, Any] | None) -> Snapshot:
    """The snapshot of one history-stream entry (its ``json`` field), read as :func:`read_snapshot` reads
    the key. Raises ``ValueError`` (``pydantic.ValidationError`` is one) for an entry riskd cannot read."""
    raw = fields.get(b"json", fields.get("json")) if fields else None
    if not raw:
        raise ValueError("history entry without a json field")
    return read_snapshot(raw)


def latest_revisions(snapshots: Iterable[Snapshot]) -> list[Snapshot]:
    """One snapshot per hour, its highest revision, oldest hour first (how to read the stream)."""
    best: dict[datetime, Snapshot] = {}
    for snap in snapshots:
        held = best.get(snap.as_of)
        if held is None or snap.revision >= held.revision:  # on a tie, the later entry
            best[snap.as_of] = snap
    return [best[t] for t in sorted(best)]
