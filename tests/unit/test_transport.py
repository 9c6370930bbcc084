"""The consumer's fast path: a callback run in place, and the rest of it resumed in a task.

``_drain_messages`` runs each message's callback with ``coro.send(None)``; if the callback has to
wait, ``_rest_of(coro, waiting_on)`` goes on with it inside ``wait_first``. These tests check that
the resumed coroutine sees exactly what it would have seen running in a task from the start:
results, exceptions, cancellation, bare yields and a full queue.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

import pytest

from streams.worker.transport import _rest_of


def _start(coro: Coroutine[Any, Any, Any]) -> tuple[bool, Any]:
    """Run ``coro`` in place as the consumer does: (finished, its value or what it waits on)."""
    try:
        waiting_on = coro.send(None)
    except StopIteration as stop:
        return True, stop.value
    return False, waiting_on


def test_a_callback_that_does_not_wait_finishes_in_place() -> None:
    async def main() -> None:
        queue: asyncio.Queue[int] = asyncio.Queue(maxsize=2)
        lock = asyncio.Lock()

        async def callback() -> str:
            async with lock:  # free: no suspension
                await queue.put(1)  # room in the queue: no suspension
            return "put"

        finished, value = _start(callback())
        assert finished and value == "put"
        assert queue.qsize() == 1

    asyncio.run(main())


def test_a_callback_waiting_on_a_future_gets_its_result_when_resumed() -> None:
    async def main() -> None:
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        seen: list[int] = []

        async def callback() -> str:
            seen.append(await future)
            seen.append(await future)  # done by now: no second suspension
            return "done"

        coro = callback()
        finished, waiting_on = _start(coro)
        assert not finished and waiting_on is future
        task = asyncio.ensure_future(_rest_of(coro, waiting_on))
        await asyncio.sleep(0)
        assert not task.done()
        future.set_result(7)
        assert await task == "done"
        assert seen == [7, 7]

    asyncio.run(main())


def test_an_exception_set_on_the_awaited_future_reaches_the_callback() -> None:
    async def main() -> None:
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()

        async def callback() -> str:
            try:
                await future
            except KeyError:
                return "handled"
            return "not raised"

        coro = callback()
        _, waiting_on = _start(coro)
        task = asyncio.ensure_future(_rest_of(coro, waiting_on))
        future.set_exception(KeyError("x"))
        assert await task == "handled"

    asyncio.run(main())


def test_cancelling_the_resumed_task_cancels_the_callback() -> None:
    """What ``wait_first`` does to the callback when flow is suspended for a rebalance."""

    async def main() -> None:
        queue: asyncio.Queue[int] = asyncio.Queue(maxsize=1)
        queue.put_nowait(0)
        cleaned: list[str] = []

        async def callback() -> None:
            try:
                await queue.put(1)  # full: waits
            finally:
                cleaned.append("finally")

        coro = callback()
        finished, waiting_on = _start(coro)
        assert not finished
        task = asyncio.ensure_future(_rest_of(coro, waiting_on))
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert cleaned == ["finally"]
        assert queue.qsize() == 1  # the abandoned message was not put

    asyncio.run(main())


def test_a_full_queue_is_waited_for_and_bare_yields_pass_through() -> None:
    async def main() -> None:
        queue: asyncio.Queue[int] = asyncio.Queue(maxsize=1)
        queue.put_nowait(0)

        async def callback() -> str:
            await queue.put(1)  # waits until the consumer below takes one
            await asyncio.sleep(0)  # a bare yield after resumption
            await asyncio.sleep(0)
            return "put"

        coro = callback()
        finished, waiting_on = _start(coro)
        assert not finished
        task = asyncio.ensure_future(_rest_of(coro, waiting_on))
        assert await queue.get() == 0
        assert await task == "put"
        assert await queue.get() == 1

    asyncio.run(main())


def test_a_callback_starting_with_a_bare_yield_is_resumed() -> None:
    async def main() -> None:
        async def callback() -> int:
            await asyncio.sleep(0)
            return 3

        coro = callback()
        finished, waiting_on = _start(coro)
        assert not finished and waiting_on is None
        assert await asyncio.ensure_future(_rest_of(coro, waiting_on)) == 3

    asyncio.run(main())
