"""deploy/, grafana/ and docs/operations.md: structure, wiring, and drift of every generated file.

Docker is not available where these run, so the compose file and the Dockerfile are checked
structurally (parsed, cross-referenced with the files they mount and the services they name); the
systemd unit by systemd-analyze (verify and its offline security audit); the Prometheus side by
promtool (scripts/promtool-check.sh) and tests/test_prometheus_e2e.py.
"""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import urlsplit

import pytest

from riskd.commands import reference as configref
from riskd.config import Settings, redacted
from riskd.contract.models import LEVEL_CODES, STATE_CODES
from riskd.testing.promql import (
    base_metric,
    dashboard_queries,
    documented_metrics,
    rule_queries,
    rules,
    vector_selectors,
)

yaml = pytest.importorskip("yaml", reason="PyYAML (a dev dependency) parses the deploy files")

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
PROMETHEUS_SYNTHETIC = {"up": {"job", "instance"}, "ALERTS": {"alertname", "alertstate", "severity"}}
"""Series Prometheus makes itself, which the rules and dashboards may read besides riskd's own."""
TARGET_LABELS = {"job", "instance"}


def _yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def _grafana_build() -> ModuleType:
    spec = importlib.util.spec_from_file_location("riskd_grafana_build", ROOT / "grafana" / "build.py")
    assert spec
    assert spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return _yaml(DEPLOY / "docker-compose.yml")


@pytest.fixture(scope="module")
def build() -> ModuleType:
    pytest.importorskip("grafana_foundation_sdk", reason="grafana-foundation-sdk (dev dependency) is missing")
    return _grafana_build()


# ---- docker compose -------------------------------------------------------------------------------


def test_compose_runs_the_whole_stack(compose: dict[str, Any]) -> None:
    """The compose file parses and has riskd, Redis, Prometheus, Alertmanager and Grafana."""
    assert set(compose["services"]) == {"riskd", "redis", "prometheus", "alertmanager", "grafana"}


def test_compose_references_files_that_exist(compose: dict[str, Any]) -> None:
    """Every bind mount, the build context and its Dockerfile exist, relative to deploy/."""
    riskd = compose["services"]["riskd"]
    context = DEPLOY / riskd["build"]["context"]
    assert (context / riskd["build"]["dockerfile"]).is_file()
    mounts = 0
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith("."):
                mounts += 1
                assert (DEPLOY / source).exists(), f"{name}: {source} does not exist"
    assert mounts == 5


def test_compose_named_volumes_and_dependencies_are_declared(compose: dict[str, Any]) -> None:
    """Named volumes are declared at the top level; depends_on names real services."""
    declared = set(compose["volumes"])
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if not source.startswith((".", "/")):
                assert source in declared, f"{name}: volume {source} is not declared"
        assert set(service.get("depends_on", [])) <= set(compose["services"]), name


def test_compose_pins_images_and_publishes_on_loopback_only(compose: dict[str, Any]) -> None:
    """Third-party images carry an explicit version tag; every published port binds 127.0.0.1."""
    for name, service in compose["services"].items():
        if "build" not in service:
            image = service["image"]
            assert re.search(r":v?\d+\.\d+", image), f"{name}: {image} is not pinned to a version"
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name}: {port} is published beyond loopback"


def test_compose_redis_persists(compose: dict[str, Any]) -> None:
    """Redis runs with the append-only file on a named volume at /data, and has a healthcheck."""
    redis = compose["services"]["redis"]
    command = redis["command"]
    assert command[command.index("--appendonly") + 1] == "yes"
    assert any(v.endswith(":/data") and not v.startswith(".") for v in redis["volumes"])
    assert "redis-cli" in redis["healthcheck"]["test"]
    assert compose["services"]["riskd"]["depends_on"]["redis"]["condition"] == "service_healthy"


def test_compose_riskd_settings_are_real_settings(compose: dict[str, Any]) -> None:
    """Every RISKD_ variable the compose file sets is a setting of the Settings model."""
    known = {s.env for sec in configref.sections() for s in sec.settings}
    env = compose["services"]["riskd"]["environment"]
    assert env
    assert set(env) <= known
    url = urlsplit(env["RISKD_REDIS__URL"])
    assert url.hostname in compose["services"]
    assert url.port == 6379


def test_compose_wiring_matches_prometheus_grafana_and_alertmanager(compose: dict[str, Any]) -> None:
    """Prometheus scrapes the riskd service on its metrics port, alerts the Alertmanager service, and
    Grafana's provisioned datasource and dashboard path match the services and mounts."""
    services = compose["services"]
    prom = _yaml(DEPLOY / "prometheus" / "prometheus.yml")
    jobs = {job["job_name"]: job for job in prom["scrape_configs"]}
    (target,) = jobs["riskd"]["static_configs"][0]["targets"]
    host, port = target.split(":")
    assert host == "riskd"
    assert port == services["riskd"]["environment"]["RISKD_METRICS__PORT"]
    assert services["riskd"]["environment"]["RISKD_METRICS__HOST"] == "0.0.0.0"
    (am,) = prom["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"]
    assert am.split(":")[0] in services

    datasources = _yaml(ROOT / "grafana/provisioning/datasources/riskd.yml")["datasources"]
    prom_ds = next(d for d in datasources if d["type"] == "prometheus")
    assert urlsplit(prom_ds["url"]).hostname in services
    provider = _yaml(ROOT / "grafana/provisioning/dashboards/riskd.yml")["providers"][0]
    grafana_mounts = dict(v.split(":")[:2][::-1] for v in services["grafana"]["volumes"])
    assert grafana_mounts[provider["options"]["path"]] == "../grafana/dashboards"
    assert grafana_mounts["/etc/grafana/provisioning"] == "../grafana/provisioning"


# ---- Dockerfile and systemd -----------------------------------------------------------------------


def _final_stage(dockerfile: str) -> list[str]:
    lines = [ln.strip() for ln in dockerfile.replace("\\\n", " ").splitlines() if ln.strip()]
    lines = [ln for ln in lines if not ln.startswith("#")]
    start = max(i for i, ln in enumerate(lines) if ln.upper().startswith("FROM "))
    return lines[start:]


def test_dockerfile_is_slim_non_root_and_healthchecked() -> None:
    """The final stage is a slim image, runs as a non-root user and probes /healthz."""
    text = (DEPLOY / "Dockerfile").read_text(encoding="utf-8")
    stage = _final_stage(text)
    assert "slim" in stage[0]
    users = [ln.split(None, 1)[1] for ln in stage if ln.upper().startswith("USER ")]
    assert users, "no USER in the final stage"
    uid_default = re.search(r"ARG APP_UID=(\d+)", text)
    user = users[-1].split(":")[0].replace("${APP_UID}", uid_default.group(1) if uid_default else "")
    assert user not in ("", "root", "0")
    (health,) = [ln for ln in stage if ln.upper().startswith("HEALTHCHECK ")]
    assert "/healthz" in health
    assert "RISKD_METRICS__PORT" in health
    assert "EXPOSE 9464" in stage


def test_dockerfile_copies_files_that_exist_and_sets_real_settings() -> None:
    """Every COPY source exists at the repository root (the build context) and is let through by
    deploy/Dockerfile.dockerignore; every RISKD_ variable it sets is a setting."""
    text = (DEPLOY / "Dockerfile").read_text(encoding="utf-8")
    allowed = (DEPLOY / "Dockerfile.dockerignore").read_text(encoding="utf-8").splitlines()
    for line in text.splitlines():
        if line.startswith("COPY ") and "--from" not in line:
            for source in line.split()[1:-1]:
                assert (ROOT / source).exists(), source
                assert f"!{source.rstrip('/')}/" in allowed or f"!{source}" in allowed, source
    known = {s.env for sec in configref.sections() for s in sec.settings}
    assert set(re.findall(r"(RISKD_[A-Z0-9_]+)=", text)) <= known


def _unit(path: Path) -> dict[str, list[str]]:
    values: dict[str, list[str]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, value = line.split("=", 1)
            values.setdefault(key.strip(), []).append(value.strip())
    return values


def test_systemd_unit_is_hardened() -> None:
    """The unit runs as a dedicated user with a read-only system, private tmp, no new privileges,
    write access to its data dir only, and restarts on failure."""
    unit = _unit(DEPLOY / "systemd" / "riskd.service")
    expected = {
        "User": "riskd",
        "ProtectSystem": "strict",
        "PrivateTmp": "yes",
        "NoNewPrivileges": "yes",
        "ProtectHome": "yes",
        "Restart": "on-failure",
        "CapabilityBoundingSet": "",
    }
    for key, value in expected.items():
        assert unit.get(key) == [value], key
    data_dir = unit["ReadWritePaths"][0]
    assert f"RISKD_DATA_DIR={data_dir}" in unit["Environment"]
    assert data_dir == "/var/lib/" + unit["StateDirectory"][0]
    assert unit["ExecStart"][0].endswith("riskd run")


def _systemd_duration_s(value: str) -> float:
    units = {"ms": 0.001, "s": 1, "sec": 1, "min": 60, "m": 60, "h": 3600}
    number, unit = re.fullmatch(r"([0-9.]+)\s*([a-z]*)", value).groups()  # type: ignore[union-attr]
    return float(number) * units[unit or "s"]


def test_systemd_stop_timeout_outlasts_the_shutdown_deadline() -> None:
    """systemd's SIGKILL comes after riskd's own deadline, so a hung stop leaves its stacks in the journal."""
    unit = _unit(DEPLOY / "systemd" / "riskd.service")
    assert _systemd_duration_s(unit["TimeoutStopSec"][0]) > Settings().daemon.shutdown_deadline_s


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="systemd-analyze is not installed")
def test_systemd_accepts_the_unit_and_rates_its_exposure_ok(tmp_path: Path) -> None:
    """systemd itself parses the unit without a warning, and its offline security audit scores it at
    most 2.0 ("OK"; 10 is an unhardened service). ExecStart points at this checkout's riskd so that
    verify can check the binary exists."""
    riskd = Path(sys.executable).with_name("riskd")
    assert riskd.exists(), f"{riskd} missing: install the package (make setup)"
    text = (DEPLOY / "systemd" / "riskd.service").read_text()
    unit = tmp_path / "riskd.service"
    unit.write_text(text.replace("/opt/riskd/venv/bin/riskd", str(riskd)))
    verify = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True)
    assert verify.returncode == 0, verify.stderr
    assert verify.stderr.strip() == "", verify.stderr
    audit = subprocess.run(
        ["systemd-analyze", "security", "--offline=true", "--no-pager", str(unit)],
        capture_output=True,
        text=True,
    )
    assert audit.returncode == 0, audit.stderr
    score = re.search(r"Overall exposure level for riskd\.service: ([0-9.]+)", audit.stdout)
    assert score, audit.stdout[-2000:]
    assert float(score.group(1)) <= 2.0, audit.stdout


# ---- generated files: env example, configuration reference, dashboards ------------------------------


def test_generated_config_files_are_up_to_date() -> None:
    """deploy/riskd.env.example, docs/operations.md and docs/redis.md match the Settings and Snapshot models
    (else run: python -m riskd.commands.reference --write)."""
    assert configref.stale_files(ROOT) == []


def test_env_example_defaults_load_as_the_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    """Uncommenting every line of the env example gives exactly the default settings."""
    import os

    for name in [n for n in os.environ if n.startswith("RISKD_")]:
        monkeypatch.delenv(name)
    lines = (DEPLOY / "riskd.env.example").read_text(encoding="utf-8").splitlines()
    assigned = 0
    for line in lines:
        match = re.fullmatch(r"# (RISKD_[A-Z0-9_]+)=(.*)", line)
        if match and match.group(2) and match.group(1) != "RISKD_CONFIG_FILE":
            monkeypatch.setenv(match.group(1), match.group(2).removeprefix("'").removesuffix("'"))
            assigned += 1
    assert assigned > 30
    assert redacted(Settings()) == redacted(Settings.model_construct())


def test_env_example_names_every_setting() -> None:
    """Each leaf setting appears once in the env example."""
    text = (DEPLOY / "riskd.env.example").read_text(encoding="utf-8")
    for sec in configref.sections():
        for s in sec.settings:
            assert text.count(f"# {s.env}=") == 1, s.env


def test_config_reference_documents_every_setting() -> None:
    """The reference in docs/operations.md has one table row per setting, with its variable."""
    doc = (ROOT / "docs" / "operations.md").read_text(encoding="utf-8")
    for sec in configref.sections():
        for s in sec.settings:
            assert f"| `{s.key}` | `{s.env}` |" in doc


def test_dashboards_match_their_generator(build: ModuleType) -> None:
    """The committed dashboard JSON is exactly what grafana/build.py writes (else run it)."""
    files = build.expected()
    assert files, "no dashboards generated"
    committed = sorted((ROOT / "grafana" / "dashboards").glob("*.json"))
    assert committed == sorted(files)
    for path, text in files.items():
        assert path.read_text(encoding="utf-8") == text, f"{path.name} drifted: run python grafana/build.py"


def test_dashboards_use_the_provisioned_datasource_uid(build: ModuleType) -> None:
    """No import placeholders; every query runs on $datasource, whose default is the provisioned datasource
    by its fixed uid; every riskd selector is scoped to $instance (all replicas by default)."""
    import json

    provisioned = _yaml(ROOT / "grafana/provisioning/datasources/riskd.yml")["datasources"]
    uid = next(d["uid"] for d in provisioned if d["type"] == "prometheus")
    assert uid == build.DATASOURCE_UID
    for path in sorted((ROOT / "grafana" / "dashboards").glob("*.json")):
        text = path.read_text(encoding="utf-8")
        assert "${DS_" not in text, path.name
        assert "__inputs" not in text, path.name
        uids = set(re.findall(r'"uid": "([^"]+)"', text))
        assert uids == {"${datasource}", path.stem}, f"{path.name}: {uids}"
        variables = {v["name"]: v for v in json.loads(text)["templating"]["list"]}
        assert variables["datasource"]["type"] == "datasource"
        assert variables["datasource"]["current"]["value"] == uid
        assert variables["instance"]["includeAll"] is True
    for query in dashboard_queries(ROOT):
        for sel in vector_selectors(query.expr):
            if (
                sel.name.startswith("riskd_") or sel.name == "up"
            ):  # not ALERTS: some riskd alerts have no instance
                assert ("instance", "=~", "$instance") in sel.matchers, f"{query.source}: {sel.promql()}"


def test_dashboards_have_the_requested_panels() -> None:
    """Overview, data health and alerts dashboards exist with unique uids and panel ids."""
    import json

    titles = {}
    for path in sorted((ROOT / "grafana" / "dashboards").glob("*.json")):
        dash = json.loads(path.read_text(encoding="utf-8"))
        ids = [p["id"] for p in dash["panels"]]
        assert len(ids) == len(set(ids)), path.name
        titles[dash["uid"]] = {p["title"] for p in dash["panels"]}
    assert {
        "Regime timeline",
        "CFI",
        "CFI percentile",
        "Cascade level",
        "Funding z-score",
        "Funding dispersion",
        "Cross-venue funding gap",
        "BTC velocity",
        "Risk multiplier",
    } <= titles["riskd-overview"]
    assert {"Data age per venue and dataset", "Exchange requests per hour", "Cycle duration"} <= titles[
        "riskd-data-health"
    ]
    assert {"Alerts sent per hour", "Alerts suppressed per hour", "Outbox size"} <= titles["riskd-alerts"]


def test_dashboard_state_codes_match_the_models(build: ModuleType) -> None:
    """The regime and cascade-level mappings use the codes riskd exports."""
    assert {name: code for code, (name, _) in build.REGIME_STATES.items()} == STATE_CODES
    assert {name: code for code, (name, _) in build.CASCADE_LEVELS.items()} == LEVEL_CODES


# ---- PromQL against docs/metrics.md ------------------------------------------------------------------


def _all_queries() -> list[Any]:
    return dashboard_queries(ROOT) + rule_queries(ROOT)


def test_every_queried_metric_is_documented() -> None:
    """Every metric the dashboards and rules read is in docs/metrics.md (or is Prometheus's own)."""
    docs = documented_metrics(ROOT / "docs" / "metrics.md")
    assert len(docs) >= 20
    queries = _all_queries()
    assert len(queries) >= 40
    for query in queries:
        for sel in vector_selectors(query.expr):
            name = base_metric(sel.name, docs)
            assert name in docs or name in PROMETHEUS_SYNTHETIC, f"{query.source}: unknown metric {sel.name}"


def test_every_label_matcher_uses_documented_labels_and_values() -> None:
    """Label matchers name documented labels, and for enumerated labels, documented values."""
    docs = documented_metrics(ROOT / "docs" / "metrics.md")
    for query in _all_queries():
        for sel in vector_selectors(query.expr):
            name = base_metric(sel.name, docs)
            labels = docs[name].labels if name in docs else dict.fromkeys(PROMETHEUS_SYNTHETIC[name])
            for label, op, value in sel.matchers:
                assert label in labels or label in TARGET_LABELS, f"{query.source}: {sel.name} has no {label}"
                allowed = labels.get(label)
                if allowed and op in ("=", "!="):
                    assert value in allowed, f"{query.source}: {label}={value!r} not in {sorted(allowed)}"


def test_selector_parser_reads_aggregations_and_modifiers() -> None:
    """The PromQL lexer skips functions, aggregation modifiers and keywords."""
    expr = 'sum by (le) (rate(a_bucket{x="1"}[6h])) / ignoring(le) group_left b and on() vector(1) > bool 2'
    assert [(s.name, s.matchers, s.range) for s in vector_selectors(expr)] == [
        ("a_bucket", (("x", "=", "1"),), "6h"),
        ("b", (), None),
    ]


# ---- alert rules ------------------------------------------------------------------------------------


def _slug(heading: str) -> str:
    return re.sub(r"[^a-z0-9 _-]", "", heading.strip().lower()).replace(" ", "-")


def test_alerts_have_severity_summary_and_a_runbook_that_exists() -> None:
    """Each alert has a known severity, a summary, and an absolute runbook_url: riskd's external URL (the
    Prometheus external label riskd_url, else riskd's default base URL) + /runbooks/<the alert>, a page
    riskd serves; the same runbook is a section of docs/operations.md."""
    from riskd.config import MetricsSettings
    from riskd.http import runbooks

    doc = (ROOT / "docs" / "operations.md").read_text(encoding="utf-8")
    anchors = {_slug(h) for h in re.findall(r"^#+ (.+)$", doc, flags=re.MULTILINE)}
    alerts = [r for r in rules(ROOT) if "alert" in r]
    names = {a["alert"] for a in alerts}
    assert {
        "RiskdDown",
        "RiskdAbsent",
        "RiskdSnapshotStale",
        "RiskdSourceDataStale",
        "RiskdCyclesFailing",
        "RiskdRegimeFragile",
        "RiskdCascadeInProgress",
        "Watchdog",
    } <= names
    base = MetricsSettings().base_url()
    for alert in alerts:
        name = alert["alert"]
        assert alert["labels"]["severity"] in {"critical", "warning", "info", "none"}, name
        assert alert["annotations"]["summary"], name
        url = alert["annotations"]["runbook_url"]
        assert url == f'{{{{ or $externalLabels.riskd_url "{base}" }}}}/runbooks/{name}', name
        assert runbooks.page_html(name) is not None, name
        assert _slug(name) in anchors, name


def test_every_alert_has_a_firing_and_a_quiet_unit_test() -> None:
    """The promtool tests expect each alert to fire at some time and to be quiet at another."""
    fired: set[str] = set()
    quiet: set[str] = set()
    for path in sorted((DEPLOY / "prometheus" / "tests").glob("*.yml")):
        for case in _yaml(path)["tests"]:
            for check in case.get("alert_rule_test", []):
                (fired if check.get("exp_alerts") else quiet).add(check["alertname"])
    alerts = {r["alert"] for r in rules(ROOT) if "alert" in r}
    assert alerts <= fired, f"never tested firing: {sorted(alerts - fired)}"
    assert alerts - {"Watchdog"} <= quiet, f"never tested quiet: {sorted(alerts - quiet - {'Watchdog'})}"


@pytest.mark.skipif(
    shutil.which("promtool") is None, reason="promtool not installed (scripts/promtool-check.sh)"
)
def test_promtool_checks_pass() -> None:
    """promtool check config / check rules / test rules (and amtool check-config) all pass."""
    done = subprocess.run(
        ["bash", str(ROOT / "scripts" / "promtool-check.sh")], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr
