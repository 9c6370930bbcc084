"""Live configuration versions: checked, scheduled on event time, and replayed: the switch keeps
every bit of state and takes effect at the first step at or after ``effective_at``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
import pytest

from streams.alerts import Alert
from streams.config import Config, ConfigError
from streams.config_log import (
    VERSION_KEY,
    ConfigSchedule,
    ConfigVersion,
    check_version,
    read_config_log,
)
from streams.configfile import load_config
from streams.replay import replay
from streams.simulate import SimulationSettings, write_simulation
from tests.builders import when


def version(number: int, at: float, config: dict[str, Any]) -> ConfigVersion:
    return ConfigVersion(number, when(at), config, "ana", "2026-12-06T10:00:00Z", "test")


def test_a_version_is_checked_like_the_file() -> None:
    good = check_version(version(1, 0, {"duplicate_charge": {"window": "30s"}}))
    assert good.config.duplicate_charge.window_us == 30_000_000
    with pytest.raises(ConfigError, match=r"version 2: .*windw"):
        check_version(version(2, 0, {"duplicate_charge": {"windw": "30s"}}))
    with pytest.raises(ConfigError, match="offset"):
        check_version(ConfigVersion(3, "2026-03-02T10:00:00", {}, "ana", "now"))
    with pytest.raises(ConfigError, match="positive"):
        check_version(version(0, 0, {}))


def test_the_schedule_applies_in_effective_order_and_a_newer_version_wins() -> None:
    schedule = ConfigSchedule()
    v1 = check_version(version(1, 100, {}))
    v2 = check_version(version(2, 50, {"velocity": {"max_sales": 3}}))
    v3 = check_version(version(3, 200, {}))
    for v in (v1, v3, v2):
        assert schedule.add(v)
    assert not schedule.add(v1), "the same number again is not a new version"
    assert [v.version for v in schedule.due(to_us(10))] == []
    assert [v.version for v in schedule.due(to_us(120))] == [2]  # 1 is older than 2: skipped
    assert schedule.in_force == 2
    assert [v.version for v in schedule.due(to_us(500))] == [3]


def to_us(seconds: float) -> int:
    from datetime import timedelta

    from streams.timefmt import to_us as convert
    from tests.builders import BASE

    return convert(BASE + timedelta(seconds=seconds))


def _write(path: Path, rows: list[Any]) -> Path:
    path.write_bytes(b"".join(msgspec.json.encode(r) + b"\n" for r in rows))
    return path


def test_a_narrower_window_applies_from_its_effective_time(tmp_path: Path) -> None:
    from tests.builders import txn_doc

    txns = _write(
        tmp_path / "t.jsonl",
        [
            txn_doc("A1", 0, card="a"),
            txn_doc("A2", 90, card="a"),  # before the change: 90 s apart is a duplicate
            txn_doc("B1", 1000, card="b"),
            txn_doc("B2", 1090, card="b"),  # after it: 90 s is past a 30 s window
            txn_doc("C1", 2000, card="c"),
            txn_doc("C2", 2020, card="c"),  # 20 s: still one
        ],
    )
    lines = _write(tmp_path / "s.jsonl", [])
    log = _write(tmp_path / "log.jsonl", [version(1, 500, {"duplicate_charge": {"window": "30s"}})])
    alerts: list[Alert] = []
    replay(txns, lines, Config(), alerts.append, lambda _d: None, config_log=read_config_log(log))
    duplicates = [a for a in alerts if a.type == "DUPLICATE_CHARGE"]
    assert [(a.txn_ids, a.details.get(VERSION_KEY)) for a in duplicates] == [
        (["A1", "A2"], None),
        (["C1", "C2"], 1),
    ]


def test_switching_to_the_same_configuration_changes_nothing_but_the_stamp(
    tmp_path: Path,
) -> None:
    """The switch is a snapshot loaded into a new engine: every rule's state, the open step,
    the clocks and the evidence must come through, or later alerts would differ."""
    write_simulation(tmp_path, SimulationSettings(seed=4, days=4, merchants=10))
    config = load_config(tmp_path / "config.toml")
    import tomllib

    document = tomllib.loads((tmp_path / "config.toml").read_text())
    versions = [version(n, 86400 * d + 3600 * n, document) for n, d in ((1, 1), (2, 2), (3, 2))]
    log = read_config_log(_write(tmp_path / "log.jsonl", versions))
    files = (tmp_path / "transactions.jsonl", tmp_path / "settlements.jsonl")
    plain: list[Alert] = []
    switched: list[Alert] = []
    replay(*files, config, plain.append, lambda _d: None, parallel=False)
    replay(*files, config, switched.append, lambda _d: None, config_log=log)
    stamps = {a.details.pop(VERSION_KEY, None) for a in switched}
    assert stamps == {None, 1, 2, 3}
    assert [msgspec.to_builtins(a) for a in switched] == [msgspec.to_builtins(a) for a in plain]
