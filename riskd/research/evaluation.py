"""Out-of-sample evaluation of crash signals against the obvious baselines, and the verdict on the published
probability.

Every signal is scored on the same out-of-sample hours (from ``first_test``, hours where every signal has
a forecast and the crash label is known), as a probability (:mod:`riskd.research.signals` maps scores):

- **AUC** (Mann–Whitney, ties one half) with its 95% block-bootstrap CI;
- **Brier** and **Brier skill** ``1 − Brier / Brier(climatology)`` (climatology: the past-only base rate)
  with its CI;
- the **paired** difference of Brier skills against the reference forecast (realised volatility alone),
  ``ΔBSS = (Brier(reference) − Brier(signal)) / Brier(climatology)``, over the *same* resamples, at each
  mean block length (a week and 30 days): a difference whose CI straddles zero is a tie;
- **Q5/Q1**: the crash rate in the top over the bottom quintile of the raw score against past-only
  monthly edges (:func:`riskd.research.components.monthly_past_quintiles`), with its CI;
- per calendar year, AUC and Brier skill (:func:`riskd.research.scoring.per_year`).

The **verdict** on the published probability is computed, not written: *yes* when its ΔBSS over the
reference has a CI above zero at every block length, *no* when below zero at every one, else *not
distinguishable*.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from riskd.research.components import monthly_past_quintiles, quintile_sums, tail_from_sums
from riskd.research.labels import episode_count
from riskd.research.scoring import (
    AucParts,
    Interval,
    Resampling,
    brier_skill_draws,
    paired_skill_draws,
    per_year,
)
from riskd.research.signals import CLIMATOLOGY, past_base_rate, rank_calibrated, reliability_bins

REFERENCE = "btc_rv_24h"
"""The baseline every signal is compared with: BTC's 24 h realised volatility alone."""
PUBLISHED = "crash_prob_24h"
"""What the daemon publishes (its walk-forward series)."""


@dataclass(frozen=True)
class Verdict:
    """Does the published probability beat the reference? ``answer``: ``yes``, ``no``, ``not
    distinguishable`` or ``not run``; ``paired``: (mean block hours, ΔBSS with its CI) per block."""

    answer: str
    published: str
    reference: str
    paired: tuple[tuple[int, Interval], ...]
    reason: str = ""
    against: str = "realised volatility alone"

    @classmethod
    def decide(
        cls,
        published: str,
        reference: str,
        paired: Sequence[tuple[int, Interval]],
        against: str = "realised volatility alone",
    ) -> Verdict:
        """The rule of the module docstring over the paired ΔBSS at each block length."""
        pairs = tuple(paired)
        if not pairs or any(np.isnan(iv.lo) for _, iv in pairs):
            why = "no paired CI (too few out-of-sample hours)"
            return cls("not run", published, reference, pairs, why, against)
        if all(iv.above_zero() for _, iv in pairs):
            answer = "yes"
        elif all(iv.below_zero() for _, iv in pairs):
            answer = "no"
        else:
            answer = "not distinguishable"
        return cls(answer, published, reference, pairs, "", against)

    def line(self) -> str:
        """The report's verdict line, with the figures behind it."""
        head = f"riskd's published probability beats {self.against}: **{self.answer}**"
        if not self.paired:
            return f"{head} ({self.reason})."
        figs = "; ".join(
            f"{b // 24}-day blocks {iv.value:+.4f} [{iv.lo:+.4f}, {iv.hi:+.4f}]" for b, iv in self.paired
        )
        return f"{head} — paired ΔBSS (`{self.published}` − `{self.reference}`): {figs}."


@dataclass(frozen=True)
class SignalEvaluation:
    """The out-of-sample table (one row per signal), the reliability bins, the hourly probabilities, the
    per-year table and the verdict.

    ``table``: ``signal``, ``how`` (``probability`` as given / ``mapped``: walk-forward logistic on the
    past rank / ``base rate``), ``n``, ``crashes``, ``auc`` with ``auc_lo``/``auc_hi``, ``brier``,
    ``brier_clim``, ``bss`` with ``bss_lo``/``bss_hi``, per block length ``b`` ``d_bss_<b>`` with
    ``d_bss_<b>_lo``/``_hi`` (paired against ``reference``), ``ratio`` (Q5/Q1) with
    ``ci_lo``/``ci_hi``, ``q1_n`` (hours in Q1), ``q1_crashes``, ``q5_crashes``.
    ``probabilities``: hours × (signals, ``climatology``, ``crash``). ``episodes``: separate crash
    episodes (crash hours more than a horizon apart start a new one).
    """

    table: pd.DataFrame
    reliability: pd.DataFrame
    probabilities: pd.DataFrame
    per_year: pd.DataFrame
    verdict: Verdict
    crash: str
    reps: int
    blocks: tuple[int, ...]
    episodes: int = 0
    reference: str = REFERENCE
    more_verdicts: tuple[Verdict, ...] = ()
    """The published probability against other baselines (e.g. the logistic on realised volatility)."""

    @property
    def span(self) -> str:
        """First and last evaluated hour."""
        idx = self.probabilities.index
        return f"{idx.min():%Y-%m-%d} – {idx.max():%Y-%m-%d}" if len(idx) else "no hours"

    @property
    def block_h(self) -> int:
        """The block length of the single-signal CIs (the shortest)."""
        return self.blocks[0]


def probabilities_of(
    scores: pd.DataFrame,
    crash: pd.Series,
    *,
    first_test: pd.Timestamp,
    probabilities: Sequence[str],
    horizon_h: int,
    min_history_h: int,
) -> pd.DataFrame:
    """Every signal as an out-of-sample probability, the climatology and the label, on the hours where
    all of them exist (from ``first_test``)."""
    crash = crash.reindex(scores.index)
    probs = {
        name: scores[name].astype(float)
        if name in probabilities
        else rank_calibrated(
            scores[name], crash, first_test=first_test, horizon_h=horizon_h, min_train=min_history_h
        )
        for name in scores.columns
    }
    frame = pd.DataFrame(probs)
    frame[CLIMATOLOGY] = past_base_rate(crash, horizon_h=horizon_h)
    frame["crash"] = crash
    return frame[frame.index >= first_test].dropna()


def _score_row(
    name: str,
    frame: pd.DataFrame,
    raw: pd.Series | None,
    draws: dict[int, Resampling | None],
    min_history_h: int,
    reference: str,
) -> dict[str, object]:
    """One table row: AUC, Brier skill and Q5/Q1 with CIs at the first block, ΔBSS at every block."""
    y = frame["crash"].to_numpy()
    p = frame[name].to_numpy()
    err, clim_err = (p - y) ** 2, (frame[CLIMATOLOGY].to_numpy() - y) ** 2
    first = draws[min(draws)]
    parts = AucParts.of(p, y)
    auc = Interval.of(parts.point(), None if first is None else parts.draws(first.counts))
    brier, brier_clim = float(err.mean()), float(clim_err.mean())
    bss_point = 1.0 - brier / brier_clim if brier_clim > 0 else np.nan
    bss = Interval.of(bss_point, None if first is None else brier_skill_draws(err, clim_err, first))
    row: dict[str, object] = {"signal": name, "n": len(y), "crashes": int(y.sum())}
    row |= {"auc": auc.value, "auc_lo": auc.lo, "auc_hi": auc.hi, "brier": brier, "brier_clim": brier_clim}
    row |= {"bss": bss.value, "bss_lo": bss.lo, "bss_hi": bss.hi}
    if reference in frame:
        for block, d in paired_intervals(frame, name, reference, draws):
            row |= {f"d_bss_{block}": d.value, f"d_bss_{block}_lo": d.lo, f"d_bss_{block}_hi": d.hi}
    if raw is not None and name != CLIMATOLOGY:
        row |= _tail(raw, frame, first, min_history_h)
    return row


def paired_intervals(
    frame: pd.DataFrame, name: str, reference: str, draws: dict[int, Resampling | None]
) -> list[tuple[int, Interval]]:
    """ΔBSS of ``name`` over ``reference`` (the Brier difference over the climatology's Brier) with its
    CI at each block length, the two forecasts on the same resamples."""
    y = frame["crash"].to_numpy()
    err = (frame[name].to_numpy() - y) ** 2
    ref_err = (frame[reference].to_numpy() - y) ** 2
    clim_err = (frame[CLIMATOLOGY].to_numpy() - y) ** 2
    point = float((ref_err - err).sum() / clim_err.sum()) if clim_err.sum() > 0 else np.nan
    return [
        (block, Interval.of(point, None if r is None else paired_skill_draws(err, ref_err, clim_err, r)))
        for block, r in draws.items()
    ]


def _tail(raw: pd.Series, frame: pd.DataFrame, r: Resampling | None, min_history_h: int) -> dict[str, object]:
    """Q5/Q1 of the raw score on past-only monthly quintiles, with its CI and the hours in Q1."""
    q = monthly_past_quintiles(raw, min_history_h).reindex(frame.index)
    y = frame["crash"].to_numpy()
    x = quintile_sums(q.to_numpy(), y[:, None])
    boot = r.res.sums(x) if r is not None else None
    t = tail_from_sums(q, frame[["crash"]], x.sum(axis=0), boot, 0.95)[0]
    out = {k: t[k] for k in ("ratio", "ci_lo", "ci_hi", "q1_crashes", "q5_crashes")}
    return out | {"q1_n": int((q == 1).sum())}


def evaluate_signals(
    scores: pd.DataFrame,
    crash: pd.Series,
    *,
    first_test: pd.Timestamp,
    probabilities: Sequence[str] = (),
    crash_text: str = "",
    horizon_h: int = 24,
    blocks: Sequence[int] = (168, 720),
    reps: int = 1000,
    seed: int = 0,
    min_history_h: int = 24 * 180,
    published: str = PUBLISHED,
    reference: str = REFERENCE,
    also: Mapping[str, str] | None = None,
) -> SignalEvaluation:
    """Score every column of ``scores`` out of sample against ``crash`` (1/0/NaN hourly labels); every
    signal is compared with ``reference`` (paired), and the verdict is ``published`` against it; ``also``
    (signal → how the line names it) adds a verdict of ``published`` against each of those."""
    frame = probabilities_of(
        scores,
        crash,
        first_test=first_test,
        probabilities=probabilities,
        horizon_h=horizon_h,
        min_history_h=min_history_h,
    )
    blocks = tuple(sorted(blocks))
    if frame.empty:  # a history shorter than the training needs: nothing is out of sample
        table = pd.DataFrame({"signal": [*scores.columns, CLIMATOLOGY], "n": 0}).assign(how="", bss=np.nan)
        verdict = Verdict.decide(published, reference, ())
        empty = pd.DataFrame()
        return SignalEvaluation(table, empty, frame, empty, verdict, crash_text, reps, blocks, 0, reference)
    draws = {b: Resampling.draw(len(frame), b, reps, seed) for b in blocks}
    table, reliability = _table(scores, frame, probabilities, draws, min_history_h, reference)
    more = tuple(
        Verdict.decide(published, other, paired_intervals(frame, published, other, draws), text)
        for other, text in (also or {}).items()
        if other in frame and published in frame
    )
    years = per_year(frame.drop(columns=["crash"]), frame["crash"], frame[CLIMATOLOGY])
    return SignalEvaluation(
        table,
        reliability,
        frame,
        years,
        _verdict(table, published, reference, blocks),
        crash_text,
        reps,
        blocks,
        episode_count(frame["crash"], horizon_h),
        reference,
        more,
    )


def _table(
    scores: pd.DataFrame,
    frame: pd.DataFrame,
    probabilities: Sequence[str],
    draws: dict[int, Resampling | None],
    min_history_h: int,
    reference: str,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The table (one row per signal and the climatology) and the reliability bins."""
    rows, rel = [], []
    for name in [*scores.columns, CLIMATOLOGY]:
        raw = scores[name].reindex(frame.index) if name in scores else frame[name]
        how = "base rate" if name == CLIMATOLOGY else "probability" if name in probabilities else "mapped"
        rows.append({**_score_row(name, frame, raw, draws, min_history_h, reference), "how": how})
        if name != CLIMATOLOGY:
            bins = reliability_bins(frame[name].to_numpy(), frame["crash"].to_numpy())
            rel.append(bins.assign(signal=name))
    return pd.DataFrame(rows), pd.concat(rel, ignore_index=True)


def _verdict(table: pd.DataFrame, published: str, reference: str, blocks: tuple[int, ...]) -> Verdict:
    if published not in set(table["signal"]) or f"d_bss_{blocks[0]}" not in table:
        return Verdict("not run", published, reference, (), f"no `{published}` or `{reference}` scored")
    row = table.set_index("signal").loc[published]
    paired = [(b, Interval(row[f"d_bss_{b}"], row[f"d_bss_{b}_lo"], row[f"d_bss_{b}_hi"])) for b in blocks]
    return Verdict.decide(published, reference, paired)
