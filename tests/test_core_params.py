"""FragilityParams: research defaults, strict validation, every field documented."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, ValidationError

from riskd.core.params import FragilityParams

P = FragilityParams()


@pytest.mark.parametrize(
    ("level", "max_return", "min_vol_ratio", "min_funding_z"),
    [
        ("strict", -0.03, 3.0, 2.0),
        ("medium", -0.02, 2.0, 1.5),
        ("loose", -0.02, 1.5, 1.0),
        ("volume_only", -0.03, 2.0, None),
    ],
)
def test_cascade_levels_default_to_research_md(
    level: str, max_return: float, min_vol_ratio: float, min_funding_z: float | None
) -> None:
    """The four levels are RESEARCH.md's table."""
    rule = getattr(P.cascade, level)
    assert (rule.max_return, rule.min_vol_ratio, rule.min_funding_z) == (
        max_return,
        min_vol_ratio,
        min_funding_z,
    )


def test_other_research_defaults() -> None:
    """Top-50 funding universe, 24 h quote-volume ranking, 168 h z-scores, previous-24 h volume baseline."""
    assert P.universe.funding_top_n == 50
    assert P.universe.quote_volume_window_hours == 24
    assert P.zscore.window_hours == 168
    assert P.market.volume_baseline_hours == 24
    assert P.multi_asset.volume_quantile == 0.95
    assert P.multi_asset.min_assets == 3


def test_unknown_settings_are_refused() -> None:
    """extra='forbid' at every level: a typo is an error, not a silent default."""
    with pytest.raises(ValidationError):
        FragilityParams(cfi={"weights": {"agg_funding": 1.0}})
    with pytest.raises(ValidationError):
        FragilityParams(regime={"dwell": 3})


def _fields(model: type[BaseModel], path: str = ""):
    for name, info in model.model_fields.items():
        yield f"{path}{name}", info
        ann = info.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            yield from _fields(ann, f"{path}{name}.")


def test_every_field_has_a_description() -> None:
    """Each setting says what it does (riskd config show prints these)."""
    missing = [name for name, info in _fields(FragilityParams) if not info.description]
    assert missing == []


def test_fingerprint_tracks_every_value() -> None:
    """A changed value changes the fingerprint that guards saved live states."""
    assert FragilityParams().fingerprint() == P.fingerprint()
    assert FragilityParams(cascade={"cooldown_hours": 48}).fingerprint() != P.fingerprint()
