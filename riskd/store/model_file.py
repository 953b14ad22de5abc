"""The crash-probability model's file: where it lives, how it is written, and reading it back.

The daemon and ``riskd replay`` load it here at start; ``riskd calibrate`` writes it. The file is JSON
(``riskd.core.crashprob.CrashModel.to_dict``): kind and schema version, features, coefficients with their
standard errors, the standardisation, horizon and threshold, the span of labelled hours it was fitted on,
the fit time, and the in-sample row and crash counts. It is written atomically (temporary file, then
rename), so a daemon never reads half a model.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from pathlib import Path

from riskd.config import Settings
from riskd.core.crashprob import CrashModel
from riskd.core.features import stage1_features
from riskd.core.output import STATE_COLUMNS, feature_columns
from riskd.core.params import FragilityParams
from riskd.errors import ConfigError

log = logging.getLogger("riskd.calibrate")


def crash_model_path(settings: Settings) -> Path:
    """Where the model file lives: ``model.crash_prob_path``, else ``<data_dir>/models/crash_prob_24h.json``."""
    return settings.model.crash_prob_path or settings.data_dir / "models" / "crash_prob_24h.json"


def model_columns(p: FragilityParams) -> set[str]:
    """Numeric columns of the core's output a model may use."""
    return set(feature_columns(list(stage1_features(p)))) | set(STATE_COLUMNS)


def read_crash_model(path: Path, p: FragilityParams) -> CrashModel:
    """The model in ``path``; ConfigError (one line naming the file and what is wrong) otherwise."""
    try:
        data = json.loads(path.read_text())
        model = CrashModel.from_dict(data)
    except (OSError, ValueError, TypeError, AttributeError) as err:
        raise ConfigError(f"invalid crash model file {path} (model.crash_prob_path): {err}") from None
    unknown = [f for f in model.features if f not in model_columns(p)]
    if unknown:
        raise ConfigError(
            f"invalid crash model file {path} (model.crash_prob_path): unknown feature(s) {unknown}"
        )
    return model


def load_crash_model(settings: Settings) -> CrashModel | None:
    """The configured crash model, or None (logged once, here) when there is no file: the daemon then
    publishes ``crash_prob_24h`` as null. A file that is there but unreadable is a ConfigError."""
    path = crash_model_path(settings)
    if not path.is_file():
        log.warning("no crash model at %s: crash_prob_24h is published as null (run `riskd calibrate`)", path)
        return None
    model = read_crash_model(path, settings.fragility)
    log.info(
        "crash model %s: %s, fitted %s on %d hours (%d crashes)",
        path,
        ",".join(model.features),
        model.fitted_at,
        model.n_obs,
        model.n_crashes,
    )
    return model


def write_crash_model(model: CrashModel, path: Path) -> None:
    """Write the model file atomically (the daemon may be reading the old one)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        json.dump(model.to_dict(), f, indent=2)
        f.write("\n")
    Path(tmp).replace(path)
