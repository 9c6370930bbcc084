"""Replay throughput benchmark (``make bench``); not a test.

On a simulated file of at least one million events it measures, in one run and on the same
files: the anchor (reading every line and parsing its JSON with msgspec, nothing else), the
validated decode replay starts with (``EventDecoder``: typed events, schema, card-number check,
event time), and the full replay (parse, validate, detect, write alerts and dead letters) as
``posguard replay`` runs it (with its sidecar process on the second core) and in one process,
without and with a model. Each is run in its own subprocess so that peak memory (max RSS) is the
command's own (the sidecar's is reported beside it); rounds alternate them so machine noise hits
all alike. Prints events/s, the replay/parse ratio, the share of replay's time the validated
decode alone takes, and peak memory, and writes ``results.json`` beside the data.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from streams.simulate import SimulationSettings, write_simulation
from tests.bench.bench_model import trained_model

# ~1.05 million input lines (transactions and settlement lines together).
SETTINGS = SimulationSettings(seed=42, days=7, merchants=560, sales_per_terminal_day=60)

_DECODE_EVERY_LINE = """
import sys, time
{imports}
n = 0
t = time.perf_counter()
for path, kind in ((sys.argv[1], "transaction"), (sys.argv[2], "settlement")):
    decode = {decoder}
    with open(path, "rb") as fh:
        for line in fh:
            raw = line.strip()
            if raw:
                try:
                    decode(raw)
                except {errors}:
                    pass
                n += 1
print(n, time.perf_counter() - t)
"""
"""Both anchors: every line of both files through one decoder, bad lines counted too."""

_PARSE_ONLY = _DECODE_EVERY_LINE.format(
    imports="import msgspec",
    decoder="msgspec.json.Decoder().decode",
    errors="(msgspec.DecodeError, UnicodeDecodeError)",
)

_DECODE_ONLY = _DECODE_EVERY_LINE.format(
    imports="from streams.decode import BadInputError, EventDecoder",
    decoder="EventDecoder(kind).decode",
    errors="BadInputError",
)

_REPLAY = """
import resource, sys, time
from pathlib import Path
from streams.configfile import load_config
from streams.replay import JsonLinesWriter, replay
t = time.perf_counter()
with open(sys.argv[4], "wb") as out, open(sys.argv[5], "wb") as dead:
    alerts, letters = JsonLinesWriter(out), JsonLinesWriter(dead)
    scorer = None
    if len(sys.argv) > 7:
        from models.forest import load_model
        from models.scorer import Scorer
        scorer = Scorer(load_model(Path(sys.argv[7])))
    report = replay(Path(sys.argv[1]), Path(sys.argv[2]), load_config(sys.argv[3]),
                    alerts.alert, letters.dead_letter, scorer=scorer,
                    parallel=sys.argv[6] == "sidecar")
sidecar = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
print(report.lines, time.perf_counter() - t, sidecar)
"""
"""A replay as ``posguard replay`` runs it (``sidecar``: the transaction-only rules or the model
on the second core) or in one process (``single``); prints the sidecar's peak memory too."""


def _measure(code: str, *args: str) -> tuple[int, float, float, float]:
    """(lines, seconds, peak RSS in MiB, and the child's sidecar's) of one child process, its
    peak from its rusage via wait4 (which counts the largest of it and its own children)."""
    child = subprocess.Popen(
        [sys.executable, "-c", code, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    stdout, stderr = child.stdout.read(), child.stderr.read()  # type: ignore[union-attr]
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise SystemExit(f"benchmark child failed:\n{stderr.decode()}")
    lines, seconds, *sidecar = stdout.split()
    return int(lines), float(seconds), usage.ru_maxrss / 1024, float(sidecar[0]) if sidecar else 0.0


def _data(directory: Path) -> Path:
    data = directory / "replay-1m"
    manifest = data / "manifest.json"
    wanted = json.dumps(SETTINGS.__dict__, sort_keys=True)
    if manifest.is_file() and wanted == json.dumps(
        json.loads(manifest.read_text())["settings"], sort_keys=True
    ):
        return data
    print(f"generating {data} (once; reused by later runs) ...", flush=True)
    started = time.perf_counter()
    print(write_simulation(data, SETTINGS), f"[{time.perf_counter() - started:.0f} s]")
    return data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dir", default=".bench", type=Path)
    parser.add_argument("--rounds", default=3, type=int)
    args = parser.parse_args()
    data = _data(args.dir)
    txns, lines = str(data / "transactions.jsonl"), str(data / "settlements.jsonl")
    config = str(data / "config.toml")
    model = str(trained_model(args.dir))
    rounds = []
    plain = (txns, lines, config, str(data / "alerts.jsonl"), str(data / "dead.jsonl"))
    modelled = (
        txns,
        lines,
        config,
        str(data / "alerts-model.jsonl"),
        str(data / "dead-model.jsonl"),
    )
    for i in range(args.rounds):
        n_parse, parse_s, _, _ = _measure(_PARSE_ONLY, txns, lines)
        n_decode, decode_s, _, _ = _measure(_DECODE_ONLY, txns, lines)
        n_replay, replay_s, replay_rss, sidecar_rss = _measure(_REPLAY, *plain, "sidecar")
        n_single, single_s, _, _ = _measure(_REPLAY, *plain, "single")
        n_model, model_s, model_rss, model_sidecar_rss = _measure(
            _REPLAY, *modelled, "sidecar", model
        )
        n_inline, inline_s, _, _ = _measure(_REPLAY, *modelled, "single", model)
        counts = (n_parse, n_decode, n_replay, n_single, n_model, n_inline)
        assert len(set(counts)) == 1, counts
        row = {
            "round": i + 1,
            "events": n_replay,
            "parse_events_per_s": n_parse / parse_s,
            "validated_decode_events_per_s": n_decode / decode_s,
            "replay_time_share_decoding": decode_s / replay_s,
            "replay_events_per_s": n_replay / replay_s,
            "replay_to_parse_ratio": (n_replay / replay_s) / (n_parse / parse_s),
            "replay_peak_rss_mib": replay_rss,
            "replay_sidecar_peak_rss_mib": sidecar_rss,
            "one_process_replay_events_per_s": n_single / single_s,
            "model_replay_events_per_s": n_model / model_s,
            "model_to_plain_replay_ratio": (n_model / model_s) / (n_replay / replay_s),
            "model_replay_peak_rss_mib": model_rss,
            "model_replay_sidecar_peak_rss_mib": model_sidecar_rss,
            "one_process_model_replay_events_per_s": n_inline / inline_s,
        }
        rounds.append(row)
        print(
            f"round {i + 1}: {n_replay:,} events | parse-only {row['parse_events_per_s']:,.0f}/s "
            f"| validated decode {row['validated_decode_events_per_s']:,.0f}/s "
            f"({row['replay_time_share_decoding']:.0%} of replay's time) "
            f"| replay {row['replay_events_per_s']:,.0f}/s | ratio "
            f"{row['replay_to_parse_ratio']:.3f} | peak RSS {replay_rss:,.0f} MiB + sidecar "
            f"{sidecar_rss:,.0f} MiB | in one process "
            f"{row['one_process_replay_events_per_s']:,.0f}/s"
            f" | with model {row['model_replay_events_per_s']:,.0f}/s "
            f"(x{row['model_to_plain_replay_ratio']:.2f}; {model_rss:,.0f} + "
            f"{model_sidecar_rss:,.0f} MiB; in one process "
            f"{row['one_process_model_replay_events_per_s']:,.0f}/s)",
            flush=True,
        )
    best = max(rounds, key=lambda r: r["replay_events_per_s"])
    median_ratio = sorted(r["replay_to_parse_ratio"] for r in rounds)[len(rounds) // 2]
    summary = {
        "data": str(data),
        "rounds": rounds,
        "best_replay_events_per_s": best["replay_events_per_s"],
        "median_replay_to_parse_ratio": median_ratio,
        "peak_rss_mib": max(r["replay_peak_rss_mib"] for r in rounds),
        "median_model_to_plain_ratio": sorted(r["model_to_plain_replay_ratio"] for r in rounds)[
            len(rounds) // 2
        ],
    }
    (args.dir / "results.json").write_text(json.dumps(summary, indent=2))
    print(
        f"replay: best {summary['best_replay_events_per_s']:,.0f} events/s; median ratio to "
        f"parse-only {median_ratio:.3f}; peak memory {summary['peak_rss_mib']:,.0f} MiB; "
        f"with a model: median x{summary['median_model_to_plain_ratio']:.2f} of plain replay"
    )


if __name__ == "__main__":
    main()
