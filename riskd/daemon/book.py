"""What one replica knows between cycles: the core state, the recent states, what it published, the origin.

Kept in one object so it is saved and restored as one (``<data_dir>/state/fragility.json``, fsynced): a
restart continues exactly where the last cycle ended. Loading and saving are blocking file I/O; the daemon
runs them in a thread, never on its event loop.
"""

from __future__ import annotations

import json
import logging
from collections import OrderedDict
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from riskd.contract.codec import read_snapshot
from riskd.contract.models import Snapshot
from riskd.core import FragilityState
from riskd.core.params import FragilityParams
from riskd.store.files import write_durably

log = logging.getLogger("riskd.daemon")


class StateBook:
    """The replica's memory: ``state`` (the core's, after the last computed hour), ``states`` (after each
    recent hour, so late data restates from the hour it belongs to), ``published`` (as_of ISO → revision
    and content digest of what this replica published), ``last`` (the newest snapshot) and ``origin`` (the
    hour the expanding statistics start from, shared by every replica through Redis)."""

    def __init__(
        self, path: Path, params: FragilityParams, *, keep_states: int, keep_published_hours: int
    ) -> None:
        self.path = path
        self.params = params
        self.keep_states = keep_states
        self.keep_published = pd.Timedelta(hours=keep_published_hours)
        self.state: FragilityState | None = None
        self.states: OrderedDict[pd.Timestamp, FragilityState] = OrderedDict()
        self.published: dict[str, tuple[int, str]] = {}
        self.last: Snapshot | None = None
        self.origin: pd.Timestamp | None = None

    @property
    def last_ts(self) -> pd.Timestamp | None:
        """Open time of the last computed hour (None before the first)."""
        return self.state.last_ts if self.state is not None else None

    def load(self) -> None:
        """Restore what the last run saved; an unusable file is logged and the state rebuilt from the store."""
        if not self.path.exists():
            return
        try:
            saved = json.loads(self.path.read_text())
            self.state = FragilityState.from_dict(saved["state"], self.params)
            if saved.get("last"):
                self.last = read_snapshot(saved["last"])
            self.published = {k: (int(v[0]), str(v[1])) for k, v in saved.get("published", {}).items()}
            if saved.get("origin"):
                self.origin = pd.Timestamp(saved["origin"])
            log.info("resumed from %s (last hour %s)", self.path, self.state.last_ts)
        except (ValueError, KeyError, TypeError) as err:
            log.warning("saved state unusable (%s): rebuilding from the store", err)
            self.state = None

    def body(self) -> dict[str, Any]:
        """What :meth:`save` writes (taken on the event loop, written in a thread)."""
        return {
            "state": self.state.to_dict() if self.state is not None else None,
            "last": self.last.model_dump(mode="json") if self.last else None,
            "published": {k: list(v) for k, v in self.published.items()},
            "origin": self.origin.isoformat() if self.origin is not None else None,
        }

    def save(self, body: dict[str, Any]) -> None:
        """Write ``body`` (from :meth:`body`) atomically and fsynced; raises OSError on a disk fault."""
        write_durably(self.path, json.dumps(body))

    def keep(self, hour: pd.Timestamp, state: FragilityState) -> None:
        """The state after ``hour`` becomes current and is remembered for restatements."""
        self.state = state
        self.states[hour] = state
        self.states.move_to_end(hour)
        while len(self.states) > self.keep_states:
            self.states.popitem(last=False)

    def rewind(self, before: pd.Timestamp, base: FragilityState) -> None:
        """Restart from ``base`` (the state before hour ``before``): later remembered states are dropped."""
        self.state = base
        for hour in [h for h in self.states if h >= before]:
            del self.states[hour]

    def forget(self) -> None:
        """Drop the core state (the next cycle rebuilds it from the store)."""
        self.state = None
        self.states.clear()

    def note_published(self, snap: Snapshot) -> None:
        """Record a publication: its revision and content digest, and the newest snapshot."""
        if self.last is None or snap.as_of >= self.last.as_of:
            self.last = snap
        self.published[snap.as_of.isoformat()] = (snap.revision, snap.content_digest())
        self._trim(snap.as_of)

    def revision_of(self, snap: Snapshot) -> Snapshot | None:
        """A recomputed hour as the next revision of what was published, or None when unchanged."""
        held = self.published.get(snap.as_of.isoformat())
        if held is not None and held[1] == snap.content_digest():
            return None
        revision = held[0] + 1 if held is not None else 1
        return snap.model_copy(
            update={"revision": revision, "restated": True, "restate_reason": "late_data", "live": False}
        )

    def _trim(self, newest: datetime) -> None:
        cutoff = (newest - self.keep_published).isoformat()
        for key in [k for k in self.published if k < cutoff]:
            del self.published[key]
