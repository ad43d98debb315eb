"""The relayed peer handshake (issue 9, point 2): someone on the shop's network sits
between two nodes and passes each one's handshake messages to the other.

Before mutual TLS, B dialled the relay, the relay dialled A, and passing B's nonce
to A and A's proof to B made B take the relay for A; whatever the relay sent after
was applied. Now neither side of the relay gets a single handshake message: B
refuses the relay's certificate (one of another CA, naming this very store), and A
closes the relay's own link because it shows no certificate of the store.
"""

from __future__ import annotations

import asyncio
import sqlite3
import ssl
from pathlib import Path

import aiohttp
from aiohttp import web
from conftest import free_port
from cryptography.hazmat.primitives.asymmetric import ec
from test_tls_peers import ShopNode, edge, log_says

from edge.trust.certificates import cert_pem, issue_tls_certificate, key_pem, make_store_ca

STORE = "demo-boulangerie"


class Relay:
    """An HTTPS server that takes /api/peer and relays every message to and from A."""

    def __init__(self, folder: Path, port: int, target: str, target_tls: ssl.SSLContext) -> None:
        self.port = port
        self.target = target
        self.target_tls = target_tls
        self.dialled_in: list[str] = []  # messages the dialling node sent through us
        self.from_target: list[str] = []  # messages the target sent back
        self.target_close: int | None = None
        # A certificate naming this store and its address, from a CA the attacker made.
        ca_key, ca_cert = make_store_ca(STORE)
        key = ec.generate_private_key(ec.SECP256R1())
        cert = issue_tls_certificate(ca_key, ca_cert, STORE, "relay", key.public_key(),
                                     ["localhost"], ["127.0.0.1"])
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "relay.pem").write_text(cert_pem(cert) + cert_pem(ca_cert))
        (folder / "relay.key").write_bytes(key_pem(key))
        self.tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.tls.load_cert_chain(folder / "relay.pem", folder / "relay.key")
        self.runner: web.AppRunner | None = None

    async def relay(self) -> None:
        """Dial the target ourselves, as the relay does for each link it is given."""
        async with aiohttp.ClientSession() as session, session.ws_connect(
                f"{self.target}/api/peer", ssl=self.target_tls) as ws:
            async for message in ws:
                self.from_target.append(str(message.data))
            self.target_close = ws.close_code

    async def peer(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        async for message in ws:
            self.dialled_in.append(str(message.data))
        return ws

    async def __aenter__(self) -> Relay:
        app = web.Application()
        app.router.add_get("/api/peer", self.peer)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port, ssl_context=self.tls).start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.runner is not None
        await self.runner.cleanup()


def origins(node: ShopNode) -> set[str]:
    db = sqlite3.connect(f"file:{node.data_dir / 'edge.sqlite3'}?mode=ro", uri=True)
    try:
        return {row[0] for row in db.execute("SELECT DISTINCT origin FROM events")}
    finally:
        db.close()


async def test_a_relay_between_two_nodes_gets_no_handshake_message_from_either(
        tmp_path: Path) -> None:
    port_a, port_b, port_relay = free_port(), free_port(), free_port()
    a = ShopNode(tmp_path / "a", port_a, [])
    b = ShopNode(tmp_path / "b", port_b, [port_relay])  # B was told of the relay, not of A
    made = await edge("tls", "init", *a.where, "--name", "node-a")
    assert made.returncode == 0, made.stderr
    a.start()
    try:
        issued = await edge("tls", "join-code", *a.where)
        code = issued.stdout.split("Join code: ")[1].split()[0]
        joined = await edge("tls", "join", a.url, code, *b.where, "--name", "node-b")
        assert joined.returncode == 0, joined.stderr
        async with Relay(tmp_path / "relay", port_relay, a.url, a.tls_context()) as relay:
            b.start()
            # B dials the relay and refuses it at TLS: not one word of the handshake.
            await log_says(b, rf"peer https://127\.0\.0\.1:{port_relay} refused: its "
                              "certificate is not one of this store's")
            # The relay's own link to A (all it can make without a store certificate)
            # is closed before A says anything.
            await asyncio.wait_for(relay.relay(), 20)
            await log_says(a, r"peer from 127\.0\.0\.1 refused: it showed no certificate of "
                              "this store")
            assert relay.target_close == 4005
            assert relay.from_target == [] and relay.dialled_in == []
        # Nothing crossed: each node holds its own events only.
        assert origins(a) == {a.node_id}
        assert origins(b) == {b.node_id}
    finally:
        b.stop()
        a.stop()
