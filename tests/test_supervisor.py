"""Background tasks are supervised: an unexpected error is logged, shown, and the task restarted."""

from __future__ import annotations

import asyncio
import logging

import pytest
from conftest import NodeUnderTest, node_of

from edge.supervisor import Supervisor


async def until(predicate, what: str) -> None:
    for _ in range(500):
        if predicate():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


async def test_a_task_that_fails_is_logged_and_restarted_until_it_runs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    supervisor = Supervisor(first_retry=0.01, max_retry=0.05)
    runs: list[int] = []
    stay = asyncio.Event()

    async def flaky() -> None:
        runs.append(1)
        if len(runs) < 3:
            raise RuntimeError("journal commit failed: disk I/O error")
        await stay.wait()

    with caplog.at_level(logging.ERROR):
        supervisor.start("peer dialer", flaky)
        await until(lambda: len(runs) == 3, "the third run")
    [state] = supervisor.statuses()
    assert state["state"] == "running" and state["restarts"] == 2
    assert "disk I/O error" in state["last_error"]
    assert supervisor.all_up
    assert "background task peer dialer failed" in caplog.text
    await supervisor.stop()


async def test_a_task_down_shows_on_healthz(node: NodeUnderTest) -> None:
    supervisor = node_of(node).tasks

    async def broken() -> None:
        raise OSError("no route to the printer's node")

    supervisor.start("broken", broken)
    await until(lambda: supervisor.states["broken"].restarts >= 1, "a restart")
    async with node.session.get(f"{node.url}/healthz") as response:
        health = await response.json()
    assert health["status"] == "degraded"
    [task] = [task for task in health["tasks"] if task["name"] == "broken"]
    assert task["state"] == "restarting" and "no route" in task["last_error"]
    assert {t["name"] for t in health["tasks"]} >= {"print-queue", "broken"}
