"""The simulator's ground truth against the engine: every rule-based type found, nothing else."""

from pathlib import Path

import pytest

from streams.configfile import load_config
from streams.evaluate import evaluate_directory
from streams.simulate import SimulationSettings, generate, write_simulation


@pytest.mark.parametrize(
    ("seed", "days", "merchants"), [(1, 4, 12), (2, 5, 20), (3, 4, 30), (4, 6, 15), (5, 4, 10)]
)
def test_recall_one_no_false_positives_no_noise(
    tmp_path: Path, seed: int, days: int, merchants: int
) -> None:
    settings = SimulationSettings(
        seed=seed, days=days, merchants=merchants, sales_per_terminal_day=25
    )
    write_simulation(tmp_path, settings)
    result = evaluate_directory(tmp_path, load_config(tmp_path / "config.toml"))
    for score in result.types:
        assert score.expected > 0, f"{score.type} is never injected"
        assert score.found == score.expected, (score, result.missed_labels)
        assert score.false_positives == 0, (score, result.false_positive_ids)
        assert score.noise == 0, score
    assert result.dead_letters_found == result.dead_letters_expected
    assert result.perfect


def test_same_seed_same_files(tmp_path: Path) -> None:
    settings = SimulationSettings(seed=9, merchants=10, sales_per_terminal_day=10)
    write_simulation(tmp_path / "a", settings)
    write_simulation(tmp_path / "b", settings)
    for name in ["transactions.jsonl", "settlements.jsonl", "labels.jsonl", "config.toml"]:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    other = generate(SimulationSettings(seed=10, merchants=10, sales_per_terminal_day=10))
    assert [t.amount_minor for t in other.txns[:50]] != [
        t.amount_minor for t in generate(settings).txns[:50]
    ]


def test_traffic_is_varied(tmp_path: Path) -> None:
    world = generate(SimulationSettings(seed=5, merchants=20, sales_per_terminal_day=20))
    assert {t.type for t in world.txns} == {"SALE", "REFUND", "VOID", "REVERSAL"}
    assert {t.status for t in world.txns} == {"APPROVED", "DECLINED", "TIMEOUT"}
    assert {t.channel for t in world.txns} == {"CARD", "QR"}
    assert len({t.merchant.region.offset_seconds for t in world.txns}) >= 4
    assert any(t.redeliver for t in world.txns)


def test_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="days"):
        SimulationSettings(days=2).validate()
    with pytest.raises(ValueError, match="merchants"):
        SimulationSettings(merchants=3).validate()
