"""Nodes and tills for benchmarks: real `edge serve` processes on loopback."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import subprocess
import sys
from pathlib import Path

import aiohttp

from edge.selling.tills import create_pairing_code

ROOT = Path(__file__).resolve().parent.parent
STORE_KEY = "bench-store-key-0123456789abcdef0123456789abcdef"
BARCODES = ["2000001000014", "2000002000013", "2000003000012", "2000004000011"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class BenchNode:
    def __init__(self, folder: Path, port: int, peer_ports: list[int] | None = None,
                 cores: frozenset[int] | None = None) -> None:
        self.folder = folder
        self.cores = cores  # the CPU cores it runs on (all of its threads); None: as this one
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.data = folder / "data"
        self.args = [sys.executable, "-m", "edge", "serve", "--host", "127.0.0.1",
                     "--port", str(port), "--data", str(self.data), "--no-advertise",
                     "--log-level", "WARNING"]
        if peer_ports is not None:
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "store.key").write_text(STORE_KEY)
            peers = ", ".join(f'"http://127.0.0.1:{p}"' for p in peer_ports)
            (folder / "edge.toml").write_text(
                '[store]\nid = "demo-boulangerie"\nkey_file = "store.key"\ndemo = true\n'
                f"[peers]\nurls = [{peers}]\n"
            )
            self.args += ["--config", str(folder / "edge.toml")]
        self.proc: subprocess.Popen[bytes] | None = None

    async def start(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        log = (self.folder / "edge.log").open("ab")
        # taskset before it starts: every thread it makes runs on those cores.
        pinned = [] if self.cores is None else [
            "taskset", "--cpu-list", ",".join(map(str, sorted(self.cores)))]
        self.proc = subprocess.Popen(  # noqa: ASYNC220 (starting it does not wait for it)
            [*pinned, *self.args], stdout=log, stderr=subprocess.STDOUT, cwd=ROOT
        )
        async with aiohttp.ClientSession() as session:
            for _ in range(400):
                with contextlib.suppress(aiohttp.ClientError):
                    async with session.get(f"{self.url}/healthz") as response:
                        if response.status == 200:
                            return
                await asyncio.sleep(0.05)
        raise RuntimeError(f"{self.url} did not start")

    async def pair(self) -> str:
        code = create_pairing_code(self.data / "edge.sqlite3")
        async with aiohttp.ClientSession() as session, session.post(
            f"{self.url}/api/pair", json={"code": code}
        ) as response:
            return (await response.json())["token"]

    def signal(self, signum: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(signum)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.terminate()
            self.proc.wait(10)


async def known_everywhere(nodes: list[BenchNode], token: str) -> None:
    """Wait until a till paired on one node can log in on all of them."""
    async with aiohttp.ClientSession() as session:
        for node in nodes:
            for _ in range(400):
                async with session.ws_connect(f"{node.url}/api/ws") as ws:
                    await ws.send_json({"id": 1, "type": "auth", "token": token})
                    if (await ws.receive_json())["success"]:
                        break
                await asyncio.sleep(0.05)


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def verdict(ratio: float, goal: float = 1.0) -> str:
    """Whether a measured ratio meets its goal, and by how much it misses."""
    return "met" if ratio <= goal else f"MISSED by {ratio / goal:.2f}x"
