"""One riskd replica: the hourly cycle, its memory, the shared history origin, restatements, the leader
lease, the loops and the wiring that builds it all from Settings (docs/operations.md)."""

from riskd.daemon.cycle import Daemon, Sinks
from riskd.daemon.restate import late_hour

__all__ = ["Daemon", "Sinks", "late_hour"]
