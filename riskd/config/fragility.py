"""The fragility core's params as a settings section: the core cannot import the venue registry, so the
venue names it is given are checked against it here."""

from __future__ import annotations

from pydantic import Field, field_validator

from riskd.config.base import VENUE_SPECS, VENUES
from riskd.core.params import FragilityParams, FundingParams


def _registered(name: str) -> str:
    if name not in VENUE_SPECS:
        raise ValueError(f"unknown venue {name!r}; expected one of {', '.join(VENUES)}")
    return name


class _RegisteredFunding(FundingParams):
    __doc__ = FundingParams.__doc__  # the core's params; the venue names checked against the registry here

    @field_validator("primary_venue")
    @classmethod
    def _primary_registered(cls, v: str) -> str:
        return _registered(v)

    @field_validator("gap_venues")
    @classmethod
    def _gap_registered(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(_registered(n) for n in v)


class _Fragility(FragilityParams):
    __doc__ = FragilityParams.__doc__  # the core cannot import the registry: Settings checks its venue names

    funding: _RegisteredFunding = Field(
        default_factory=_RegisteredFunding, description=FragilityParams.model_fields["funding"].description
    )
