"""Store IT's everyday view: `edge status` says whether the node runs, and a till that
vanishes mid-answer is one line in the log, not a traceback (issue 9, point 7)."""

from __future__ import annotations

import asyncio
import socket
import struct
import subprocess

import aiohttp
from conftest import EDGE, ROOT, EdgeProcess, NodeUnderTest, Till, node_of
from playwright.async_api import async_playwright, expect

from edge.selling.tills import create_pairing_code
from edge.status import in_words
from edge.supervisor import TaskState


def edge_status(process: EdgeProcess) -> str:
    result = subprocess.run([*EDGE, "status", "--data", str(process.data_dir)],
                            capture_output=True, text=True, timeout=30, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    return result.stdout


def running_line(status: str) -> str:
    return next(line.strip() for line in status.splitlines()
                if line.strip().startswith("running"))


def test_edge_status_says_whether_the_node_runs(edge_process: EdgeProcess) -> None:
    edge_process.start()
    running = running_line(edge_status(edge_process))
    assert running.startswith(f"running         yes (pid {edge_process.proc.pid}, edge serve "
                              f"on port {edge_process.port}, since "), running
    assert running.endswith(": selling; 0 tills connected"), running
    edge_process.stop()
    assert running_line(edge_status(edge_process)) == "running         NO"
    edge_process.start()
    edge_process.kill()
    running = running_line(edge_status(edge_process))
    assert running.startswith("running         NO (last run: pid "), running
    assert running.endswith("it ended without stopping cleanly)"), running


async def reset_mid_answer(url: str, token: str) -> None:
    """A till that asks for a lot, then resets its socket (RST) before reading any of it."""
    async with aiohttp.ClientSession() as session:
        ws = await session.ws_connect(f"{url}/api/ws")
        till = Till(ws)
        await till.call("auth", token=token)
        for number in range(200):
            await ws.send_json({"id": 100 + number, "type": "catalogue/search", "query": "a"})
        connection = ws._response.connection  # type: ignore[attr-defined]
        sock = connection.transport.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        connection.transport.abort()
        await asyncio.sleep(0.5)


async def test_a_till_reset_mid_answer_is_one_line_not_a_traceback(
        edge_process: EdgeProcess) -> None:
    edge_process.start()
    code = create_pairing_code(edge_process.data_dir / "edge.sqlite3")
    async with aiohttp.ClientSession() as session, session.post(
            f"{edge_process.url}/api/pair", json={"code": code, "name": "Caisse"}) as response:
        token = (await response.json())["token"]
    for _ in range(3):
        await reset_mid_answer(edge_process.url, token)
    # The node still serves.
    async with aiohttp.ClientSession() as session, session.ws_connect(
            f"{edge_process.url}/api/ws") as ws:
        await Till(ws).call("auth", token=token)
    edge_process.stop()
    log = edge_process.log.read_text()
    assert "Traceback" not in log, log[-3000:]
    # Said once per reset, in one line: by the till socket's writer, or by
    # aiohttp's server for a reset it meets first.
    resets = [line for line in log.splitlines()
              if "closed its connection abruptly" in line or "connection lost while" in line]
    assert resets, log[-3000:]
    assert all(" INFO " in line for line in resets), resets


CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
]


async def test_the_store_it_page_speaks_one_language_in_local_time_without_python(
        node: NodeUnderTest) -> None:
    edge = node_of(node)
    # Start-up's last writes done first: a commit that fits says the disk has room again.
    await edge.journal.write(lambda tx: None)
    edge.journal.disk_full_since = "2026-11-25T09:12:03.114Z"
    edge.journal.checkpointer.failed = "the journal's database file could not be written"
    async with aiohttp.ClientSession() as session, session.get(f"{node.url}/healthz") as reply:
        health = await reply.json()
    assert health["status"] == "degraded"
    assert "NEEDS A RESTART: the journal's database file" in in_words(health)  # edge status
    edge.tasks.states["print-queue"] = TaskState(
        "print-queue", "restarting", 1, "RuntimeError: journal commit failed: boom",
        "2026-11-25T09:12:04.000Z")
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path="/usr/bin/chromium",
                                                   args=CHROMIUM_ARGS)
        try:
            # A store in New York: 09:12 UTC is 04:12 there.
            context = await browser.new_context(locale="fr-FR", timezone_id="America/New_York")
            page = await context.new_page()
            await page.goto(f"{node.url}/status")
            summary = page.locator("#summary")
            await expect(summary).to_contain_text("DISQUE PLEIN depuis 25/11/2026 04:12:03")
            await expect(summary).to_contain_text("journalctl -u edge")
            await expect(summary).to_contain_text("À REDÉMARRER : le disque a refusé")
            await expect(page.locator("#sections")).to_contain_text("Imprimante prête")
            french = await page.locator("body").inner_text()
            assert "RuntimeError" not in french and "boom" not in french
            assert "ready" not in french and "09:12" not in french, french
            await page.click("#lang")
            await expect(summary).to_contain_text("DISK FULL since 25/11/2026, 04:12:03")
            await expect(summary).to_contain_text("NEEDS A RESTART: the disk refused")
            await expect(page.locator("#sections")).to_contain_text("Printer ready")
            english = await page.locator("body").inner_text()
            assert "RuntimeError" not in english and "DISQUE" not in english
            assert "Imprimante" not in english, english
        finally:
            await browser.close()
