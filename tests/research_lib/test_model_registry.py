"""ModelRegistry: content-addressed saves, bit-for-bit reloads and tamper detection."""

from __future__ import annotations

import functools
import hashlib
import json
import pickle
import time
from pathlib import Path

import joblib
import numpy as np
import pytest

from research_lib.models.arima import ArimaForecaster
from research_lib.models.registry import (
    MODEL_FILE,
    RECORD_FILE,
    ArtifactIntegrityError,
    ModelRecord,
    ModelRegistry,
)
from research_lib.models.tabular import make_model

RNG = np.random.default_rng(0)
X = RNG.normal(size=(120, 4))
Y_REG = X[:, 0] - X[:, 1] + RNG.normal(scale=0.1, size=120)
Y_CLF = (Y_REG > 0).astype(int)


def sha256_of(model: object) -> str:
    return hashlib.sha256(pickle.dumps(model, protocol=5)).hexdigest()


def save(registry: ModelRegistry, model: object, name: str = "m", **overrides) -> ModelRecord:
    meta = {
        "config_id": "cfg-1",
        "data_hashes": {"features": "f" * 64},
        "metrics": {"r2": 0.5, "ic": 0.1},
        "params": {"alpha": 1.0, "lags": [1, 2]},
    } | overrides
    return registry.save(model, name=name, **meta)


@functools.cache
def fitted_models() -> dict[str, tuple[object, np.ndarray]]:
    arima = ArimaForecaster(max_p=1, max_d=0, max_q=1).fit(None, Y_REG)
    return {
        "ridge": (make_model("ridge").fit(X, Y_REG), X),
        "random_forest": (
            make_model("random_forest", task="regression", n_estimators=5).fit(X, Y_REG),
            X,
        ),
        "hgb_classifier": (
            make_model("hist_gradient_boosting", task="classification", max_iter=10).fit(X, Y_CLF),
            X,
        ),
        "arima": (arima, np.empty((6, 0))),
    }


@pytest.mark.parametrize("kind", ["ridge", "random_forest", "hgb_classifier", "arima"])
def test_reload_is_bit_for_bit(tmp_path: Path, kind: str) -> None:
    model, x = fitted_models()[kind]
    registry = ModelRegistry(tmp_path)
    record = save(registry, model, name=kind)
    stored = tmp_path / kind / record.artifact_id / MODEL_FILE
    assert hashlib.sha256(stored.read_bytes()).hexdigest() == record.artifact_id
    loaded, loaded_record = registry.load(kind)
    assert loaded_record == record
    # Hash before predicting: statsmodels results fill lazy caches when used.
    assert sha256_of(loaded) == record.artifact_id, "re-serialising gives the same bytes"
    assert np.array_equal(loaded.predict(x), model.predict(x))
    if hasattr(model, "predict_proba"):
        assert np.array_equal(loaded.predict_proba(x), model.predict_proba(x))
    assert np.array_equal(joblib.load(stored).predict(x), model.predict(x)), "joblib reads it"


def test_record_json_holds_the_metadata(tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path)
    record = save(registry, make_model("ridge").fit(X, Y_REG))
    payload = json.loads((tmp_path / "m" / record.artifact_id / RECORD_FILE).read_text())
    assert payload["config_id"] == "cfg-1"
    assert payload["data_hashes"] == {"features": "f" * 64}
    assert payload["metrics"] == {"r2": 0.5, "ic": 0.1}
    assert payload["params"] == {"alpha": 1.0, "lags": [1, 2]}
    assert payload["model_class"] == "sklearn.pipeline.Pipeline"
    assert "scikit-learn" in payload["versions"]
    assert not list(tmp_path.rglob(".*tmp*")), "no temporary files left behind"


def test_load_latest_by_default_and_by_id_or_prefix(tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path)
    first = save(registry, make_model("ridge", alpha=1.0).fit(X, Y_REG))
    time.sleep(0.001)  # created_at has microsecond resolution
    second = save(registry, make_model("ridge", alpha=9.0).fit(X, Y_REG))
    assert first.artifact_id != second.artifact_id
    assert registry.load("m")[1] == second
    assert registry.load("m", first.artifact_id)[1] == first
    assert registry.load("m", first.artifact_id[:10])[1] == first
    with pytest.raises(FileNotFoundError, match="matches 0 artifacts"):
        registry.load("m", "0123456789")
    with pytest.raises(FileNotFoundError, match="no model named 'other'"):
        registry.load("other")


def test_altered_file_is_refused(tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path)
    record = save(registry, make_model("ridge").fit(X, Y_REG))
    path = tmp_path / "m" / record.artifact_id / MODEL_FILE
    payload = bytearray(path.read_bytes())
    payload[-20] ^= 0xFF
    path.write_bytes(bytes(payload))
    with pytest.raises(ArtifactIntegrityError, match="altered or truncated"):
        registry.load("m")


def test_resave_same_bytes_is_idempotent_but_conflicting_metadata_raises(tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path)
    model = make_model("ridge").fit(X, Y_REG)
    first = save(registry, model, metrics={"r2": float("nan")})
    again = save(registry, model, metrics={"r2": float("nan")})
    assert (again.artifact_id, again.created_at) == (first.artifact_id, first.created_at)
    with pytest.raises(ValueError, match="already stored with other metadata"):
        save(registry, model, config_id="cfg-2")


def test_list_frames_all_names_with_metric_columns(tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path)
    assert registry.list().height == 0
    save(registry, make_model("ridge").fit(X, Y_REG), name="a", metrics={"r2": 0.2})
    save(registry, make_model("ridge", alpha=3.0).fit(X, Y_REG), name="b", metrics={"auc": 0.7})
    frame = registry.list()
    assert frame["name"].to_list() == ["a", "b"]
    assert {"metric_r2", "metric_auc", "config_id", "data_hashes"} <= set(frame.columns)
    assert frame["metric_r2"].to_list() == [0.2, None]
    assert registry.list("b")["name"].to_list() == ["b"]


def test_default_root_is_under_the_data_dir(workspace) -> None:
    assert ModelRegistry().root == workspace.data.resolve() / "models"


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"name": "../escape"}, "name must be"),
        ({"name": ""}, "name must be"),
        ({"config_id": ""}, "config_id must be a non-empty string"),
        ({"data_hashes": {"features": 1}}, "data_hashes must map str to str"),
        ({"metrics": {"r2": "high"}}, r"metrics\['r2'\] must be a number"),
        ({"params": {"fn": print}}, "params must be JSON-serialisable"),
    ],
)
def test_bad_metadata_is_rejected(tmp_path: Path, overrides: dict, match: str) -> None:
    registry = ModelRegistry(tmp_path)
    name = overrides.pop("name", "m")
    with pytest.raises(ValueError, match=match):
        save(registry, make_model("ridge").fit(X, Y_REG), name=name, **overrides)
    assert not tmp_path.exists() or not any(tmp_path.rglob(MODEL_FILE))
