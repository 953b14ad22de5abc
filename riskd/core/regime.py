"""The regime state machine: calm / elevated / recovery / fragile / cascade, and a risk multiplier.

States, by severity (code): calm 0 < elevated 1 < recovery 2 < fragile 3 < cascade 4.
Each hour the machine works out the state the inputs *want*:
- ``cascade`` while a cascade flag (BTC level ≥ ``cascade_min_level``, or the multi-asset detector)
  fired within the last ``cascade_hold_hours``;
- then ``recovery`` for ``recovery_hours`` (unless the CFI tier is more severe);
- otherwise the tier of the regime's signal (``regime.signal``: a CFI's or BTC realised vol's
  past-only percentile, or the crash probability, each with its own thresholds): ``fragile`` when it
  reaches the fragile entry threshold and until it falls below the exit one; ``elevated`` likewise;
  else ``calm`` (hysteresis: entering needs more than staying). The reason bits keep their names
  ``cfi_fragile``/``cfi_elevated`` whatever the signal.
A more severe wanted state is taken at once; a less severe one only after the current state has lasted
``min_dwell_hours`` (so it does not flap). ``risk_multiplier`` is the state's setting.

A blind hour (too little data: ``min_coverage``) is published as ``unknown`` with the fail-safe
``unknown_multiplier``; the machine itself keeps running underneath (a NaN signal keeps its tier), so
the state resumes where the data says once it returns. The reasons (which rules fired) travel with the
state as a bit mask and a string.

The same :func:`transition` runs in the batch loop and in the live step, so both agree exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from riskd.core.params import RegimeParams

STATES: tuple[str, ...] = ("calm", "elevated", "recovery", "fragile", "cascade")
CALM, ELEVATED, RECOVERY, FRAGILE, CASCADE = range(5)

REASONS: dict[str, int] = {
    "cascade_volume_only": 1 << 0,
    "cascade_loose": 1 << 1,
    "cascade_medium": 1 << 2,
    "cascade_strict": 1 << 3,
    "multi_asset": 1 << 4,
    "cascade_hold": 1 << 5,
    "recovery_window": 1 << 6,
    "cfi_fragile": 1 << 7,
    "cfi_elevated": 1 << 8,
    "hysteresis_hold": 1 << 9,
    "dwell_hold": 1 << 10,
    "no_cfi": 1 << 11,
    "degraded_data": 1 << 12,
}
"""Reason name → bit. Levels and multi-asset describe the hour; the rest describe the decision."""


@dataclass(frozen=True)
class RegimeMemory:
    """What the machine carries from one hour to the next."""

    state: int = CALM
    hours_in_state: int = 0
    tier: int = CALM


def cfi_tier(prev_tier: int, pct: float, p: RegimeParams) -> tuple[int, int]:
    """``(tier, reason bits)``: calm / elevated / fragile from the signal, with hysteresis.

    A NaN signal (no history yet, no data, no crash model) keeps the previous tier.
    """
    if pct != pct:
        return prev_tier, REASONS["no_cfi"]
    elevated_enter, elevated_exit, fragile_enter, fragile_exit = p.thresholds()
    if pct >= fragile_enter:
        return FRAGILE, REASONS["cfi_fragile"]
    if prev_tier == FRAGILE and pct >= fragile_exit:
        return FRAGILE, REASONS["cfi_fragile"] | REASONS["hysteresis_hold"]
    if pct >= elevated_enter:
        return ELEVATED, REASONS["cfi_elevated"]
    if prev_tier >= ELEVATED and pct >= elevated_exit:
        return ELEVATED, REASONS["cfi_elevated"] | REASONS["hysteresis_hold"]
    return CALM, 0


def wanted_state(tier: int, hours_since_flag: int, p: RegimeParams) -> tuple[int, int]:
    """``(state, reason bits)`` the inputs ask for, before the dwell rule."""
    if hours_since_flag < p.cascade_hold_hours:
        return CASCADE, REASONS["cascade_hold"]
    if hours_since_flag < p.cascade_hold_hours + p.recovery_hours:
        return max(RECOVERY, tier), REASONS["recovery_window"]
    return tier, 0


def transition(
    memory: RegimeMemory, pct: float, hours_since_flag: int, p: RegimeParams
) -> tuple[RegimeMemory, int]:
    """One hour of the machine: the new memory and the decision's reason bits."""
    tier, why_tier = cfi_tier(memory.tier, pct, p)
    wanted, why_wanted = wanted_state(tier, hours_since_flag, p)
    state, why = memory.state, why_tier | why_wanted
    if wanted > state or (wanted < state and memory.hours_in_state >= p.min_dwell_hours):
        state = wanted
    elif wanted < state:
        why |= REASONS["dwell_hold"]
    hours = memory.hours_in_state + 1 if state == memory.state else 1
    return RegimeMemory(state, hours, tier), why


def run(
    pct: np.ndarray, hours_since_flag: np.ndarray, p: RegimeParams, start: RegimeMemory | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, RegimeMemory]:
    """The machine over a whole history (batch): states, hours in state, reason bits, final memory.

    The one Python loop of the core, over plain lists: a few hundred nanoseconds an hour.
    """
    memory = start or RegimeMemory()
    n = len(pct)
    states, dwell, why = np.zeros(n, np.int8), np.zeros(n, np.int64), np.zeros(n, np.int64)
    for i, (x, since) in enumerate(zip(pct.tolist(), hours_since_flag.tolist(), strict=True)):
        memory, why[i] = transition(memory, x, since, p)
        states[i], dwell[i] = memory.state, memory.hours_in_state
    return states, dwell, why, memory


def risk_multiplier(states: np.ndarray, blind: np.ndarray, p: RegimeParams) -> np.ndarray:
    """Each state's multiplier; ``unknown_multiplier`` (the fail-safe) where the hour is blind."""
    table = np.array([getattr(p.multipliers, name) for name in STATES])
    mult = table[states.astype(np.int64)]
    return np.where(blind, p.unknown_multiplier, mult)


def reason_text(bits: np.ndarray) -> np.ndarray:
    """Comma-separated reason names of each bit mask (object array of str; '' when none)."""
    out = np.empty(len(bits), dtype=object)
    for mask in np.unique(bits):
        out[bits == mask] = ",".join(name for name, bit in REASONS.items() if int(mask) & bit)
    return out
