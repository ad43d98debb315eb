"""Nodes of a store over mutual TLS: joined with a one-time code, refused without the store's
certificate, and listed to tills only once they proved they belong to the store."""

from __future__ import annotations

import asyncio
import re
import sqlite3
import ssl
import subprocess
import time
import uuid
from pathlib import Path

import aiohttp
import pytest
from conftest import EDGE, ROOT, EdgeProcess, Till, free_port, start_all, store_node_config
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from edge.selling.tills import create_pairing_code
from edge.trust.certificates import public_key_pem
from edge.trust.folder import TrustFolder
from edge.trust.join import JoinCodes

BAGUETTE = "2000001000014"


async def edge(*args: str) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(subprocess.run, [*EDGE, *args], capture_output=True,
                                   text=True, timeout=60, cwd=ROOT)


class ShopNode(EdgeProcess):
    """A node of a TLS store on loopback (`--tls on`), with its config file."""

    def __init__(self, folder: Path, port: int, peers: list[int]) -> None:
        self.config = store_node_config(
            folder, [f"https://127.0.0.1:{peer}" for peer in peers], port=port)
        super().__init__(folder / "data", port, ["--config", str(self.config)], https=True)
        self.where = ["--config", str(self.config), "--data", str(self.data_dir)]


async def log_says(node: EdgeProcess, pattern: str, within: float = 20) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if re.search(pattern, node.log.read_text()):
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"{pattern!r} never logged: {node.log.read_text()[-3000:]}")


async def auth_nodes(node: EdgeProcess) -> list[dict]:
    code = create_pairing_code(node.data_dir / "edge.sqlite3")
    async with node.session() as session:
        async with session.post(f"{node.url}/api/pair", json={"code": code}) as reply:
            token = (await reply.json())["token"]
        async with session.ws_connect(f"{node.url}/api/ws") as ws:
            return (await Till(ws, token).call("auth", token=token))["nodes"]


def sale_ids(node: EdgeProcess) -> set[str]:
    db = sqlite3.connect(f"file:{node.data_dir / 'edge.sqlite3'}?mode=ro", uri=True)
    try:
        return {row[0] for row in db.execute("SELECT id FROM sales")}
    finally:
        db.close()


async def test_a_joined_node_replicates_over_mutual_tls_and_codes_work_once(
        tmp_path: Path) -> None:
    port_a, port_b = free_port(), free_port()
    a = ShopNode(tmp_path / "a", port_a, [port_b])
    b = ShopNode(tmp_path / "b", port_b, [port_a])
    made = await edge("tls", "init", *a.where, "--name", "node-a")
    assert made.returncode == 0, made.stderr
    a.start()
    try:
        issued = await edge("tls", "join-code", *a.where)  # through the running node
        assert issued.returncode == 0, issued.stderr
        code = re.search(r"Join code: (\S+)", issued.stdout).group(1)  # type: ignore[union-attr]
        assert f"edge tls join {a.url} {code}" in issued.stdout

        joined = await edge("tls", "join", a.url, code, *b.where, "--name", "node-b")
        assert joined.returncode == 0, joined.stderr
        assert (b.data_dir / "tls" / "store-ca.pem").read_bytes() == a.ca_file.read_bytes()
        assert not (b.data_dir / "tls" / "store-ca.key").exists()  # the CA key stays on A

        # The same code again, a wrong one, an expired one, another CA's: nothing installed.
        expired = JoinCodes(TrustFolder(a.data_dir)).make(now=time.time() - 16 * 60)
        fingerprint, secret = code.split("-")
        for number, (attempt, why) in enumerate([
            (code, "wrong, used or expired"),
            (f"{fingerprint}-{uuid.uuid4().hex}", "wrong, used or expired"),
            (expired, "wrong, used or expired"),
            (f"{'0' * 20}-{secret}", "is not the one of the join code"),
        ]):
            other = ShopNode(tmp_path / f"c{number}", free_port(), [])
            refused = await edge("tls", "join", a.url, attempt, *other.where)
            assert refused.returncode == 1, refused.stdout
            assert why in refused.stderr
            assert not (other.data_dir / "tls").exists()
        await log_says(a, r"join refused from 127\.0\.0\.1 .*wrong, used or expired")

        b.start()
        # A sale on B reaches A over the peers' mutual TLS link.
        token = None
        async with b.session() as session:
            code_b = create_pairing_code(b.data_dir / "edge.sqlite3")
            async with session.post(f"{b.url}/api/pair", json={"code": code_b}) as reply:
                token = (await reply.json())["token"]
            async with session.ws_connect(f"{b.url}/api/ws") as ws:
                till = Till(ws, token)
                await till.call("auth", token=token)
                await till.call("login", cashier_id="alice", pin="1234")
                basket = str(uuid.uuid4())
                await till.call("basket/add", basket_id=basket, line_id=str(uuid.uuid4()),
                                barcode=BAGUETTE, quantity=1)
                sale = await till.call("sale/complete", basket_id=basket, receipt_no=1,
                                       tenders=[{"method": "cash", "amount": 1000}])
        for _ in range(200):
            if sale["id"] in sale_ids(a):
                break
            await asyncio.sleep(0.1)
        assert sale["id"] in sale_ids(a)
        async with a.session() as session, session.get(f"{a.url}/healthz") as response:
            peers = (await response.json())["peers"]
        assert [(p["node_id"], p["url"], p["connected"]) for p in peers] == [
            (b.node_id, b.url, True)]
        assert await auth_nodes(a) == [
            {"id": a.node_id, "url": a.url, "name": "node-a"},
            {"id": b.node_id, "url": b.url, "name": "node-b"}]
    finally:
        b.stop()
        a.stop()


async def test_a_peer_without_this_stores_certificate_is_refused_and_never_listed(
        tmp_path: Path) -> None:
    port_a, port_c = free_port(), free_port()
    a = ShopNode(tmp_path / "a", port_a, [port_c])
    # Same store id, same store key, but its own CA: not a node of this store's CA.
    rogue = ShopNode(tmp_path / "rogue", port_c, [port_a])
    for node, name in ((a, "node-a"), (rogue, "rogue")):
        made = await edge("tls", "init", *node.where, "--name", name)
        assert made.returncode == 0, made.stderr
    start_all(a, rogue)
    try:
        # A dials the rogue and refuses its certificate.
        await log_says(a, rf"peer https://127\.0\.0\.1:{port_c} refused: its certificate is "
                          "not one of this store's")
        # A client that trusts A's CA but shows the rogue's certificate: no TLS at all.
        shows_rogue = ssl.create_default_context(cafile=str(a.ca_file))
        tls = rogue.data_dir / "tls"
        shows_rogue.load_cert_chain(tls / "node.pem", tls / "node.key")
        async with aiohttp.ClientSession() as session:
            with pytest.raises((aiohttp.ClientError, ConnectionError)):
                async with session.ws_connect(f"{a.url}/api/peer", ssl=shows_rogue) as ws:
                    await ws.receive(timeout=10)
            # One that shows no certificate: closed before the store-key handshake.
            async with session.ws_connect(f"{a.url}/api/peer", ssl=a.tls_context()) as ws:
                message = await ws.receive(timeout=10)
                assert message.type is aiohttp.WSMsgType.CLOSE
                assert ws.close_code == 4005
        await log_says(a, r"peer from 127\.0\.0\.1 refused: it showed no certificate of this "
                          "store")
        async with a.session() as session, session.get(f"{a.url}/healthz") as response:
            assert (await response.json())["peers"] == []
        assert await auth_nodes(a) == [{"id": a.node_id, "url": a.url, "name": "node-a"}]
    finally:
        rogue.stop()
        a.stop()


async def test_a_peer_url_that_never_completes_the_handshake_is_not_listed(
        tmp_path: Path) -> None:
    """A URL in `[peers] urls` (or announced by anyone) is dialled, never shown to tills."""
    dialled = asyncio.Event()

    async def never_answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        dialled.set()
        await reader.read(65536)  # reads the upgrade request, answers nothing
        writer.close()

    fake = await asyncio.start_server(never_answer, "127.0.0.1", 0)
    fake_port = fake.sockets[0].getsockname()[1]
    port = free_port()
    config = store_node_config(tmp_path / "a", [f"http://127.0.0.1:{fake_port}"], port=port)
    node = EdgeProcess(tmp_path / "a" / "data", port, ["--config", str(config)])
    node.start()
    try:
        await asyncio.wait_for(dialled.wait(), 20)
        assert await auth_nodes(node) == [
            {"id": node.node_id, "url": node.url, "name": auth_name(node)}]
    finally:
        node.stop()
        fake.close()
        await fake.wait_closed()


def auth_name(node: EdgeProcess) -> str:
    return TrustFolder(node.data_dir).load("demo-boulangerie").node_name


def join_body(secret: str, name: str, dns: list[str], addresses: list[str]) -> dict:
    return {"secret": secret, "name": name, "dns": dns, "addresses": addresses,
            "tls_public_key": public_key_pem(ec.generate_private_key(ec.SECP256R1()).public_key()),
            "signing_public_key": public_key_pem(
                ed25519.Ed25519PrivateKey.generate().public_key())}


async def post_join(a: EdgeProcess, payload: dict, source: str = "127.0.0.1") -> tuple[int, dict]:
    connector = aiohttp.TCPConnector(ssl=a.tls_context(), local_addr=(source, 0))
    async with aiohttp.ClientSession(connector=connector) as session, session.post(
            f"{a.url}/api/tls/join", json=payload) as reply:
        return reply.status, await reply.json()


async def join_secret(a: ShopNode, *extra: str) -> str:
    issued = await edge("tls", "join-code", *a.where, *extra)
    assert issued.returncode == 0, issued.stderr
    return re.search(r"Join code: \S+-(\S+)", issued.stdout).group(1)  # type: ignore[union-attr]


async def test_a_join_code_gets_no_other_nodes_name_and_wrong_codes_block_no_one(
        tmp_path: Path) -> None:
    a = ShopNode(tmp_path / "a", free_port(), [])
    made = await edge("tls", "init", *a.where, "--name", "node-a", "--address", "192.0.2.7",
                      "--address", "2001:db8::7", "--dns", "pos.shop.test")
    assert made.returncode == 0, made.stderr
    a.start()
    try:
        secret = await join_secret(a)
        # The CA node's own names and address, under another node's name: refused,
        # and the code is not spent.
        for dns, addresses in ((["edge-node-a.local"], []), (["pos.shop.test"], []),
                               ([], ["192.0.2.7"]), (["192.0.2.7"], []),
                               # The same, spelt otherwise.
                               (["pos.shop.test."], []), ([], ["2001:db8:0::7"]),
                               ([], ["2001:0db8:0000:0000:0000:0000:0000:0007"]),
                               ([], ["::ffff:192.0.2.7"]),
                               # Another node's mDNS name, even one not issued yet.
                               (["edge-node-z.local"], [])):
            status, answer = await post_join(a, join_body(secret, "evil", dns, addresses))
            assert status in (400, 409), (dns, addresses, answer)
            assert answer["error"]["code"] in ("name_taken", "invalid_request"), answer
        status, answer = await post_join(a, join_body(secret, "node-a", [], []))
        assert (status, answer["error"]["code"]) == (409, "name_taken")
        # Anyone may send wrong codes from many addresses: no code is withdrawn.
        for host in range(2, 8):
            for _ in range(10):
                status, _ = await post_join(a, join_body("0" * 32, "x", [], []),
                                            f"127.0.0.{host}")
                assert status in (403, 429)
        status, answer = await post_join(
            a, join_body(secret, "node-b", ["edge-node-b.local"], ["192.0.2.8"]), "127.0.0.9")
        assert status == 200, answer
        # node-b's name and address are taken now; a code for it may re-issue them.
        again = await join_secret(a)
        status, answer = await post_join(
            a, join_body(again, "node-c", ["edge-node-c.local"], ["192.0.2.8"]), "127.0.0.9")
        assert (status, answer["error"]["code"]) == (409, "name_taken"), answer
        status, answer = await post_join(
            a, join_body(again, "node-b", ["edge-node-b.local"], ["192.0.2.8"]), "127.0.0.9")
        assert (status, answer["error"]["code"]) == (409, "name_taken"), answer
        rebuilt = await join_secret(a, "--name", "node-b")
        status, answer = await post_join(
            a, join_body(rebuilt, "node-c", [], []), "127.0.0.9")
        assert status == 400 and "for node 'node-b'" in answer["error"]["message"], answer
        status, answer = await post_join(
            a, join_body(rebuilt, "node-b", ["edge-node-b.local"], ["192.0.2.8"]), "127.0.0.9")
        assert status == 200, answer
        await log_says(a, r"join refused from 127\.0\.0\.1 \(node name 'evil'\): .*already "
                          "belong to node 'node-a'")
    finally:
        a.stop()
