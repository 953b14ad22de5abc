"""THE atomic write: every file riskd keeps (history year files, the core state, the Redis spool, the
liquidation journal) is replaced through here, so a reader or a crash only ever sees the old file or the
new one, and what was written survives a power cut.

The temporary file sits beside the target under a dot-name with a random part (``.NAME.<hex>.tmp``): hive
readers and globs skip it, and a leftover from a writer killed mid-write is swept the next time the same
file is written. Data and directory are fsynced.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

_CHUNK = 1 << 20
"""Bytes per ``os.write``: small enough that a crash can land mid-file (the tests kill writers there)."""


def write_atomic(path: Path, data: bytes | str) -> None:
    """Replace ``path`` with ``data`` (text is UTF-8) atomically and durably, or raise OSError."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = data.encode("utf-8") if isinstance(data, str) else data
    for stale in path.parent.glob(f".{path.name}.*.tmp"):
        stale.unlink(missing_ok=True)
    tmp = path.parent / f".{path.name}.{uuid.uuid4().hex}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        try:
            view = memoryview(payload)
            for off in range(0, len(view), _CHUNK):
                os.write(fd, view[off : off + _CHUNK])
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def write_durably(path: Path, text: str) -> None:
    """Text through :func:`write_atomic` (the name the daemon's state and spool have always used)."""
    write_atomic(path, text)


def fsync_dir(folder: Path) -> None:
    """Make a rename in ``folder`` durable (a no-op where a directory cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # some platforms cannot open a directory; the rename is still atomic
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
