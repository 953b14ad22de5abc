"""Frames built on demand: a mapping that builds a symbol's frame on each access and keeps nothing (a
year of synthetic minutes for 600 symbols fits in no test's memory otherwise)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence

import pandas as pd


class LazyFrames(Mapping[str, pd.DataFrame]):
    """A read-only mapping symbol -> frame that builds the frame on each access and keeps nothing."""

    def __init__(self, keys: Sequence[str], build: Callable[[str], pd.DataFrame]) -> None:
        self._keys = dict.fromkeys(keys)
        self._build = build

    def __getitem__(self, key: str) -> pd.DataFrame:
        if key not in self._keys:
            raise KeyError(key)
        return self._build(key)

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys)

    def __len__(self) -> int:
        return len(self._keys)


def cutter(
    frames: Mapping[str, pd.DataFrame], lo: pd.Timestamp, hi: pd.Timestamp
) -> Callable[[str], pd.DataFrame]:
    def build(symbol: str) -> pd.DataFrame:
        df = frames[symbol]
        return df.loc[(df.index >= lo) & (df.index < hi)]

    return build
