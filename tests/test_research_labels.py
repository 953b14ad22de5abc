"""riskd's one crash definition: the labels of each kind, the one comparison (≤), when a label is known."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from riskd.research.labels import CrashDefinition, crash_labels, episode_count, label_known_at


def _series(values, start: str = "2021-01-01") -> pd.Series:
    idx = pd.date_range(start, periods=len(values), freq="h", tz="UTC", name="ts")
    return pd.Series(values, index=idx, dtype=float)


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("return", [0.0, 0.0, 1.0, np.nan, np.nan]),  # close 2 hours ahead at or below -5%
        ("drawdown", [1.0, 0.0, 1.0, np.nan, np.nan]),  # some close in the next 2 hours at or below -5%
    ],
)
def test_crash_labels_look_only_at_the_next_horizon_hours(kind, expected):
    """Row T is labelled from the closes T+1 … T+h, NaN where they run past the data."""
    close = _series([100, 94, 100, 99, 90])
    label = crash_labels(close, CrashDefinition(kind=kind, horizon_h=2, threshold=-0.05))
    np.testing.assert_array_equal(label.to_numpy(), np.array(expected))


@pytest.mark.parametrize("kind", ["return", "drawdown"])
def test_a_move_of_exactly_the_threshold_is_a_crash_and_one_basis_point_less_is_not(kind):
    """One comparison for every kind: at or below the threshold (≤) counts."""
    exact = crash_labels(_series([100.0, 100.0, 95.0]), CrashDefinition(kind, 2, -0.05))
    short = crash_labels(_series([100.0, 100.0, 95.01]), CrashDefinition(kind, 2, -0.05))
    assert exact.iloc[0] == 1.0
    assert short.iloc[0] == 0.0


def test_the_previous_two_label_functions_are_gone():
    """No second crash_labels: tailrisk and calibrate take the one in riskd.research.labels."""
    from riskd.research import calibrate, tailrisk

    assert not hasattr(tailrisk, "crash_labels")
    assert not hasattr(calibrate, "crash_labels")


def test_a_drawdown_window_mostly_missing_is_unknown_unless_it_shows_a_crash():
    """Fewer than half of the window's closes present: NaN, unless one of them already crossed."""
    calm = crash_labels(_series([100.0, np.nan, np.nan, np.nan, 99.0, 99.0]), CrashDefinition("drawdown", 4))
    hit = crash_labels(_series([100.0, np.nan, np.nan, np.nan, 90.0, 99.0]), CrashDefinition("drawdown", 4))
    assert np.isnan(calm.iloc[0])
    assert hit.iloc[0] == 1.0


def test_cascade_crash_label_fires_on_a_cascade_in_the_next_hours():
    """The cascade definition marks the hours whose next h hours contain an event."""
    close = _series([100.0] * 6)
    cascade = pd.Series([False, False, False, True, False, False], index=close.index)
    label = crash_labels(close, CrashDefinition(kind="cascade", horizon_h=2), cascade)
    np.testing.assert_array_equal(label.to_numpy(), [0.0, 1.0, 1.0, 0.0, np.nan, np.nan])


def test_cascade_definition_without_events_is_an_error():
    """Asking for cascade crashes without the detector's flags fails loudly."""
    with pytest.raises(ValueError, match="cascade"):
        crash_labels(_series([1.0, 2.0]), CrashDefinition(kind="cascade"))


def test_label_known_one_hour_after_the_last_candle_of_its_window_and_episodes_count_runs():
    """The label of T (horizon 24) is known at T + 25 h; crash hours group into runs."""
    idx = pd.date_range("2024-01-01", periods=3, freq="h", tz="UTC")
    assert label_known_at(idx, 24)[0] == idx[0] + pd.Timedelta(hours=25)
    y = _series([1, 1, 0, np.nan, 1, 0, 1, 1])
    assert episode_count(y, gap_h=1) == 3  # runs
    assert episode_count(y, gap_h=2) == 2  # crash hours within 2 h of each other are one episode
    assert episode_count(y) == 1
