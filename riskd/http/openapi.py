"""The OpenAPI 3.1 document served at /openapi.json. Payload schemas are referenced, not copied: they are
the shipped JSON Schemas at /schema/…, so the API description cannot drift from the Redis contract."""

from __future__ import annotations

from typing import Any

from riskd import __version__
from riskd.contract import schemas as contract


def _json(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def document(base_url: str) -> dict[str, Any]:
    """The OpenAPI document; ``base_url`` is the server's externally reachable address."""
    regime_ref = {"$ref": f"{base_url}/schema/{contract.REGIME}"}
    verdict = {
        "type": "object",
        "required": ["status", "usable", "reason"],
        "properties": {
            "status": {"enum": ["fresh", "degraded", "stale", "unknown"]},
            "usable": {
                "type": "boolean",
                "description": "fresh or degraded: act on it as the current regime",
            },
            "reason": {"type": "string"},
            "age_seconds": {"type": ["number", "null"], "description": "seconds since the hour ended"},
        },
    }
    probe = {
        "type": "object",
        "properties": {
            "status": {"enum": ["ok", "degraded", "failing"]},
            "live": {"type": "boolean"},
            "ready": {"type": "boolean"},
            "leader": {"type": "boolean"},
            "as_of": {"type": ["string", "null"], "format": "date-time"},
            "data": verdict,
            "venues": {"type": "object", "additionalProperties": {"enum": ["ok", "degraded", "down"]}},
            "reasons": {"type": "array", "items": {"type": "string"}},
        },
    }
    unknown = {
        "type": "object",
        "required": ["state", "trading_state", "freshness"],
        "properties": {
            "state": {"const": "unknown"},
            "trading_state": {
                "enum": ["reducing", "halted"],
                "description": "the fail-safe (trading.fail_safe)",
            },
            "freshness": verdict,
            "last_snapshot": {"anyOf": [regime_ref, {"type": "null"}]},
        },
    }
    time_param = {"schema": {"type": "string", "format": "date-time"}, "in": "query"}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "riskd",
            "version": __version__,
            "description": "The crypto-derivatives fragility regime. Poll /regime at most once per "
            "Cache-Control max-age; a 503 means do not trade on it (state unknown). docs/redis.md.",
        },
        "servers": [{"url": base_url}],
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{}, {"bearer": []}],
        "paths": {
            "/regime": {
                "get": {
                    "summary": "The current regime with its freshness verdict",
                    "responses": {
                        "200": _json(
                            "usable: a v1 snapshot plus `freshness`; headers Age and Cache-Control",
                            {"allOf": [regime_ref, {"type": "object", "properties": {"freshness": verdict}}]},
                        ),
                        "503": _json("no current regime (stale or unknown): do not act on it", unknown),
                        "401": {"description": "bearer token required"},
                    },
                }
            },
            "/history": {
                "get": {
                    "summary": "Hours in [from, to], newest revision of each, oldest first (max 31 days)",
                    "parameters": [
                        {**time_param, "name": "from", "description": "default: to − 24 h"},
                        {**time_param, "name": "to", "description": "default: now"},
                    ],
                    "responses": {
                        "200": _json(
                            "the hours",
                            {
                                "type": "object",
                                "properties": {
                                    "from": {"type": "string", "format": "date-time"},
                                    "to": {"type": "string", "format": "date-time"},
                                    "count": {"type": "integer"},
                                    "snapshots": {"type": "array", "items": regime_ref},
                                },
                            },
                        ),
                        "400": {"description": "a bad or too long range (the body names the parameter)"},
                    },
                }
            },
            "/healthz": {
                "get": {
                    "summary": "Liveness: 200 while cycles complete (status ok or degraded)",
                    "security": [{}],
                    "responses": {"200": _json("live", probe), "503": _json("no cycle for 2.5 h", probe)},
                }
            },
            "/readyz": {
                "get": {
                    "summary": "Readiness: 200 when the last cycle is recent, venues reachable, data fresh",
                    "security": [{}],
                    "responses": {"200": _json("ready", probe), "503": _json("not ready", probe)},
                }
            },
            "/schema/{name}": {
                "get": {
                    "summary": "A shipped JSON Schema: " + ", ".join(contract.NAMES),
                    "parameters": [
                        {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}
                    ],
                    "responses": {"200": {"description": "application/schema+json"}},
                }
            },
            "/runbooks/{alert}": {
                "get": {
                    "summary": "The runbook of one Prometheus alert (HTML)",
                    "security": [{}],
                    "parameters": [
                        {"name": "alert", "in": "path", "required": True, "schema": {"type": "string"}}
                    ],
                    "responses": {
                        "200": {"description": "text/html"},
                        "404": {"description": "no such alert"},
                    },
                }
            },
            "/": {
                "get": {
                    "summary": "The status page (HTML)",
                    "responses": {"200": {"description": "text/html"}},
                }
            },
            "/metrics": {
                "get": {"summary": "Prometheus exposition", "responses": {"200": {"description": "text"}}}
            },
        },
    }
