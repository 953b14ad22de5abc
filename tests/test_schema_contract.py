"""The shipped JSON Schemas and the compatibility rule: additive fields keep v1, removing or retyping is v2.

Validated with a real JSON Schema validator (``jsonschema``, draft 2020-12, formats checked) against the
files as installed (package data), and with riskd's own reader.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import jsonschema
import pytest
from _contract import T0, make_snapshot
from pydantic import ValidationError
from referencing import Registry, Resource

from riskd.client import interpret
from riskd.contract import schemas as contract
from riskd.contract.codec import read_snapshot
from riskd.contract.models import SCHEMA_VERSION, Alert, RegimeEvent, Snapshot

NOW = T0 + timedelta(minutes=30)


def _registry() -> Registry:
    return Registry().with_resources(
        (s["$id"], Resource.from_contents(s)) for s in contract.shipped_schemas().values()
    )


def _errors(name: str, payload: Any) -> list[str]:
    """Every validation error of ``payload`` against the shipped schema ``name``."""
    schema = contract.shipped_schemas()[name]
    validator = jsonschema.Draft202012Validator(
        schema, registry=_registry(), format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )
    return [e.message for e in validator.iter_errors(payload)]


def _payload(**changes: Any) -> dict[str, Any]:
    return json.loads(make_snapshot(T0, "cascade", **changes).to_json())


def test_every_schema_ships_with_an_id_and_matches_the_models() -> None:
    """Each payload has a schema file in the package, with a URN $id, the 2020-12 dialect, and the content the
    models give now (so docs, schema and code cannot drift)."""
    built = contract.build_schemas()
    assert set(built) == {
        "regime.v1.schema.json",
        "history-entry.v1.schema.json",
        "event.v1.schema.json",
        "alert.v1.schema.json",
        "regime-live.v1.schema.json",
    }
    for name, schema in contract.shipped_schemas().items():
        assert schema["$id"] == contract.schema_id(name)
        assert re.fullmatch(r"urn:riskd:schema:[a-z-]+:v1", schema["$id"])
        assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
        assert schema == built[name], f"{name} drifted: run python -m riskd.commands.reference --write"
        jsonschema.Draft202012Validator.check_schema(schema)


def test_schema_version_is_a_const() -> None:
    """``schema_version`` is const 1: a v2 payload is not a valid v1 snapshot for any reader."""
    prop = contract.shipped_schemas()[contract.REGIME]["properties"]["schema_version"]
    assert prop["const"] == SCHEMA_VERSION == 1
    v2 = _payload() | {"schema_version": 2}
    assert _errors(contract.REGIME, v2)
    reading = interpret(json.dumps(v2), now=NOW)
    assert (reading.status, reading.reason) == ("unknown", "schema_version 2, this client reads 1")


def test_writer_output_is_valid_and_uses_z_timestamps() -> None:
    """What riskd writes validates against the shipped schema, and every timestamp is RFC 3339 with Z."""
    snap = make_snapshot(T0, "cascade", state_since=T0 - timedelta(hours=3))
    text = snap.to_json()
    assert _errors(contract.REGIME, json.loads(text)) == []
    assert "+00:00" not in text
    stamps = re.findall(r'"(\d{4}-\d\d-\d\dT\d\d:\d\d[^"]*)"', text)
    assert len(stamps) == 3
    assert all(s.endswith("Z") for s in stamps), stamps
    assert json.loads(text)["as_of"] == "2021-05-19T00:00:00Z"


def test_v1_payload_with_added_fields_is_valid_for_every_reader() -> None:
    """The compatibility test: fields a newer v1 adds (top level and nested) are ignored by the Python reader
    and accepted by the shipped schema, and the reading is still the current regime."""
    payload = _payload()
    payload["liquidity_score"] = 0.7
    payload["data_quality"]["venue_latency_ms"] = {"binance": 40}
    assert _errors(contract.REGIME, payload) == []
    assert read_snapshot(json.dumps(payload)) == make_snapshot(T0, "cascade")
    reading = interpret(json.dumps(payload), now=NOW)
    assert reading.ok
    assert reading.state == "cascade"
    assert reading.risk_multiplier == 0.2


@pytest.mark.parametrize(
    ("change", "why"),
    [
        (lambda p: p.pop("risk_multiplier"), "removed field"),
        (lambda p: p.update(state_code="3"), "retyped field"),
        (lambda p: p["data_quality"].pop("status"), "removed nested field"),
        (lambda p: p.update(as_of="19/05/2021 00:00"), "retyped timestamp"),
    ],
)
def test_removing_or_retyping_a_field_breaks_v1(change: Any, why: str) -> None:
    """Removing or retyping a field is a v2 change: the schema rejects it and the Python reader says unknown."""
    payload = _payload()
    change(payload)
    assert _errors(contract.REGIME, payload), why
    with pytest.raises(ValidationError):
        read_snapshot(payload)
    assert interpret(json.dumps(payload), now=NOW).status == "unknown"


def test_writers_are_strict() -> None:
    """A writer cannot put a field on the wire that the model does not declare (the v1 layout is the model)."""
    with pytest.raises(ValidationError, match="extra"):
        make_snapshot(T0, "calm", liquidity_score=0.7)
    with pytest.raises(ValidationError, match="extra"):
        Snapshot.model_validate_json(json.dumps(_payload() | {"liquidity_score": 0.7}))


def test_revision_and_crash_probability_are_in_the_contract() -> None:
    """Restatements and the crash probability are part of v1, with their defaults for the first publication."""
    props = contract.shipped_schemas()[contract.REGIME]["properties"]
    assert {"revision", "restated", "crash_prob_24h"} <= set(props)
    first = json.loads(make_snapshot(T0).to_json())
    assert (first["revision"], first["restated"], first["crash_prob_24h"]) == (0, False, None)
    restated = _payload(revision=2, restated=True, crash_prob_24h=0.31)
    assert _errors(contract.REGIME, restated) == []


def test_event_history_entry_and_alert_payloads_validate() -> None:
    """The event ping, the stream entry and an alert, as riskd serialises them, match their shipped schemas;
    an event with an added field is still valid."""
    event = json.loads(RegimeEvent(type="revision", as_of=T0, state="fragile", revision=1).model_dump_json())
    assert event["as_of"] == "2021-05-19T00:00:00Z"
    assert _errors(contract.EVENT, event) == []
    assert _errors(contract.EVENT, event | {"source": "replay"}) == []
    assert _errors(contract.EVENT, event | {"type": "deleted"})
    entry = {"json": make_snapshot(T0).to_json()}
    assert _errors(contract.HISTORY_ENTRY, entry) == []
    assert _errors(contract.HISTORY_ENTRY, {"data": "{}"})
    alert = Alert(kind="cascade_start", severity="critical", as_of=datetime(2021, 5, 19, 13, tzinfo=UTC),
                  title="Cascade started", body="…", figures={"cfi": 2.5}, episode_id="2021-05-19T13")  # fmt: skip
    payload = json.loads(alert.model_dump_json())
    assert payload["as_of"].endswith("Z")
    assert _errors(contract.ALERT, payload) == []
