"""Supervised background tasks: an unexpected error is logged and the task restarted.

Every long-running task of a node (print queue, head-office sync, discovery)
runs under a `Supervisor`: if it raises, it is logged, shown as down on
`/healthz` and the store IT page, and started again after a backoff that
doubles up to a ceiling (and resets once a run has lasted a while). A task
that returns has finished its work and is not restarted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from edge.journal.chain import utc_now

log = logging.getLogger(__name__)

FIRST_RETRY = 0.5  # seconds
MAX_RETRY = 30.0
HEALTHY_AFTER = 60.0  # a run this long resets the backoff


@dataclass
class TaskState:
    """What store IT sees of one background task."""

    name: str
    state: str = "starting"  # running, restarting (down), finished
    restarts: int = 0
    last_error: str | None = None
    last_error_at: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "state": self.state, "restarts": self.restarts,
                "last_error": self.last_error, "last_error_at": self.last_error_at}


class Supervisor:
    def __init__(self, first_retry: float = FIRST_RETRY, max_retry: float = MAX_RETRY) -> None:
        self.first_retry = first_retry
        self.max_retry = max_retry
        self.states: dict[str, TaskState] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}

    def start(self, name: str, run: Callable[[], Awaitable[None]]) -> None:
        """Run `run()` under supervision until `stop`."""
        if name in self._tasks:
            raise ValueError(f"a task named {name!r} is already supervised")
        self.states[name] = TaskState(name)
        self._tasks[name] = asyncio.create_task(self._keep(name, run), name=name)

    async def _keep(self, name: str, run: Callable[[], Awaitable[None]]) -> None:
        state = self.states[name]
        delay = self.first_retry
        while True:
            state.state = "running"
            began = time.monotonic()
            try:
                await run()
            except asyncio.CancelledError:
                raise
            except Exception as error:
                if time.monotonic() - began >= HEALTHY_AFTER:
                    delay = self.first_retry
                state.state = "restarting"
                state.restarts += 1
                state.last_error = f"{type(error).__name__}: {error}"
                state.last_error_at = utc_now()
                log.exception("background task %s failed; restarting in %.1f s", name, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.max_retry)
            else:
                state.state = "finished"
                return

    def statuses(self) -> list[dict[str, Any]]:
        return [state.as_dict() for state in self.states.values()]

    @property
    def all_up(self) -> bool:
        return all(state.state != "restarting" for state in self.states.values())

    async def stop(self) -> None:
        for task in self._tasks.values():
            task.cancel()
        for task in self._tasks.values():
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
