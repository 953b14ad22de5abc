"""Moved to :mod:`riskd.market` (issue 18); this alias goes once every caller imports from there."""

from riskd.market import *  # noqa: F403  (a transitional alias: the names of riskd.market)
from riskd.market import __all__ as __all__
