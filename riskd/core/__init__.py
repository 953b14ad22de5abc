"""The fragility core: pure functions from hourly market data to features, CFI, cascades and regime.

No I/O, no clock, no network: DataFrames (or the :class:`Panel` built from them) in, DataFrames out.
Two entry points give the same answer (docs/features.md):

- batch, for the offline module: :func:`compute_fragility` (``panel → frame``), or
  :func:`compute_fragility_with_state` to also get the live state after the last hour;
- live, for the daemon: :func:`step` (``state, one-hour panel → row, new state``), with
  :class:`FragilityState` serialisable through ``to_dict``/``from_dict``.

Both take an optional :class:`CrashModel` (``crash_model=``) for the ``crash_prob_24h`` column.
"""

from riskd.core.batch import compute_fragility, compute_fragility_with_state, crashing_assets
from riskd.core.cascade import cascade_events
from riskd.core.crashprob import CrashModel, predict
from riskd.core.incremental import FragilityState, step
from riskd.core.panel import Panel, build_panel
from riskd.core.params import FragilityParams

__all__ = [
    "CrashModel",
    "FragilityParams",
    "FragilityState",
    "Panel",
    "build_panel",
    "cascade_events",
    "compute_fragility",
    "compute_fragility_with_state",
    "crashing_assets",
    "predict",
    "step",
]
