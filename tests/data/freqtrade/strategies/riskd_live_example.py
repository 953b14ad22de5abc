"""The live-path test's strategy (tests/test_freqtrade_live.py): with riskd's filter, it wants to be in a
trade at every moment (an entry signal on every candle, signals recomputed every loop) and leaves each trade
at once (ROI -1 from minute 0), so every few seconds freqtrade asks ``confirm_trade_entry`` again."""

from freqtrade.strategy import IStrategy
from pandas import DataFrame

from riskd.integrations.freqtrade import RiskdRegimeMixin


class RiskdLiveExample(RiskdRegimeMixin, IStrategy):
    INTERFACE_VERSION = 3
    timeframe = "1h"
    can_short = False
    minimal_roi = {"0": -1.0}  # noqa: RUF012  (freqtrade reads it as a plain class dict)
    stoploss = -0.5
    startup_candle_count = 24
    process_only_new_candles = False

    def populate_indicators(self, dataframe: DataFrame, metadata: dict) -> DataFrame:
        return dataframe

    def populate_entry_trend(self, dataframe: DataFrame, metadata: dict) -> DataFrame:
        dataframe["enter_long"] = 1
        return dataframe

    def populate_exit_trend(self, dataframe: DataFrame, metadata: dict) -> DataFrame:
        return dataframe
