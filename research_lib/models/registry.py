"""A content-addressed store of fitted models with their config id, data hashes and metrics.

Layout: ``<root>/<name>/<artifact_id>/model.pkl`` and ``record.json``, where
``artifact_id`` is the sha256 of the pickle bytes. Both files are written atomically, the
model first, so a ``record.json`` only ever points at a complete artifact. ``load`` re-hashes
the bytes before unpickling and refuses an altered file.

Models are stored as plain pickle (protocol 5), not ``joblib.dump``: joblib streams numpy
arrays through a buffer that leaves struct padding uninitialised (e.g. the node arrays of
scikit-learn trees), so the same forest dumped twice gives different bytes and no stable hash.
``joblib.load`` still reads these files.

Only load artifacts you wrote: pickles can run code when loaded.
"""

from __future__ import annotations

import hashlib
import json
import pickle
import platform
import re
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import polars as pl
import sklearn

from research_lib.atomic import atomic_write_bytes, atomic_write_text
from research_lib.paths import data_dir

MODEL_FILE = "model.pkl"
RECORD_FILE = "record.json"
_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
_SHA256_PATTERN = re.compile(r"^[0-9a-f]{64}$")


class ArtifactIntegrityError(RuntimeError):
    """A stored model file does not hash to its artifact id: it was altered or truncated."""


@dataclass(frozen=True)
class ModelRecord:
    """What the registry knows about one stored model.

    Examples
    --------
    >>> rec = ModelRecord(name="m", artifact_id="0" * 64, config_id="c", data_hashes={},
    ...     metrics={"r2": 0.1}, params=None, model_class="sklearn.linear_model.Ridge",
    ...     created_at="2024-01-01T00:00:00.000000+00:00", versions={})
    >>> ModelRecord.from_dict(rec.to_dict()) == rec
    True
    """

    name: str
    artifact_id: str
    """sha256 (hex) of ``model.pkl``."""
    config_id: str
    data_hashes: dict[str, str]
    metrics: dict[str, float]
    params: dict[str, Any] | None
    model_class: str
    """``module.QualName`` of the stored object."""
    created_at: str
    """ISO-8601 UTC with microseconds; ``load`` picks the latest by this."""
    versions: dict[str, str] = field(default_factory=dict)
    """Library versions at save time (python, numpy, scikit-learn, joblib, ...)."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, payload: dict[str, Any]) -> ModelRecord:
        return cls(**payload)


class ModelRegistry:
    """Save, list and reload fitted models, keyed by the sha256 of their bytes.

    Parameters
    ----------
    root
        The registry folder; defaults to ``<data>/models`` (see ``research_lib.paths``).

    Examples
    --------
    >>> import tempfile
    >>> from sklearn.linear_model import Ridge
    >>> X, y = np.arange(10.0).reshape(5, 2), np.arange(5.0)
    >>> registry = ModelRegistry(Path(tempfile.mkdtemp()))
    >>> rec = registry.save(Ridge().fit(X, y), name="ridge", config_id="cfg1",
    ...     data_hashes={"features": "abc"}, metrics={"r2": 0.9})
    >>> model, loaded = registry.load("ridge")
    >>> loaded == rec and bool(np.array_equal(model.predict(X), Ridge().fit(X, y).predict(X)))
    True
    >>> registry.list()["artifact_id"].to_list() == [rec.artifact_id]
    True
    """

    def __init__(self, root: Path | None = None) -> None:
        self.root = Path(root) if root is not None else data_dir() / "models"

    def save(
        self,
        model: Any,
        *,
        name: str,
        config_id: str,
        data_hashes: dict[str, str],
        metrics: dict[str, float],
        params: dict[str, Any] | None = None,
    ) -> ModelRecord:
        """Store ``model`` under ``name`` and return its record.

        Saving the same bytes again with the same metadata returns the existing record;
        with different metadata it raises, since one artifact has one record.

        Parameters
        ----------
        model
            Any picklable fitted model.
        name
            The model's name: letters, digits, ``_``, ``.``, ``-`` (a folder name).
        config_id
            The id of the config that produced the model.
        data_hashes
            Dataset name -> content hash of the data it was fitted on.
        metrics
            Metric name -> value.
        params
            Optional JSON-serialisable parameters to keep beside the model.

        Returns
        -------
        ModelRecord
        """
        _check_name(name)
        if not isinstance(config_id, str) or not config_id:
            raise ValueError(f"config_id must be a non-empty string, got {config_id!r}")
        hashes = _str_dict(data_hashes, field_name="data_hashes")
        scores = {str(k): _as_float(k, v) for k, v in _check_dict(metrics, "metrics").items()}
        if params is not None:
            _check_dict(params, "params")
            try:
                json.dumps(params, allow_nan=True)
            except TypeError as exc:
                raise ValueError(f"params must be JSON-serialisable: {exc}") from exc
        payload = _dump(model)
        artifact_id = hashlib.sha256(payload).hexdigest()
        record = ModelRecord(
            name=name,
            artifact_id=artifact_id,
            config_id=config_id,
            data_hashes=hashes,
            metrics=scores,
            params=params,
            model_class=f"{type(model).__module__}.{type(model).__qualname__}",
            created_at=datetime.now(UTC).isoformat(timespec="microseconds"),
            versions=_versions(),
        )
        folder = self.root / name / artifact_id
        existing = _read_record(folder / RECORD_FILE)
        if existing is not None:
            # Compared as JSON so NaN metrics and tuple-vs-list params compare as stored.
            stored = (existing.config_id, existing.data_hashes, existing.metrics, existing.params)
            if _canonical(stored) == _canonical((config_id, hashes, scores, params)):
                return existing
            raise ValueError(
                f"artifact {artifact_id[:12]} of name={name!r} is already stored with other "
                "metadata (config_id, data_hashes, metrics or params); one artifact has one "
                "record: refit, or save under another name"
            )
        atomic_write_bytes(folder / MODEL_FILE, payload)
        atomic_write_text(folder / RECORD_FILE, json.dumps(record.to_dict(), indent=2) + "\n")
        return record

    def load(self, name: str, artifact_id: str | None = None) -> tuple[Any, ModelRecord]:
        """Reload a stored model and its record, checking the sha256 first.

        Parameters
        ----------
        name
            The model's name.
        artifact_id
            The full sha256, a unique prefix of it (at least 8 characters), or None for the
            latest saved under ``name``.

        Returns
        -------
        tuple
            ``(model, record)``.

        Raises
        ------
        FileNotFoundError
            No such name or artifact.
        ArtifactIntegrityError
            ``model.pkl`` no longer hashes to its artifact id.
        """
        _check_name(name)
        records = self._records(name)
        if not records:
            raise FileNotFoundError(f"no model named {name!r} under {self.root}")
        if artifact_id is None:
            record = max(records, key=lambda r: r.created_at)
        else:
            if len(artifact_id) < 8:
                raise ValueError(
                    f"artifact_id must have at least 8 characters, got {artifact_id!r}"
                )
            matches = [r for r in records if r.artifact_id.startswith(artifact_id)]
            if len(matches) != 1:
                raise FileNotFoundError(
                    f"artifact_id={artifact_id!r} matches {len(matches)} artifacts of "
                    f"name={name!r}; pass a longer prefix or see list(name={name!r})"
                )
            record = matches[0]
        path = self.root / name / record.artifact_id / MODEL_FILE
        payload = path.read_bytes()
        actual = hashlib.sha256(payload).hexdigest()
        if actual != record.artifact_id:
            raise ArtifactIntegrityError(
                f"{path} hashes to {actual[:12]}..., not its artifact id "
                f"{record.artifact_id[:12]}...: the file was altered or truncated; "
                "re-save the model rather than loading it"
            )
        return pickle.loads(payload), record

    def _records(self, name: str | None) -> list[ModelRecord]:
        if name is None:
            folders = sorted(p for p in self.root.glob("*/*") if p.is_dir())
        else:
            folders = sorted(p for p in (self.root / name).glob("*") if p.is_dir())
        records = []
        for folder in folders:
            if not _SHA256_PATTERN.match(folder.name):
                continue
            record = _read_record(folder / RECORD_FILE)
            if record is not None:
                records.append(record)
        return records

    # Defined last: inside the class body, the name ``list`` is this method from here on.
    def list(self, name: str | None = None) -> pl.DataFrame:
        """One row per stored model, oldest first within a name.

        Columns: ``name, artifact_id, config_id, model_class, created_at, data_hashes``
        (JSON text) and one ``metric_<key>`` column per metric key seen.
        """
        if name is not None:
            _check_name(name)
        rows = []
        for rec in self._records(name):
            row: dict[str, Any] = {
                "name": rec.name,
                "artifact_id": rec.artifact_id,
                "config_id": rec.config_id,
                "model_class": rec.model_class,
                "created_at": rec.created_at,
                "data_hashes": json.dumps(rec.data_hashes, sort_keys=True),
            }
            row.update({f"metric_{k}": v for k, v in rec.metrics.items()})
            rows.append(row)
        if not rows:
            return pl.DataFrame(schema={c: pl.String for c in _LIST_COLUMNS})
        metric_cols = sorted({k for row in rows for k in row} - set(_LIST_COLUMNS))
        schema = {c: pl.String for c in _LIST_COLUMNS} | {c: pl.Float64 for c in metric_cols}
        return pl.DataFrame(rows, schema=schema).sort("name", "created_at")


_LIST_COLUMNS = ("name", "artifact_id", "config_id", "model_class", "created_at", "data_hashes")


def _dump(model: Any) -> bytes:
    """The model's canonical pickle bytes: those of a dumped-and-reloaded copy.

    A fresh object and its unpickled copy can pickle differently (e.g. numpy scalars point
    at the process-wide dtype singleton before, and at a private dtype copy after, which
    changes pickle's memo references). One round trip reaches the form that reloading
    reproduces, so ``load`` then re-dumping hashes to the same artifact id.
    """
    return pickle.dumps(pickle.loads(pickle.dumps(model, protocol=5)), protocol=5)


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, allow_nan=True)


def _read_record(path: Path) -> ModelRecord | None:
    if not path.is_file():
        return None
    return ModelRecord.from_dict(json.loads(path.read_text(encoding="utf-8")))


def _check_name(name: str) -> None:
    if not isinstance(name, str) or not _NAME_PATTERN.match(name):
        raise ValueError(
            f"name must be 1-128 letters, digits, '_', '.' or '-' (not starting with "
            f"'.', '_' or '-'), got {name!r}"
        )


def _check_dict(value: Any, field_name: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ValueError(f"{field_name} must be a dict, got {type(value).__name__}")
    return value


def _str_dict(value: Any, *, field_name: str) -> dict[str, str]:
    for k, v in _check_dict(value, field_name).items():
        if not isinstance(k, str) or not isinstance(v, str):
            raise ValueError(f"{field_name} must map str to str, got {k!r}: {v!r}")
    return dict(value)


def _as_float(key: Any, value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"metrics[{key!r}] must be a number, got {value!r}") from exc


def _versions() -> dict[str, str]:
    versions = {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scikit-learn": sklearn.__version__,
        "joblib": joblib.__version__,
    }
    try:
        import statsmodels

        versions["statsmodels"] = statsmodels.__version__
    except ImportError:  # pragma: no cover - statsmodels is a dependency
        pass
    return versions
