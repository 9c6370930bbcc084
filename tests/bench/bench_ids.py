"""How often the default check of ids for card numbers refuses an id that is not one.

An id judged to carry a card number makes its event a dead letter, so every false positive is a
good event lost to the dead letters. Measured on random ids of the shapes acquirers use: numeric
ids of 12-20 digits, and alphanumeric ids (a prefix glued to digits, or digits grouped by
dashes). Run: ``python -m tests.bench.bench_ids [--samples N]``.
"""

from __future__ import annotations

import argparse
import functools
import random
import string
import uuid
from collections.abc import Callable

from streams.cardmask import ID_CHECKS, IdCheck, id_has_card_number

Shape = Callable[[random.Random], str]


def _digits(rng: random.Random, n: int) -> str:
    return "".join(rng.choice(string.digits) for _ in range(n))


def _numeric(rng: random.Random, n: int) -> str:
    return _digits(rng, n)


def shapes() -> dict[str, Shape]:
    out: dict[str, Shape] = {}
    for n in range(12, 21):
        out[f"numeric, {n} digits"] = functools.partial(_numeric, n=n)
    out["letters glued to 13-19 digits (TX2304730006206)"] = lambda rng: (
        "".join(rng.choice(string.ascii_uppercase) for _ in range(2))
        + _digits(rng, rng.randint(13, 19))
    )
    out["prefix and dash, 16 digits (ORD-4111...)"] = lambda rng: "ORD-" + _digits(rng, 16)
    out["uuid4"] = lambda rng: str(uuid.UUID(int=rng.getrandbits(128), version=4))
    out["hex, 32 characters"] = lambda rng: "".join(
        rng.choice("0123456789abcdef") for _ in range(32)
    )
    return out


def rates(samples: int, seed: int = 7) -> dict[str, dict[IdCheck, float]]:
    rng = random.Random(seed)
    table: dict[str, dict[IdCheck, float]] = {}
    for name, shape in shapes().items():
        ids = [shape(rng) for _ in range(samples)]
        table[name] = {
            check: sum(id_has_card_number(i, check) for i in ids) / samples for check in ID_CHECKS
        }
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=20_000)
    args = parser.parse_args()
    print(f"ids refused as card numbers, of {args.samples:,} random ids per shape")
    print(f"{'id shape':<52}" + "".join(f"{c:>10}" for c in ID_CHECKS))
    for name, row in rates(args.samples).items():
        print(f"{name:<52}" + "".join(f"{row[c]:>10.2%}" for c in ID_CHECKS))


if __name__ == "__main__":
    main()
