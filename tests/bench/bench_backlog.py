"""Backlog catch-up benchmark (``make bench``); not a test.

The case of posguard deployed onto topics that already hold a history, or restarted after an
outage: a 200-merchant fleet's 12 days (about 610,000 events) are on the input topics before the
worker starts. Measured on each broker, in one run: the catch-up rate (events from the worker's
start until every input is processed and every alert event replay gives is on the topic), how
steady it is (events/s per 10-second window), the worker's peak resident memory, and whether
the final alerts equal replay's. Printed beside the live rate that ``bench_stream`` measured in
the same ``make bench`` (its ``stream-results.json``), and written to ``backlog-results.json``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import uuid
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from streams.simulate import SimulationSettings, write_simulation
from streams.simulate.produce import produce, rows_from_file
from streams.worker.settings import Topics, bootstrap_servers
from tests.support.brokers import apache_kafka, tansu
from tests.support.stream import Expected, decode_all, expected_from_replay, final_states
from tests.support.worker import WorkerProcess, read_topic, unique_topics

SETTINGS = SimulationSettings(seed=42, days=12, merchants=200)
_WINDOW_S = 10.0


def _rss_bytes(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _merge_buffered(worker: WorkerProcess, topics: Topics) -> int:
    """Input records held in the merge buffers (``posguard_merge_buffered`` of both inputs)."""
    total = 0.0
    inputs = {f'topic="{topics.transactions}"', f'topic="{topics.settlements}"'}
    for line in worker.metrics().splitlines():
        if line.startswith("posguard_merge_buffered{") and any(t in line for t in inputs):
            total += float(line.rsplit(" ", 1)[1])
    return int(total)


def _at_quarters(samples: list[tuple[int, int]], events: int) -> list[int]:
    """Resident MiB when a quarter, half, three quarters and all of the backlog was processed:
    memory that grows with the state the rules retain, not with what is still unread."""
    out = []
    for q in (0.25, 0.5, 0.75, 1.0):
        reached = [r for n, r in samples if n >= q * events]
        out.append(round((reached[0] if reached else samples[-1][1]) / 2**20))
    return out


def _fleet(workdir: Path) -> tuple[Path, Expected]:
    data = workdir / "fleet"
    if not (data / "manifest.json").is_file():
        write_simulation(data, SETTINGS)
    return data, expected_from_replay(data)


def _catch_up(broker: str, workdir: Path, data: Path, expected: Expected) -> dict[str, Any]:
    topics = unique_topics()
    produce(
        bootstrap_servers(broker),
        topics,
        rows_from_file(data / "transactions.jsonl", "event_time"),
        rows_from_file(data / "settlements.jsonl", "settled_at"),
        payout_rows=rows_from_file(data / "payouts.jsonl", "value_date"),
    )
    group = f"backlog-{uuid.uuid4().hex[:6]}"
    state = workdir / group
    state.mkdir(parents=True)
    started = time.time()
    worker = WorkerProcess(broker, topics, state, group, config=data / "config.toml").start()
    assert worker.process is not None
    windows: list[float] = []
    rss: list[tuple[int, int]] = []
    """(events processed, resident bytes) per window."""
    buffered = 0
    peak = 0
    try:
        last_t, last_n = time.time(), 0
        while True:
            time.sleep(_WINDOW_S)
            n = worker.events_in()
            rss.append((n, _rss_bytes(worker.process.pid)))
            peak = max(peak, rss[-1][1])
            buffered = max(buffered, _merge_buffered(worker, topics))
            now = time.time()
            if n > last_n:
                windows.append((n - last_n) / (now - last_t))
            last_t, last_n = now, n
            if n >= expected.events:
                break
            if worker.process.poll() is not None:
                raise RuntimeError(f"the worker exited with {worker.process.returncode}")
            if now - started > 3600:
                raise TimeoutError("no catch-up within an hour")
        consumed = time.time()
        deadline = consumed + 300
        alerts = decode_all(read_topic(broker, topics.alerts))
        while final_states(alerts) != expected.final and time.time() < deadline:
            time.sleep(5)
            alerts = decode_all(read_topic(broker, topics.alerts))
        done = time.time()
        same = final_states(alerts) == expected.final
        peak = max(peak, _rss_bytes(worker.process.pid))
    finally:
        worker.stop()
    # The last window is partial and the first includes the start: the steady part between.
    steady = windows[1:-1] or windows
    return {
        "events": expected.events,
        "catch_up_events_per_s": round(expected.events / (consumed - started)),
        "seconds_to_replays_alerts": round(done - started, 1),
        "window_events_per_s_min": round(min(steady)),
        "window_events_per_s_median": round(statistics.median(steady)),
        "window_events_per_s_max": round(max(steady)),
        "peak_rss_mib": round(peak / 2**20),
        "rss_mib_at_quarters": _at_quarters(rss, expected.events),
        "peak_merge_buffered": buffered,
        "alerts_equal_replay": same,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dir", default=".bench", type=Path)
    parser.add_argument("--brokers", default="tansu,kafka")
    args = parser.parse_args()
    workdir: Path = args.dir.resolve() / "backlog"
    workdir.mkdir(parents=True, exist_ok=True)
    data, expected = _fleet(workdir)
    live_file = args.dir.resolve() / "stream" / "stream-results.json"
    live = json.loads(live_file.read_text()) if live_file.is_file() else {}
    managers: dict[str, Any] = {"tansu": tansu, "kafka": apache_kafka}
    results: dict[str, dict[str, Any]] = {}
    for name in args.brokers.split(","):
        manager: AbstractContextManager[str] = managers[name]()
        with manager as broker:
            r = _catch_up(broker, workdir, data, expected)
        live_rate = live.get(name, {}).get("posguard_events_per_s")
        r["live_events_per_s"] = live_rate
        results[name] = r
        beside = f"; live rate {live_rate:,}/s (bench_stream)" if live_rate else ""
        print(
            f"{name:6} backlog of {r['events']:,} events: caught up at "
            f"{r['catch_up_events_per_s']:,}/s (10 s windows: min "
            f"{r['window_events_per_s_min']:,}, median {r['window_events_per_s_median']:,}, max "
            f"{r['window_events_per_s_max']:,}), replay's alerts after "
            f"{r['seconds_to_replays_alerts']} s, peak RSS {r['peak_rss_mib']} MiB (at a quarter, "
            f"half, three quarters, all: {r['rss_mib_at_quarters']}), merge buffer at most "
            f"{r['peak_merge_buffered']:,} records, alerts equal "
            f"replay: {r['alerts_equal_replay']}{beside}",
            flush=True,
        )
    (workdir / "backlog-results.json").write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
