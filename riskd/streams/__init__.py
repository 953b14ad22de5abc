"""The minute side of riskd: websocket streams (ccxt.pro), riskd's own liquidation record, and the
provisional intra-hour cascade detector published to ``<prefix>:regime:live`` and as an alert.

:class:`riskd.streams.task.MinuteStreams` is started by ``riskd.daemon.wiring`` as one task next to the
hourly cycle (``streams.enabled``); nothing here runs inside the hourly cycle.
"""
