"""``riskd calibrate``: fit the crash-probability model on the stored history (:mod:`riskd.calibration`)."""

from riskd.calibration import add_parser, cli_calibrate

__all__ = ["add_parser", "cli_calibrate"]
