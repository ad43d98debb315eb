"""`edge staff`: store IT adds cashiers, sets PINs, changes roles, disables, enables.

Through the running node when one holds the data folder, else under the
folder's lock; PINs only from the terminal or standard input, never in a log.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
from pathlib import Path
from typing import Any

import aiohttp
from conftest import EDGE, ROOT, EdgeProcess, Till, free_port

from edge.selling.tills import create_pairing_code

PINS = ("246810", "9753", "135791", "1111")


def _config(tmp_path: Path, port: int) -> Path:
    config = tmp_path / "edge.toml"
    config.write_text(f'[store]\nid = "demo-boulangerie"\ndemo = true\n'
                      f'[server]\nport = {port}\nadvertise = false\ndata = "data"\n')
    return config


async def staff(config: Path, *args: str, pin: str | None = None) -> subprocess.CompletedProcess:
    argv = [*EDGE, "staff", *args, "--config", str(config)]
    if pin is not None:
        argv.append("--pin-stdin")
    return await asyncio.to_thread(
        subprocess.run, argv, input=None if pin is None else pin + "\n", capture_output=True,
        text=True, timeout=60, cwd=ROOT, stdin=subprocess.DEVNULL if pin is None else None)


async def _till(session: aiohttp.ClientSession, node: EdgeProcess) -> tuple[Till, Any]:
    code = create_pairing_code(node.data_dir / "edge.sqlite3")
    async with session.post(f"{node.url}/api/pair", json={"code": code, "name": "T"}) as answer:
        token = (await answer.json())["token"]
    ws = await session.ws_connect(f"{node.url}/api/ws")
    till = Till(ws, token)
    return till, await till.call("auth", token=token)


async def _login(till: Till, cashier: str, pin: str) -> str:
    reply = await till.reply("login", cashier_id=cashier, pin=pin)
    if reply["success"]:
        await till.call("logout")
        return reply["result"]["cashier"]["role"]
    return reply["error"]["code"]


async def test_staff_changes_through_the_running_node(tmp_path: Path) -> None:
    port = free_port()
    config = _config(tmp_path, port)
    node = EdgeProcess(tmp_path / "data", port, ["--config", str(config)])
    node.start()
    try:
        added = await staff(config, "add", "dana", "--name", "Dana", "--role", "manager",
                            pin="246810")
        assert added.returncode == 0, added.stderr
        assert "by the running node" in added.stdout and "dana (Dana, manager)" in added.stdout
        short = await staff(config, "add", "eve", "--name", "Eve", "--role", "manager",
                            pin="1111")
        assert short.returncode != 0 and "6 to 8 digits" in short.stderr
        assert (await staff(config, "set-pin", "alice", pin="9753")).returncode == 0
        assert (await staff(config, "disable", "chloe")).returncode == 0
        promoted = await staff(config, "role", "alice", "manager", pin="135791")
        assert promoted.returncode == 0, promoted.stderr
        listed = json.loads((await staff(config, "list", "--json")).stdout)
        assert {c["id"]: (c["role"], c["disabled"], c["pin"]) for c in listed} == {
            "alice": ("manager", False, "keyed"), "bruno": ("manager", False, "keyed"),
            "chloe": ("cashier", True, "keyed"), "dana": ("manager", False, "keyed")}

        async with aiohttp.ClientSession() as session:
            till, welcome = await _till(session, node)
            try:
                assert [c["id"] for c in welcome["cashiers"]] == ["alice", "bruno", "dana"]
                assert await _login(till, "dana", "246810") == "manager"
                assert await _login(till, "alice", "1234") == "invalid_pin"  # the old PIN
                assert await _login(till, "alice", "9753") == "invalid_pin"  # before promotion
                assert await _login(till, "alice", "135791") == "manager"
                assert await _login(till, "chloe", "2468") == "invalid_pin"  # disabled
            finally:
                await till.ws.close()
    finally:
        node.stop()
    log = node.log.read_text()
    assert not any(pin in log for pin in PINS), "a PIN was logged"


async def test_staff_changes_without_a_node_under_the_folder_lock(tmp_path: Path) -> None:
    port = free_port()
    config = _config(tmp_path, port)
    node = EdgeProcess(tmp_path / "data", port, ["--config", str(config)])
    node.start()  # once, to make the store
    node.stop()
    added = await staff(config, "add", "fred", "--name", "Fred", pin="8642")
    assert added.returncode == 0, added.stderr
    assert "running node" not in added.stdout
    assert (await staff(config, "disable", "alice")).returncode == 0
    unknown = await staff(config, "disable", "zoe")
    assert unknown.returncode == 1 and "no cashier 'zoe'" in unknown.stderr
    node.start()
    try:
        async with aiohttp.ClientSession() as session:
            till, _ = await _till(session, node)
            try:
                assert await _login(till, "fred", "8642") == "cashier"
                assert await _login(till, "alice", "1234") == "invalid_pin"
            finally:
                await till.ws.close()
        assert (await staff(config, "enable", "alice")).returncode == 0  # by the node now
        async with aiohttp.ClientSession() as session:
            till, _ = await _till(session, node)
            try:
                assert await _login(till, "alice", "1234") == "cashier"
            finally:
                await till.ws.close()
    finally:
        node.stop()


async def test_a_pin_is_never_taken_from_the_command_line(tmp_path: Path) -> None:
    config = _config(tmp_path, free_port())
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "edge.sqlite3").touch()
    asked = await staff(config, "set-pin", "alice")  # no terminal, no --pin-stdin
    assert asked.returncode == 2 and "--pin-stdin" in asked.stderr
    given = await asyncio.to_thread(
        subprocess.run, [*EDGE, "staff", "set-pin", "alice", "--pin", "1234"],
        capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert given.returncode == 2 and "unrecognized arguments" in given.stderr
