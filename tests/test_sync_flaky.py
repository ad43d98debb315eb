"""A head office failing one request in three still gets the backlog at two thirds of the pace.

The same backlog drains twice, through a proxy that passes everything, then
through one that fails every third request (pulls and pushes alike). A
success resets the backoff, so the flaky run never waits (a lone failure is
retried at once) and needs at most twice the requests of the healthy one:
at least half the healthy rate, counted in requests rather than seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

from conftest import node_of
from headoffice_support import CertificateAuthority, FaultProxy, HeadOffice, store_node, wait_for
from test_sync_outage import own_events, sell_in_bulk

from edge.sync.client import Counters, SyncClient, Timing

STORE = "demo-boulangerie"
SALES = 1500
BATCH_EVENTS = 50

Held = tuple[str, list[tuple[int, str]]]  # a node's origin and its own events (seq, hash)


async def drain(folder: Path, proxy: FaultProxy, token: str,
                ca: CertificateAuthority) -> tuple[list[str], Counters, Held]:
    """(what the proxy did to each request, the client's counters, the node's own events)."""
    async with store_node(folder, proxy.url, token, ca, enabled=False,
                          batch_events=BATCH_EVENTS) as node:
        journal = node_of(node).journal
        await sell_in_bulk(journal, ["T11", "T12"], SALES)
        client = SyncClient(journal, node_of(node).config)
        client.timing = Timing(first_retry=0.05, max_retry=0.3, push_delay=0.01,
                               pull_every=60, timeout=10)
        await client.open()
        proxy.seen.clear()
        running = asyncio.create_task(client.run())
        try:
            await wait_for(lambda: _drained(client), 120, "the backlog to drain")
        finally:
            running.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await running
            await client.close()
        held = [(event.seq, event.hash) for event in await own_events(journal)]
        return list(proxy.seen), client.counters, (journal.origin, held)


async def _drained(client: SyncClient) -> bool:
    return (await client.backlog())[0] == 0


async def test_a_success_resets_the_backoff_and_a_flaky_head_office_drains_at_half_pace(
    tmp_path: Path, headoffice_db: str, ca: CertificateAuthority
) -> None:
    headoffice = HeadOffice(headoffice_db, ca)
    server = await headoffice.start()
    proxy = FaultProxy(headoffice.url, ca)
    proxy.only_path = None  # every request: pulls and pushes
    await proxy.start()
    try:
        token = await server.storage.add_store(STORE)
        healthy, _, _ = await drain(tmp_path / "healthy", proxy, token, ca)
        assert set(healthy) == {"pass"}

        proxy.faults = ["pass", "pass", "error500"] * 1000
        flaky, counters, held = await drain(tmp_path / "flaky", proxy, token, ca)
        failed = flaky.count("error500")
        assert failed >= len(healthy) // 3  # one request in three did fail
        # At least half the healthy rate: a failure costs its own request, nothing more.
        assert len(flaky) <= 2 * len(healthy), (len(flaky), len(healthy))
        # Never two failures in a row, so never a wait: the backoff never grew.
        assert counters.backoffs == 0 and counters.longest_backoff == 0
        assert counters.failures == 0 and counters.errors >= failed

        origin, events = held
        received = await server.storage.events(STORE, origin)
        assert [(e.seq, e.hash) for e in received] == events  # every event, once
        assert await server.storage.conflicts(STORE) == []
    finally:
        await proxy.stop()
        await headoffice.stop()
