"""riskd: liquidation-cascade and fragility regime service for crypto perpetual futures."""

__version__ = "0.1.0"
