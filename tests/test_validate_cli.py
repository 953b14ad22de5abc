"""``riskd validate`` end to end on the bundled real sample: store -> core -> statistics -> report files."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from riskd.cli import main
from riskd.config import load_settings
from riskd.core import cascade_events, crashing_assets
from riskd.market.offline import load_history, universe, validation_inputs
from riskd.research.findings import RESEARCH_FINDINGS
from riskd.store import HistoryStore
from riskd.testing.sample import SAMPLE_END, SAMPLE_START, load_sample_store

FIGURES = ("event_study", "crash_rates", "equity", "drawdown", "trade_scatter", "walk_forward")
VERDICTS = {"reproduced", "differs", "not testable"}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data dir whose store holds the bundled May 2021 sample, imported by the real importer."""
    root = tmp_path_factory.mktemp("validate")
    load_sample_store(root / "store")
    return root


@pytest.fixture(scope="module")
def report(data_dir: Path) -> Path:
    """The folder ``riskd validate`` writes over the sample (few bootstrap resamples: a fast run)."""
    out = data_dir / "report"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RISKD_DATA_DIR", str(data_dir))
        assert main(["validate", "--out", str(out), "--reps", "20", "--no-progress"]) == 0
    return out


def _findings_rows(text: str) -> list[list[str]]:
    """The body rows of the first Markdown table after the findings heading."""
    section = text.split("## Findings", 1)[1].split("\n## ", 1)[0]
    lines = [ln for ln in section.splitlines() if ln.startswith("| ")]
    return [[c.strip() for c in re.split(r"(?<!\\)\|", ln)[1:-1]] for ln in lines[1:]]


def _sample_events(data_dir: Path) -> pd.DataFrame:
    settings = load_settings(data_dir=data_dir)
    loaded = load_history(
        HistoryStore(settings.store_dir),
        settings.fragility,
        universe(None, settings),
        settings.venues.enabled(),
    )
    return cascade_events(loaded.frame, settings.fragility.cascade)


def test_report_opens_with_the_findings_table(report: Path) -> None:
    """report.md starts with the findings table: one row per research figure, in RESEARCH.md's order."""
    text = (report / "report.md").read_text(encoding="utf-8")
    assert text.index("## Findings") < text.index("## 1. Event study")
    header = next(ln for ln in text.splitlines() if ln.startswith("| part | claim"))
    assert header.split("|")[1:6] == [" part ", " claim ", " research ", " ours ", " ci "]
    rows = _findings_rows(text)
    assert [r[1] for r in rows] == [f.claim for f in RESEARCH_FINDINGS]
    assert {r[7] for r in rows} <= VERDICTS
    assert f"Data: {SAMPLE_START[:10]} – {SAMPLE_END[:10]}" in text


def test_results_json_carries_the_figures(report: Path, data_dir: Path) -> None:
    """results.json parses and its event count is the core's number of volume-only episodes."""
    data = json.loads((report / "results.json").read_text(encoding="utf-8"))
    findings = {row["key"]: row for row in data["findings"]}
    assert list(findings) == [f.key for f in RESEARCH_FINDINGS]
    episodes = _sample_events(data_dir)
    n_volume_only = int((episodes["level"] == "volume_only").sum())
    assert n_volume_only > 0
    assert findings["es_events"]["our_value"] == n_volume_only
    assert data["inputs"]["events"]["volume_only"] == n_volume_only
    assert findings["cost_rt"]["verdict"] == "not testable"
    assert data["config"]["bootstrap_reps"] == 20
    assert "from the core's detector" in data["inputs"]["multi_asset_check"]


def test_figures_are_valid_pngs(report: Path) -> None:
    """Every figure the report links is a PNG file that Pillow can decode."""
    text = (report / "report.md").read_text(encoding="utf-8")
    for stem in FIGURES:
        path = report / f"{stem}.png"
        assert f"]({stem}.png)" in text
        with Image.open(path) as img:
            assert img.format == "PNG"
            img.verify()
        with Image.open(path) as img:
            assert img.size[0] > 200
            assert img.size[1] > 150


def test_per_asset_crash_flags_add_up_to_the_core_count(data_dir: Path) -> None:
    """The per-asset multi-asset flags sum, hour by hour, to the core's multi_asset_count."""
    settings = load_settings(data_dir=data_dir)
    loaded = load_history(
        HistoryStore(settings.store_dir),
        settings.fragility,
        universe(None, settings),
        settings.venues.enabled(),
    )
    flags = crashing_assets(loaded.panel, settings.fragility)
    counts = flags.sum(axis=1).to_numpy(dtype=float)
    assert counts.max() >= settings.fragility.multi_asset.min_assets  # the 2021-05-19 crash is in it
    np.testing.assert_array_equal(counts, loaded.frame["multi_asset_count"].to_numpy())


def test_later_start_is_warmed_up_and_btc_comes_first(data_dir: Path) -> None:
    """A later --from keeps the earlier hours as warm-up (CFI defined at once); BTC is always included."""
    settings = load_settings(data_dir=data_dir)
    start = pd.Timestamp("2021-05-10", tz="UTC")
    loaded = load_history(
        HistoryStore(settings.store_dir),
        settings.fragility,
        universe(["eth", "xrp", "LTC", "ADA"], settings),
        settings.venues.enabled(),
        start=start,
    )
    inputs, _ = validation_inputs(loaded, settings.fragility)
    assert list(inputs.closes.columns) == ["BTC", "ETH", "XRP", "LTC", "ADA"]
    assert inputs.closes.index[0] == start
    assert np.isfinite(inputs.features["cfi"].iloc[0])


@pytest.mark.parametrize(
    ("argv", "status", "message"),
    [
        (["--from", "2019-01-01", "--to", "2019-02-01"], 1, "no BTC prices between"),
        (["--from", "2021-06-01", "--to", "2021-05-01"], 2, "--from: after --to"),
        (["--reps", "3"], 2, "--reps"),
    ],
)
def test_bad_ranges_fail_with_one_line(data_dir, tmp_path, monkeypatch, capsys, argv, status, message):
    """A span without BTC, a reversed span or too few resamples: the exit status and a one-line message."""
    monkeypatch.setenv("RISKD_DATA_DIR", str(data_dir))
    assert main(["validate", "--out", str(tmp_path / "r"), "--no-progress", *argv]) == status
    err = capsys.readouterr().err.strip()
    assert message in err
    assert len(err.splitlines()) == 1
    assert not (tmp_path / "r").exists()


def test_empty_store_is_a_data_error(tmp_path, monkeypatch, capsys):
    """An empty store exits 1 and says how to fill it."""
    monkeypatch.setenv("RISKD_DATA_DIR", str(tmp_path))
    assert main(["validate", "--out", str(tmp_path / "r"), "--no-progress"]) == 1
    err = capsys.readouterr().err.strip()
    assert "is empty" in err
    assert "riskd data import" in err
    assert len(err.splitlines()) == 1


def test_validation_settings_default_to_the_research_choices_and_reach_the_config() -> None:
    """With no settings the report uses exactly the research's choices (ValidationConfig's defaults);
    each setting, from the environment-style nested keys, reaches the config; CLI flags win."""
    import argparse

    from riskd.commands.validate import config_from
    from riskd.config import load_settings
    from riskd.research.config import ValidationConfig
    from riskd.research.labels import CrashDefinition

    assert config_from(load_settings()) == ValidationConfig()
    settings = load_settings(
        validation={
            "cost_bps": 12.5, "crash_kind": "drawdown", "crash_horizon_h": 48, "crash_threshold": -0.1,
            "event_level": "loose", "hold_h": 24, "bootstrap_reps": 200, "block_h": 72, "seed": 7,
        }
    )  # fmt: skip # the settings on two lines
    cfg = config_from(settings)
    assert cfg.crash == CrashDefinition(kind="drawdown", horizon_h=48, threshold=-0.1)
    assert (cfg.cost_bps, cfg.event_level, cfg.hold_h, cfg.bootstrap_reps, cfg.block_h, cfg.seed) == (
        12.5, "loose", 24, 200, 72, 7,
    )  # fmt: skip # the values in the tuple's order
    flags = config_from(settings, argparse.Namespace(cost_bps=5.0, reps=50))
    assert (flags.cost_bps, flags.bootstrap_reps, flags.component_reps) == (5.0, 50, 50)
