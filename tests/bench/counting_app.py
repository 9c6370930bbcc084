"""The benchmark's anchor: a Faust agent that only counts raw events on both input topics.

Same broker, topics, group-join settings and value handling as the worker, nothing else. The
count is served at ``/count`` on ``COUNT_PORT``; Faust's data directory goes to ``COUNT_DATADIR``
(the benchmark's work directory), not the current directory.
"""

from __future__ import annotations

import os
from typing import Any

import faust
from faust.worker import Worker


def main() -> None:
    app = faust.App(
        os.environ["COUNT_GROUP"],
        broker=os.environ["COUNT_BROKER"],
        store="memory://",
        datadir=os.environ["COUNT_DATADIR"],
        web_port=int(os.environ["COUNT_PORT"]),
        web_bind="127.0.0.1",
        web_tables_enabled=False,
        consumer_auto_offset_reset="earliest",
        broker_session_timeout=6,
        broker_rebalance_timeout=3,
        broker_heartbeat_interval=1,
    )
    topic = app.topic(
        os.environ["COUNT_TRANSACTIONS"],
        os.environ["COUNT_SETTLEMENTS"],
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
    )
    count = 0

    @app.agent(topic, concurrency=1)
    async def counter(stream: Any) -> None:
        nonlocal count
        async for _ in stream.events():
            count += 1

    @app.page("/count")
    async def show(view: Any, request: Any) -> Any:
        return view.json({"count": count})

    Worker(app, loglevel="warn", quiet=True, redirect_stdouts=False).execute_from_commandline()


if __name__ == "__main__":
    main()
