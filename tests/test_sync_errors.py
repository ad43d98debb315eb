"""When head office cannot be used, store IT reads why, and the tills keep selling.

Wrong token, expired certificate, a storm of 500s, a head office too slow to
answer: each shows as a plain error in /healthz, /metrics and `edge status`,
while a till sells through the websocket as usual; once the cause is gone,
sync catches up by itself. (Scan latency with sync running is measured in
bench/sync.py, not asserted here.) Run against SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import uuid
from pathlib import Path

from conftest import EDGE, NodeUnderTest, node_of
from headoffice_support import CertificateAuthority, FaultProxy, HeadOffice, store_node, wait_for
from test_sync_outage import BAGUETTE, health, own_events, sell_in_bulk, settled

from edge.headoffice.protocol import PULL_PATH

STORE = "demo-boulangerie"


async def failing_with(node: NodeUnderTest, words: str) -> dict:
    """Wait until sync fails (at least twice: it retries) with `words` in its error."""
    sync = node_of(node).sync

    def failed() -> bool:
        # Failing now: a round that failed (on a loaded machine a pull can pass 0.3 s too)
        # may be followed by one that succeeds, which keeps the last error.
        return sync.state == "failing" and sync.counters.errors >= 2 \
            and words in (sync.last_error or "")

    await wait_for(failed, 30, f"sync to fail with {words!r}")
    state = await health(node)
    assert state["state"] == "failing"
    assert words in state["last_error"]
    return state


async def sells(node: NodeUnderTest) -> None:
    """A till scans and sells, whatever sync is going through."""
    async with node.till() as till:
        product = await till.call("catalogue/lookup", barcode=BAGUETTE)
        assert product["price"] == 120
        basket = str(uuid.uuid4())
        await till.call("basket/add", basket_id=basket, line_id=str(uuid.uuid4()),
                        barcode=BAGUETTE)
        sale = await till.call("sale/complete", basket_id=basket,
                               tenders=[{"method": "cash", "amount": 200}])
        assert sale["change"] == 80


async def edge_status(node: NodeUnderTest) -> str:
    config = node.data_dir.parent / "edge.toml"
    done = await asyncio.to_thread(subprocess.run, [*EDGE, "status", "--config", str(config)],
                                   capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


async def test_a_wrong_token_is_said_plainly_and_fixing_it_resumes(
    tmp_path: Path, headoffice_db: str, ca: CertificateAuthority
) -> None:
    headoffice = HeadOffice(headoffice_db, ca)
    server = await headoffice.start()
    try:
        token = await server.storage.add_store(STORE)
        async with store_node(tmp_path / "a", headoffice.url, "not-the-token", ca) as node:
            await failing_with(node, "head office refused this store's token")
            await sells(node)
            status = await edge_status(node)
            assert re.search(r"^  state +failing$", status, re.MULTILINE)
            assert "refused this store's token" in status
            assert "not-the-token" not in status and token not in status
            async with node.session.get(f"{node.url}/metrics") as response:
                metrics = await response.text()
            assert "edge_headoffice_up 0\n" in metrics
            assert "edge_headoffice_errors_total 0\n" not in metrics
            # Store IT puts the right token in place: no restart needed.
            (node.data_dir.parent / "headoffice.token").write_text(token)
            await wait_for(lambda: settled(node), 30, "sync to resume")
            assert re.search(r"^  state +ok$", await edge_status(node), re.MULTILINE)
    finally:
        await headoffice.stop()


async def test_an_expired_certificate_is_refused_and_named(
    tmp_path: Path, headoffice_db: str, ca: CertificateAuthority
) -> None:
    headoffice = HeadOffice(headoffice_db, ca, expired=True)
    server = await headoffice.start()
    try:
        token = await server.storage.add_store(STORE)
        async with store_node(tmp_path / "a", headoffice.url, token, ca) as node:
            await failing_with(node, "certificate has expired")
            await sells(node)
            assert await server.storage.events(STORE) == []  # nothing went to it
    finally:
        await headoffice.stop()


async def test_a_certificate_from_another_ca_is_refused(
    tmp_path: Path, headoffice_db: str, ca: CertificateAuthority
) -> None:
    stranger = CertificateAuthority(tmp_path / "stranger", "Some other CA")
    headoffice = HeadOffice(headoffice_db, stranger)
    server = await headoffice.start()
    try:
        token = await server.storage.add_store(STORE)
        async with store_node(tmp_path / "a", headoffice.url, token, ca) as node:
            await failing_with(node, "TLS certificate is not trusted")
    finally:
        await headoffice.stop()


async def test_a_storm_of_500s_then_a_slow_head_office(
    tmp_path: Path, headoffice_db: str, ca: CertificateAuthority
) -> None:
    headoffice = HeadOffice(headoffice_db, ca)
    server = await headoffice.start()
    proxy = FaultProxy(headoffice.url, ca)
    await proxy.start()
    try:
        token = await server.storage.add_store(STORE)
        proxy.always = "error500"
        async with store_node(tmp_path / "a", proxy.url, token, ca, answer_within=0.3) as node:
            sync = node_of(node).sync
            await failing_with(node, "head office failed: HTTP 500")
            await wait_for(lambda: sync.counters.errors >= 5, 30, "retries with backoff")
            await sells(node)
            proxy.always = None
            await wait_for(lambda: settled(node), 30, "sync to recover from the storm")

            proxy.slow_seconds, proxy.always = 2.0, "slow"
            await sell_in_bulk(node_of(node).journal, ["T11"], 10)
            await failing_with(node, "head office did not answer within 0.3 s")
            await sells(node)
            proxy.always = None
            await wait_for(lambda: settled(node), 30, "sync to recover from the slowness")
            received = await server.storage.events(STORE, node_of(node).node_id)
            assert [e.seq for e in received] == list(range(1, len(received) + 1))
    finally:
        await proxy.stop()
        await headoffice.stop()


async def test_a_failing_catalogue_pull_never_blocks_the_push(
    tmp_path: Path, headoffice_db: str, ca: CertificateAuthority
) -> None:
    headoffice = HeadOffice(headoffice_db, ca)
    server = await headoffice.start()
    proxy = FaultProxy(headoffice.url, ca)
    proxy.only_path, proxy.always = PULL_PATH, "error500"  # every pull fails, pushes pass
    await proxy.start()
    try:
        token = await server.storage.add_store(STORE)
        async with store_node(tmp_path / "a", proxy.url, token, ca) as node:
            journal = node_of(node).journal
            await sell_in_bulk(journal, ["T11"], 200)
            await sells(node)

            async def all_received() -> bool:
                held = await own_events(journal)
                return len(await server.storage.events(STORE, journal.origin)) == len(held)

            await wait_for(all_received, 30, "the sales to reach head office")
            # ... while every round still says the pull failed (the sale's
            # receipt events, written as it prints, follow them there too).
            await failing_with(node, "head office failed: HTTP 500 (catalogue pull")

            async def drained() -> bool:
                state = await health(node)
                return state["backlog_events"] == 0 and state["state"] == "failing"

            await wait_for(drained, 30, "the backlog to drain while the pull fails")
            proxy.always = None
            await wait_for(lambda: settled(node), 30, "the pull to recover")
    finally:
        await proxy.stop()
        await headoffice.stop()
