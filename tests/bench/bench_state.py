"""State-scale benchmark (``make bench``); not a test.

Two figures that grow with how much evidence a partition retains, each measured on a short and a
long run of the same simulated fleet (same merchants, seed and daily volume; 35-day retention, so
nothing expires):

- **bytes per retained event**: the growth of a one-process replay's peak memory (max RSS, each
  run in its own subprocess) divided by the growth in events. Fixed costs (the interpreter,
  libraries, buffers) cancel out; what is left is what the engine keeps per event.
- **takeover**: the time a worker spends rebuilding one partition's engine before it serves
  again (the work a restart, a ``kill -9`` or a rebalance does; no broker, so only the rebuild
  is timed), at both journal sizes: from the partition's snapshot taken ``TAIL`` journal entries
  before the end plus the journal after it (``load_snapshot`` and ``restore``, what a worker
  does), and from the whole journal (what it falls back to without a usable snapshot). The
  snapshot's size and the time taking it held the worker are printed too.

Prints both beside the figures of the last run on another commit (kept in
``state-results.json``), and writes this run's.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from streams.simulate import SimulationSettings, write_simulation

SHORT = SimulationSettings(seed=42, days=4, merchants=150)
LONG = SimulationSettings(seed=42, days=16, merchants=150)
ACQUIRER = SimulationSettings(seed=42, days=35, merchants=150, sales_per_terminal_day=320)
"""The issue's scale (``--acquirer``, not run by ``make bench``: about 7 million events and
15 GB of memory): a partition holding 35 days of 100,000 sales a day."""

_REPLAY_RSS = """
import resource, sys
from pathlib import Path
from streams.config import Config
from streams.replay import replay
d = Path(sys.argv[1])
r = replay(d / "transactions.jsonl", d / "settlements.jsonl", Config(), lambda a: None,
           lambda x: None, parallel=False)
print(r.transactions + r.settlements, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
"""

TAIL = 5_000
"""Journal entries written after the snapshot a takeover loads: a worker snapshots every five
minutes (``POSGUARD_SNAPSHOT_EVERY_SECONDS``), and five minutes of a partition taking a million
sales a day are about 7,000 entries (sales and their settlement lines)."""

_TAKEOVER = """
import gc, sys, time
from pathlib import Path
from streams.config import Config
from streams.worker.journal import decode_entry
from streams.worker.pipeline import PartitionPipeline
d = Path(sys.argv[1])
tail = int(sys.argv[2])
config = Config()
docs = [(d / "transactions.jsonl").read_bytes().splitlines(),
        (d / "settlements.jsonl").read_bytes().splitlines()]
first = PartitionPipeline(0, config, ("t", "s"))
journal = []
# Both files offered in chunks, as a consumer delivers them, then journaled as the worker does.
heads = [0, 0]
total = len(docs[0]) + len(docs[1])
snapshot, taking = None, 0.0
while heads[0] < len(docs[0]) or heads[1] < len(docs[1]):
    if snapshot is None and heads[0] + heads[1] >= total - tail:
        started = time.perf_counter()
        snapshot = first.snapshot()
        taking = time.perf_counter() - started
    for side in (0, 1):
        for _ in range(500):
            if heads[side] >= len(docs[side]):
                break
            first.offer(side, heads[side], docs[side][heads[side]])
            heads[side] += 1
        first.release(lambda s: heads[s] >= len(docs[s]))
        journal.extend(first.take().journal)
first.flush_idle()
journal.extend(first.take().journal)
entries = [(seq, decode_entry(raw)) for seq, raw in journal]
del first, docs, journal
gc.collect()
gc.freeze()  # as the worker's collector policy does: the rebuild allocates nothing cyclic
second = PartitionPipeline(0, config, ("t", "s"))
started = time.perf_counter()
second.restore(entries, len(entries))
whole = time.perf_counter() - started
rebuilt = second.engine.stats.transactions + second.engine.stats.settlements
del second
third = PartitionPipeline(0, config, ("t", "s"))
started = time.perf_counter()
seq = third.load_snapshot(snapshot)
third.restore(entries[seq:], len(entries))
loaded = time.perf_counter() - started
assert third.engine.stats.transactions + third.engine.stats.settlements == rebuilt
print(len(entries), whole, rebuilt, loaded, len(entries) - seq, len(snapshot), taking)
"""


def _run(code: str, data: Path, *args: str) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", code, str(data), *args], capture_output=True, text=True, check=False
    )
    if done.returncode:
        raise SystemExit(f"bench_state: a measurement failed:\n{done.stderr}")
    return done.stdout.split()


def _commit() -> str:
    done = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
    )
    return done.stdout.strip() or "unknown"


def measure(base: Path) -> dict[str, Any]:
    sizes: dict[str, Any] = {}
    for name, settings in (("short", SHORT), ("long", LONG)):
        data = base / f"state-{name}"
        if not (data / "manifest.json").exists():
            write_simulation(data, settings)
        events, rss = map(int, _run(_REPLAY_RSS, data))
        entries, whole, rebuilt, loaded, fed, size, taking = _run(_TAKEOVER, data, str(TAIL))
        sizes[name] = {
            "days": settings.days,
            "events": events,
            "peak_rss_bytes": rss,
            "journal_entries": int(entries),
            "takeover_s": round(float(loaded), 2),
            "journal_fed": int(fed),
            "snapshot_bytes": int(size),
            "snapshot_take_s": round(float(taking), 2),
            "journal_takeover_s": round(float(whole), 2),
            "rebuilt_events": int(rebuilt),
        }
    short, long = sizes["short"], sizes["long"]
    per_event = (long["peak_rss_bytes"] - short["peak_rss_bytes"]) / (
        long["events"] - short["events"]
    )
    return {
        "commit": _commit(),
        "bytes_per_retained_event": round(per_event),
        "sizes": sizes,
        "takeover_growth": round(long["takeover_s"] / max(short["takeover_s"], 1e-9), 2),
    }


def acquirer(base: Path) -> None:
    """The takeover of one partition at ``ACQUIRER`` scale, from a snapshot and from the whole
    journal."""
    data = base / "state-acquirer"
    if not (data / "manifest.json").exists():
        write_simulation(data, ACQUIRER)
    entries, whole, rebuilt, loaded, fed, size, taking = _run(_TAKEOVER, data, str(TAIL))
    print(
        f"acquirer scale ({ACQUIRER.days} days, {int(rebuilt):,} events retained, "
        f"{int(entries):,} journal entries): takeover {float(loaded):.2f} s from a snapshot "
        f"({int(size) / 2**20:,.0f} MiB, taken in {float(taking):.2f} s) and the {int(fed):,} "
        f"entries after it; {float(whole):.2f} s from the whole journal (goal: 10 s)"
    )


def _line(result: dict[str, Any]) -> str:
    s, lg = result["sizes"]["short"], result["sizes"]["long"]
    text = (
        f"{result['commit']}: {result['bytes_per_retained_event']:,} bytes per retained event; "
        f"takeover {s['takeover_s']:.2f} s for {s['journal_entries']:,} journal entries "
        f"({s['days']} days), {lg['takeover_s']:.2f} s for {lg['journal_entries']:,} "
        f"({lg['days']} days): x{result['takeover_growth']}"
    )
    if "snapshot_bytes" in lg:
        text += (
            f"\n            from a snapshot and the {lg['journal_fed']:,} entries after it; "
            f"from the whole journal {s['journal_takeover_s']:.2f} s and "
            f"{lg['journal_takeover_s']:.2f} s; the long run's snapshot is "
            f"{lg['snapshot_bytes'] / 2**20:,.0f} MiB, taken in {lg['snapshot_take_s']:.2f} s"
        )
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dir", default=".bench", type=Path)
    parser.add_argument(
        "--acquirer", action="store_true", help="only the takeover at the issue's scale"
    )
    args = parser.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    if args.acquirer:
        acquirer(args.dir)
        return
    results = args.dir / "state-results.json"
    history: list[dict[str, Any]] = []
    if results.exists():
        history = json.loads(results.read_text())
    result = measure(args.dir)
    print("state scale (goals: at most 200 bytes per retained event; takeover flat in retention)")
    print("  now       " + _line(result))
    earlier = [r for r in history if r["commit"] != result["commit"]]
    if earlier:
        print("  earlier   " + _line(earlier[-1]))
    kept = [r for r in history if r["commit"] != result["commit"]][-4:]
    results.write_text(json.dumps([*kept, result], indent=2) + "\n")


if __name__ == "__main__":
    main()
