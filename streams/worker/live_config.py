"""The worker's side of live configuration: the versions it knows, handed to every partition it
owns (and every one it builds later), and what the API and the dashboard show of them."""

from __future__ import annotations

import logging
import queue
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from streams.config_log import LiveVersion

if TYPE_CHECKING:
    from streams.worker.worker import StreamWorker

log = logging.getLogger("posguard.worker")


class LiveConfig:
    def __init__(self, versions: Iterable[LiveVersion] = ()) -> None:
        self.versions: dict[int, LiveVersion] = {}
        self.arrived: queue.SimpleQueue[LiveVersion] | None = None
        """Filled by the configuration topic's reader (``ConfigFollower``); None: no topic."""
        self.late: list[tuple[int, int]] = []
        """(partition, version) of versions learnt after the partition passed their time."""
        for version in versions:
            self.versions.setdefault(version.version, version)

    def known(self) -> list[LiveVersion]:
        return [self.versions[v] for v in sorted(self.versions)]

    def learn(self, worker: StreamWorker) -> None:
        """Hand new versions from the topic to every owned partition and card stage."""
        if self.arrived is None:
            return
        while True:
            try:
                version = self.arrived.get_nowait()
            except queue.Empty:
                return
            if version.version in self.versions:
                continue
            self.versions[version.version] = version
            log.warning(
                "configuration version %d by %s (%s) applies from %s",
                version.version,
                version.message.by,
                version.message.comment or "no comment",
                version.message.effective_at,
            )
            for p, part in worker.inputs.items():
                pipe = part.pipeline
                if pipe.learn(version) and version.version in pipe.late_versions:
                    self.late.append((p, version.version))
                    worker.metrics.config_late.inc()
                    log.error(
                        "partition %d had passed %s when configuration version %d arrived: it "
                        "applies there from the next event, not from its effective time (push "
                        "with an effective time ahead of the stream)",
                        p,
                        version.message.effective_at,
                        version.version,
                    )
            for card in worker.cards.owned.values():
                card.stage.learn(version)

    def status(self, worker: StreamWorker) -> dict[str, Any]:
        """``/api/config``: every version (who, when, what, from when) and where each runs."""
        in_force = {p: part.pipeline.version for p, part in worker.inputs.items()}
        return {
            "versions": [
                {
                    "version": v.version,
                    "effective_at": v.message.effective_at,
                    "by": v.message.by,
                    "at": v.message.at,
                    "comment": v.message.comment,
                    "config": v.message.config,
                    "partitions_in_force": sorted(p for p, n in in_force.items() if n == v.version),
                }
                for v in reversed(self.known())
            ],
            "in_force": {str(p): n for p, n in sorted(in_force.items())},
            "late": [{"partition": p, "version": n} for p, n in self.late],
            "topic": worker.settings.topics.config,
        }
