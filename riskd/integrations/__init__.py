"""riskd inside other trading bots: :mod:`riskd.integrations.freqtrade` (a strategy mixin). Each module
reads riskd through the public reader (``riskd.client``) or the exported history (``riskd export regime``)
and acts on the snapshot's ``trading_state`` (docs/integrations.md)."""
