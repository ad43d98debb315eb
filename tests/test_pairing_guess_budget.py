"""Many addresses do not add up to a guess at a pairing code: 50 wrong codes withdraw it.

PairingThrottle gives each client address 10 checks a minute and nothing
bounds the store as a whole: from 30 loopback addresses (a customer's laptop
on the shop Wi-Fi can take as many IPv4 addresses as the subnet has free) an
outstanding 6-digit code gets 300 wrong guesses checked in a few seconds;
with the table's 4,096 addresses, about 600,000 over a code's 15 minutes.
Must hold: a code is checked only so many times in all (a per-code or
store-wide budget of wrong guesses), whatever the number of addresses.
"""

from __future__ import annotations

import asyncio

import aiohttp
from conftest import EdgeProcess

from edge.selling.tills import create_pairing_code

ADDRESSES = 30
CHECKS_PER_CODE = 50  # generous: a shop's tills mistype a code a few times at most


async def test_many_addresses_do_not_multiply_guesses_at_one_pairing_code(
    edge_process: EdgeProcess,
) -> None:
    edge_process.start()
    code = create_pairing_code(edge_process.data_dir / "edge.sqlite3")
    wrong = [f"{(int(code) + 1 + n) % 1_000_000:06d}" for n in range(ADDRESSES * 10)]

    async def guesses(address: int) -> list[int]:
        connector = aiohttp.TCPConnector(local_addr=(f"127.0.8.{address + 1}", 0))
        async with aiohttp.ClientSession(connector=connector) as session:
            statuses = []
            for guess in wrong[address * 10:(address + 1) * 10]:
                async with session.post(f"{edge_process.url}/api/pair",
                                        json={"code": guess, "name": "x"}) as answer:
                    statuses.append(answer.status)
            return statuses

    answers = [status for statuses in await asyncio.gather(*map(guesses, range(ADDRESSES)))
               for status in statuses]
    assert answers.count(403) >= CHECKS_PER_CODE  # invalid_pairing_code: each was checked
    # Past the 50th wrong guess, whatever the addresses, the code is withdrawn: the
    # guesses after it were checked against no code at all.
    async with aiohttp.ClientSession() as session, session.post(
            f"{edge_process.url}/api/pair", json={"code": code, "name": "x"}) as answer:
        assert answer.status == 403, "the code outlived 50 wrong guesses"
    assert "code(s) not yet used are withdrawn" in \
        edge_process.log.read_text()
    # Store IT makes a new one, and it works.
    fresh = create_pairing_code(edge_process.data_dir / "edge.sqlite3")
    async with aiohttp.ClientSession() as session, session.post(
            f"{edge_process.url}/api/pair", json={"code": fresh, "name": "Caisse"}) as answer:
        assert answer.status == 200
