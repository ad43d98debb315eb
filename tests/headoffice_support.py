"""Test tools for head-office sync: a CA, PostgreSQL, head office on a port, a faulty proxy.

Everything listens on 127.0.0.1 only. The PostgreSQL cluster is Debian's
server, started once per session by a non-root user in a temporary folder
and removed after; each test gets a database of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import getpass
import glob
import ipaddress
import json
import os
import pwd
import shutil
import ssl
import subprocess
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from conftest import NodeUnderTest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from ports import free_port
from yarl import URL

from edge.api.server import make_app
from edge.config import load_config
from edge.headoffice.protocol import PUSH_PATH
from edge.headoffice.server import HeadOfficeServer, server_tls
from edge.sync.client import Timing

# TLS: a store's own CA, as a head office might run it

def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _write_key(key: ec.EllipticCurvePrivateKey, path: Path) -> None:
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                       serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))


class CertificateAuthority:
    def __init__(self, folder: Path, name: str = "Test head office CA") -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.UTC)
        self.cert = (
            x509.CertificateBuilder().subject_name(_name(name)).issuer_name(_name(name))
            .public_key(self.key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True,
                crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
            .sign(self.key, hashes.SHA256())
        )
        self.ca_file = folder / "ca.pem"
        self.ca_file.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))

    def issue(self, name: str, expired: bool = False) -> tuple[Path, Path]:
        """A server certificate for 127.0.0.1 and localhost: (cert file, key file)."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.UTC)
        start, end = (now - datetime.timedelta(days=30), now - datetime.timedelta(days=1)) \
            if expired else (now - datetime.timedelta(days=1), now + datetime.timedelta(days=90))
        cert = (
            x509.CertificateBuilder().subject_name(_name("127.0.0.1"))
            .issuer_name(self.cert.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start).not_valid_after(end)
            .add_extension(x509.SubjectAlternativeName([
                x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                critical=False)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]),
                           critical=False)
            .sign(self.key, hashes.SHA256())
        )
        cert_file, key_file = self.folder / f"{name}.pem", self.folder / f"{name}.key"
        cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        _write_key(key, key_file)
        return cert_file, key_file

    def server_context(self, name: str = "headoffice", expired: bool = False) -> ssl.SSLContext:
        return server_tls(*self.issue(name, expired))

    def client_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca_file))


@pytest.fixture(scope="session")
def ca(tmp_path_factory: pytest.TempPathFactory) -> CertificateAuthority:
    return CertificateAuthority(tmp_path_factory.mktemp("ca"))


# PostgreSQL: Debian's server, our own cluster

def _pg_bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}")) or [shutil.which(name) or ""]
    if not found[-1]:
        pytest.fail(f"PostgreSQL's {name} is missing: run ./dev test (installs postgresql)")
    return found[-1]


@dataclass
class PostgresCluster:
    folder: Path
    port: int
    user: str
    run_as: list[str] = field(default_factory=list)

    def url(self, database: str) -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{database}"

    def pg_ctl(self, *args: str) -> None:
        subprocess.run([*self.run_as, _pg_bin("pg_ctl"), "-D", str(self.folder / "data"),
                        *args], check=True, capture_output=True, timeout=60)


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[PostgresCluster]:
    """A throwaway cluster on 127.0.0.1, run by a non-root user (`postgres` when root)."""
    root = os.geteuid() == 0
    user = "postgres" if root else getpass.getuser()
    folder = Path(tempfile.mkdtemp(prefix="edge-pg-"))
    run_as = ["runuser", "-u", user, "--"] if root else []
    if root:
        entry = pwd.getpwnam(user)
        os.chown(folder, entry.pw_uid, entry.pw_gid)
    cluster = PostgresCluster(folder, free_port(), user, run_as)
    subprocess.run([*run_as, _pg_bin("initdb"), "-D", str(folder / "data"), "-U", user,
                    "--auth=trust", "--no-sync", "-E", "UTF8"],
                   check=True, capture_output=True, timeout=120)
    options = (f"-c listen_addresses=127.0.0.1 -p {cluster.port} -k {folder} "
               "-c fsync=off -c full_page_writes=off")
    cluster.pg_ctl("start", "-w", "-l", str(folder / "log"), "-o", options)
    try:
        yield cluster
    finally:
        with contextlib.suppress(subprocess.SubprocessError):
            cluster.pg_ctl("stop", "-m", "immediate", "-w")
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(params=["sqlite", "postgresql"])
async def headoffice_db(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[str]:
    """A fresh, empty head-office database URL: SQLite file or PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite://{tmp_path / 'headoffice.sqlite3'}"
        return
    import asyncpg

    cluster: PostgresCluster = request.getfixturevalue("postgres_cluster")
    name = f"ho_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(cluster.url("postgres"))
    try:
        await admin.execute(f"CREATE DATABASE {name}")
    finally:
        await admin.close()
    yield cluster.url(name)
    admin = await asyncpg.connect(cluster.url("postgres"))
    try:
        await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    finally:
        await admin.close()


# Head office on a fixed port, to be stopped ("down") and started again

class HeadOffice:
    def __init__(self, db_url: str, ca: CertificateAuthority, expired: bool = False) -> None:
        self.db_url, self.ca, self.port = db_url, ca, free_port()
        self.tls = ca.server_context("headoffice", expired=expired)
        self.server: HeadOfficeServer | None = None

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    async def start(self) -> HeadOfficeServer:
        self.server = HeadOfficeServer(self.db_url, "127.0.0.1", self.port, self.tls)
        await self.server.start()
        return self.server

    async def stop(self) -> None:
        if self.server is not None:
            await self.server.stop()
            self.server = None

    async def open_storage(self) -> Any:
        """The storage alone (head office 'down' but its database there)."""
        from edge.headoffice.storage import HeadOfficeStorage

        storage = HeadOfficeStorage(self.db_url)
        await storage.open()
        return storage


# A proxy that misbehaves on purpose (TLS on both sides: a middlebox with the CA's cert)

class FaultProxy:
    """Forwards to head office; each request takes the next fault from `faults` (or passes).

    Faults: "cut_request" (drop mid-upload), "cut_response" (forward, then cut before
    answering), "duplicate" (forward twice, answer the second), "stale" (forward, answer
    with the answer of an earlier request), "error500", "slow" (answer after `slow_seconds`).
    """

    def __init__(self, upstream: str, ca: CertificateAuthority) -> None:
        self.upstream = URL(upstream)
        self.ca = ca
        self.port = free_port()
        self.faults: list[str] = []
        self.always: str | None = None
        self.slow_seconds = 2.0
        self.seen: list[str] = []
        self.only_path: str | None = PUSH_PATH  # faults hit pushes (None: every request)
        self._answers: list[tuple[int, bytes]] = []
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(ssl=self.ca.client_context()), auto_decompress=False)
        # The proxy passes bodies on as they came (gzip), never inflating them.
        app = web.Application(client_max_size=64 * 1024 * 1024,
                              handler_args={"auto_decompress": False})
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port,
                           ssl_context=self.ca.server_context("proxy"))
        await site.start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()

    async def _forward(self, request: web.Request, body: bytes) -> tuple[int, bytes]:
        assert self._session is not None
        headers = {key: value for key, value in request.headers.items()
                   if key.lower() in ("authorization", "edge-store", "content-type",
                                      "content-encoding")}
        async with self._session.request(request.method, self.upstream.with_path(request.path),
                                         data=body, headers=headers) as response:
            return response.status, await response.read()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        fault = "pass"
        if self.only_path is None or request.path == self.only_path:
            fault = self.faults.pop(0) if self.faults else (self.always or "pass")
            self.seen.append(fault)
        if fault == "cut_request":
            await request.content.read(100)
            return _cut(request)
        body = await request.read()  # still gzip: the proxy never inflates it
        if fault == "error500":
            return web.Response(status=500, text="storm")
        if fault == "slow":
            await asyncio.sleep(self.slow_seconds)
        answer = await self._forward(request, body)
        if fault == "duplicate":
            answer = await self._forward(request, body)
        if fault == "cut_response":
            return _cut(request)
        if fault == "stale" and self._answers:
            answer = self._answers[0]
        self._answers.append(answer)
        status, payload = answer
        return web.Response(status=status, body=payload, content_type="application/json")


def _cut(request: web.Request) -> web.Response:
    """Drop the connection without a word, as a dead link or a crashed server would."""
    assert request.transport is not None
    request.transport.abort()
    return web.Response(status=204)


async def wait_for(condition: Any, seconds: float = 30.0, what: str = "condition") -> None:
    """Poll an async or plain predicate until it holds (no wall-clock assertion)."""
    deadline = time.monotonic() + seconds
    while True:
        result = condition()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


# Store nodes syncing with head office

def write_store_config(
    folder: Path, headoffice_url: str, token: str, ca: CertificateAuthority, **headoffice: Any
) -> Path:
    """A store's config file (as store IT writes it), its token file and store key beside it.

    Every node of a store holds its store key (the nodes of one test share it,
    as a store's do): cashiers' PINs are keyed with it.
    """
    from conftest import STORE_KEY

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "headoffice.token").write_text(token + "\n")
    (folder / "store.key").write_text(STORE_KEY + "\n")
    (folder / "store.key").chmod(0o600)
    settings = {"url": headoffice_url, "token_file": "headoffice.token",
                "ca_file": str(ca.ca_file), **headoffice}
    lines = ["[store]", 'id = "demo-boulangerie"', 'key_file = "store.key"', "demo = true",
             "[server]", 'data = "data"', "advertise = false", "[headoffice]"]
    lines += [f"{key} = {json.dumps(value)}" for key, value in settings.items()]
    path = folder / "edge.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


@contextlib.contextmanager
def tuned_sync(timing: Timing, clock: Any = None) -> Iterator[None]:
    """Nodes made and started meanwhile sync with `timing` (and `clock`) from their first round.

    The client's first round runs as soon as the node starts: setting them
    afterwards would come too late.
    """
    import edge.node

    base = edge.node.SyncClient

    class TunedSyncClient(base):  # type: ignore[misc, valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.timing = timing
            self.clock = clock or self.clock

    edge.node.SyncClient = TunedSyncClient  # type: ignore[misc]
    try:
        yield
    finally:
        edge.node.SyncClient = base  # type: ignore[misc]


@contextlib.asynccontextmanager
async def store_node(
    folder: Path, headoffice_url: str, token: str, ca: CertificateAuthority,
    answer_within: float = 10.0, clock: Any = None, **headoffice: Any,
) -> AsyncIterator[NodeUnderTest]:
    """A demo-store node serving tills on 127.0.0.1, syncing with head office, fast.

    Its config is `folder/edge.toml`, so `edge status --config` can read it too.
    """
    config = load_config(write_store_config(folder, headoffice_url, token, ca, **headoffice))
    timing = Timing(first_retry=0.02, max_retry=0.2, push_delay=0.01, pull_every=0.2,
                    timeout=answer_within)
    with tuned_sync(timing, clock):  # the node makes its client at make_app or at start
        app = make_app(config)
        server = TestServer(app, host="127.0.0.1", port=free_port())
        await server.start_server()
    try:
        async with aiohttp.ClientSession() as session:
            yield NodeUnderTest(f"http://127.0.0.1:{server.port}", config.data_dir, session, app)
    finally:
        await server.close()
