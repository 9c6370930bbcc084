"""The worker's model: loaded from ``POSGUARD_MODEL`` at start and again whenever the file changes.

A file that fails to load (missing, damaged, tampered) never stops the worker: the previous model
keeps scoring (or none, at start), and the reason is shown in ``/api/model`` and the log.
Training writes model files atomically (rename), so a poll never sees half a file.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from models.forest import ModelFileError, load_model
from models.scorer import Scorer

log = logging.getLogger("posguard.model")


@dataclass
class ModelWatcher:
    path: Path | None
    scorer: Scorer | None = None
    error: str | None = None
    loads: int = 0
    _stamp: tuple[int, int] | None = None

    def _file_stamp(self) -> tuple[int, int] | None:
        if self.path is None:
            return None
        try:
            st = self.path.stat()
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size)

    def poll(self) -> bool:
        """Load the file if it changed since the last look; True when the scorer changed."""
        if self.path is None:
            return False
        stamp = self._file_stamp()
        if stamp == self._stamp:
            return False
        self._stamp = stamp
        if stamp is None:
            self.error = f"{self.path}: no such model file"
            log.error("model: %s (scoring stays %s)", self.error, self._state())
            return False
        try:
            scorer = Scorer(load_model(self.path))
        except ModelFileError as exc:
            self.error = str(exc)
            log.error("model: %s (scoring stays %s)", exc, self._state())
            return False
        if self.scorer is not None and scorer.version == self.scorer.version:
            return False
        self.scorer, self.error = scorer, None
        self.loads += 1
        log.warning("model %s loaded from %s", scorer.version, self.path)
        return True

    def _state(self) -> str:
        s = self.scorer
        return "off" if s is None else f"on with model {s.version} ({s.model.kind})"

    def status(self) -> dict[str, Any]:
        s = self.scorer
        body: dict[str, Any] = {
            "enabled": s is not None,
            "path": None if self.path is None else str(self.path),
            "error": self.error,
        }
        if s is not None:
            meta = s.model.metadata
            body.update(
                version=s.version,
                kind=s.model.kind,
                frauds_learnt=meta.get("training_frauds"),
                threshold=s.threshold,
                target_alert_rate=meta["target_alert_rate"],
                training_window=meta.get("training_window"),
                training_rows=meta.get("training_rows"),
                features=s.feature_names,
            )
        return body
