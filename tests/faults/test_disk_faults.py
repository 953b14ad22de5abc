"""Disk faults: the data dir turns read-only, or fills up (a small tmpfs mounted for the test; needs root)."""

from __future__ import annotations

import contextlib
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from faultkit import HOUR, T0, assert_kept, market, rig

pytestmark = pytest.mark.slow

CASCADE = T0 + 10 * HOUR


def _mount(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["mount", *args], capture_output=True, text=True, timeout=10)


@pytest.fixture
def tmpfs_data(tmp_path: Path) -> Iterator[Path]:
    """A 64 MiB tmpfs to serve as the daemon's data dir; skipped where mounting is not permitted."""
    target = tmp_path / "data"
    target.mkdir()
    done = _mount("-t", "tmpfs", "-o", "size=64m", "tmpfs", str(target))
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {done.stderr.strip()}")
    try:
        yield target
    finally:
        with contextlib.suppress(Exception):
            _mount("-o", "remount,rw", str(target))
        subprocess.run(["umount", "-l", str(target)], capture_output=True, timeout=10)


def _fill(path: Path) -> Path:
    """Write until the filesystem is full (ENOSPC); returns the filler to delete later."""
    filler = path / "filler.bin"
    with contextlib.suppress(OSError), filler.open("wb") as f:
        while True:
            f.write(b"\0" * (1 << 20))
            f.flush()
    return filler


@pytest.mark.parametrize("fault", ["read_only", "full"])
def test_data_dir_read_only_or_full_is_contained(
    fault_tmp: Path, tmpfs_data: Path, record: dict[str, Any], fault: str
) -> None:
    """For 4 hours the data dir cannot be written (finding 9): publishing goes on, no traceback per hour, the
    fault is logged once per state change, and once the disk is back the stream equals the batch path."""
    record["scenario"] = f"data_dir_{fault}"
    with rig(fault_tmp, market(CASCADE)) as r:
        r.data_dir = tmpfs_data
        r.oracle_data_dir = tmpfs_data
        d = r.start_daemon()
        r.drive(T0, T0 + 2 * HOUR)
        mark = len(d.log().splitlines())
        filler = None
        if fault == "read_only":
            assert _mount("-o", "remount,ro", str(tmpfs_data)).returncode == 0
        else:
            filler = _fill(tmpfs_data)
        r.drive(T0 + 3 * HOUR, T0 + 6 * HOUR)
        during = d.log().splitlines()[mark:]
        if fault == "read_only":
            assert _mount("-o", "remount,rw", str(tmpfs_data)).returncode == 0
        elif filler is not None:
            filler.unlink()
        r.drive(T0 + 7 * HOUR, T0 + 8 * HOUR)
        r.wait_alerts_settled(timeout=10)
        v = r.judge()
        record.update(v.as_dict())
        tracebacks = sum("Traceback" in ln for ln in during)
        if tracebacks:
            v.add(f"{tracebacks} traceback(s) in the log over 4 hours of a {fault} data dir (want none)")
        errors = [
            ln
            for ln in during
            if re.search(r" (ERROR|WARNING) ", ln)
            and re.search(r"Read-only|No space|Errno 28|Errno 30|history store|state", ln)
        ]
        if len(errors) > 2:
            v.add(
                f"the {fault} data dir was logged {len(errors)} times over 4 hours (want once per state change "
                f"and stage), e.g. {errors[0][-160:]!r}"
            )
        failed = [ln for ln in during if "cycle failed" in ln]
        if failed:
            v.add(f"{len(failed)} cycle(s) counted as failed for a disk fault: {failed[0][-160:]!r}")
        assert_kept(v, r)
