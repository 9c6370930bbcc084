"""Snapshots are taken in a forked child with the state as it was at the fork, while the worker
goes on changing it; a child that fails or is cancelled leaves nothing behind."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from streams.worker.snapshots import SnapshotPolicy, SnapshotTaker


def test_the_child_takes_the_state_as_it_was_at_the_fork(tmp_path: Path) -> None:
    state = {"n": 1}
    taker = SnapshotTaker(tmp_path)
    taker.start(0, 7, lambda: b"n=%d" % state["n"])
    state["n"] = 2  # the worker goes on at once
    assert taker.busy(0)
    assert list(taker.finished(wait=True)) == [(0, 7, b"n=1")]
    assert not taker.busy(0) and list(tmp_path.iterdir()) == []


def test_without_fork_it_is_taken_in_place(tmp_path: Path) -> None:
    taker = SnapshotTaker(tmp_path, fork=False)
    taker.start(3, 9, lambda: b"x")
    assert list(taker.finished()) == [(3, 9, b"x")]


def test_a_failed_or_empty_snapshot_is_reported_and_leaves_no_file(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    def broken() -> bytes:
        raise RuntimeError("boom")

    taker = SnapshotTaker(tmp_path)
    taker.start(1, 5, broken)
    taker.start(2, 6, lambda: None)
    assert list(taker.finished(wait=True)) == []
    assert "partition 1: taking the snapshot at 5 failed (1)" in caplog.text
    assert list(tmp_path.iterdir()) == []


def test_a_revoked_partition_s_snapshot_is_cancelled(tmp_path: Path) -> None:
    taker = SnapshotTaker(tmp_path)

    def slow() -> bytes:
        time.sleep(30)
        return b"late"

    taker.start(4, 1, slow)
    started = time.monotonic()
    taker.cancel(4)
    assert time.monotonic() - started < 5
    assert not taker.busy(4) and list(taker.finished(wait=True)) == []


def test_the_policy_counts_entries_and_seconds() -> None:
    policy = SnapshotPolicy(every_entries=100, every_s=60)
    assert policy.due(100, 0) and not policy.due(99, 59)
    assert policy.due(1, 60) and not policy.due(0, 3600)


def test_files_left_by_a_stopped_worker_s_children_are_removed(tmp_path: Path) -> None:
    (tmp_path / "00000-0000000000000001.snapshot").write_bytes(b"old")
    (tmp_path / "00000-0000000000000002.snapshot-partial").write_bytes(b"half")
    SnapshotTaker(tmp_path)
    assert list(tmp_path.iterdir()) == []
