"""The regime state machine: escalation, hysteresis, dwell, recovery, multiplier and reasons."""

from __future__ import annotations

import numpy as np
import pytest

from riskd.core.params import RegimeParams
from riskd.core.regime import (
    CALM,
    CASCADE,
    ELEVATED,
    FRAGILE,
    REASONS,
    RECOVERY,
    STATES,
    RegimeMemory,
    cfi_tier,
    reason_text,
    risk_multiplier,
    run,
    transition,
)

P = RegimeParams()
NEVER = 10**9  # hours since a cascade flag: none seen


@pytest.mark.parametrize(
    ("prev_tier", "pct", "tier"),
    [
        (CALM, 0.50, CALM),
        (CALM, 0.70, ELEVATED),
        (CALM, 0.90, FRAGILE),
        (ELEVATED, 0.65, ELEVATED),  # held: above the exit, below the entry
        (CALM, 0.65, CALM),  # not entered from below
        (ELEVATED, 0.59, CALM),
        (FRAGILE, 0.85, FRAGILE),
        (FRAGILE, 0.79, ELEVATED),
        (FRAGILE, 0.55, CALM),
        (FRAGILE, np.nan, FRAGILE),  # no percentile: the tier is kept
    ],
)
def test_cfi_tier_has_hysteresis(prev_tier: int, pct: float, tier: int) -> None:
    """Entering a tier needs more than staying in it."""
    assert cfi_tier(prev_tier, pct, P)[0] == tier


def test_escalation_is_immediate_and_de_escalation_waits_for_the_dwell() -> None:
    """calm → fragile at once; fragile → calm only after min_dwell_hours, marked dwell_hold meanwhile."""
    memory, _ = transition(RegimeMemory(), 0.95, NEVER, P)
    assert memory.state == FRAGILE
    assert memory.hours_in_state == 1
    for hour in range(2, P.min_dwell_hours + 1):
        memory, why = transition(memory, 0.10, NEVER, P)
        assert memory.state == FRAGILE
        assert why & REASONS["dwell_hold"]
        assert memory.hours_in_state == hour
    memory, why = transition(memory, 0.10, NEVER, P)
    assert memory.state == CALM
    assert not why & REASONS["dwell_hold"]


def test_cascade_then_recovery_then_back_to_the_tier() -> None:
    """A flag means cascade for the hold, recovery for recovery_hours, then the CFI tier again."""
    since = np.r_[np.full(10, NEVER), np.arange(0, 60)]
    pct = np.full(len(since), 0.5)
    states, _, why, _ = run(pct, since, P)
    hold, rec = P.cascade_hold_hours, P.recovery_hours
    assert (states[:10] == CALM).all()
    assert (states[10 : 10 + hold] == CASCADE).all()
    assert (states[10 + hold : 10 + hold + rec] == RECOVERY).all()
    assert (states[10 + hold + rec :] == CALM).all()
    assert why[10] & REASONS["cascade_hold"]
    assert why[10 + hold] & REASONS["recovery_window"]


def test_recovery_yields_to_a_fragile_cfi() -> None:
    """After the hold, a fragile tier outranks recovery."""
    memory = RegimeMemory(state=CASCADE, hours_in_state=P.min_dwell_hours, tier=CALM)
    memory, _ = transition(memory, 0.95, P.cascade_hold_hours, P)
    assert memory.state == FRAGILE


def test_batch_loop_is_the_transition_applied_hour_by_hour() -> None:
    """run() equals feeding transition() one hour at a time, including the final memory."""
    rng = np.random.default_rng(1)
    pct = rng.random(500)
    pct[rng.random(500) < 0.05] = np.nan
    since = np.where(rng.random(500) < 0.03, 0, NEVER)
    states, dwell, why, end = run(pct, since, P)
    memory = RegimeMemory()
    for i in range(500):
        memory, bits = transition(memory, float(pct[i]), int(since[i]), P)
        assert (memory.state, memory.hours_in_state, bits) == (states[i], dwell[i], why[i])
    assert memory == end


@pytest.mark.parametrize("state", range(5))
def test_risk_multiplier_is_the_states_setting_and_the_fail_safe_when_blind(state: int) -> None:
    """Each state's multiplier lies in [0, 1]; a blind hour gets unknown_multiplier, whatever the state."""
    expected = getattr(P.multipliers, STATES[state])
    s = np.array([state, state], dtype=np.int8)
    out = risk_multiplier(s, np.array([False, True]), P)
    assert out[0] == expected
    assert out[1] == P.unknown_multiplier
    assert ((out >= 0) & (out <= 1)).all()


def test_reason_text_names_every_bit() -> None:
    """Bit masks become comma-separated names, in a fixed order; none gives ''."""
    bits = np.array([0, REASONS["cascade_strict"] | REASONS["cfi_fragile"], REASONS["degraded_data"]])
    assert reason_text(bits).tolist() == ["", "cascade_strict,cfi_fragile", "degraded_data"]


def test_regime_params_refuse_inconsistent_thresholds() -> None:
    """Exit thresholds above entry thresholds (or tiers out of order) are configuration errors."""
    with pytest.raises(ValueError, match="elevated_exit"):
        RegimeParams(elevated_exit=0.8)
    with pytest.raises(ValueError, match="fragile_exit"):
        RegimeParams(fragile_exit=0.95)
    with pytest.raises(ValueError, match="less than or equal to 1"):
        RegimeParams(multipliers={"calm": 1.5})
