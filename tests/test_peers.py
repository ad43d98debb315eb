"""Nodes of one store replicate to each other; tills fail over; nothing is lost or doubled."""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import sqlite3
import subprocess
from pathlib import Path

import aiohttp
import pytest
from conftest import (
    EDGE,
    STORE_KEY,
    EdgeProcess,
    StoreNodes,
    free_port,
    start_all,
    store_node_config,
)

from edge.journal.chain import event_hash
from edge.replication.peers import proof
from edge.selling.tills import create_pairing_code
from edge.till_client import TillClient

# Nodes announced on the machine's own loopback find each other by mDNS: never beside
# another worker's (./dev test runs two), which could be one of the same demo store.
pytestmark = pytest.mark.xdist_group("mdns-on-loopback")

BARCODES = ["2000001000014", "2000002000013", "2000003000012", "2000004000011"]


def journal_of(node: EdgeProcess) -> list[tuple]:
    conn = sqlite3.connect(f"file:{node.data_dir / 'edge.sqlite3'}?mode=ro", uri=True)
    try:
        return conn.execute("SELECT origin, seq, hash FROM events ORDER BY origin, seq").fetchall()
    finally:
        conn.close()


def sales_of(node: EdgeProcess) -> dict[str, tuple]:
    conn = sqlite3.connect(f"file:{node.data_dir / 'edge.sqlite3'}?mode=ro", uri=True)
    try:
        rows = conn.execute("SELECT id, till, receipt_no, total, hash FROM sales").fetchall()
    finally:
        conn.close()
    return {row[0]: row[1:] for row in rows}


async def converged(nodes: list[EdgeProcess], within: float = 20) -> list[tuple]:
    """Wait until every node holds the same journal; return it."""
    for _ in range(int(within / 0.1)):
        journals = [journal_of(node) for node in nodes]
        if all(journal == journals[0] for journal in journals):
            return journals[0]
        await asyncio.sleep(0.1)
    sizes = [len(journal_of(node)) for node in nodes]
    raise AssertionError(f"journals did not converge: {sizes} events")


async def pair(node: EdgeProcess, name: str = "Caisse") -> str:
    code = create_pairing_code(node.data_dir / "edge.sqlite3")
    async with aiohttp.ClientSession() as session, session.post(
        f"{node.url}/api/pair", json={"code": code, "name": name}
    ) as response:
        assert response.status == 200, await response.text()
        return (await response.json())["token"]


async def wait_for_till(node: EdgeProcess, token: str) -> None:
    """A till paired on one node is known to another once the event replicated."""
    async with aiohttp.ClientSession() as session:
        for _ in range(200):
            async with session.ws_connect(f"{node.url}/api/ws") as ws:
                await ws.send_json({"id": 1, "type": "auth", "token": token})
                if (await ws.receive_json())["success"]:
                    return
            await asyncio.sleep(0.05)
    raise AssertionError("the till never became known to that node")


async def test_two_nodes_replicate_both_ways(store_nodes) -> None:
    a, b = store_nodes(2)
    token_a, token_b = await pair(a, "one"), await pair(b, "two")
    await wait_for_till(b, token_a)
    async with TillClient([a.url], token_a, "alice", "1234") as on_a, \
            TillClient([b.url], token_b, "bruno", "567890") as on_b:
        sold_a = await on_a.sell(BARCODES[:2], 1000)
        sold_b = await on_b.sell(BARCODES[2:], 1000)
    journal = await converged([a, b])
    assert {origin for origin, _, _ in journal} == {
        (a.data_dir / "node-id").read_text().strip(), (b.data_dir / "node-id").read_text().strip()
    }
    assert sales_of(a) == sales_of(b)
    assert set(sales_of(a)) == {sold_a["id"], sold_b["id"]}
    async with aiohttp.ClientSession() as session, session.get(f"{a.url}/healthz") as response:
        peers = (await response.json())["peers"]
    assert [p["connected"] for p in peers] == [True]
    assert peers[0]["url"] == b.url
    status = await asyncio.to_thread(
        subprocess.run, [*EDGE, "status", *a.extra, "--data", str(a.data_dir)],
        capture_output=True, text=True, timeout=30,
    )
    assert status.returncode == 0, status.stderr
    assert f"{b.node_id}  connected ({b.url}), last contact" in status.stdout


async def test_killed_node_tills_carry_on_elsewhere_and_all_converge(store_nodes) -> None:
    nodes: StoreNodes = store_nodes(3)
    tokens = [await pair(nodes[0], f"Caisse {n}") for n in range(3)]
    for token in tokens:
        for other in nodes[1:]:
            await wait_for_till(other, token)
    acknowledged: dict[str, tuple] = {}
    killed = asyncio.Event()
    after_kill: list[float] = []

    async def till(token: str) -> None:
        async with TillClient([nodes[0].url], token, "alice", "1234") as client:
            loop = asyncio.get_running_loop()
            while len(after_kill) < 15:
                sale = await client.sell(random.sample(BARCODES, 2), 1000)
                acknowledged[sale["id"]] = (sale["till"], sale["receipt_no"], client.node_url)
                if killed.is_set():
                    after_kill.append(loop.time())

    sellers = [asyncio.create_task(till(token)) for token in tokens]
    for _ in range(600):  # every till has sold on the first node (twice, as a rule) first
        if len({sale[0] for sale in acknowledged.values()}) == len(tokens) \
                and len(acknowledged) >= 2 * len(tokens):
            break
        await asyncio.sleep(0.05)
    else:
        raise AssertionError(f"the tills did not sell before the kill: {acknowledged}")
    nodes[0].kill()
    killed_at = asyncio.get_running_loop().time()
    killed.set()
    await asyncio.wait_for(asyncio.gather(*sellers), 60)
    print(f"first sale on another node {min(after_kill) - killed_at:.2f} s after kill -9")

    survivors = nodes[1:]
    await converged(survivors)
    on_survivors = sales_of(survivors[0])
    assert acknowledged.keys() - on_survivors.keys() == set(), "acknowledged sales lost"
    assert {url for *_, url in acknowledged.values()} - {nodes[0].url}, "no till failed over"

    nodes[0].start()
    journal = await converged(list(nodes))
    assert len(journal) == len(set((origin, seq) for origin, seq, _ in journal))
    everywhere = [sales_of(node) for node in nodes]
    assert everywhere[0] == everywhere[1] == everywhere[2]
    assert acknowledged.keys() <= everywhere[0].keys()
    # Receipt numbers: gapless per till, each used once.
    for till_code in {till for till, _, _ in acknowledged.values()}:
        numbers = sorted(n for t, n, *_ in everywhere[0].values() if t == till_code)
        assert numbers == list(range(1, len(numbers) + 1)), f"{till_code}: {numbers}"


async def test_a_node_with_the_wrong_key_is_refused(store_nodes, tmp_path: Path) -> None:
    (a,) = store_nodes(1)
    port = free_port()
    config = store_node_config(tmp_path / "intruder", [a.url], key="not-the-store-key")
    intruder = EdgeProcess(tmp_path / "intruder" / "data", port, ["--config", str(config)])
    intruder.start()
    try:
        intruder_id = (intruder.data_dir / "node-id").read_text().strip()
        for _ in range(100):
            if "does not hold the store key" in a.log.read_text():
                break
            await asyncio.sleep(0.05)
        assert f"node {intruder_id} does not hold the store key" in a.log.read_text()
        assert intruder_id not in {origin for origin, _, _ in journal_of(a)}
        # The intruder goes on dialling; it says it is refused once, not at every dial.
        for _ in range(200):
            if a.log.read_text().count("does not hold the store key") >= 3:
                break
            await asyncio.sleep(0.05)
        assert a.log.read_text().count("does not hold the store key") >= 3
        assert intruder.log.read_text().count(f"peer {a.url} refused") == 1, \
            intruder.log.read_text()[-2000:]
    finally:
        intruder.stop()


class Partition:
    """A TCP proxy between two nodes that the test can cut and heal."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = free_port()
        self.cut_off = False
        self._pipes: set[asyncio.Task[None]] = set()
        self._server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def __aenter__(self) -> Partition:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        self.cut()
        await asyncio.gather(*self._pipes, return_exceptions=True)
        await self._server.wait_closed()

    def cut(self) -> None:
        self.cut_off = True
        for pipe in self._pipes:
            pipe.cancel()

    def heal(self) -> None:
        self.cut_off = False

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.cut_off:
            writer.close()
            return
        task = asyncio.current_task()
        assert task is not None
        self._pipes.add(task)
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
            await asyncio.gather(self._copy(reader, up_writer), self._copy(up_reader, writer))
        except (OSError, asyncio.CancelledError):
            pass
        finally:
            self._pipes.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                up_writer.close()

    @staticmethod
    async def _copy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
        writer.close()


async def test_a_partitioned_store_sells_on_both_sides_and_merges(tmp_path: Path) -> None:
    ports = [free_port(), free_port()]
    async with Partition(ports[1]) as to_b, Partition(ports[0]) as to_a:
        nodes = []
        for number, (port, proxy) in enumerate(zip(ports, (to_b, to_a), strict=True)):
            config = store_node_config(tmp_path / f"n{number}", [proxy.url])
            nodes.append(EdgeProcess(tmp_path / f"n{number}" / "data", port,
                                     ["--config", str(config)]))
        start_all(*nodes)
        try:
            a, b = nodes
            token_a, token_b = await pair(a, "gauche"), await pair(a, "droite")
            await wait_for_till(b, token_b)
            await converged(nodes)
            sold = []
            async with TillClient([a.url], token_a, "alice", "1234") as left, \
                    TillClient([b.url], token_b, "bruno", "567890") as right:
                sold.append(await left.sell(BARCODES[:2], 1000))
                to_a.cut()
                to_b.cut()
                for _ in range(5):  # both sides sell while cut apart
                    sold.append(await left.sell(random.sample(BARCODES, 2), 1000))
                    sold.append(await right.sell(random.sample(BARCODES, 2), 1000))
                assert len(sales_of(a)) < len(sold) and len(sales_of(b)) < len(sold)
                to_a.heal()
                to_b.heal()
                journal = await converged(nodes)
        finally:
            for node in nodes:
                node.stop()
    assert sales_of(a) == sales_of(b)
    assert set(sales_of(a)) == {sale["id"] for sale in sold}, "lost or extra sales"
    assert len(journal) == len({(origin, seq) for origin, seq, _ in journal})
    numbers = sorted((s["till"], s["receipt_no"]) for s in sold)
    assert len(numbers) == len(set(numbers)), "a receipt number was used twice"


async def test_a_tampered_event_is_refused_logged_and_not_applied(store_nodes) -> None:
    (a,) = store_nodes(1)
    own = journal_of(a)[0]
    conn = sqlite3.connect(f"file:{a.data_dir / 'edge.sqlite3'}?mode=ro", uri=True)
    row = conn.execute("SELECT origin, seq, id, time, type, body, prev_hash, hash FROM events "
                       "WHERE origin = ? AND seq = 1", own[:1]).fetchone()
    conn.close()
    genuine = dict(zip(("origin", "seq", "id", "time", "type", "body", "prev_hash", "hash"),
                       row, strict=True))
    genuine["body"] = json.loads(genuine["body"])
    forged_price = {**genuine, "body": {**genuine["body"], "price": 1}}
    rehashed = {**forged_price, "hash": event_hash(
        forged_price["origin"], 1, forged_price["id"], forged_price["time"],
        forged_price["type"], forged_price["body"], forged_price["prev_hash"])}
    stranger = {**genuine, "origin": "intruder", "hash": "0" * 64}

    async def send_as_faker(bad: dict) -> int | None:
        """The node's close code for a link that sent `bad`; None if it kept the link."""
        async with aiohttp.ClientSession() as session, session.ws_connect(
            f"{a.url}/api/peer", autoping=False
        ) as ws:
            hello = json.loads((await ws.receive()).data)
            mine = "1" * 32
            await ws.send_json({
                "type": "hello", "protocol": 1, "store": "demo-boulangerie", "node": "faker",
                "url": "http://127.0.0.1:1", "nonce": mine,
                "proof": proof(STORE_KEY.encode(), "dialer", (hello["nonce"], mine), "faker"),
            })
            assert json.loads((await ws.receive()).data)["type"] == "welcome"
            await ws.send_json({"type": "events", "events": [bad]})
            # The node reads a link's frames in order: its pong to this ping comes once it
            # has dealt with the events, and after its close frame if it closed the link.
            await ws.ping(b"after the events")
            async with asyncio.timeout(10):
                while True:
                    msg = await ws.receive()
                    if msg.type is aiohttp.WSMsgType.PONG and msg.data == b"after the events":
                        return None
                    if msg.type not in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY,
                                        aiohttp.WSMsgType.PING, aiohttp.WSMsgType.PONG):
                        return ws.close_code  # closed (its vector and pings come before)

    # A forged hash and a stranger are refused and parked: the link (and the rest
    # of what it carries) goes on.
    for bad in (forged_price, stranger):
        assert await send_as_faker(bad) != 4004
    assert journal_of(a)[0] == own
    assert "intruder" not in {origin for origin, _, _ in journal_of(a)}
    log = a.log.read_text()
    assert "peer faker sent events of intruder that do not follow" in log
    assert f"peer faker sent events of {own[0]} that do not follow" in log
    # A well-hashed event of the node's own origin that it never wrote, not signed with its
    # key: a forgery, refused like the others; the node goes on (only its own key's
    # signature means a copy of its folder: tests/test_forged_events.py).
    assert await send_as_faker(rehashed) != 4004
    assert "an event of this node's own origin that it never wrote, not signed with its " \
        "key: forged" in a.log.read_text()
    assert a.proc is not None and a.proc.poll() is None
    assert journal_of(a)[0] == own


async def test_nodes_on_one_network_find_each_other_by_zeroconf(tmp_path: Path) -> None:
    nodes = []
    for number in range(2):
        config = store_node_config(tmp_path / f"z{number}", [], advertise=True)
        nodes.append(EdgeProcess(tmp_path / f"z{number}" / "data", free_port(),
                                 ["--config", str(config)]))
    try:
        start_all(*nodes)
        token = await pair(nodes[0])
        await wait_for_till(nodes[1], token)  # replicated: they found each other
        await converged(nodes)
    finally:
        for node in nodes:
            node.stop()


async def test_a_receipt_prints_on_the_tills_printer_on_another_node(tmp_path: Path) -> None:
    ports = [free_port(), free_port()]
    counter = tmp_path / "n0" / "counter"
    nodes = []
    for number, port in enumerate(ports):
        config = tmp_path / f"n{number}" / "edge.toml"
        nodes.append(EdgeProcess(tmp_path / f"n{number}" / "data", port, ["--config", str(config)]))
    a, b = nodes
    # b first: a's printer lists b's first till, whose code carries b's node id.
    store_node_config(tmp_path / "n1", [a.url])
    b.start()
    store_node_config(tmp_path / "n0", [b.url], more=f'[[printers]]\nname = "comptoir"\n'
                      f'path = "{counter}"\ntills = ["T01-{b.node_id}"]\n')
    a.start()
    try:
        token = await pair(b)
        await wait_for_till(a, token)
        async with TillClient([b.url], token, "alice", "1234") as till:
            for _ in range(100):  # until b has heard of a's printer
                if (await till.call("printer/status"))["printer"] == "comptoir":
                    break
                await asyncio.sleep(0.05)
            sale = await till.sell(BARCODES[:1], 200)
            assert sale["print"] == {"printer": "comptoir", "node": a.node_id, "reachable": True}
            await printed(counter, sale["receipt_number"])

            a.kill()
            for _ in range(100):  # until b notices
                status = await till.call("printer/status")
                if not next(p for p in status["store_printers"]
                            if p["name"] == "comptoir")["reachable"]:
                    break
                await asyncio.sleep(0.05)
            stranded = await till.sell(BARCODES[:1], 200)
            assert stranded["print"]["reachable"] is False
            fallback = next(p for p in status["store_printers"] if p["node"] == b.node_id)
            await till.call("printer/reprint", sale_id=stranded["id"],
                            printer=fallback["name"], node=b.node_id)
            # The original never printed (its node died first): the copy is the original.
            await printed(b.data_dir / "printer", stranded["receipt_number"])
        a.start()

        def statuses() -> list[tuple]:
            conn = sqlite3.connect(f"file:{a.data_dir / 'edge.sqlite3'}?mode=ro", uri=True)
            try:
                return sorted(conn.execute(
                    "SELECT node, status FROM print_jobs WHERE json_extract(body, '$.sale_id') = ?",
                    (stranded["id"],)).fetchall())
            finally:
                conn.close()

        # A records the call-off itself when it takes its job up again.
        expected = sorted([(a.node_id, "cancelled"), (b.node_id, "done")])
        for _ in range(200):
            if statuses() == expected:
                break
            await asyncio.sleep(0.05)
        assert statuses() == expected
        await converged(nodes)
        assert "DUPLICATA" not in (b.data_dir / "printer" / "receipts.txt").read_text()
        assert stranded["receipt_number"] not in (counter / "receipts.txt").read_text()
    finally:
        for node in nodes:
            node.stop()


async def printed(folder: Path, number: str, mark: str = "") -> None:
    for _ in range(200):
        path = folder / "receipts.txt"
        if path.exists() and number in (text := path.read_text()) and mark in text:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"receipt {number} was not printed in {folder}")
