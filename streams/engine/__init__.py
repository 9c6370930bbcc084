"""The pure detection engine (no Kafka, no Faust, no wall clock)."""

from streams.engine.core import Engine, EngineStats
from streams.engine.outbox import Rejection

__all__ = ["Engine", "EngineStats", "Rejection"]
