"""An engine under a new configuration, with all it holds: the evidence, the rules' state,
the open step, the model's features.

The state of an engine does not depend on its configuration (the snapshot's types are the same
whatever the thresholds), so switching is a snapshot of the running engine loaded into a fresh
one built with the new configuration. A snapshot's header names the configuration it was taken
under, so that a takeover never loads one into an engine configured otherwise; here that is the
point, and the header is rewritten for the new engine.
"""

from __future__ import annotations

from collections.abc import Callable

import msgspec

from models.scorer import Scorer
from streams.config import Config
from streams.engine import snapshot
from streams.engine.core import Engine

_header = msgspec.json.Decoder(tuple[str, msgspec.Raw])
_encoder = msgspec.json.Encoder()


def local_engine(config: Config, scorer: Scorer | None) -> Engine:
    return Engine(config, scorer)


def reconfigured(
    engine: Engine,
    config: Config,
    build: Callable[[Config, Scorer | None], Engine] = local_engine,
) -> Engine:
    """A new engine running ``config`` (``build`` makes it, as the driver makes its engines)
    with ``engine``'s state and model; ``engine``'s outbox must have been handed over (the
    alerts it raised belong to the old configuration)."""
    scorer: Scorer | None = engine.patterns.scorer if engine.offload.patterns else None
    held = engine._reports
    data = snapshot.take(engine, len(held))
    _, body = _header.decode(data)
    fresh = build(config, scorer)
    snapshot.load(fresh, _encoder.encode((snapshot.format_version(fresh), body)))
    fresh._reports = held
    if engine.offload.patterns is not None:
        fresh.patterns.track = engine.patterns.track
        if engine.patterns.on_scored is not None:
            fresh.patterns.observe(engine.patterns.on_scored)
    return fresh
