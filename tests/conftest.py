"""Fixtures shared by the suite: nodes in-process and as real processes, and tills.

Every test must leave no task or thread behind (`verify_cleanup`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from ports import free_port
from signing_support import identity

from edge.api.server import NODE, make_app
from edge.config import Config
from edge.journal.store import Journal
from edge.selling.tills import create_pairing_code

ROOT = Path(__file__).resolve().parent.parent
EDGE = [sys.executable, "-m", "edge"]

# The suite trusts no public certificate authority: it talks to loopback only, each
# test's TLS with the CA it made. Every Python process it starts (over 200 nodes a run,
# and CLI commands) then starts about 0.1 s sooner: importing aiohttp loads the default
# CAs, the whole system bundle. The suite took 572 s with this, 590 s without.
os.environ["SSL_CERT_FILE"] = os.devnull


@pytest.fixture(autouse=True)
def verify_cleanup() -> Iterator[None]:
    """Fail a test that leaves threads running (aiosqlite, zeroconf, executors)."""
    before = set(threading.enumerate())
    yield
    deadline = time.monotonic() + 5
    while True:
        leftover = [
            t for t in threading.enumerate()
            if t not in before and t.is_alive() and not t.daemon
            and not t.name.startswith(("asyncio_", "ThreadPoolExecutor"))
        ]
        if not leftover or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert not leftover, f"threads left behind: {leftover}"


@pytest.fixture(autouse=True)
async def verify_no_tasks() -> AsyncIterator[None]:
    """Fail a test that leaves asyncio tasks running."""
    yield
    current = asyncio.current_task()
    await asyncio.sleep(0)
    leftover = [t for t in asyncio.all_tasks() if t is not current and not t.done()]
    assert not leftover, f"tasks left behind: {leftover}"


@pytest.fixture
async def journal(tmp_path: Path) -> AsyncIterator[Journal]:
    """A node's journal in a fresh folder, opened (no node around it)."""
    journal = Journal(tmp_path / "store.sqlite3", origin="node-a", trust=identity("node-a"))
    await journal.open()
    yield journal
    await journal.close()


class CommandFailed(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code


class Till:
    """A till speaking the websocket protocol, as the browser app does."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse, token: str = "") -> None:
        self.ws = ws
        self.token = token
        self.next_id = 0
        self.events: list[dict[str, Any]] = []

    async def send_raw(self, data: str) -> dict[str, Any]:
        await self.ws.send_str(data)
        return await self.receive_result()

    async def receive_result(self) -> dict[str, Any]:
        while True:
            frame = await self.ws.receive(timeout=10)
            if frame.type != aiohttp.WSMsgType.TEXT:
                raise ConnectionError(f"websocket closed: {frame.type!r}")
            message = json.loads(frame.data)
            if message.get("type") == "event":
                self.events.append(message)
                continue
            return message

    async def reply(self, type_: str, **args: Any) -> dict[str, Any]:
        self.next_id += 1
        await self.ws.send_json({"id": self.next_id, "type": type_, **args})
        reply = await self.receive_result()
        assert reply["id"] == self.next_id
        return reply

    async def call(self, type_: str, **args: Any) -> Any:
        reply = await self.reply(type_, **args)
        if not reply["success"]:
            raise CommandFailed(reply["error"]["code"], reply["error"]["message"])
        return reply["result"]


@dataclass
class NodeUnderTest:
    url: str
    data_dir: Path
    session: aiohttp.ClientSession
    app: Any = None

    async def pair(self, name: str = "Caisse test") -> str:
        code = create_pairing_code(self.data_dir / "edge.sqlite3")
        payload = {"code": code, "name": name}
        async with self.session.post(f"{self.url}/api/pair", json=payload) as response:
            assert response.status == 200, await response.text()
            return (await response.json())["token"]

    @contextlib.asynccontextmanager
    async def till(self, token: str | None = None, cashier: str | None = "alice",
                   pin: str = "1234") -> AsyncIterator[Till]:
        token = token or await self.pair()
        async with self.session.ws_connect(f"{self.url}/api/ws") as ws:
            till = Till(ws, token)
            await till.call("auth", token=token)
            if cashier:
                await till.call("login", cashier_id=cashier, pin=pin)
            yield till


@pytest.fixture
async def node(tmp_path: Path) -> AsyncIterator[NodeUnderTest]:
    """A demo-store node in this process, on a loopback port, not announced."""
    config = Config(data_dir=tmp_path / "data", advertise=False)
    app = make_app(config)
    server = TestServer(app, host="127.0.0.1", port=free_port())
    await server.start_server()
    async with aiohttp.ClientSession() as session:
        yield NodeUnderTest(f"http://127.0.0.1:{server.port}", config.data_dir, session, app)
    await server.close()


def node_of(node_under_test: NodeUnderTest) -> Any:
    return node_under_test.app[NODE]


class EdgeProcess:
    """`edge serve` as a real process, to be killed and restarted.

    On loopback, or inside a test-made network namespace (`namespace`).
    `https=True`: served with `--tls on` (HTTPS/WSS with the store's
    certificates in `<data>/tls/`); `tls_context()` verifies it by its store CA.
    """

    def __init__(self, data_dir: Path, port: int, extra: list[str] | None = None, *,
                 host: str = "127.0.0.1", namespace: str | None = None,
                 log: Path | None = None, https: bool = False) -> None:
        self.data_dir = data_dir
        self.host = host
        self.namespace = namespace
        self.port = port
        self.https = https
        self.url = f"{'https' if https else 'http'}://{host}:{port}"
        self.extra = [*(extra or []), *(["--tls", "on"] if https else [])]
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = log or data_dir.parent / f"edge-{port}.log"
        self._log_offset = 0  # the log's size at launch: the banner is looked for after it

    @property
    def node_id(self) -> str:
        return (self.data_dir / "node-id").read_text().strip()

    @property
    def ca_file(self) -> Path:
        return self.data_dir / "tls" / "store-ca.pem"

    def tls_context(self) -> ssl.SSLContext:
        """A client's TLS that trusts this node's store CA (as a till with the CA installed)."""
        return ssl.create_default_context(cafile=str(self.ca_file))

    def session(self) -> aiohttp.ClientSession:
        """An HTTP client for this node: over HTTPS, trusting its store CA."""
        connector = aiohttp.TCPConnector(ssl=self.tls_context()) if self.https else None
        return aiohttp.ClientSession(connector=connector)

    def start(self, timeout: float = 20) -> None:
        """Start it, and return once it listens (it prints its banner then)."""
        self.launch()
        self.wait_listening(time.monotonic() + timeout)

    def launch(self) -> None:
        """Start the process without waiting for it (`start_all` waits)."""
        args = [*EDGE, "serve", "--host", self.host, "--port", str(self.port),
                "--data", str(self.data_dir), *self.extra]
        if self.namespace:
            args = ["ip", "netns", "exec", self.namespace, *args]
        self.log.parent.mkdir(parents=True, exist_ok=True)
        self._log_offset = self.log.stat().st_size if self.log.exists() else 0
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)

    def wait_listening(self, deadline: float) -> None:
        """Return once the launched process prints its banner (it listens then)."""
        assert self.proc is not None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"edge exited: {self.log.read_text()[-2000:]}")
            if b"\nTill app: " in self.log.read_bytes()[self._log_offset:]:
                return
            time.sleep(0.05)
        raise TimeoutError(f"edge did not start: {self.log.read_text()[-2000:]}")

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        """SIGTERM, as systemd stops it: a node that does not end is a bug (it hung)."""
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()
                raise AssertionError(f"edge serve on port {self.port} did not stop on SIGTERM "
                                     "within 20 s") from None


def start_all(*nodes: EdgeProcess, timeout: float = 20) -> None:
    """Start nodes side by side, and return once all listen.

    Each node's start-up (imports, opening its journal) then overlaps the others'
    instead of following it. Only for nodes that need not be up one before the next
    (a test of a dial order, or pairing on A before B starts, uses `start`). Peers
    dialling one not up yet retry within a fraction of a second (the dialer's first
    backoff). If one fails to start, all are killed: none is left running.
    """
    for node in nodes:
        node.launch()
    deadline = time.monotonic() + timeout
    try:
        for node in nodes:
            node.wait_listening(deadline)
    except BaseException:
        for node in nodes:
            node.kill()
        raise


@pytest.fixture
def edge_process(tmp_path: Path) -> Iterator[EdgeProcess]:
    process = EdgeProcess(tmp_path / "data", free_port(), ["--no-advertise"])
    yield process
    process.stop()


@pytest.fixture(scope="session", autouse=True)
def _no_proxy() -> None:
    # Tests only talk to loopback; never through a proxy from the environment.
    for key in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy"):
        os.environ.pop(key, None)


@pytest.fixture(scope="session", autouse=True)
def _bytecode_cache() -> None:
    # Every `edge` process the suite starts (a few hundred) imports the whole package.
    # Where PYTHONDONTWRITEBYTECODE is set (as on the test machines) each compiled all
    # of edge from source again (~0.4 s of CPU each): a cache outside the repository,
    # kept between runs, lets them load it instead (checked against each source's mtime).
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    cache = Path(tempfile.gettempdir()) / f"edge-tests-pycache-{os.getuid()}"
    cache.mkdir(mode=0o700, exist_ok=True)
    os.environ.setdefault("PYTHONPYCACHEPREFIX", str(cache))


STORE_KEY = "0f4c1e5b9a7d3c2e8f6a1b0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e"


def store_node_config(folder: Path, peer_urls: list[str], key: str = STORE_KEY,
                      store_id: str = "demo-boulangerie", advertise: bool = False,
                      more: str = "", port: int | None = None) -> Path:
    """A config file for one node of a multi-node demo store (peers listed, no mDNS).

    `port`: set in the config, for `edge` commands that reach the running node
    (`edge pair`, `edge tls join-code`) with it.
    """
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "store.key").write_text(key + "\n")
    urls = ", ".join(f'"{url}"' for url in peer_urls)
    config = folder / "edge.toml"
    listen = f"port = {port}\n" if port is not None else ""
    config.write_text(
        f'[store]\nid = "{store_id}"\nkey_file = "store.key"\ndemo = true\n'
        f"[server]\nadvertise = {str(advertise).lower()}\n{listen}[peers]\nurls = [{urls}]\n"
        f"{more}"
    )
    return config


class StoreNodes(list):
    """The nodes of one store, as separate `edge serve` processes on loopback."""

    def stop(self) -> None:
        for node in self:
            node.stop()


@pytest.fixture
def store_nodes(tmp_path: Path) -> Iterator[Any]:
    """Call with a count: that many nodes, each listing all the others as peers."""
    made = StoreNodes()

    def make(count: int) -> StoreNodes:
        ports = [free_port() for _ in range(count)]
        started: list[EdgeProcess] = []
        for number, port in enumerate(ports):
            folder = tmp_path / f"node{number}"
            peers = [f"http://127.0.0.1:{other}" for other in ports if other != port]
            config = store_node_config(folder, peers)
            started.append(EdgeProcess(folder / "data", port, ["--config", str(config)]))
        made.extend(started)
        start_all(*started)
        return made

    yield make
    made.stop()


# Head-office sync fixtures (a CA, a PostgreSQL cluster, head-office databases),
# imported last: that module builds on the helpers above.
from headoffice_support import ca, headoffice_db, postgres_cluster  # noqa: E402, F401
