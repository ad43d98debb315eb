"""Pairing codes cannot be raced, and one address flooding wrong codes blocks only itself.

A real `edge serve` process. The attacker sends from 127.0.0.2 (and a few
other loopback addresses), the store's till from 127.0.0.1.
"""

from __future__ import annotations

import asyncio
from collections import Counter

import aiohttp
from conftest import EdgeProcess
from resources import MemoryWatch
from test_peers import BARCODES

from edge.api.connections import PER_CLIENT
from edge.selling.tills import PairingThrottle, client_key, create_pairing_code
from edge.till_client import TillClient

LIMIT = PairingThrottle().limit


def session_from(address: str) -> aiohttp.ClientSession:
    # As many connections at once as the node lets one address hold (edge/api/connections.py).
    connector = aiohttp.TCPConnector(local_addr=(address, 0), limit=PER_CLIENT - 2)
    return aiohttp.ClientSession(connector=connector)


async def try_code(session: aiohttp.ClientSession, node: EdgeProcess,
                   code: str) -> tuple[int, str, str | None]:
    async with session.post(f"{node.url}/api/pair", json={"code": code, "name": "x"}) as answer:
        body = await answer.json()
        return answer.status, body.get("error", {}).get("code", "paired"), \
            answer.headers.get("Retry-After")


def wrong_code(right: str, number: int) -> str:
    code = f"{number % 1_000_000:06d}"
    return code if code != right else f"{(number + 1) % 1_000_000:06d}"


async def test_500_wrong_codes_at_once_get_at_most_the_limit_checked_and_others_still_pair(
    edge_process: EdgeProcess,
) -> None:
    edge_process.start()
    node = edge_process
    right = create_pairing_code(node.data_dir / "edge.sqlite3")
    watch = MemoryWatch(node.proc.pid)  # type: ignore[union-attr]
    async with session_from("127.0.0.2") as attacker:
        answers = await asyncio.gather(*(try_code(attacker, node, wrong_code(right, n))
                                         for n in range(500)))
        counted = Counter((status, code) for status, code, _ in answers)
        assert set(counted) == {(403, "invalid_pairing_code"), (429, "too_many_attempts")}
        # Each attempt is counted before its code is checked: no more checks than the limit.
        assert counted[(403, "invalid_pairing_code")] == LIMIT, counted
        waits = {int(wait) for status, _, wait in answers if status == 429 and wait}
        assert len(waits) >= 1 and all(1 <= wait <= 60 for wait in waits), waits
        # The right code from the flooding address waits too: it is not checked.
        assert (await try_code(attacker, node, right))[:2] == (429, "too_many_attempts")

    # A till on another address pairs with the right code, and sells.
    async with session_from("127.0.0.1") as till_session:
        status, code, _ = await try_code(till_session, node, right)
        assert (status, code) == (200, "paired")
        async with till_session.post(f"{node.url}/api/pair", json={
                "code": create_pairing_code(node.data_dir / "edge.sqlite3"),
                "name": "Caisse 2"}) as answer:
            assert answer.status == 200
            token = (await answer.json())["token"]
    async with TillClient([node.url], token, "alice", "1234") as till:
        sale = await till.sell(BARCODES[:2], 1000)
        assert sale["receipt_no"] >= 1

    # Many addresses, one wrong code each: each counted on its own, none blocking another.
    async def one_try(address: str) -> tuple[int, str, str | None]:
        async with session_from(address) as session:
            return await try_code(session, node, "000000" if right != "000000" else "000001")

    spread = await asyncio.gather(*(one_try(f"127.0.{n // 250 + 1}.{n % 250 + 1}")
                                    for n in range(300)))
    assert {answer[:2] for answer in spread} == {(403, "invalid_pairing_code")}
    assert node.proc.poll() is None  # type: ignore[union-attr]
    watch.check("500 wrong pairing codes at once, then 300 addresses")


def test_the_table_of_addresses_stays_bounded_whatever_the_number_of_addresses() -> None:
    throttle = PairingThrottle(limit=10, window=60.0, max_clients=100)
    refused = 0
    for number in range(10_000):
        try:
            throttle.attempt(f"10.{number // 65536}.{number // 256 % 256}.{number % 256}",
                             now=float(number) / 1000)
        except Exception:
            refused += 1
    assert len(throttle._attempts) <= 100 and refused == 10_000 - 100
    # Once the minute has passed, addresses that went quiet make room again.
    throttle.attempt("192.168.1.20", now=200.0)
    assert "192.168.1.20" in throttle._attempts
    # An IPv6 host counts as its /64: it cannot multiply itself by its addresses.
    assert client_key("2001:db8:1:2::1") == client_key("2001:db8:1:2:ffff::9") \
        == "2001:db8:1:2::/64"
    assert client_key("::ffff:192.0.2.7") == "192.0.2.7"
