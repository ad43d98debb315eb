"""A bad link and a crashing head office still deliver every event exactly once.

A proxy between node and head office cuts uploads mid-batch, cuts answers
after head office stored the batch, sends requests twice and answers with
stale answers of other batches. Then head office itself dies between its
commit and its answer, and restarts. Run against SQLite and PostgreSQL.
"""

from __future__ import annotations

from pathlib import Path

from aiohttp import web
from conftest import NodeUnderTest, node_of
from headoffice_support import (
    CertificateAuthority,
    FaultProxy,
    HeadOffice,
    store_node,
    wait_for,
)
from test_sync_outage import own_events, sell_in_bulk, sell_through_websocket, settled

from edge.headoffice.server import COUNTERS, HOOKS, HeadOfficeServer
from edge.journal.chain import chain_problems

STORE = "demo-boulangerie"
FAULTS = ["cut_request", "cut_response", "pass", "duplicate", "stale", "cut_request",
          "stale", "duplicate", "cut_response", "cut_response"]


async def assert_exactly_once(server: HeadOfficeServer, node: NodeUnderTest) -> None:
    journal = node_of(node).journal
    held = await own_events(journal)
    received = await server.storage.events(STORE, journal.origin)
    assert [(e.seq, e.hash) for e in received] == [(e.seq, e.hash) for e in held]
    assert chain_problems(received) == []
    assert await server.storage.conflicts(STORE) == []


async def test_cuts_duplicates_stale_answers_and_a_crash_deliver_exactly_once(
    tmp_path: Path, headoffice_db: str, ca: CertificateAuthority
) -> None:
    headoffice = HeadOffice(headoffice_db, ca)
    server = await headoffice.start()
    proxy = FaultProxy(headoffice.url, ca)
    await proxy.start()
    try:
        token = await server.storage.add_store(STORE)
        proxy.faults = list(FAULTS)
        async with store_node(tmp_path / "a", proxy.url, token, ca,
                              batch_events=100) as node:
            sync = node_of(node).sync
            await sell_in_bulk(node_of(node).journal, ["T11", "T12"], 600)
            await sell_through_websocket(node, 2)
            await wait_for(lambda: settled(node), 60, "the node to settle through the faults")
            assert proxy.faults == [] and proxy.seen[:len(FAULTS)] == FAULTS
            assert sync.counters.errors >= 7  # every cut and stale answer was felt
            await assert_exactly_once(server, node)
            assert server.app[COUNTERS].duplicates > 0  # resent batches were recognised

            # Head office stores a batch, then dies before answering; it restarts.
            crashed: list[int] = []

            async def die_after_commit(request: web.Request) -> None:
                crashed.append(1)
                assert request.transport is not None
                request.transport.abort()

            server.app[HOOKS].after_store = die_after_commit
            stored_before = server.app[COUNTERS].stored
            await sell_in_bulk(node_of(node).journal, ["T13"], 150)
            await wait_for(lambda: crashed, 30, "head office to store and crash")
            assert server.app[COUNTERS].stored > stored_before  # it did commit
            await headoffice.stop()
            server = await headoffice.start()
            await wait_for(lambda: settled(node), 60, "the node to settle after the crash")
            await assert_exactly_once(server, node)
            assert server.app[COUNTERS].duplicates > 0  # the unanswered batch, sent again
    finally:
        await proxy.stop()
        await headoffice.stop()
