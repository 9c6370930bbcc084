"""``posguard demo``: live alerts within a minute on the embedded broker, Ctrl-C leaves no
process and no work files behind, and a failed run keeps its logs and says where."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from streams.embedded_broker import free_port
from tests.support.stream import wait_until

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def _processes_mentioning(text: str) -> list[int]:
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            blob = (proc / "cmdline").read_bytes() + (proc / "environ").read_bytes()
            state = (proc / "stat").read_text().split()[2]
        except OSError:
            continue
        if text.encode() in blob and state != "Z":
            found.append(int(proc.name))
    return found


def test_demo_shows_live_alerts_within_a_minute_and_ctrl_c_stops_everything() -> None:
    env = {k: v for k, v in os.environ.items() if k != "POSGUARD_BROKER_URL"}
    web = free_port()
    env["POSGUARD_WEB_PORT"] = str(web)
    demo = subprocess.Popen(
        [sys.executable, "-m", "streams.cli", "demo", "--seconds-per-day", "60"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    assert demo.stdout is not None
    lines: list[str] = []
    started = time.monotonic()
    port = None
    workdir = None
    try:
        for raw in demo.stdout:
            line = raw.decode()
            lines.append(line)
            if m := re.search(r"^work files \(.*\): (\S+)$", line):
                workdir = Path(m.group(1))
                assert workdir.is_dir()
            if m := re.search(r"broker \(Tansu\) on kafka://127.0.0.1:(\d+)", line):
                port = m.group(1)
            if line.startswith("OPEN"):
                break
            assert time.monotonic() - started < 60, "".join(lines)
        assert any(line.startswith("OPEN") for line in lines), "".join(lines)
        assert time.monotonic() - started < 60
        # The model trained in the background reaches the running worker. Training may finish
        # before or after the first alert is printed.
        if not any(line.startswith("model: trained") for line in lines):
            for raw in demo.stdout:
                lines.append(raw.decode())
                if lines[-1].startswith("model: trained"):
                    break
                assert time.monotonic() - started < 120, "".join(lines)

        def model_on() -> bool:
            url = f"http://127.0.0.1:{web}/api/model"
            with urllib.request.urlopen(url, timeout=5) as response:
                status = json.loads(response.read())
            # The demo's fleet has no outcomes: the forest, which needs none.
            return bool(status["enabled"]) and status["kind"] == "isolation forest"

        assert wait_until(model_on, 20), "the worker never loaded the demo's model"
    finally:
        demo.send_signal(signal.SIGINT)
        rest, _ = demo.communicate(timeout=60)
    assert demo.returncode == 0, rest.decode()
    assert "demo stopped" in rest.decode()
    assert _processes_mentioning(f"posguard-demo-{demo.pid}") == []
    assert port is not None and _processes_mentioning(f"127.0.0.1:{port}") == []
    assert workdir is not None and not workdir.exists(), "a clean stop left the work files"


def test_a_failed_demo_keeps_its_work_files_and_says_where() -> None:
    """The worker cannot serve its dashboard on a port already taken, and exits: the demo stops
    everything with status 1, keeping the worker's log, which says why."""
    env = {k: v for k, v in os.environ.items() if k != "POSGUARD_BROKER_URL"}
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        env["POSGUARD_WEB_PORT"] = str(taken.getsockname()[1])
        demo = subprocess.Popen(
            [sys.executable, "-m", "streams.cli", "demo", "--no-model", "--duration", "60"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        raw, _ = demo.communicate(timeout=120)
    output = raw.decode()
    assert demo.returncode == 1, output
    assert "the worker exited with status" in output, output
    kept = re.search(r"^work files kept in (\S+)$", output, re.MULTILINE)
    assert kept is not None, output
    workdir = Path(kept.group(1))
    try:
        assert "address already in use" in (workdir / "worker.log").read_text(errors="replace")
    finally:
        shutil.rmtree(workdir)
    assert _processes_mentioning(f"posguard-demo-{demo.pid}") == []
