"""The venue registry: one VenueSpec per venue module, and every other part of riskd reading it."""

from __future__ import annotations

import os
import subprocess
import sys

import ccxt.async_support as ccxt_async
import pytest

from riskd.config import Settings, load_settings
from riskd.contract.snapshot import features_of
from riskd.errors import ConfigError
from riskd.market.sources import make_source
from riskd.sinks import metrics
from riskd.sources import VENUES
from riskd.sources.endpoints import CCXT_CLASSES
from riskd.sources.registry import gap_venues, primary_venue, with_role
from riskd.sources.symbols import base_of, listed_name, raw_id, unified_symbol


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No RISKD_ variable from the caller's environment leaks into the settings built here."""
    for name in list(os.environ):
        if name.upper().startswith("RISKD_"):
            monkeypatch.delenv(name)


def test_every_venue_module_registers_one_consistent_spec() -> None:
    """Four venues in a fixed order, each spec bound to its adapter, a real ccxt class and counters."""
    assert list(VENUES) == ["binance", "bybit", "hyperliquid", "okx"]
    assert primary_venue() == "binance"
    assert with_role("gap") == ("bybit", "hyperliquid", "okx")
    for name, spec in VENUES.items():
        assert spec.source.spec is spec, name
        assert hasattr(ccxt_async, spec.ccxt_class), name
        assert CCXT_CLASSES[name] == spec.ccxt_class
        assert "markets" in spec.endpoints, name
        assert spec.serves("funding"), name


def test_settings_have_a_section_per_registered_venue_okx_off_by_default() -> None:
    """The venues section comes from the registry: okx exists and is opt-in; the gap keeps today's venues."""
    settings = Settings()
    assert settings.venues.enabled() == ["binance", "bybit", "hyperliquid"]
    assert settings.venues.get("okx").enabled is False
    assert settings.fragility.funding.gap_venues == ("bybit", "hyperliquid")


def test_enabling_okx_alone_puts_it_into_the_funding_gap(monkeypatch: pytest.MonkeyPatch) -> None:
    """RISKD_VENUES__OKX__ENABLED=true is the one step: okx joins the enabled venues and the gap venues."""
    monkeypatch.setenv("RISKD_VENUES__OKX__ENABLED", "true")
    settings = load_settings()
    assert settings.venues.enabled() == ["binance", "bybit", "hyperliquid", "okx"]
    assert settings.fragility.funding.gap_venues == ("bybit", "hyperliquid", "okx")


def test_switching_a_default_venue_off_keeps_the_feature_set() -> None:
    """A default gap venue switched off stays in the gap list (its columns read NaN), as before."""
    settings = load_settings(venues={"bybit": {"enabled": False}})
    assert settings.venues.enabled() == ["binance", "hyperliquid"]
    assert settings.fragility.funding.gap_venues == ("bybit", "hyperliquid")
    assert gap_venues(set()) == ("bybit", "hyperliquid")


def test_explicit_gap_venues_win_over_the_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    """gap_venues set by the operator is kept as given, even with OKX enabled."""
    monkeypatch.setenv("RISKD_VENUES__OKX__ENABLED", "true")
    monkeypatch.setenv("RISKD_FRAGILITY__FUNDING__GAP_VENUES", '["okx"]')
    assert load_settings().fragility.funding.gap_venues == ("okx",)


@pytest.mark.parametrize(
    ("env", "field"),
    [
        ("RISKD_FRAGILITY__FUNDING__GAP_VENUES", "fragility.funding.gap_venues"),
        ("RISKD_FRAGILITY__FUNDING__PRIMARY_VENUE", "fragility.funding.primary_venue"),
    ],
)
def test_an_unregistered_venue_name_is_a_config_error_naming_field_and_source(
    monkeypatch: pytest.MonkeyPatch, env: str, field: str
) -> None:
    """An unregistered venue name fails at load, naming the field, its variable and the choices."""
    monkeypatch.setenv(env, '["ftx"]' if env.endswith("GAP_VENUES") else "ftx")
    with pytest.raises(ConfigError) as err:
        load_settings()
    text = str(err.value)
    assert f"{field} ({env})" in text
    assert "unknown venue 'ftx'" in text
    assert "okx" in text


def test_unknown_venue_section_exits_2_with_one_line(tmp_path: os.PathLike[str]) -> None:
    """`riskd config show` with a venue nobody registered: exit 2, one stderr line, no traceback."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RISKD_")}
    env["RISKD_FRAGILITY__FUNDING__GAP_VENUES"] = '["ftx"]'
    proc = subprocess.run(
        [sys.executable, "-m", "riskd", "config", "show"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1
    assert "fragility.funding.gap_venues" in proc.stderr


@pytest.mark.parametrize(
    ("venue", "market_id", "unified"),
    [
        ("binance", "BTCUSDT", "BTC/USDT:USDT"),
        ("bybit", "BTCUSDT", "BTC/USDT:USDT"),
        ("hyperliquid", "BTC", "BTC/USDC:USDC"),
        ("okx", "BTC-USDT-SWAP", "BTC/USDT:USDT"),
    ],
)
def test_market_ids_come_from_the_spec_and_read_back(venue: str, market_id: str, unified: str) -> None:
    """raw_id and unified_symbol follow each venue's spec; base_of reads every spelling back to BTC."""
    assert raw_id("BTC", venue) == market_id
    assert unified_symbol("BTC", venue) == unified
    assert base_of(market_id) == base_of(unified) == "BTC"


def test_scaled_prefixes_are_per_venue() -> None:
    """Hyperliquid's kPEPE is found through its spec's prefixes; a venue without "k" does not guess it."""
    assert listed_name("PEPE", {}, {"kPEPE"}, VENUES["hyperliquid"].scaled_prefixes) == "kPEPE"
    assert listed_name("PEPE", {}, {"kPEPE"}, VENUES["okx"].scaled_prefixes) is None
    assert listed_name("PEPE", {}, {"1000PEPE"}, VENUES["okx"].scaled_prefixes) == "1000PEPE"
    assert listed_name("FTM", {"FTM": "S"}, {"S"}, VENUES["okx"].scaled_prefixes) == "S"


def test_gap_features_and_metric_labels_follow_the_registry() -> None:
    """gap_<venue> exists for each gap venue the core computed, with a binance-<venue> metric series."""
    row = {"agg_funding": 3e-5, "agg_funding_bybit": 1e-5, "agg_funding_okx": 2e-5}
    features = features_of(row)
    assert features["gap_bybit"] == pytest.approx(2e-5)
    assert features["gap_okx"] == pytest.approx(1e-5)
    assert "gap_hyperliquid" not in features  # not computed (no column), so not published
    labels = {
        name: lab["venue_pair"] for name, (_, lab) in metrics._FEATURE_GAUGES.items() if "venue_pair" in lab
    }
    assert labels == {f"gap_{v}": f"binance-{v}" for v in with_role("gap")} | {
        "funding_gap": "binance-others"
    }


async def test_make_source_builds_each_venue_from_its_spec() -> None:
    """make_source gives each venue its spec's ccxt class and rate-limit window (ms), from settings alone."""
    settings = load_settings(venues={"okx": {"enabled": True}})
    for name, spec in VENUES.items():
        source = make_source(name, settings)
        try:
            assert source.venue == name
            assert source.exchange.id == getattr(ccxt_async, spec.ccxt_class)().id
            assert source.exchange.rollingWindowSize == spec.rate_limit_window_s * 1000
        finally:
            await source.close()


def test_reading_settings_does_not_load_ccxt() -> None:
    """Settings read the registry without importing ccxt, so `riskd config show` stays fast."""
    code = "import sys, riskd.config, riskd.sources.registry; print('ccxt' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "False"
