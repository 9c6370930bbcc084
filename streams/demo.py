"""``posguard demo``: the whole product on one machine, in one command.

Starts the embedded broker (unless ``POSGUARD_BROKER_URL`` names one), creates the topics, runs a
worker and a paced simulator, and prints alerts as the worker publishes them. Meanwhile a model is
trained on a week of simulated history (about ten seconds); the worker watches the model file and
starts scoring approved sales as soon as it is written, so live alerts never wait for training.
Ctrl-C (or ``--duration``) stops everything it started; children run in their own process groups
and are terminated, then killed if they linger.

Logs, simulated data, the model and the worker's state go to a temporary work directory, named at
start. A clean stop deletes it (a run leaves about 30 MB); when something failed, or with
``--keep-files``, it is kept and the demo says where.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import msgspec
from kafka import KafkaConsumer

from streams.embedded_broker import EmbeddedBroker
from streams.kafka_security import KafkaSecurity, security_env
from streams.simulate.world import SimulationSettings
from streams.worker.settings import WorkerSettings, bootstrap_servers, settings_from_env
from streams.worker.topics import ensure_topics

_SEVERITY_COLOUR = {"CRITICAL": "\033[1;31m", "HIGH": "\033[31m", "MEDIUM": "\033[33m"}


@dataclass(frozen=True, slots=True)
class DemoOptions:
    seconds_per_day: float = 120.0
    warmup_hours: float = 10.0
    days: int = 4
    merchants: int = 40
    seed: int = 7
    duration_s: float | None = None
    model: bool = True
    history_days: int = 7
    keep_files: bool = False
    kafka: KafkaSecurity | None = None
    """Overrides the environment's settings (an external broker only)."""


class _Alert(msgspec.Struct):
    status: str
    severity: str
    type: str
    merchant_id: str
    summary: str


def run_demo(options: DemoOptions, out: Callable[[str], None] = print) -> int:
    settings = settings_from_env(kafka=options.kafka)
    broker: EmbeddedBroker | None = None
    children: list[subprocess.Popen[bytes]] = []
    workdir = Path(tempfile.mkdtemp(prefix="posguard-demo-"))
    out(f"work files (logs, data, model, worker state): {workdir}")
    stop = _StopFlag()
    trouble = threading.Event()
    try:
        if not os.environ.get("POSGUARD_BROKER_URL"):
            broker = EmbeddedBroker(log=workdir / "broker.log").start()
            settings = settings.with_overrides(broker_url=broker.url, kafka=KafkaSecurity())
            out(f"embedded broker (Tansu) on {broker.url}")
        ensure_topics(settings)
        speed = 86400.0 / options.seconds_per_day
        simulator = _spawn_simulator(settings, options, speed, workdir)
        children.append(simulator)
        # The worker needs the fleet's negotiated fee rates, which the simulator writes first.
        config = _wait_for_file(workdir / "data" / "config.toml", simulator, stop)
        model = workdir / "model.npz" if options.model else None
        worker = _spawn_worker(settings, workdir, config, model)
        children.append(worker)
        base = f"http://{settings.web_host}:{settings.web_port}"
        out(f"worker: dashboard {base}/   alerts API {base}/api/alerts")
        out(f"        Prometheus metrics {base}/metrics")
        out(
            f"simulator: {options.merchants} merchants, {options.days} days of traffic, one day "
            f"every {options.seconds_per_day:.0f} s; Ctrl-C stops everything"
        )
        if model is not None:
            out(
                f"model: training on {options.history_days} days of simulated history in the "
                "background; the worker starts scoring when it is written"
            )
            _train_in_background(options, workdir, model, children, stop, trouble, out)
        _print_alerts(settings, options, out, stop, worker, trouble)
    except KeyboardInterrupt:
        pass
    except BaseException:
        trouble.set()
        raise
    finally:
        stop.set = True
        # Cleanup is bounded (``_terminate`` kills what does not stop within 15 s): another
        # Ctrl-C must not cut it short and leave children running.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        for child in reversed(list(children)):
            _terminate(child)
        if broker is not None:
            broker.stop()
        if trouble.is_set() or options.keep_files:
            out(f"work files kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
        out("demo stopped")
    return 1 if trouble.is_set() else 0


class _StopFlag:
    """Set by SIGTERM or the first Ctrl-C; the loops check it and the demo winds down.

    Ctrl-C only sets the flag: a KeyboardInterrupt raised inside kafka-python's client (the alert
    printer's consumer) can leave its I/O thread's locks mid-handshake, and the ``close()`` after
    it then hung for good with every child still running. The printer's poll returns at least
    every 500 ms, so the flag is seen within half a second. A second Ctrl-C interrupts at once.
    """

    def __init__(self) -> None:
        self.set = False
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_interrupt)

    def _on_signal(self, signum: int, frame: object) -> None:
        self.set = True

    def _on_interrupt(self, signum: int, frame: object) -> None:
        if self.set:
            raise KeyboardInterrupt
        self.set = True


def _wait_for_file(path: Path, writer: subprocess.Popen[bytes], stop: _StopFlag) -> Path:
    while not path.is_file():
        if writer.poll() is not None:
            raise RuntimeError(f"the simulator exited with status {writer.returncode}")
        if stop.set:
            raise KeyboardInterrupt
        time.sleep(0.1)
    return path


def _spawn_worker(
    settings: WorkerSettings, workdir: Path, config: Path, model: Path | None
) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "POSGUARD_BROKER_URL": settings.broker_url,
        "POSGUARD_DATA_DIR": str(workdir / "worker"),
        "POSGUARD_GROUP": f"posguard-demo-{os.getpid()}",
        "POSGUARD_CONFIG": str(config),
        **security_env(settings.kafka),
    }
    if model is not None:
        env["POSGUARD_MODEL"] = str(model)
    return subprocess.Popen(
        [sys.executable, "-m", "streams.cli", "worker"],
        env=env,
        stdout=(workdir / "worker.log").open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def _spawn_simulator(
    settings: WorkerSettings, options: DemoOptions, speed: float, workdir: Path
) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable, "-m", "streams.cli", "simulate",
            "--kafka", settings.broker_url, "--speed", str(speed),
            "--days", str(options.days), "--merchants", str(options.merchants),
            "--seed", str(options.seed), "--out-dir", str(workdir / "data"),
            "--warmup-hours", str(options.warmup_hours),
        ],
        env={**os.environ, **security_env(settings.kafka)},
        stdout=(workdir / "simulator.log").open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip


def _train_in_background(
    options: DemoOptions,
    workdir: Path,
    model: Path,
    children: list[subprocess.Popen[bytes]],
    stop: _StopFlag,
    trouble: threading.Event,
    out: Callable[[str], None],
) -> None:
    """Simulate a week of history for a fleet like the live one (another seed, the days before
    the live traffic) and train on it; ``posguard train`` writes the file atomically."""
    history = workdir / "history"
    start = date.fromisoformat(SimulationSettings().start) - timedelta(days=options.history_days)
    steps = [
        [
            sys.executable, "-m", "streams.cli", "simulate", "--out-dir", str(history),
            "--seed", str(options.seed + 1000), "--days", str(options.history_days),
            "--merchants", str(options.merchants), "--start", start.isoformat(),
        ],
        [
            sys.executable, "-m", "streams.cli", "train", "--out", str(model),
            "--transactions", str(history / "transactions.jsonl"),
            "--settlements", str(history / "settlements.jsonl"),
            "--config", str(history / "config.toml"),
        ],
    ]  # fmt: skip

    def run() -> None:
        with (workdir / "training.log").open("wb") as log:
            for argv in steps:
                if stop.set:
                    return
                child = subprocess.Popen(
                    argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
                )
                children.append(child)
                if child.wait() != 0:
                    if not stop.set:
                        trouble.set()
                        out(f"model: training failed, see {workdir / 'training.log'}")
                    return
        out(f"model: trained ({model}); the worker picks it up within 2 s")

    threading.Thread(target=run, name="demo-training", daemon=True).start()


def _print_alerts(
    settings: WorkerSettings,
    options: DemoOptions,
    out: Callable[[str], None],
    stop: _StopFlag,
    worker: subprocess.Popen[bytes],
    trouble: threading.Event,
) -> None:
    consumer = KafkaConsumer(
        settings.topics.alerts,
        bootstrap_servers=bootstrap_servers(settings.broker_url),
        **settings.kafka.kafka_python(),
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        consumer_timeout_ms=500,
    )
    decoder = msgspec.json.Decoder(_Alert)
    colour = sys.stdout.isatty()
    deadline = None if options.duration_s is None else time.monotonic() + options.duration_s
    try:
        while not stop.set and (deadline is None or time.monotonic() < deadline):
            if worker.poll() is not None:
                trouble.set()
                out(f"the worker exited with status {worker.returncode}; see worker.log")
                return
            for record in consumer:
                alert = decoder.decode(record.value)
                line = (
                    f"{alert.status:<8} {alert.severity:<8} {alert.type:<24} "
                    f"{alert.merchant_id:<6} {alert.summary}"
                )
                if colour and alert.status == "OPEN":
                    line = f"{_SEVERITY_COLOUR.get(alert.severity, '')}{line}\033[0m"
                out(line)
                if stop.set or (deadline is not None and time.monotonic() > deadline):
                    break
    except KeyboardInterrupt:
        pass
    finally:
        consumer.close()


def _terminate(child: subprocess.Popen[bytes]) -> None:
    if child.poll() is not None:
        return
    try:
        os.killpg(child.pid, signal.SIGTERM)
        child.wait(15)
    except subprocess.TimeoutExpired:
        os.killpg(child.pid, signal.SIGKILL)
        child.wait()
    except ProcessLookupError:
        pass
