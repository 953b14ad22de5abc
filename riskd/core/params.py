"""Every choice the fragility core makes, as one pydantic model with documented defaults.

``FragilityParams`` is mounted by the lead as a section of ``Settings``; the core itself only ever
receives it as an argument. Defaults follow RESEARCH.md where it is explicit (the four cascade levels,
the 168 h funding z-score, the top-50 funding universe, the 24 h volume baseline) and are the
project's documented choice where it is not (docs/features.md says which is which).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from riskd.core.liquidations import LiquidationParams

Venue = str
"""A venue name. The core knows no venue list: Settings checks the names against the venue registry
(riskd/sources/registry.py) and fills the gap venues from it."""


class _Params(BaseModel):
    model_config = ConfigDict(
        extra="forbid", frozen=True, allow_inf_nan=False
    )  # inf/NaN: a typo, never a setting

    @model_validator(mode="before")
    @classmethod
    def _merge_partial_sections(cls, data: Any) -> Any:
        """A partial section (one threshold set by env var or TOML) keeps the other defaults of that
        section, instead of failing on the fields it did not name."""
        if not isinstance(data, dict):
            return data
        out = dict(data)
        for name, info in cls.model_fields.items():
            given = out.get(name)
            if isinstance(given, dict) and info.default_factory is not None:
                default = info.default_factory()  # type: ignore[call-arg]
                if isinstance(default, BaseModel):
                    out[name] = {**default.model_dump(), **given}
        return out


class PanelParams(_Params):
    """How per-(venue, symbol) frames become the hours × symbols panel."""

    funding_max_age_hours: int = Field(
        24,
        ge=1,
        description="A funding print older than this many hours (print hour to row hour) is stale and "
        "reads as missing; 24 h tolerates two missed 8 h prints.",
    )
    open_interest_max_age_hours: int = Field(
        4, ge=0, description="Open interest is carried forward at most this many hours (4 h imports)."
    )
    spot_stand_in: bool = Field(
        True,
        description="Use Binance spot candles for a symbol's hours that have no perp candle "
        "(close, volume and quote volume only; such cells carry no funding).",
    )


class UniverseParams(_Params):
    """Which symbols the market-wide features look at."""

    btc_symbol: str = Field("BTC", description="Base asset whose perp drives the cascade levels.")
    funding_top_n: int = Field(
        50, ge=1, description="Aggregate funding uses the top N symbols by quote volume (see rank_by)."
    )
    rank_by: Literal["previous_day", "trailing"] = Field(
        "previous_day",
        description="Quote volume that ranks (and weights) the funding universe: the previous CLOSED UTC "
        "day's (the research's universe: fixed for the day, never the future), or the trailing "
        "quote_volume_window_hours (current hour included).",
    )
    previous_day_min_hours: int = Field(
        12,
        ge=1,
        le=24,
        description="A symbol's previous day ranks from its hourly bars when at least this many are "
        "there, else from its 1 d bar (dataset ohlcv_1d) if stored, else it is not in the universe.",
    )
    quote_volume_window_hours: int = Field(
        24, ge=1, description="Trailing window (current hour included) of the 'trailing' ranking."
    )
    min_symbols: int = Field(
        3,
        ge=1,
        description="Fewest symbols behind a cross-sectional share, mean excess or std (a std needs at "
        "least 2); fewer gives NaN. Funding aggregates need one symbol.",
    )


class FundingParams(_Params):
    """Funding aggregates across symbols and venues (all rates per hour)."""

    primary_venue: Venue = Field(
        "binance", description="Venue of the aggregate funding and dispersion (a registered venue name)."
    )
    gap_venues: tuple[Venue, ...] = Field(
        ("bybit", "hyperliquid"),
        description="Venues averaged (where present) and subtracted from the primary in the funding gap. "
        "Unless set, riskd fills it from the venue registry: every default gap venue plus each enabled opt-in "
        "one (RISKD_VENUES__OKX__ENABLED=true alone adds okx).",
    )
    extreme_abs_per_hour: float = Field(
        6.25e-5,
        gt=0,
        description="|rate per hour| at or above which a symbol's funding is extreme: 6.25e-5/h = "
        "0.05% per 8 h, five times Binance's 0.01% baseline.",
    )


class ZScoreParams(_Params):
    """Trailing z-scores of hourly series (window includes the current hour)."""

    window_hours: int = Field(168, ge=2, description="Trailing window: 168 h as in the research.")
    min_periods: int = Field(72, ge=2, description="Fewest valid hours in the window for a z-score.")
    funding_std_floor: float = Field(
        5e-7,
        ge=0,
        description="Floor of the std of funding series (per hour) so a pinned rate (0.01%/8 h for "
        "days) does not turn rounding noise into large z-scores.",
    )
    share_std_floor: float = Field(0.01, ge=0, description="Floor of the std of share series (fraction).")
    return_std_floor: float = Field(
        1e-3, ge=0, description="Floor of the std of return, volatility and OI-change series (fraction)."
    )
    ratio_std_floor: float = Field(0.01, ge=0, description="Floor of the std of volume ratios.")


class MarketParams(_Params):
    """Price, volume and open-interest features."""

    breadth_threshold: float = Field(
        0.02, gt=0, description="A symbol is 'down' (or 'up') when its 1 h return is below −x (above +x)."
    )
    volume_baseline_hours: int = Field(
        24, ge=1, description="Volume ratios divide by the mean of this many PREVIOUS hours."
    )
    volume_baseline_min_periods: int = Field(
        12, ge=1, description="Fewest valid previous hours for a volume baseline."
    )
    volume_surge_ratio: float = Field(
        2.0, gt=0, description="A symbol surges when volume / its previous-24 h mean exceeds this."
    )
    rv_short_hours: int = Field(24, ge=2, description="Short realised-volatility window (hours).")
    rv_long_hours: int = Field(168, ge=2, description="Long realised-volatility window (hours).")
    drawdown_hours: int = Field(24, ge=1, description="Window of the BTC drawdown from its high.")


class CFIWeights(_Params):
    """Weights of the standardised CFI components (need not sum to 1; the CFI divides by their sum)."""

    agg_funding_z: float = Field(0.30, ge=0, description="Crowded leverage: aggregate funding z.")
    funding_dispersion_z: float = Field(0.15, ge=0, description="Uneven positioning: dispersion z.")
    funding_gap_abs_z: float = Field(0.15, ge=0, description="Venue divergence: |funding gap z|.")
    extreme_funding_share_z: float = Field(0.15, ge=0, description="Breadth of extreme funding, z.")
    oi_change_24h_z: float = Field(0.10, ge=0, description="Leverage build-up: 24 h OI change z.")
    btc_rv_24h_z: float = Field(0.15, ge=0, description="Volatility expansion: BTC 24 h realised vol z.")


class CFIParams(_Params):
    """The Composite Fragility Index (v1: the research's 168 h z-scores) and its past-only percentile."""

    version: Literal["v1", "v2"] = Field(
        "v2",
        description="Which CFI the columns cfi / cfi_pct / cfi_quintile (and the snapshot) carry; both "
        "are always in the output as cfi_v1 and cfi_v2 (docs/features.md: v2's top/bottom quintile "
        "crash ratio is about 4 to 5 on the real store, v1's about 1.2).",
    )
    weights: CFIWeights = Field(default_factory=CFIWeights, description="Component weights.")
    component_clip: float = Field(
        4.0, gt=0, description="Each component is clipped to ±this many std so one outlier cannot rule."
    )
    min_weight_coverage: float = Field(
        0.5,
        ge=0,
        le=1,
        description="CFI is NaN when the available components carry less than this share of the weight.",
    )
    percentile_min_history: int = Field(
        168, ge=1, description="Fewest past CFI values before its expanding percentile is reported."
    )


class CFIV2Weights(_Params):
    """Weights of CFI v2's components, each a past-only percentile rank in [0, 1] (renormalised)."""

    btc_rv_24h: float = Field(1.0, ge=0, description="Level of BTC's 24 h realised volatility.")
    xs_ret_std_24h: float = Field(
        1.0, ge=0, description="Level of the cross-section's return dispersion, 24 h."
    )
    agg_funding: float = Field(1.0, ge=0, description="Level of aggregate funding: crowded leverage.")
    btc_rv_ratio: float = Field(0.0, ge=0, description="Change: short over long realised vol (expansion).")
    oi_change_24h: float = Field(0.0, ge=0, description="Change: 24 h open-interest build-up (needs OI).")


class CFIV2Params(_Params):
    """CFI v2: levels where the level carries the tail risk, ranked against their whole past."""

    weights: CFIV2Weights = Field(default_factory=CFIV2Weights, description="Component weights.")
    rank_min_history: int = Field(
        168,
        ge=1,
        description="Fewest past hours before a component's expanding percentile rank (current hour "
        "excluded) is reported; before that the component is missing. The ranks are against ALL the "
        "past the path has seen: the live path matches the batch only when warmed from the same start.",
    )
    min_weight_coverage: float = Field(
        0.5, ge=0, le=1, description="cfi_v2 is NaN when the ranked components carry less weight than this."
    )


class CascadeLevel(_Params):
    """One BTC cascade rule: all three conditions, strict inequalities."""

    max_return: float = Field(description="BTC 1 h return must be below this (fraction).")
    min_vol_ratio: float = Field(description="BTC vol_ratio must exceed this.")
    min_funding_z: float | None = Field(description="Aggregate funding z must exceed this; None = any.")


class CascadeParams(_Params):
    """The four BTC levels of RESEARCH.md and how hours group into episodes."""

    strict: CascadeLevel = Field(
        default_factory=lambda: CascadeLevel(max_return=-0.03, min_vol_ratio=3.0, min_funding_z=2.0),
        description="Research: 4 events 2020–2026.",
    )
    medium: CascadeLevel = Field(
        default_factory=lambda: CascadeLevel(max_return=-0.02, min_vol_ratio=2.0, min_funding_z=1.5),
        description="Research: 15 events.",
    )
    loose: CascadeLevel = Field(
        default_factory=lambda: CascadeLevel(max_return=-0.02, min_vol_ratio=1.5, min_funding_z=1.0),
        description="Research: 36 events.",
    )
    volume_only: CascadeLevel = Field(
        default_factory=lambda: CascadeLevel(max_return=-0.03, min_vol_ratio=2.0, min_funding_z=None),
        description="Research: 84 events.",
    )
    cooldown_hours: int = Field(
        24,
        ge=0,
        description="A flagged hour within this many hours of the previous flagged hour belongs to the "
        "same episode (the research counts one event per cascade, rule unstated).",
    )


class MultiAssetParams(_Params):
    """The first seed document's multi-asset crash detector."""

    max_return_1h: float = Field(-0.02, description="An asset's 1 h return must be below this.")
    max_return_2h: float = Field(-0.03, description="…and its 2 h return below this.")
    volume_window_hours: int = Field(
        720, ge=2, description="Its volume is ranked against its own previous this-many hours (past only)."
    )
    volume_quantile: float = Field(
        0.95, gt=0, lt=1, description="Share of those past hours the volume must exceed (top 5%)."
    )
    volume_min_periods: int = Field(168, ge=1, description="Fewest valid past hours for the ranking.")
    min_assets: int = Field(3, ge=1, description="Assets crashing in the same hour to flag the hour.")


class RegimeMultipliers(_Params):
    """risk_multiplier of each regime state, in [0, 1]: what other bots scale their positions by."""

    calm: float = Field(1.0, ge=0, le=1, description="Nothing unusual.")
    elevated: float = Field(0.75, ge=0, le=1, description="CFI in its upper tail.")
    recovery: float = Field(0.5, ge=0, le=1, description="The day after a cascade.")
    fragile: float = Field(0.5, ge=0, le=1, description="CFI in its top decile.")
    cascade: float = Field(0.0, ge=0, le=1, description="A cascade is under way.")


class RegimeParams(_Params):
    """The regime state machine (docs/features.md, Regime)."""

    elevated_enter: float = Field(0.70, ge=0, le=1, description="CFI percentile entering 'elevated'.")
    elevated_exit: float = Field(0.60, ge=0, le=1, description="…and leaving it (hysteresis).")
    fragile_enter: float = Field(0.90, ge=0, le=1, description="CFI percentile entering 'fragile'.")
    fragile_exit: float = Field(0.80, ge=0, le=1, description="…and leaving it (hysteresis).")
    cascade_min_level: int = Field(
        1, ge=1, le=4, description="Lowest BTC level (1 volume-only … 4 strict) that means 'cascade'."
    )
    signal: Literal["cfi_v1", "cfi_v2", "crash_prob", "btc_rv"] = Field(
        "cfi_v2",
        description="What the elevated/fragile tiers follow: a CFI's or BTC 24 h realised vol's past-only "
        "percentile (the *_enter/*_exit thresholds above), or crash_prob_24h (the crash_prob_* ones).",
    )
    crash_prob_elevated_enter: float = Field(
        0.12, ge=0, le=1, description="crash_prob_24h entering 'elevated'."
    )
    crash_prob_elevated_exit: float = Field(0.10, ge=0, le=1, description="…and leaving it.")
    crash_prob_fragile_enter: float = Field(
        0.25, ge=0, le=1, description="crash_prob_24h entering 'fragile'."
    )
    crash_prob_fragile_exit: float = Field(0.20, ge=0, le=1, description="…and leaving it.")
    cascade_on_multi_asset: bool = Field(True, description="The multi-asset detector also means 'cascade'.")
    cascade_hold_hours: int = Field(6, ge=1, description="Hours 'cascade' is wanted after a flagged hour.")
    recovery_hours: int = Field(24, ge=0, description="Hours of 'recovery' wanted after the hold.")
    min_dwell_hours: int = Field(
        6, ge=1, description="Hours a state must last before a step DOWN; steps up are immediate."
    )
    multipliers: RegimeMultipliers = Field(
        default_factory=RegimeMultipliers, description="risk_multiplier of each state."
    )
    min_coverage: float = Field(
        0.5,
        ge=0,
        le=1,
        description="An hour with a price for less than this share of the universe, or with no BTC price, is "
        "blind: published as state 'unknown' with unknown_multiplier, never as a regime.",
    )
    unknown_multiplier: float = Field(
        0.5,
        ge=0,
        le=1,
        description="risk_multiplier of a blind ('unknown') hour: the fail-safe. 0.5 treats blindness like "
        "'fragile' (danger cannot be ruled out) without flattening books on every venue outage; 0 halts.",
    )

    @model_validator(mode="after")
    def _consistent(self) -> RegimeParams:
        if not self.elevated_exit <= self.elevated_enter <= self.fragile_enter:
            raise ValueError("need elevated_exit <= elevated_enter <= fragile_enter")
        if not self.fragile_exit <= self.fragile_enter:
            raise ValueError("need fragile_exit <= fragile_enter")
        c = (self.crash_prob_elevated_exit, self.crash_prob_elevated_enter, self.crash_prob_fragile_enter)
        if not c[0] <= c[1] <= c[2] or not self.crash_prob_fragile_exit <= self.crash_prob_fragile_enter:
            raise ValueError("need crash_prob thresholds ordered like the percentile ones")
        return self

    def thresholds(self) -> tuple[float, float, float, float]:
        """``(elevated_enter, elevated_exit, fragile_enter, fragile_exit)`` of the chosen signal."""
        if self.signal == "crash_prob":
            return (
                self.crash_prob_elevated_enter,
                self.crash_prob_elevated_exit,
                self.crash_prob_fragile_enter,
                self.crash_prob_fragile_exit,
            )
        return self.elevated_enter, self.elevated_exit, self.fragile_enter, self.fragile_exit


class FragilityParams(_Params):
    """All settings of the fragility core; mounted as one section of riskd's Settings."""

    panel: PanelParams = Field(default_factory=PanelParams, description="Panel construction.")
    universe: UniverseParams = Field(default_factory=UniverseParams, description="Symbols used.")
    funding: FundingParams = Field(default_factory=FundingParams, description="Funding aggregates.")
    zscore: ZScoreParams = Field(default_factory=ZScoreParams, description="Trailing z-scores.")
    market: MarketParams = Field(default_factory=MarketParams, description="Price and volume features.")
    cfi: CFIParams = Field(default_factory=CFIParams, description="Composite Fragility Index (v1, version).")
    cfi_v2: CFIV2Params = Field(default_factory=CFIV2Params, description="CFI v2's components.")
    cascade: CascadeParams = Field(default_factory=CascadeParams, description="BTC cascade levels.")
    multi_asset: MultiAssetParams = Field(
        default_factory=MultiAssetParams, description="Multi-asset detector."
    )
    regime: RegimeParams = Field(default_factory=RegimeParams, description="Regime state machine.")
    liquidations: LiquidationParams = Field(
        default_factory=LiquidationParams, description="Hourly liquidation features (riskd's own record)."
    )

    def fingerprint(self) -> str:
        """Short hash of every value: a saved incremental state only resumes under the same params."""
        off = None if self.liquidations.enabled else {"liquidations"}  # states saved before it existed resume
        blob = json.dumps(self.model_dump(mode="json", exclude=off), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]
