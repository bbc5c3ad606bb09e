"""Model artifacts as SageMaker moves them: an ``xgboost-model`` file, alone or inside ``model.tar.gz``.

The training job writes the file into its model directory and SageMaker packs that directory into
``model.tar.gz``; the comparison job gets either the archive or the bare file, and reads both.
"""

from __future__ import annotations

import hashlib
import tarfile
from pathlib import Path

import numpy as np
import xgboost as xgb
from numpy.typing import NDArray

MODEL_FILENAME = "xgboost-model"
MODEL_ARCHIVE = "model.tar.gz"
MODEL_FORMAT = "ubj"


def save_booster(booster: xgb.Booster, model_dir: str | Path) -> Path:
    """Write ``model_dir/xgboost-model`` in XGBoost's UBJSON format.

    The bytes are written explicitly because the file name has no extension for XGBoost to pick a format from.
    """
    path = Path(model_dir) / MODEL_FILENAME
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(bytes(booster.save_raw(raw_format=MODEL_FORMAT)))
    return path


def _extract_archive(archive: Path, work_dir: Path) -> Path:
    """Unpack ``model.tar.gz`` safely (no absolute paths, links or device files) and return the model file."""
    target = work_dir / archive.parent.name
    target.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive, "r:gz") as tar:
        tar.extractall(target, filter="data")
    candidates = sorted(target.rglob(MODEL_FILENAME))
    if not candidates:
        raise FileNotFoundError(f"{archive} does not contain a {MODEL_FILENAME} file")
    return candidates[0]


def model_source(location: str | Path) -> Path:
    """The file a channel delivered the model in: the file itself, ``<dir>/xgboost-model``, or the one
    ``<dir>/*.tar.gz`` (``model.tar.gz`` as a training job wrote it)."""
    location = Path(location)
    if location.is_file():
        return location
    if not location.is_dir():
        raise FileNotFoundError(f"no model at {location}")
    direct = location / MODEL_FILENAME
    if direct.is_file():
        return direct
    archives = sorted(location.glob("*.tar.gz"))
    if len(archives) == 1:
        return archives[0]
    found = ", ".join(sorted(p.name for p in location.iterdir())) or "nothing"
    raise FileNotFoundError(f"expected {MODEL_FILENAME} or one {MODEL_ARCHIVE} in {location}, found {found}")


def find_model_file(location: str | Path, work_dir: str | Path) -> Path:
    """The model file in a channel: the file itself, ``<dir>/xgboost-model``, or one unpacked from
    ``<dir>/model.tar.gz`` (or another single ``*.tar.gz``) into ``work_dir``."""
    source = model_source(location)
    return _extract_archive(source, Path(work_dir)) if source.name.endswith(".tar.gz") else source


def sha256_of(path: str | Path) -> str:
    """SHA-256 of a file's bytes, hex: what the comparison evaluated, which deployment must serve unchanged."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_booster(location: str | Path, work_dir: str | Path) -> xgb.Booster:
    """Load the model found by :func:`find_model_file` (JSON or UBJSON, detected from the bytes)."""
    booster = xgb.Booster()
    booster.load_model(bytearray(find_model_file(location, work_dir).read_bytes()))
    return booster


def predict_scores(booster: xgb.Booster, features: NDArray[np.float64]) -> NDArray[np.float64]:
    """Fraud probabilities for each row (the output of ``binary:logistic``)."""
    expected = booster.num_features()
    if features.shape[1] != expected:
        raise ValueError(f"the model expects {expected} features, the data has {features.shape[1]}")
    return np.asarray(booster.predict(xgb.DMatrix(features)), dtype=np.float64)
