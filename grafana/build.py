"""riskd's Grafana dashboards as code, written with Grafana's typed builders (grafana-foundation-sdk).

    python grafana/build.py           rewrite grafana/dashboards/*.json from this file
    python grafana/build.py --check   exit 1 when the committed JSON differs (tests/test_deploy.py)

Every query runs on the ``$datasource`` variable, whose default is the provisioned Prometheus datasource by
its fixed uid (DATASOURCE_UID, the same as in grafana/provisioning/datasources/riskd.yml), so the JSON
carries no ``__inputs`` / ``${DS_…}`` placeholders and another Prometheus can be picked in the UI. Every
riskd selector is scoped to the ``$instance`` variable (all replicas by default). Metric names and labels
come from docs/metrics.md; this file imports nothing from riskd.
"""

from __future__ import annotations

import argparse
import itertools
import json
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from grafana_foundation_sdk.builders import bargauge, stat, statetimeline, table, timeseries
from grafana_foundation_sdk.builders.common import ReduceDataOptions, VizLegendOptions
from grafana_foundation_sdk.builders.dashboard import (
    Dashboard,
    DashboardLink,
    DatasourceVariable,
    QueryVariable,
    Row,
    ThresholdsConfig,
)
from grafana_foundation_sdk.builders.prometheus import Dataquery
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.common import (
    BigValueColorMode,
    BigValueGraphMode,
    BigValueTextMode,
    GraphDrawStyle,
    LegendDisplayMode,
    LegendPlacement,
)
from grafana_foundation_sdk.models.dashboard import (
    DashboardCursorSync,
    DashboardLinkType,
    DataSourceRef,
    DataTransformerConfig,
    DynamicConfigValue,
    Threshold,
    ThresholdsMode,
    ValueMap,
    ValueMappingResult,
    VariableOption,
    VariableRefresh,
)
from grafana_foundation_sdk.models.prometheus import PromQueryFormat

DATASOURCE_UID = "riskd-prometheus"
DATASOURCE = DataSourceRef(type_val="prometheus", uid="${datasource}")
_SELECTOR = re.compile(r"\b(riskd_[a-z0-9_]+|up)\b(\{[^}]*\})?")
OUT_DIR = Path(__file__).resolve().parent / "dashboards"
TAGS = ["riskd"]

# docs/metrics.md: riskd_regime_state and riskd_cascade_level codes, with the colours they show in.
REGIME_STATES = {
    -1: ("unknown", "text"),
    0: ("calm", "green"),
    1: ("elevated", "yellow"),
    2: ("fragile", "orange"),
    3: ("cascade", "red"),
    4: ("recovery", "blue"),
}
CASCADE_LEVELS = {
    0: ("none", "green"),
    1: ("volume_only", "yellow"),
    2: ("loose", "orange"),
    3: ("medium", "red"),
    4: ("strict", "dark-red"),
}
HOUR = 3600

PanelBuilder = stat.Panel | timeseries.Panel | statetimeline.Panel | table.Panel | bargauge.Panel


def query(
    expr: str, legend: str = "", ref: str = "A", *, instant: bool = False, table: bool = False
) -> Dataquery:
    """A PromQL target on the ``$datasource``, scoped to ``$instance`` (a range query unless ``instant``)."""
    q = Dataquery().expr(scoped(expr)).ref_id(ref).datasource(DATASOURCE).legend_format(legend or "__auto")
    if instant:
        q = q.instant()
    return q.format(PromQueryFormat.TABLE) if table else q


def scoped(expr: str) -> str:
    """``expr`` with ``instance=~"$instance"`` added to every riskd (and ``up``) selector."""

    def add(m: re.Match[str]) -> str:
        inner = (m.group(2) or "{}")[1:-1].strip()
        return (
            m.group(1) + "{" + (f'{inner}, instance=~"$instance"' if inner else 'instance=~"$instance"') + "}"
        )

    return _SELECTOR.sub(add, expr)


def variables(builder: Dashboard) -> Dashboard:
    """``$datasource`` (default: the provisioned riskd Prometheus) and ``$instance`` (riskd replicas, all)."""
    ds = (
        DatasourceVariable("datasource")
        .label("Data source")
        .type("prometheus")
        .current(VariableOption(text="riskd-prometheus", value=DATASOURCE_UID, selected=True))
    )
    inst = (
        QueryVariable("instance")
        .label("Instance")
        .datasource(DATASOURCE)
        .query('label_values(riskd_build_info{job="riskd"}, instance)')
        .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
        .multi(True)
        .include_all(True)
        .all_value(".*")
        .current(VariableOption(text="All", value="$__all", selected=True))
    )
    return builder.with_variable(ds).with_variable(inst)


def mapping(codes: dict[int, tuple[str, str]]) -> ValueMap:
    """A value mapping from numeric codes to names and colours."""
    return ValueMap(
        options={
            str(code): ValueMappingResult(text=name, color=color, index=i)
            for i, (code, (name, color)) in enumerate(sorted(codes.items()))
        }
    )


def steps(base: str, *levels: tuple[float, str]) -> ThresholdsConfig:
    """Absolute thresholds: ``base`` colour below the first level, then each (value, colour)."""
    return (
        ThresholdsConfig()
        .mode(ThresholdsMode.ABSOLUTE)
        .steps([Threshold(value=None, color=base), *(Threshold(value=v, color=c) for v, c in levels)])
    )


def _common(panel: PanelBuilder, title: str, description: str, w: int, h: int) -> PanelBuilder:
    return panel.title(title).description(description).datasource(DATASOURCE).span(w).height(h)


def stat_panel(
    title: str, description: str, *targets: Dataquery, unit: str = "short", w: int = 4, h: int = 5
) -> stat.Panel:
    """A big number of the last value."""
    p = (
        stat.Panel()
        .unit(unit)
        .graph_mode(BigValueGraphMode.NONE)
        .color_mode(BigValueColorMode.BACKGROUND)
        .reduce_options(ReduceDataOptions().calcs(["lastNotNull"]).values(False))
    )
    for t in targets:
        p = p.with_target(t)
    return _common(p, title, description, w, h)


def series(
    title: str, description: str, *targets: Dataquery, unit: str = "short", w: int = 12, h: int = 8
) -> timeseries.Panel:
    """A time series panel with a table legend at the bottom."""
    legend = VizLegendOptions().display_mode(LegendDisplayMode.LIST).placement(LegendPlacement.BOTTOM)
    p = timeseries.Panel().unit(unit).legend(legend.show_legend(True)).line_width(1).fill_opacity(10)
    for t in targets:
        p = p.with_target(t)
    return _common(p, title, description, w, h)


def numbered(builder: Dashboard, rows: Sequence[tuple[str, Sequence[PanelBuilder]]]) -> Dashboard:
    """Add rows of panels with stable ids 1, 2, … in reading order."""
    ids = itertools.count(1)
    for title, panels in rows:
        builder = builder.with_row(Row(title).id(next(ids)))
        for panel in panels:
            builder = builder.with_panel(panel.id(next(ids)))
    return builder


def dashboard(uid: str, title: str, description: str, time_from: str) -> Dashboard:
    """A riskd dashboard shell: UTC, linked to the other riskd dashboards."""
    links = DashboardLink("riskd").type(DashboardLinkType.DASHBOARDS).tags(TAGS).as_dropdown(True)
    return variables(
        Dashboard(title)
        .uid(uid)
        .description(description)
        .tags(TAGS)
        .timezone("utc")
        .time(time_from, "now")
        .refresh("1m")
        .tooltip(DashboardCursorSync.CROSSHAIR)
        .link(links.keep_time(True))
    )


def overview() -> Dashboard:
    """The regime, the CFI and its inputs, the cascade level and the risk multiplier."""
    regime_map, level_map = mapping(REGIME_STATES), mapping(CASCADE_LEVELS)
    now = [
        stat_panel(
            "Regime", "Current regime (riskd_regime_state).", query("riskd_regime_state", "regime")
        ).mappings([regime_map]),
        stat_panel(
            "Risk multiplier",
            "Position scale other bots apply, 0..1.",
            query("riskd_risk_multiplier_ratio", "multiplier"),
            unit="percentunit",
        )
        .min(0)
        .max(1)
        .thresholds(steps("red", (0.5, "orange"), (0.8, "green"))),
        stat_panel(
            "CFI percentile",
            "CFI percentile against its own past.",
            query("riskd_cfi_percentile_ratio", "percentile"),
            unit="percentunit",
        )
        .min(0)
        .max(1)
        .thresholds(steps("green", (0.8, "orange"), (0.95, "red"))),
        stat_panel(
            "Cascade level", "BTC cascade level (riskd_cascade_level).", query("riskd_cascade_level", "level")
        ).mappings([level_map]),
        stat_panel(
            "Snapshot age",
            "Time since the hour the published state covers; > 3 h: cycles are stuck.",
            query("time() - riskd_snapshot_as_of_timestamp_seconds", "age"),
            unit="s",
        ).thresholds(steps("green", (2.5 * HOUR, "orange"), (3 * HOUR, "red"))),
        stat_panel(
            "Data",
            "1 when the last snapshot was computed with stale or missing sources.",
            query("riskd_data_degraded", "degraded"),
        ).mappings([mapping({0: ("ok", "green"), 1: ("degraded", "orange")})]),
    ]
    timeline = (
        statetimeline.Panel()
        .with_target(query("riskd_regime_state", "regime", "A"))
        .with_target(query("riskd_cascade_level", "cascade level", "B"))
        .mappings([regime_map])
        .override_by_query("B", [DynamicConfigValue(id_val="mappings", value=[level_map])])
        .merge_values(True)
        .row_height(0.8)
    )
    regime = [
        _common(timeline, "Regime timeline", "Regime state and BTC cascade level, hour by hour.", 18, 6),
        _common(
            bargauge.Panel()
            .with_target(
                query(
                    "avg by (state) (avg_over_time(riskd_regime[$__range]))",
                    "{{state}}",
                    instant=True,
                )
            )
            .unit("percentunit")
            .min(0)
            .max(1)
            .reduce_options(ReduceDataOptions().calcs(["lastNotNull"])),
            "Time in each regime",
            "Share of the selected range spent in each state (the state set riskd_regime).",
            6,
            6,
        ),
    ]
    fragility = [
        series(
            "CFI",
            "Composite Fragility Index of the last computed hour (standardised units).",
            query("riskd_cfi", "CFI"),
        ),
        series(
            "CFI percentile",
            "CFI percentile against its own past, 0..1.",
            query("riskd_cfi_percentile_ratio", "percentile"),
            unit="percentunit",
        )
        .min(0)
        .max(1),
        series(
            "CFI components",
            "Each standardised component of the CFI.",
            query("riskd_cfi_component", "{{component}}"),
        ),
        series(
            "Funding z-score",
            "Aggregate funding z-score over the trailing 168 h.",
            query("riskd_funding_zscore", "funding z"),
        ),
        series(
            "Funding dispersion",
            "Cross-sectional standard deviation of funding, per hour.",
            query("riskd_funding_dispersion_hourly_ratio", "dispersion"),
            unit="percentunit",
        ),
        series(
            "Cross-venue funding gap",
            "Binance funding minus the other venue(s), per hour.",
            query("riskd_funding_gap_hourly_ratio", "{{venue_pair}}"),
            unit="percentunit",
        ),
    ]
    market = [
        series(
            "BTC velocity",
            "BTC return over the last 1 h and 4 h.",
            query("riskd_btc_return_ratio", "{{window}}"),
            unit="percentunit",
            w=8,
        ),
        series(
            "Cascade level",
            "0 none, 1 volume_only, 2 loose, 3 medium, 4 strict.",
            query("riskd_cascade_level", "level"),
            w=8,
        )
        .min(0)
        .max(4)
        .draw_style(GraphDrawStyle.BARS),
        series(
            "Risk multiplier",
            "Position scale other bots apply, 0..1.",
            query("riskd_risk_multiplier_ratio", "multiplier"),
            unit="percentunit",
            w=8,
        )
        .min(0)
        .max(1),
    ]
    return numbered(
        dashboard("riskd-overview", "riskd / Overview", overview.__doc__ or "", "now-7d"),
        [("Now", now), ("Regime", regime), ("Fragility", fragility), ("Market and sizing", market)],
    )


def data_health() -> Dashboard:
    """Is riskd running, and is its data fresh: data age, exchange requests, cycles."""
    service = [
        stat_panel(
            "riskd up", "Prometheus can scrape riskd.", query('up{job="riskd"}', "{{instance}}")
        ).mappings([mapping({0: ("down", "red"), 1: ("up", "green")})]),
        stat_panel(
            "Since last good cycle",
            "Time since the last successful hourly cycle.",
            query('time() - riskd_last_success_timestamp_seconds{stage="cycle"}', "{{instance}}"),
            unit="s",
        ).thresholds(steps("green", (1.5 * HOUR, "orange"), (2.5 * HOUR, "red"))),
        stat_panel(
            "Leaders",
            "Replicas holding the leader lease; exactly 1 is healthy.",
            query("sum(riskd_leader)", "leaders"),
        ).thresholds(steps("red", (1, "green"), (2, "red"))),
        stat_panel(
            "Data",
            "1 when the last snapshot was computed with stale or missing sources.",
            query("riskd_data_degraded", "{{instance}}"),
        ).mappings([mapping({0: ("ok", "green"), 1: ("degraded", "orange")})]),
        stat_panel(
            "Version",
            "riskd build running (riskd_build_info).",
            query("max by (version, python) (riskd_build_info)", "riskd {{version}}, Python {{python}}"),
            w=8,
        )
        .text_mode(BigValueTextMode.NAME)
        .color_mode(BigValueColorMode.NONE),
    ]
    freshness = [
        series(
            "Data age per venue and dataset",
            "Age of the newest data held; hourly datasets should stay under 2 h, funding under 9 h.",
            query("riskd_data_age_seconds", "{{venue}} {{dataset}}"),
            unit="s",
            w=12,
        ).thresholds(steps("transparent", (3 * HOUR, "red"))),
        series(
            "Since last success per stage",
            "Time since each stage of the cycle last succeeded.",
            query("time() - riskd_last_success_timestamp_seconds", "{{stage}}"),
            unit="s",
            w=12,
        ),
    ]
    requests = [
        series(
            "Exchange requests per hour",
            "Request attempts by venue and outcome (retries included).",
            query(
                "sum by (venue, outcome) (increase(riskd_exchange_requests_total[1h]))",
                "{{venue}} {{outcome}}",
            ),
            w=8,
        ),
        series(
            "Failed share of requests",
            "Attempts that were rate-limited or failed, per venue.",
            query(
                'sum by (venue) (increase(riskd_exchange_requests_total{outcome!="ok"}[1h]))'
                " / sum by (venue) (increase(riskd_exchange_requests_total[1h]))",
                "{{venue}}",
            ),
            unit="percentunit",
            w=8,
        )
        .min(0)
        .max(1),
        series(
            "Requests per hour by endpoint",
            "Request attempts by venue and endpoint.",
            query(
                "sum by (venue, endpoint) (increase(riskd_exchange_requests_total[1h]))",
                "{{venue}} {{endpoint}}",
            ),
            w=8,
        ),
    ]
    cycles = [
        series(
            "Cycles per hour by outcome",
            "Hourly cycles: ok, degraded (stale sources) or failed.",
            query("sum by (outcome) (increase(riskd_cycles_total[1h]))", "{{outcome}}"),
        ).draw_style(GraphDrawStyle.BARS),
        series(
            "Cycle duration",
            "Wall time of one hourly cycle over the last 6 hours.",
            query(
                "histogram_quantile(0.5, sum by (le) (rate(riskd_cycle_duration_seconds_bucket[6h])))",
                "p50",
                "A",
            ),
            query(
                "histogram_quantile(0.95, sum by (le) (rate(riskd_cycle_duration_seconds_bucket[6h])))",
                "p95",
                "B",
            ),
            query(
                "sum(rate(riskd_cycle_duration_seconds_sum[6h]))"
                " / sum(rate(riskd_cycle_duration_seconds_count[6h]))",
                "mean",
                "C",
            ),
            unit="s",
        ),
    ]
    return numbered(
        dashboard("riskd-data-health", "riskd / Data health", data_health.__doc__ or "", "now-2d"),
        [
            ("Service", service),
            ("Data freshness", freshness),
            ("Exchange requests", requests),
            ("Cycles", cycles),
        ],
    )


def alerts() -> Dashboard:
    """riskd's own alerts (sent, suppressed, outbox) and the Prometheus alerts firing about it."""
    totals = [
        stat_panel(
            "Sent (24 h)",
            "Alerts delivered in the last 24 hours.",
            query("sum(increase(riskd_alerts_sent_total[24h]))", "sent"),
            w=6,
        ).color_mode(BigValueColorMode.NONE),
        stat_panel(
            "Suppressed (24 h)",
            "Alerts not sent in the last 24 hours (duplicate, cooldown, muted, off).",
            query("sum(increase(riskd_alerts_suppressed_total[24h]))", "suppressed"),
            w=6,
        ).color_mode(BigValueColorMode.NONE),
        stat_panel(
            "Outbox",
            "Alerts waiting to be (re)sent; above 0 for long means the channel is down.",
            query("sum(riskd_alerts_outbox_size)", "outbox"),
            w=6,
        ).thresholds(steps("green", (1, "orange"))),
        stat_panel(
            "Prometheus alerts firing",
            "Firing alerts, the always-on Watchdog included.",
            query('count(ALERTS{alertstate="firing"})', "firing"),
            w=6,
        ).color_mode(BigValueColorMode.NONE),
    ]
    history = [
        series(
            "Alerts sent per hour",
            "Delivered alerts by channel and severity.",
            query(
                "sum by (channel, severity) (increase(riskd_alerts_sent_total[1h]))",
                "{{channel}} {{severity}}",
            ),
        ).draw_style(GraphDrawStyle.BARS),
        series(
            "Alerts suppressed per hour",
            "Alerts not sent, by reason.",
            query("sum by (reason) (increase(riskd_alerts_suppressed_total[1h]))", "{{reason}}"),
        ).draw_style(GraphDrawStyle.BARS),
        series(
            "Outbox size", "Alerts waiting to be (re)sent.", query("riskd_alerts_outbox_size", "{{instance}}")
        ),
        _common(
            table.Panel()
            .with_target(query('ALERTS{alertstate="firing"}', instant=True, table=True))
            .with_transformation(
                DataTransformerConfig(
                    id_val="organize",
                    options={
                        "excludeByName": {"Time": True, "Value": True, "__name__": True, "alertstate": True}
                    },
                )
            ),
            "Firing Prometheus alerts",
            "deploy/prometheus/rules/riskd.rules.yml; runbooks in docs/operations.md.",
            12,
            8,
        ),
    ]
    return numbered(
        dashboard("riskd-alerts", "riskd / Alerts", alerts.__doc__ or "", "now-7d"),
        [("Totals", totals), ("History", history)],
    )


DASHBOARDS: dict[str, Callable[[], Dashboard]] = {
    "riskd-overview": overview,
    "riskd-data-health": data_health,
    "riskd-alerts": alerts,
}


def render(builder: Dashboard) -> str:
    """The dashboard JSON as committed: sorted keys, two-space indent, final newline."""
    return json.dumps(builder.build(), cls=JSONEncoder, sort_keys=True, indent=2, ensure_ascii=False) + "\n"


def expected(out_dir: Path = OUT_DIR) -> dict[Path, str]:
    """What each committed dashboard file must contain."""
    return {out_dir / f"{name}.json": render(make()) for name, make in DASHBOARDS.items()}


def main(argv: Sequence[str] | None = None) -> int:
    """Write the dashboards, or with --check report the ones that drifted."""
    p = argparse.ArgumentParser(prog="grafana/build.py", description=__doc__.splitlines()[0])
    p.add_argument("--check", action="store_true", help="exit 1 when the committed JSON is out of date")
    args = p.parse_args(argv)
    files = expected()
    if args.check:
        stale = [path for path, text in files.items() if not path.is_file() or path.read_text() != text]
        for path in stale:
            print(f"out of date: {path} (run: python grafana/build.py)", file=sys.stderr)
        return 1 if stale else 0
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    for path, text in files.items():
        path.write_text(text, encoding="utf-8")
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
