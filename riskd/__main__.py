"""Allow ``python -m riskd``."""

from riskd.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
