"""The model file: arrays and JSON metadata, verified on load, never unpickled."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

from models.forest import ModelFileError, load_model, save_model, seal
from models.scorer import Scorer
from tests.model.conftest import Trained


def test_round_trip(trained: Trained, tmp_path: Path) -> None:
    loaded = load_model(trained.path)
    assert loaded.metadata == trained.model.metadata
    for name, array in trained.model.arrays().items():
        assert np.array_equal(getattr(loaded, name), array)
    rows = trained.rows[:200]
    assert np.array_equal(Scorer(loaded).score_batch(rows), Scorer(trained.model).score_batch(rows))
    save_model(loaded, tmp_path / "again.npz")
    assert load_model(tmp_path / "again.npz").version == trained.model.version


def _rewrite(source: Path, target: Path, change: str) -> None:
    with np.load(source, allow_pickle=False) as archive:
        contents = {name: archive[name].copy() for name in archive.files}
    if change == "threshold":
        meta = json.loads(contents["metadata"].tobytes())
        meta["threshold"] = 0.99  # silence the model without retraining
        contents["metadata"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    elif change == "leaf":
        contents["leaf_value"] = contents["leaf_value"].copy()
        contents["leaf_value"][5] += 1.0
    np.savez(target, **contents)


@pytest.mark.parametrize("change", ["threshold", "leaf"])
def test_tampered_file_is_refused(trained: Trained, tmp_path: Path, change: str) -> None:
    target = tmp_path / "tampered.npz"
    _rewrite(trained.path, target, change)
    with pytest.raises(ModelFileError, match="checksum mismatch"):
        load_model(target)


def test_damaged_or_foreign_files_are_refused(trained: Trained, tmp_path: Path) -> None:
    cut = tmp_path / "cut.npz"
    cut.write_bytes(trained.path.read_bytes()[:500])
    with pytest.raises(ModelFileError, match="not a posguard model file"):
        load_model(cut)
    text = tmp_path / "text.npz"
    text.write_text("hello")
    with pytest.raises(ModelFileError, match="not a posguard model file"):
        load_model(text)
    with pytest.raises(ModelFileError, match="no such model file"):
        load_model(tmp_path / "absent.npz")


def test_pickled_content_is_never_loaded(tmp_path: Path) -> None:
    evil = tmp_path / "evil.npz"
    buffer = io.BytesIO()
    np.savez(buffer, metadata=np.array([{"format": "x"}], dtype=object))
    evil.write_bytes(buffer.getvalue())
    with pytest.raises(ModelFileError):
        load_model(evil)
    with zipfile.ZipFile(evil) as archive:
        assert archive.namelist() == ["metadata.npy"]


@pytest.mark.parametrize("value", [float("nan"), float("inf"), 1e39])
def test_a_split_threshold_beyond_float32_is_refused(trained: Trained, value: float) -> None:
    arrays = trained.model.arrays()
    arrays["threshold"] = arrays["threshold"].copy()
    arrays["threshold"][int(np.flatnonzero(arrays["feature"] >= 0)[3])] = value
    with pytest.raises(ModelFileError, match="not a finite float32 value"):
        seal(arrays, dict(trained.model.metadata))
