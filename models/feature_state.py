"""What a snapshot keeps of the model's feature state (``FeatureTracker.state``).

Not compiled, unlike ``features.py``: mypyc keeps only the outer class of a compiled module's
annotations, and msgspec reads them to decode.
"""

from __future__ import annotations

import msgspec

OutcomeRows = tuple[list[int], list[tuple[str, int]], int]
"""An ``OutcomeHistory``: confirmations' times, the sales counted with theirs, the newest."""


class FeatureState(msgspec.Struct, array_like=True, frozen=True):
    """A ``FeatureTracker``'s state as plain rows, for a snapshot: per merchant ``(id, amounts'
    n and log mean, hours, sales, attempts, refund ratio, decline ratio)``, per terminal ``(id,
    n, log mean, attempts)``, per card ``(token, sales, declines, last sale, last seen, n, log
    mean)``; merchants and terminals then their sales per day, all three their outcomes, and cards
    the variance of their log amounts."""

    merchants: list[
        tuple[
            str,
            int,
            float,
            list[int],
            int,
            int,
            float,
            float,
            list[tuple[int, int]],
            OutcomeRows | None,
        ]
    ]
    terminals: list[tuple[str, int, float, list[int], list[tuple[int, int]], OutcomeRows | None]]
    cards: list[
        tuple[
            str,
            list[tuple[int, str]],
            list[int],
            int | None,
            int,
            int,
            float,
            OutcomeRows | None,
            float,
        ]
    ]
