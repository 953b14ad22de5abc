"""The venue registry: everything riskd knows about a venue, declared once by the venue's own module.

Shaped like ccxt's ``describe()``: each ``riskd/sources/<venue>.py`` ends with one
``register(VenueSpec(...))`` and every other part of riskd reads ``VENUES`` — settings (the venues
section and its validation), symbols (market ids), the endpoint table of the request counters, the
snapshot's per-venue gap features and the metrics label sets. The core never imports this module: it
receives the primary and gap venue names as plain params values, filled in by Settings from here.

Importing this module runs ``riskd/sources/__init__.py`` first (Python imports a package before its
modules), which imports the venue modules in a fixed order: ``VENUES`` is always complete and ordered.
"""

from __future__ import annotations

from riskd.sources.spec import DATASETS, Dataset, FundingRole, VenueSpec

__all__ = [
    "DATASETS",
    "VENUES",
    "Dataset",
    "FundingRole",
    "VenueSpec",
    "gap_venues",
    "primary_venue",
    "register",
    "venue",
    "with_role",
]

VENUES: dict[str, VenueSpec] = {}
"""Every registered venue by name, in registration order (``riskd.sources.__init__`` fixes it)."""


def register(spec: VenueSpec) -> VenueSpec:
    """Add a venue (once, from its own module) and bind the spec to its adapter class."""
    if spec.name in VENUES and VENUES[spec.name] is not spec:
        raise ValueError(f"venue {spec.name!r} is registered twice")
    unknown = set(spec.datasets) - set(DATASETS)
    if unknown:
        raise ValueError(f"venue {spec.name!r}: unknown datasets {sorted(unknown)}")
    spec.source.spec = spec
    VENUES[spec.name] = spec
    return spec


def venue(name: str) -> VenueSpec:
    """The spec of one venue; ValueError naming the known venues for any other name."""
    if name not in VENUES:
        raise ValueError(f"unknown venue {name!r}; expected one of {', '.join(VENUES)}")
    return VENUES[name]


def primary_venue() -> str:
    """The venue whose funding the aggregates are computed on (the one with role ``primary``)."""
    return next(name for name, spec in VENUES.items() if spec.funding_role == "primary")


def with_role(role: FundingRole) -> tuple[str, ...]:
    """Every registered venue with this funding role, enabled or not (label sets, gap features)."""
    return tuple(name for name, spec in VENUES.items() if spec.funding_role == role)


def gap_venues(enabled: set[str] | None = None) -> tuple[str, ...]:
    """Venues in the funding gap: role ``gap`` and on by default or in ``enabled``.

    A default venue stays in the gap when switched off (its columns read NaN, as they always have); an
    opt-in venue (OKX) joins once enabled, so enabling it is the only step.
    """
    return tuple(
        name
        for name, spec in VENUES.items()
        if spec.funding_role == "gap" and (spec.enabled_by_default or name in (enabled or set()))
    )
