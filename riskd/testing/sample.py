"""The bundled real sample: Binance hourly data around the 2021-05-19 crash, for tests.

The files live in ``tests/data/sample_2021_05`` in the freqtrade layouts they were cut from (see
``tests/data/README.md``), so loading them goes through the real importer rather than a fixture
loader that could drift from it. The sample only exists in a source checkout, not in an installed
wheel, hence the path relative to this file and the explicit error when it is missing.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from riskd.errors import DataError

if TYPE_CHECKING:
    from riskd.store import HistoryStore

SAMPLE_NAME = "sample_2021_05"
SAMPLE_START = "2021-04-20T00:00:00Z"
"""First hour of the sample (inclusive)."""
SAMPLE_END = "2021-06-10T23:00:00Z"
"""Last hour of the sample (inclusive)."""
PERP_SYMBOLS: tuple[str, ...] = ("BTC", "ETH", "XRP", "LTC", "ADA")
"""Base assets with perp OHLCV and funding in the sample (the only perps with 2021 history on hand)."""
SPOT_SYMBOLS: tuple[str, ...] = (
    "SOL",
    "DOGE",
    "BNB",
    "AVAX",
    "LINK",
    "DOT",
    "UNI",
    "ATOM",
    "NEAR",
    "FIL",
    "FTM",
)
"""Universe alts present in the sample only as Binance spot hourly OHLCV."""


def bundled(name: str, made_by: str) -> Path:
    """A file or folder of ``tests/data`` in the source checkout (the demos' samples ship there only);
    DataError naming the script that regenerates it when it is missing."""
    path = Path(__file__).resolve().parents[2] / "tests" / "data" / name
    if not path.exists():
        raise DataError(
            f"the bundled sample is missing: {path} (it ships with the source checkout only; "
            f"regenerate it with tests/data/{made_by})"
        )
    return path


def sample_dir() -> Path:
    """Folder of the bundled hourly sample inside the repository checkout."""
    return bundled(SAMPLE_NAME, "make_sample.py")


def load_sample_store(root: Path) -> HistoryStore:
    """Import the bundled sample into a fresh store at ``root`` and return the store.

    Datasets afterwards: ``ohlcv`` and ``funding`` for :data:`PERP_SYMBOLS`, ``spot_ohlcv`` for
    :data:`SPOT_SYMBOLS`, all under venue ``binance``.
    """
    from riskd.config import UniverseSettings
    from riskd.importer import import_path
    from riskd.store import HistoryStore

    store = HistoryStore(Path(root))
    report = import_path(sample_dir(), store, renames=UniverseSettings().renames, progress=False)
    if report.skipped:
        names = ", ".join(f"{p.name} ({why})" for p, why in report.skipped)
        raise DataError(f"the bundled sample did not import cleanly: {names}")
    return store
