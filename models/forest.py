"""The model file: a fitted tree ensemble stored as plain arrays plus JSON metadata.

Two kinds share the layout and the compiled walk (``models.walk``): an isolation forest
(``posguard-isolation-forest/1``, for a fleet with no outcomes yet), and a gradient-boosted
classifier trained on outcomes (``posguard-gradient-boosting/1``). The walk sums one value per
tree; for the isolation forest that is the path length, for the boosted model the negated log-odds
of fraud (its first "tree" a single leaf holding the baseline), so that in both a smaller sum is
a stranger sale and the walk that gives up early works unchanged.

The file is a NumPy ``.npz`` archive holding only numeric arrays (read with
``allow_pickle=False``, so loading unpickles nothing) and one ``metadata`` array of UTF-8 JSON
bytes. The metadata's ``checksum`` is a SHA-256 over the canonical metadata (without the checksum)
and every array's dtype, shape and bytes; a file whose checksum does not match is refused.

Arrays (all trees concatenated, child indices global, ``-1`` for "no child"):

- ``left``, ``right`` (int32): children of each node;
- ``feature`` (int32): the feature a node splits on, ``-1`` at leaves;
- ``threshold`` (float64): go left when ``x[feature] <= threshold`` (for the isolation forest
  ``x`` rounded to float32, as scikit-learn's trees compare; the boosted model compares float64);
- ``leaf_value`` (float64): for the isolation forest, at a leaf, its depth plus the average path
  length of the training samples left in it (scikit-learn's ``_decision_path_lengths +
  _average_path_length - 1``); for the boosted model the leaf's value, negated;
- ``roots`` (int64): the index of each tree's root.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt

FORMAT: Final = "posguard-isolation-forest/1"
BOOSTED_FORMAT: Final = "posguard-gradient-boosting/1"
_FORMATS: Final = (FORMAT, BOOSTED_FORMAT)
_ARRAYS: Final = (
    ("left", np.int32),
    ("right", np.int32),
    ("feature", np.int32),
    ("threshold", np.float64),
    ("leaf_value", np.float64),
    ("roots", np.int64),
)
_REQUIRED_METADATA: Final = (
    "format",
    "feature_names",
    "feature_medians",
    "n_trees",
    "threshold",
    "target_alert_rate",
)


class ModelFileError(ValueError):
    """A model file that cannot be used; the message says why and names the file."""


def average_path_length(n: float) -> float:
    """Average path length of an unsuccessful search in a binary search tree of ``n`` items
    (scikit-learn's ``_average_path_length`` for one value)."""
    if n <= 1:
        return 0.0
    if n == 2:
        return 1.0
    return float(2.0 * (np.log(n - 1.0) + np.euler_gamma) - 2.0 * (n - 1.0) / n)


@dataclass(frozen=True)
class ForestModel:
    """A fitted forest and what it was trained on. Arrays are read-only."""

    left: npt.NDArray[np.int32]
    right: npt.NDArray[np.int32]
    feature: npt.NDArray[np.int32]
    threshold: npt.NDArray[np.float64]
    leaf_value: npt.NDArray[np.float64]
    roots: npt.NDArray[np.int64]
    metadata: dict[str, Any]

    @property
    def boosted(self) -> bool:
        """A gradient-boosted classifier (scores are fraud probabilities), not an isolation
        forest (scores are anomaly scores)."""
        return bool(self.metadata["format"] == BOOSTED_FORMAT)

    @property
    def kind(self) -> str:
        return "gradient-boosted trees" if self.boosted else "isolation forest"

    @property
    def feature_names(self) -> list[str]:
        return list(self.metadata["feature_names"])

    @property
    def threshold_score(self) -> float:
        """The calibrated alert threshold on the score (anomaly score or fraud probability)."""
        return float(self.metadata["threshold"])

    @property
    def version(self) -> str:
        return str(self.metadata["model_version"])

    @property
    def normaliser(self) -> float:
        """``n_trees * c(max_samples)``: path lengths are divided by this before ``2 ** -x``
        (isolation forest only)."""
        return len(self.roots) * average_path_length(float(self.metadata["max_samples"]))

    def arrays(self) -> dict[str, npt.NDArray[Any]]:
        return {name: getattr(self, name) for name, _ in _ARRAYS}


def node_arrays(
    lefts: list[Any],
    rights: list[Any],
    feats: list[Any],
    thresholds: list[Any],
    leaf_values: list[Any],
    roots: list[int],
) -> dict[str, npt.NDArray[Any]]:
    """The model file's arrays from each tree's own (child indices already global)."""
    return {
        "left": np.concatenate(lefts),
        "right": np.concatenate(rights),
        "feature": np.concatenate(feats),
        "threshold": np.concatenate(thresholds),
        "leaf_value": np.concatenate(leaf_values),
        "roots": np.asarray(roots, dtype=np.int64),
    }


def _checksum(metadata: dict[str, Any], arrays: dict[str, npt.NDArray[Any]]) -> str:
    digest = hashlib.sha256()
    plain = {k: v for k, v in metadata.items() if k not in ("checksum", "model_version")}
    digest.update(json.dumps(plain, sort_keys=True, separators=(",", ":")).encode())
    for name, dtype in _ARRAYS:
        array = np.ascontiguousarray(arrays[name], dtype=dtype)
        digest.update(f"{name}:{array.dtype.str}:{array.shape}".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def seal(
    arrays: dict[str, npt.NDArray[Any]], metadata: dict[str, Any], boosted: bool = False
) -> ForestModel:
    """Validate arrays and metadata, add checksum and version, and return the model."""
    typed = {name: np.ascontiguousarray(arrays[name], dtype=dtype) for name, dtype in _ARRAYS}
    meta = {**metadata, "format": BOOSTED_FORMAT if boosted else FORMAT}
    checksum = _checksum(meta, typed)
    meta["checksum"] = checksum
    meta["model_version"] = f"{'gb' if boosted else 'if'}-{checksum[:12]}"
    _check_structure(typed, meta, "model")
    for array in typed.values():
        array.flags.writeable = False
    return _build(typed, meta)


def _build(arrays: dict[str, npt.NDArray[Any]], metadata: dict[str, Any]) -> ForestModel:
    return ForestModel(
        left=arrays["left"],
        right=arrays["right"],
        feature=arrays["feature"],
        threshold=arrays["threshold"],
        leaf_value=arrays["leaf_value"],
        roots=arrays["roots"],
        metadata=metadata,
    )


def model_bytes(model: ForestModel) -> bytes:
    """The model file's content."""
    buffer = io.BytesIO()
    meta = np.frombuffer(json.dumps(model.metadata, sort_keys=True).encode(), dtype=np.uint8)
    contents: dict[str, Any] = {"metadata": meta, **model.arrays()}
    np.savez_compressed(buffer, **contents)
    return buffer.getvalue()


def save_model(model: ForestModel, path: Path) -> None:
    """Write ``model`` to ``path`` (atomically: a reader never sees half a file)."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(model_bytes(model))
    tmp.replace(path)


def load_model(path: Path) -> ForestModel:
    """Read and verify a model file; raise ``ModelFileError`` saying what is wrong."""
    return _load(path, str(path))


def model_from_bytes(content: bytes, where: str) -> ForestModel:
    """``load_model`` for a model file's content (``model_bytes``), verified the same way."""
    return _load(io.BytesIO(content), where)


def _load(source: Path | io.BytesIO, path: str) -> ForestModel:
    try:
        with np.load(source, allow_pickle=False) as archive:
            contents = {name: archive[name] for name in archive.files}
    except FileNotFoundError:
        raise ModelFileError(f"{path}: no such model file") from None
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise ModelFileError(f"{path}: not a posguard model file ({exc})") from None
    if "metadata" not in contents:
        raise ModelFileError(f"{path}: not a posguard model file (no metadata)")
    try:
        metadata = json.loads(contents.pop("metadata").tobytes().decode())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelFileError(f"{path}: unreadable metadata ({exc})") from None
    if not isinstance(metadata, dict) or metadata.get("format") not in _FORMATS:
        raise ModelFileError(f"{path}: not a posguard model file ({' or '.join(_FORMATS)})")
    missing = [name for name, _ in _ARRAYS if name not in contents]
    if missing:
        raise ModelFileError(f"{path}: missing arrays {', '.join(missing)}")
    typed: dict[str, npt.NDArray[Any]] = {}
    for name, dtype in _ARRAYS:
        if contents[name].dtype != np.dtype(dtype) or contents[name].ndim != 1:
            raise ModelFileError(f"{path}: array {name} has the wrong type or shape")
        typed[name] = np.ascontiguousarray(contents[name])
    expected = _checksum(metadata, typed)
    if metadata.get("checksum") != expected:
        raise ModelFileError(
            f"{path}: checksum mismatch (the file was changed or damaged after training); "
            "refusing to load it"
        )
    _check_structure(typed, metadata, path)
    for array in typed.values():
        array.flags.writeable = False
    return _build(typed, metadata)


def _check_structure(arrays: dict[str, npt.NDArray[Any]], meta: dict[str, Any], where: str) -> None:
    """Arrays that would make the scorer index out of bounds or loop are refused."""
    required: tuple[str, ...] = _REQUIRED_METADATA
    if meta.get("format") == FORMAT:
        required = (*required, "max_samples")
    absent = [key for key in required if key not in meta]
    if absent:
        raise ModelFileError(f"{where}: metadata lacks {', '.join(absent)}")
    n_nodes = len(arrays["feature"])
    n_features = len(meta["feature_names"])
    if len(meta["feature_medians"]) != n_features:
        raise ModelFileError(f"{where}: one median per feature expected")
    if any(len(arrays[name]) != n_nodes for name in ("left", "right", "threshold", "leaf_value")):
        raise ModelFileError(f"{where}: node arrays differ in length")
    if len(arrays["roots"]) != meta["n_trees"] or meta["n_trees"] < 1:
        raise ModelFileError(f"{where}: tree count does not match the metadata")
    feature, left, right = arrays["feature"], arrays["left"], arrays["right"]
    internal = feature >= 0
    if np.any(feature >= n_features) or np.any(feature < -1):
        raise ModelFileError(f"{where}: a node splits on a feature the model does not have")
    index = np.arange(n_nodes)
    children_ok = (left[internal] > index[internal]) & (right[internal] > index[internal])
    if not bool(np.all(children_ok)) or np.any(left[internal] >= n_nodes):
        raise ModelFileError(f"{where}: a node points outside its tree")
    if np.any(right[internal] >= n_nodes) or np.any(left[~internal] != -1):
        raise ModelFileError(f"{where}: a node points outside its tree")
    splits = arrays["threshold"][internal]
    if meta.get("format") == FORMAT:
        if not bool(np.all(np.abs(splits) < np.finfo(np.float32).max)):  # NaN fails this too
            raise ModelFileError(f"{where}: a split threshold is not a finite float32 value")
    elif not bool(np.all(np.isfinite(splits))):
        raise ModelFileError(f"{where}: a split threshold is not finite")
    if not bool(np.all(np.isfinite(arrays["leaf_value"]))):
        raise ModelFileError(f"{where}: a leaf value is not finite")
    roots = arrays["roots"]
    if np.any(roots < 0) or np.any(roots >= n_nodes):
        raise ModelFileError(f"{where}: a tree root is outside the node arrays")
