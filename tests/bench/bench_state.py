"""State-scale benchmark (``make bench``); not a test.

Two figures that grow with how much evidence a partition retains, each measured on a short and a
long run of the same simulated fleet (same merchants, seed and daily volume; 35-day retention, so
nothing expires):

- **bytes per retained event**: the growth of a one-process replay's peak memory (max RSS, each
  run in its own subprocess) divided by the growth in events. Fixed costs (the interpreter,
  libraries, buffers) cancel out; what is left is what the engine keeps per event.
- **takeover**: the time a worker spends rebuilding one partition's engine from its journal
  before it serves again (``PartitionPipeline.restore``, the work a restart, a ``kill -9`` or a
  rebalance does; no broker, so only the rebuild is timed), at both journal sizes.

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

_TAKEOVER = """
import sys, time
from pathlib import Path
from streams.config import Config
from streams.worker.journal import decode_entry
from streams.worker.pipeline import PartitionPipeline
d = Path(sys.argv[1])
config = Config()
docs = [(d / "transactions.jsonl").read_bytes().splitlines(),
        (d / "settlements.jsonl").read_bytes().splitlines()]
first = PartitionPipeline(0, config, ("t", "s"))
journal = []
# Both files offered in chunks, as a consumer delivers them, then journaled as the worker does.
heads = [0, 0]
while heads[0] < len(docs[0]) or heads[1] < len(docs[1]):
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
second = PartitionPipeline(0, config, ("t", "s"))
started = time.perf_counter()
second.restore(entries, first.seq)
seconds = time.perf_counter() - started
print(len(entries), seconds, second.engine.stats.transactions + second.engine.stats.settlements)
"""


def _run(code: str, data: Path) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", code, str(data)], capture_output=True, text=True, check=True
    )
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
        entries, seconds, rebuilt = _run(_TAKEOVER, data)
        sizes[name] = {
            "days": settings.days,
            "events": events,
            "peak_rss_bytes": rss,
            "journal_entries": int(entries),
            "takeover_s": round(float(seconds), 2),
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


def _line(result: dict[str, Any]) -> str:
    s, lg = result["sizes"]["short"], result["sizes"]["long"]
    return (
        f"{result['commit']}: {result['bytes_per_retained_event']:,} bytes per retained event; "
        f"takeover {s['takeover_s']:.2f} s for {s['journal_entries']:,} journal entries "
        f"({s['days']} days), {lg['takeover_s']:.2f} s for {lg['journal_entries']:,} "
        f"({lg['days']} days): x{result['takeover_growth']}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dir", default=".bench", type=Path)
    args = parser.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
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
