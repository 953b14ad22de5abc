"""The status page as a person sees it, in a real headless Chromium (Debian's, driven by Selenium through
/usr/bin/chromedriver): fresh, stale and cascade states, with the chart drawn from a real Redis history.

Screenshots land in tests/artifacts/ (gitignored) and their paths are printed (pytest -s shows them).
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from _contract import T0, make_snapshot, week

from riskd.config import RedisSettings
from riskd.contract.alerts import derive_alerts
from riskd.contract.models import DataQuality, Snapshot
from riskd.http.chart import STATES
from riskd.http.history import RedisHistory
from riskd.http.server import MetricsServer
from riskd.sinks.metrics import Metrics
from riskd.sinks.redis import RedisSink

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
ROOT = Path(__file__).resolve().parents[1]
AXE = ROOT / ".test-deps" / "node_modules" / "axe-core" / "axe.min.js"
ARTIFACTS = ROOT / "tests" / "artifacts"
END = T0 + timedelta(days=7)

pytestmark = pytest.mark.skipif(
    CHROMIUM is None or CHROMEDRIVER is None or not AXE.is_file(),
    reason="chromium, chromedriver or axe-core not installed (run scripts/install-test-deps.sh)",
)

AXE_RUN = """
const done = arguments[arguments.length - 1];
axe.run(document, {resultTypes: ["violations"]}).then(
  (r) => done(r.violations.filter((v) => v.impact === "serious" || v.impact === "critical").map(
    (v) => `${v.impact} ${v.id}: ${v.help} at ${v.nodes.map((n) => n.target.join(" ")).join(", ")}`)),
  (err) => done([`axe failed: ${err}`]));
"""
"""axe-core's own run (every rule but the experimental ones): the serious and critical violations."""


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """One headless Chromium for the module, with a fresh profile and a phone-ish width."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM  # type: ignore[assignment]
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=420,1400",
        f"--user-data-dir={tmp_path_factory.mktemp('chromium')}",
    ):
        opts.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    yield driver
    driver.quit()


class Clock:
    def __init__(self) -> None:
        self.now = END + timedelta(minutes=3)

    def __call__(self) -> float:
        return self.now.timestamp()


@contextlib.asynccontextmanager
async def serve(redis_url: str, hours: list[Snapshot]) -> AsyncIterator[tuple[MetricsServer, Clock]]:
    """A server whose history stream holds ``hours`` (published through the daemon's sink), the last one
    current, two venues fresh."""
    prefix = f"riskd-page-{uuid.uuid4().hex[:8]}:v1"
    client = aioredis.Redis.from_url(redis_url)
    sink = RedisSink(client, RedisSettings(key_prefix=prefix))
    for snap in hours:
        await sink.publish(snap)
    clock = Clock()
    metrics = Metrics(clock=clock)
    metrics.state.snapshot = hours[-1]
    metrics.state.last_cycle_ok = metrics.state.started_at
    metrics.state.leader = True
    data_now = clock()  # data ages are on the data clock (the daemon stores the data's own time)
    metrics.state.newest_data.update(
        {("binance", "ohlcv"): data_now - 200, ("bybit", "funding"): data_now - 4000}
    )
    metrics.state.venue_health.update({"binance": "ok", "bybit": "ok"})
    srv = await MetricsServer(metrics, "127.0.0.1", 0, history=RedisHistory(client, prefix)).start()
    yield srv, clock
    await srv.stop()
    await client.aclose()


@pytest.fixture
async def served(redis_url: str) -> AsyncIterator[tuple[MetricsServer, Clock]]:
    """A server whose history stream holds a week: calm, fragile for the last day, a cascade in the last 6 h."""
    async with serve(redis_url, week(END)) as pair:
        yield pair


def _look(browser: object, url: str, name: str) -> dict[str, str]:
    """Load the page, keep a screenshot, and return the visible text of its parts (blocking: the tests run
    it in a thread, since the server answers on the test's event loop)."""
    from selenium.webdriver.common.by import By

    browser.get(url)  # type: ignore[attr-defined]
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / f"status_page_{name}.png"
    browser.save_screenshot(str(shot))  # type: ignore[attr-defined]
    print(f"screenshot: {shot}")
    seen = {"body": browser.find_element(By.TAG_NAME, "body").text}  # type: ignore[attr-defined]
    for part in ("state", "multiplier", "freshness", "episode", "alerts", "data"):
        seen[part] = browser.find_element(By.ID, part).text  # type: ignore[attr-defined]
    banners = browser.find_elements(By.ID, "stale-banner")  # type: ignore[attr-defined]
    seen["banner"] = banners[0].text if banners and banners[0].is_displayed() else ""
    chart = browser.find_element(By.ID, "chart")  # type: ignore[attr-defined]
    line = chart.find_elements(By.CSS_SELECTOR, "polyline.cfi-line")
    seen["chart_points"] = str(len(line[0].get_attribute("points").split()) if line else 0)
    seen["chart_width"] = str(chart.size["width"])
    seen["bands"] = str(len(chart.find_elements(By.CSS_SELECTOR, "rect.state-band")))
    seen["unknown_bands"] = str(len(chart.find_elements(By.CSS_SELECTOR, "rect.state-band.st-unknown")))
    seen["legend"] = browser.find_element(By.ID, "legend").text  # type: ignore[attr-defined]
    seen["episode_color"] = browser.find_element(By.ID, "episode").value_of_css_property("color")  # type: ignore[attr-defined]
    browser.execute_script(AXE.read_text(encoding="utf-8"))  # type: ignore[attr-defined]
    browser.set_script_timeout(60)  # type: ignore[attr-defined]
    seen["axe"] = "\n".join(browser.execute_async_script(AXE_RUN))  # type: ignore[attr-defined]
    return seen


def _rgb(css: str) -> tuple[int, int, int]:
    """'rgb(21, 101, 192)' or 'rgba(…)' → (21, 101, 192)."""
    r, g, b = (int(float(v)) for v in css[css.index("(") + 1 : css.index(")")].split(",")[:3])
    return r, g, b


def _contrast(a: tuple[int, int, int], b: tuple[int, int, int]) -> float:
    """WCAG 2.x contrast ratio of two sRGB colours."""

    def lum(c: tuple[int, int, int]) -> float:
        lin = [v / 255 / 12.92 if v / 255 <= 0.03928 else ((v / 255 + 0.055) / 1.055) ** 2.4 for v in c]
        return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]

    hi, lo = sorted((lum(a), lum(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


async def test_fresh_cascade_in_progress(browser: object, served: tuple[MetricsServer, Clock]) -> None:
    """A cascade in progress: the state reads CASCADE with multiplier 0.2, no stale banner, the episode is
    named with its start, the chart draws a week of CFI and states, the cascade alert is listed."""
    srv, _ = served
    seen = await asyncio.to_thread(_look, browser, f"http://127.0.0.1:{srv.port}/", "cascade")
    assert seen["state"] == "CASCADE"
    assert seen["multiplier"] == "0.2"
    assert seen["banner"] == ""
    assert seen["freshness"].startswith("data fresh · Hour ending 2021-05-26 00:00 UTC (3 min ago)")
    assert seen["episode"].startswith(
        "Cascade episode 2021-05-19T13 in progress since 2021-05-25 19:00 UTC (6 h)"
    )
    assert "Cascade started" in seen["alerts"]
    assert "Regime calm → fragile" in seen["alerts"]
    assert (seen["chart_points"], seen["bands"]) == ("168", "168")
    assert int(seen["chart_width"]) > 300  # drawn at the phone's width, not collapsed
    assert "binance" in seen["data"]
    assert "3 min ago" in seen["data"]
    assert _rgb(seen["episode_color"]) == _rgb_hex(STATES["cascade"].ink)
    assert seen["axe"] == ""


async def test_calm_fresh_state(browser: object, served: tuple[MetricsServer, Clock]) -> None:
    """A calm, fresh regime: CALM × 1, no banner, no cascade in progress."""
    srv, _ = served
    srv.metrics.state.snapshot = make_snapshot(END, "calm")
    seen = await asyncio.to_thread(_look, browser, f"http://127.0.0.1:{srv.port}/", "fresh")
    assert (seen["state"], seen["multiplier"], seen["banner"]) == ("CALM", "1", "")
    assert seen["episode"].startswith("No cascade episode in progress.")
    assert seen["axe"] == ""


async def test_stale_state_shows_a_banner(browser: object, served: tuple[MetricsServer, Clock]) -> None:
    """An old snapshot reads UNKNOWN with no multiplier and a banner saying not to trade on it; a snapshot
    computed from stale data does too; the last published state is still shown, labelled as such."""
    srv, clock = served
    clock.now = END + timedelta(hours=5)
    seen = await asyncio.to_thread(_look, browser, f"http://127.0.0.1:{srv.port}/", "stale")
    assert (seen["state"], seen["multiplier"]) == ("UNKNOWN", "—")
    assert seen["banner"].startswith(
        "STALE: do not trade on this regime. last state is for 2021-05-26T00:00:00Z, 5.0 h old"
    )
    assert "Last published: cascade × 0.2" in seen["freshness"]
    assert seen["episode"].startswith(
        "Unknown: the last published hour (2021-05-26 00:00 UTC) was in cascade"
    )
    clock.now = END + timedelta(minutes=3)
    dq = DataQuality(status="stale", coverage=0.2, missing_sources=["binance:ohlcv"])
    srv.metrics.state.snapshot = make_snapshot(END, "calm", data_quality=dq)
    seen = await asyncio.to_thread(_look, browser, f"http://127.0.0.1:{srv.port}/", "stale_data")
    assert seen["state"] == "UNKNOWN"
    assert "computed from stale data (binance:ohlcv)" in seen["banner"]
    assert seen["axe"] == ""


async def test_a_data_stale_alert_is_listed(browser: object, redis_url: str) -> None:
    """A daemon that started blind publishes one stale hour and sends "Data stale" for it (the alert feed
    derives its first hour against no predecessor): the page's recent alerts list that alert, not "none"."""
    dq = DataQuality(status="stale", coverage=0.0, missing_sources=["binance:ohlcv"])
    blind = make_snapshot(END, "unknown", data_quality=dq, cfi=None, cfi_percentile=None)
    sent = [a.title for a in derive_alerts(None, blind, now=END + timedelta(minutes=2))]
    assert sent == ["Data stale: regime not trustworthy"]  # what the daemon delivered
    async with serve(redis_url, [blind]) as (srv, _):
        seen = await asyncio.to_thread(_look, browser, f"http://127.0.0.1:{srv.port}/", "data_stale")
    assert "Data stale: regime not trustworthy" in seen["alerts"]
    assert "none" not in seen["alerts"]
    assert seen["axe"] == ""


def _rgb_hex(colour: str) -> tuple[int, int, int]:
    return _rgb(f"rgb({int(colour[1:3], 16)}, {int(colour[3:5], 16)}, {int(colour[5:7], 16)})")


async def test_unknown_hours_are_hatched_and_labelled(browser: object, redis_url: str) -> None:
    """Six hours published unknown and two published calm from stale data are drawn as the hatched grey
    "unknown" band, which the legend names with its hours; every state has its own pattern and a legend
    entry; the data alerts of that blind spell are listed; a degraded venue's text has contrast >= 4.5:1;
    axe-core finds no serious or critical violation."""
    from selenium.webdriver.common.by import By

    stale = DataQuality(status="stale", coverage=0.0, missing_sources=["binance:ohlcv"])
    hours = week(END)
    for i in range(100, 108):
        state = "unknown" if i < 106 else "calm"  # 106, 107: an older writer's "calm" from stale data
        hours[i] = make_snapshot(hours[i].as_of, state, data_quality=stale, cfi=None, cfi_percentile=None)
    async with serve(redis_url, hours) as (srv, _):
        srv.metrics.state.venue_health["bybit"] = "degraded"
        url = f"http://127.0.0.1:{srv.port}/"
        seen = await asyncio.to_thread(_look, browser, url, "unknown_hours")

        def styles() -> tuple[list[str], list[str], str]:
            patterns = browser.find_elements(By.CSS_SELECTOR, "#chart pattern")  # type: ignore[attr-defined]
            fills = browser.find_elements(By.CSS_SELECTOR, "rect.st-unknown")  # type: ignore[attr-defined]
            cell = browser.find_element(By.CSS_SELECTOR, "td.h-degraded")  # type: ignore[attr-defined]
            return (
                [p.get_attribute("innerHTML") for p in patterns],
                [f.get_attribute("fill") for f in fills],
                cell.value_of_css_property("color"),
            )

        marks, fills, degraded = await asyncio.to_thread(styles)
    assert (seen["bands"], seen["unknown_bands"]) == ("168", "8")
    assert set(fills) == {"url(#st-unknown)"}
    assert len(marks) == len(set(marks)) == len(STATES)  # a distinct pattern per state, not colour alone
    assert "unknown (grey hatching: data stale or missing, riskd could not see) · 8 h" in seen["legend"]
    for name, look in STATES.items():
        assert f"{name} ({look.pattern}" in seen["legend"]
    assert "Data stale: regime not trustworthy" in seen["alerts"]
    assert "Data recovered" in seen["alerts"]
    assert _contrast(_rgb(degraded), (255, 255, 255)) >= 4.5
    assert seen["axe"] == ""


async def test_episode_colour_follows_the_regime(
    browser: object, served: tuple[MetricsServer, Clock]
) -> None:
    """An episode still open while the regime is RECOVERY is drawn in recovery's colour, not cascade red."""
    srv, _ = served
    srv.metrics.state.snapshot = make_snapshot(END, "recovery", episode_id="2021-05-19T13")
    seen = await asyncio.to_thread(_look, browser, f"http://127.0.0.1:{srv.port}/", "recovery")
    assert seen["state"] == "RECOVERY"
    assert seen["episode"].startswith("Cascade episode 2021-05-19T13 in progress")
    assert _rgb(seen["episode_color"]) == _rgb_hex(STATES["recovery"].ink)
    assert _contrast(_rgb(seen["episode_color"]), (255, 255, 255)) >= 4.5
    assert seen["axe"] == ""


async def test_every_state_reads_with_enough_contrast(
    browser: object, served: tuple[MetricsServer, Clock]
) -> None:
    """With each state current, the headline box's text has contrast >= 4.5:1 on its box, the episode line
    >= 4.5:1 on white, and axe-core finds no serious or critical violation."""
    from selenium.webdriver.common.by import By

    srv, _ = served

    def box() -> tuple[str, str]:
        el = browser.find_element(By.ID, "state")  # type: ignore[attr-defined]
        return el.value_of_css_property("color"), el.value_of_css_property("background-color")

    for state in ("calm", "elevated", "fragile", "cascade", "recovery"):
        srv.metrics.state.snapshot = make_snapshot(END, state, episode_id="2021-05-19T13")
        seen = await asyncio.to_thread(_look, browser, f"http://127.0.0.1:{srv.port}/", f"state_{state}")
        text, background = await asyncio.to_thread(box)
        assert seen["state"] == state.upper()
        assert _contrast(_rgb(text), _rgb(background)) >= 4.5, state
        assert _contrast(_rgb(seen["episode_color"]), (255, 255, 255)) >= 4.5, state
        assert seen["axe"] == "", state
