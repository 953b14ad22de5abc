"""An example freqtrade strategy, plain and with riskd's regime filter (docs/integrations.md).

``RiskdExamplePlain`` buys a dip below the 24 h mean at every fourth hour and holds it one hour (ROI -1
after 60 min; 10 % stop-loss), so one pair never holds two trades and no trade blocks another: the run
with the filter differs from the plain one only in the entries the filter refused. ``RiskdExample`` is
the same strategy with the filter: the two lines below are all a user adds.
"""

from freqtrade.strategy import IStrategy
from pandas import DataFrame

from riskd.integrations.freqtrade import RiskdRegimeMixin  # line 1 of 2


class RiskdExamplePlain(IStrategy):
    INTERFACE_VERSION = 3
    timeframe = "1h"
    can_short = False
    minimal_roi = {"0": 100.0, "60": -1.0}  # noqa: RUF012  (freqtrade reads it as a plain class dict)
    stoploss = -0.10
    startup_candle_count = 24
    process_only_new_candles = True

    def populate_indicators(self, dataframe: DataFrame, metadata: dict) -> DataFrame:
        dataframe["mean_24h"] = dataframe["close"].rolling(24).mean()
        return dataframe

    def populate_entry_trend(self, dataframe: DataFrame, metadata: dict) -> DataFrame:
        dip = dataframe["close"] < dataframe["mean_24h"]
        every_fourth_hour = dataframe["date"].dt.hour % 4 == 0
        dataframe.loc[dip & every_fourth_hour, "enter_long"] = 1
        return dataframe

    def populate_exit_trend(self, dataframe: DataFrame, metadata: dict) -> DataFrame:
        return dataframe


class RiskdExample(RiskdRegimeMixin, RiskdExamplePlain):  # line 2 of 2
    pass
