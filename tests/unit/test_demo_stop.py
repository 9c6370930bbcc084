"""How the demo takes Ctrl-C: the first press asks it to wind down, the second interrupts.

The first press must not raise inside kafka-python's client (a KeyboardInterrupt there once left
``KafkaConsumer.close()`` hanging with every child process running); the demo's loops read the
flag instead. The end-to-end check (Ctrl-C stops the demo and every child) is
``tests/integration/test_demo.py``.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator

import pytest

from streams.demo import _StopFlag


@pytest.fixture
def handlers() -> Iterator[None]:
    saved = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, saved[0])
        signal.signal(signal.SIGTERM, saved[1])


@pytest.mark.usefixtures("handlers")
def test_the_first_ctrl_c_sets_the_flag_and_the_second_interrupts() -> None:
    stop = _StopFlag()
    os.kill(os.getpid(), signal.SIGINT)
    assert stop.set
    with pytest.raises(KeyboardInterrupt):
        os.kill(os.getpid(), signal.SIGINT)


@pytest.mark.usefixtures("handlers")
def test_sigterm_sets_the_flag_without_interrupting() -> None:
    stop = _StopFlag()
    os.kill(os.getpid(), signal.SIGTERM)
    assert stop.set
    os.kill(os.getpid(), signal.SIGTERM)  # again: still no exception
    assert stop.set
