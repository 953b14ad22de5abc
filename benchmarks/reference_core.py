"""The fragility features the way a researcher writes them first: a long frame, groupby + rolling.

Kept as the benchmark's yardstick for ``riskd.core`` (same inputs, same definitions where pandas
makes it natural, not tuned). Known differences from the core, all deliberate simplifications a
first draft would make: the multi-asset volume spike uses ``rolling(720).quantile(0.95)`` of the
shifted volume instead of an exact count; the CFI percentile is pandas' expanding rank (which counts
the current hour); top-N ties are broken by pandas' ``rank(method="first")``; no episodes.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from riskd.core.params import FragilityParams


def long_frame(
    index: pd.DatetimeIndex,
    symbols: tuple[str, ...],
    arrays: dict[str, np.ndarray],
) -> pd.DataFrame:
    """Wide (hours × symbols) arrays as the long frame a researcher starts from: one row per (ts, symbol)."""
    n_h, n_s = len(index), len(symbols)
    data = {"ts": np.repeat(index.to_numpy(), n_s), "symbol": np.tile(np.arange(n_s), n_h)}
    data.update({name: arr.reshape(-1) for name, arr in arrays.items()})
    frame = pd.DataFrame(data)
    frame["symbol"] = pd.Categorical.from_codes(frame["symbol"], categories=list(symbols))
    return frame


def _zscore(x: pd.Series, p: FragilityParams, floor: float) -> pd.Series:
    roll = x.rolling(p.zscore.window_hours, min_periods=p.zscore.min_periods)
    return (x - roll.mean()) / roll.std().clip(lower=floor)


def reference(df: pd.DataFrame, p: FragilityParams) -> pd.DataFrame:
    """Market-wide hourly features, CFI, percentile and BTC cascade levels from the long frame."""
    u, m, ma = p.universe, p.market, p.multi_asset
    df = df.sort_values(["symbol", "ts"])
    g = df.groupby("symbol", observed=True, sort=False)
    df["ret_1h"] = g["close"].pct_change(fill_method=None)
    df["ret_2h"] = g["close"].pct_change(2, fill_method=None)
    df["qv24"] = g["quote_volume"].transform(lambda s: s.rolling(u.quote_volume_window_hours, 1).sum())
    df["vol_base"] = g["volume"].transform(
        lambda s: s.shift(1).rolling(m.volume_baseline_hours, m.volume_baseline_min_periods).mean()
    )
    df["vol_q"] = g["volume"].transform(
        lambda s: (
            s.shift(1).rolling(ma.volume_window_hours, ma.volume_min_periods).quantile(ma.volume_quantile)
        )
    )
    df["oi_1h"] = g["open_interest"].shift(1)
    df["oi_24h"] = g["open_interest"].shift(24)

    by_ts = df.groupby("ts")
    df["rank"] = by_ts["qv24"].rank(ascending=False, method="first")
    top = (df["rank"] <= u.funding_top_n) & df["close"].notna() & (df["qv24"] > 0)
    out = pd.DataFrame(index=pd.DatetimeIndex(sorted(df["ts"].unique()), name="ts"))
    for venue in ("binance", "bybit", "hyperliquid"):
        f = df[f"funding_{venue}"]
        w = df["qv24"].where(top & f.notna(), 0.0)
        num = (f.fillna(0.0) * w).groupby(df["ts"]).sum()
        name = "agg_funding" if venue == "binance" else f"agg_funding_{venue}"
        out[name] = num / w.groupby(df["ts"]).sum().replace(0.0, np.nan)
    others = df[["funding_bybit", "funding_hyperliquid"]].mean(axis=1)
    gap = df["funding_binance"] - others
    w = df["qv24"].where(top & gap.notna(), 0.0)
    out["funding_gap"] = (gap.fillna(0.0) * w).groupby(df["ts"]).sum() / w.groupby(df["ts"]).sum()
    in_top = df[top & df["funding_binance"].notna()]
    fb = in_top.groupby("ts")["funding_binance"]
    out["funding_dispersion"] = fb.std()
    out["funding_max"] = fb.max()
    out["extreme_funding_share"] = (
        (in_top["funding_binance"].abs() >= p.funding.extreme_abs_per_hour).groupby(in_top["ts"]).mean()
    )
    out["positive_funding_share"] = (in_top["funding_binance"] > 0).groupby(in_top["ts"]).mean()
    priced = df[df["ret_1h"].notna()]
    r = priced.groupby("ts")["ret_1h"]
    out["xs_ret_mean"], out["xs_ret_std"] = r.mean(), r.std()
    out["breadth_down"] = (priced["ret_1h"] < -m.breadth_threshold).groupby(priced["ts"]).mean()
    out["breadth_up"] = (priced["ret_1h"] > m.breadth_threshold).groupby(priced["ts"]).mean()
    out["market_quote_volume"] = by_ts["quote_volume"].sum()
    surge = df["volume"] > m.volume_surge_ratio * df["vol_base"]
    out["volume_surge_share"] = surge[df["vol_base"].notna()].groupby(df["ts"]).mean()
    crash = (
        (df["ret_1h"] < ma.max_return_1h) & (df["ret_2h"] < ma.max_return_2h) & (df["volume"] > df["vol_q"])
    )
    out["multi_asset_count"] = crash.groupby(df["ts"]).sum()
    for lag, col in ((1, "oi_1h"), (24, "oi_24h")):
        ok = df["open_interest"].notna() & df[col].notna()
        now = (df["open_interest"] * df["close"]).where(ok, 0.0).groupby(df["ts"]).sum()
        before = (df[col] * df["close"]).where(ok, 0.0).groupby(df["ts"]).sum()
        out[f"oi_change_{lag}h"] = now / before.replace(0.0, np.nan) - 1.0

    btc = df[df["symbol"] == u.btc_symbol].set_index("ts").reindex(out.index)
    out["btc_ret_1h"] = btc["close"].pct_change(fill_method=None)
    out["btc_ret_4h"] = btc["close"].pct_change(4, fill_method=None)
    out["btc_accel_1h"] = out["btc_ret_1h"].diff()
    out["btc_accel_4h"] = out["btc_ret_4h"].diff(4)
    out["btc_vol_ratio"] = btc["volume"] / btc["volume"].shift(1).rolling(24, 12).mean()
    lr2 = np.log(btc["close"]).diff() ** 2
    out["btc_rv_24h"] = np.sqrt(lr2.rolling(24, 12).sum())
    out["btc_rv_ratio"] = out["btc_rv_24h"] / np.sqrt(lr2.rolling(168, 84).sum() * 24 / 168)
    out["btc_drawdown_24h"] = btc["close"] / btc["close"].rolling(24, 1).max() - 1.0
    mqv = out["market_quote_volume"]
    out["market_volume_ratio"] = mqv / mqv.shift(1).rolling(24, 12).mean()
    out["agg_funding_change_24h"] = out["agg_funding"].diff(24)
    z = p.zscore
    out["agg_funding_z"] = _zscore(out["agg_funding"], p, z.funding_std_floor)
    out["funding_dispersion_z"] = _zscore(out["funding_dispersion"], p, z.funding_std_floor)
    out["funding_gap_z"] = _zscore(out["funding_gap"], p, z.funding_std_floor)
    out["extreme_funding_share_z"] = _zscore(out["extreme_funding_share"], p, z.share_std_floor)
    out["oi_change_24h_z"] = _zscore(out["oi_change_24h"], p, z.return_std_floor)
    out["btc_rv_24h_z"] = _zscore(out["btc_rv_24h"], p, z.return_std_floor)

    w, clip = p.cfi.weights, p.cfi.component_clip
    comps = pd.DataFrame(
        {
            "agg_funding_z": out["agg_funding_z"],
            "funding_dispersion_z": out["funding_dispersion_z"],
            "funding_gap_abs_z": out["funding_gap_z"].clip(-clip, clip).abs(),
            "extreme_funding_share_z": out["extreme_funding_share_z"],
            "oi_change_24h_z": out["oi_change_24h_z"],
            "btc_rv_24h_z": out["btc_rv_24h_z"],
        }
    ).clip(-clip, clip)
    weights = pd.Series({name: getattr(w, name) for name in comps.columns})
    out["cfi"] = comps.mul(weights).sum(axis=1) / comps.notna().mul(weights).sum(axis=1)
    out["cfi_pct"] = out["cfi"].expanding(p.cfi.percentile_min_history).rank(pct=True)
    for name in ("strict", "medium", "loose", "volume_only"):
        rule = getattr(p.cascade, name)
        hit = (out["btc_ret_1h"] < rule.max_return) & (out["btc_vol_ratio"] > rule.min_vol_ratio)
        if rule.min_funding_z is not None:
            hit &= out["agg_funding_z"] > rule.min_funding_z
        out[f"cascade_{name}"] = hit
    return out
