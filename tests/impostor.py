"""A fake node, for the rogue-node test (tests/test_rogue_node.py): run as a process.

It does what anyone on the shop's Wi-Fi can do with no key: announce
`_edge-pos._tcp.local.` with the real store id (`/healthz` gives it to
anyone), and serve HTTPS with a certificate that says all the right things
(store id, `urn:edge:store:<id>`, its IP address) issued by a "store CA" of its
own making. It accepts whatever comes: TLS or plain HTTP on the same port,
tills' websockets (any token is fine, any PIN too), pairing, `/api/peer`.

It records everything to a JSON-lines file, so a test can say what it got:
  {"kind": "connection", "remote": ip, "tls": bool}   each TCP connection
  {"kind": "received", "remote": ip, "tls": bool, "bytes": base64}
                                                      every byte it was sent, at close
  {"kind": "request", "remote": ip, "method", "path", "headers", "body"}
  {"kind": "till_message" | "peer_message", "remote": ip, "data": text}
                                                      what came through TLS, decrypted
It prints "impostor ready" once it listens and is announced.

    python tests/impostor.py --host 10.231.1.2 --port 8443 --store demo-boulangerie \
        --record impostor.jsonl
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import datetime
import ipaddress
import json
import secrets
import signal
import ssl
import sys
import tempfile
from pathlib import Path
from typing import Any

from aiohttp import WSMsgType, web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from zeroconf import IPVersion
from zeroconf.asyncio import AsyncZeroconf

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from edge.replication.discovery import service_info  # noqa: E402

MAX_RECORDED = 4 * 1024 * 1024  # bytes kept per connection


class Record:
    """The impostor's notebook: one JSON object a line, flushed at once."""

    def __init__(self, path: Path) -> None:
        self.file = path.open("a", encoding="utf-8")

    def write(self, kind: str, **fields: Any) -> None:
        self.file.write(json.dumps({"kind": kind, **fields}) + "\n")
        self.file.flush()

    def close(self) -> None:
        self.file.close()


def forged_certificate(store_id: str, node_name: str, address: str,
                       folder: Path) -> tuple[Path, Path]:
    """A CA of its own named for the store, and a leaf for `address` with the store's URN:
    everything a real node's certificate says, but not issued by the store's CA."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, store_id),
                         x509.NameAttribute(NameOID.COMMON_NAME, f"{store_id} store CA")])
    ca_cert = (
        x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
        .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, store_id),
                                 x509.NameAttribute(NameOID.COMMON_NAME, node_name)]))
        .issuer_name(ca_name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=365))
        .add_extension(x509.SubjectAlternativeName([
            x509.DNSName(f"edge-{node_name}.local"),
            x509.IPAddress(ipaddress.ip_address(address)),
            x509.UniformResourceIdentifier(f"urn:edge:store:{store_id}"),
        ]), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH,
                                              ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    cert_file, key_file = folder / "impostor.pem", folder / "impostor.key"
    cert_file.write_bytes(leaf.public_bytes(serialization.Encoding.PEM)
                          + ca_cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_file, key_file


class Impostor:
    def __init__(self, host: str, port: int, store_id: str, node_id: str, record: Record) -> None:
        self.host, self.port = host, port
        self.store_id, self.node_id = store_id, node_id
        self.url = f"https://{host}:{port}"
        self.record = record
        # The front door relays each connection to a backend on loopback: backend
        # source port -> the real remote address, so the backend can say who it was.
        self.remotes: dict[int, str] = {}
        self.relays: set[asyncio.Task[None]] = set()

    def remote_of(self, request: web.Request) -> str:
        peer = request.transport.get_extra_info("peername") if request.transport else None
        return self.remotes.get(peer[1], "?") if peer else "?"

    # --- the front door: every byte, TLS or not ---

    async def front_door(self, reader: asyncio.StreamReader,
                         writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.relays.add(task)
        remote = writer.get_extra_info("peername")[0]
        received = bytearray()
        tls = False
        try:
            first = await reader.read(1)
            tls = first[:1] == b"\x16"  # a TLS record: handshake
            self.record.write("connection", remote=remote, tls=tls)
            if not first:
                return
            received += first
            backend = self.tls_port if tls else self.plain_port
            back_reader, back_writer = await asyncio.open_connection("127.0.0.1", backend)
            self.remotes[back_writer.get_extra_info("sockname")[1]] = remote
            back_writer.write(first)

            async def client_to_backend() -> None:
                while chunk := await reader.read(65536):
                    if len(received) < MAX_RECORDED:
                        received.extend(chunk[: MAX_RECORDED - len(received)])
                    back_writer.write(chunk)
                    await back_writer.drain()
                back_writer.close()

            async def backend_to_client() -> None:
                while chunk := await back_reader.read(65536):
                    writer.write(chunk)
                    await writer.drain()
                writer.close()

            relay = [asyncio.create_task(client_to_backend()),
                     asyncio.create_task(backend_to_client())]
            try:
                await asyncio.wait(relay, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for each in relay:
                    each.cancel()
                await asyncio.gather(*relay, return_exceptions=True)
                back_writer.close()
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            self.record.write("received", remote=remote, tls=tls,
                              bytes=base64.b64encode(bytes(received)).decode())
            writer.close()
            self.relays.discard(task)

    # --- the backend: what a till or a peer sees once connected ---

    @web.middleware
    async def note_request(self, request: web.Request, handler: Any) -> web.StreamResponse:
        body = await request.text() if request.can_read_body else ""
        self.record.write("request", remote=self.remote_of(request), method=request.method,
                          path=request.path_qs, headers=dict(request.headers), body=body)
        return await handler(request)

    async def healthz(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "store_id": self.store_id,
                                  "node_id": self.node_id})

    async def pair(self, request: web.Request) -> web.Response:
        return web.json_response({"token": secrets.token_urlsafe(24), "till": "T01-impostor"})

    async def till_socket(self, request: web.Request) -> web.WebSocketResponse:
        """Says yes to every token and every PIN: what a harvester does."""
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        remote = self.remote_of(request)
        async for message in ws:
            if message.type != WSMsgType.TEXT:
                continue
            self.record.write("till_message", remote=remote, data=message.data)
            with contextlib.suppress(ValueError, AttributeError):
                command = json.loads(message.data)
                result: dict[str, Any] = {}
                if command.get("type") == "auth":
                    me = {"id": self.node_id, "url": self.url}
                    result = {"node": me, "nodes": [me], "store": {"id": self.store_id},
                              "till": {"code": "T01-impostor"}}
                elif command.get("type") == "login":
                    result = {"cashier": {"id": command.get("cashier_id"), "name": "?"}}
                await ws.send_json({"type": "result", "id": command.get("id"),
                                    "success": True, "result": result})
        return ws

    async def peer_socket(self, request: web.Request) -> web.WebSocketResponse:
        """Speaks first, as a real node's listener does, and notes whatever the dialler says."""
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        remote = self.remote_of(request)
        await ws.send_json({"type": "hello", "protocol": 1, "store": self.store_id,
                            "node": self.node_id, "url": self.url,
                            "nonce": secrets.token_hex(16)})
        async for message in ws:
            data = message.data if message.type == WSMsgType.TEXT else repr(message.data)
            self.record.write("peer_message", remote=remote, data=str(data))
        return ws

    async def anything(self, request: web.Request) -> web.Response:
        return web.Response(text="<!doctype html><title>edge</title>", content_type="text/html")

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self.note_request])
        app.router.add_get("/healthz", self.healthz)
        app.router.add_post("/api/pair", self.pair)
        app.router.add_get("/api/ws", self.till_socket)
        app.router.add_get("/api/peer", self.peer_socket)
        app.router.add_route("*", "/{tail:.*}", self.anything)
        return app

    async def run(self, stop: asyncio.Event, folder: Path) -> None:
        cert_file, key_file = forged_certificate(self.store_id, self.node_id, self.host, folder)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert_file, key_file)
        runner = web.AppRunner(self.app(), handle_signals=False)
        await runner.setup()
        tls_site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
        plain_site = web.TCPSite(runner, "127.0.0.1", 0)
        await tls_site.start()
        await plain_site.start()
        self.tls_port = tls_site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.plain_port = plain_site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        door = await asyncio.start_server(self.front_door, self.host, self.port)
        zeroconf = AsyncZeroconf(interfaces=[self.host], ip_version=IPVersion.V4Only)
        try:
            info = service_info(self.store_id, self.node_id, self.host, self.port)
            await (await zeroconf.async_register_service(info, cooperating_responders=True))
            print("impostor ready", flush=True)
            await stop.wait()
        finally:
            door.close()
            for task in list(self.relays):
                task.cancel()
            await asyncio.gather(*self.relays, return_exceptions=True)
            await zeroconf.async_unregister_all_services()
            await zeroconf.async_close()
            await runner.cleanup()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--store", required=True, help="the real store's id, to announce")
    parser.add_argument("--node", default="n" + secrets.token_hex(4), help="a made-up node id")
    parser.add_argument("--record", type=Path, required=True)
    args = parser.parse_args()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    record = Record(args.record)
    try:
        with tempfile.TemporaryDirectory(prefix="impostor-") as folder:
            await Impostor(args.host, args.port, args.store, args.node, record).run(
                stop, Path(folder))
    finally:
        record.close()


if __name__ == "__main__":
    asyncio.run(main())
