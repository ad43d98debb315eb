"""Head office keeps each event once, checks every chain on arrival, and lets in only stores.

Storage and HTTP, against SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio
import dataclasses
import gzip
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import orjson
import pytest
from conftest import node_of
from headoffice_support import CertificateAuthority, HeadOffice, store_node, wait_for
from signing_support import chain as signed_chain
from signing_support import identity, rehashed, store_ca
from test_sync_outage import own_events, sell_in_bulk, settled

from edge.headoffice.catalogue import catalogue_changes, delist, import_catalogue_csv
from edge.headoffice.protocol import PULL_PATH, PUSH_PATH
from edge.headoffice.server import HeadOfficeServer
from edge.headoffice.storage import MOST_NODES_NOTED, HeadOfficeStorage
from edge.journal.chain import Event, canonical_json
from edge.journal.signing import sign
from edge.selling.barcodes import gtin_check_digit
from edge.selling.catalogue_batches import one_by_one
from edge.trust.certificates import cert_pem

STORE = "paris-11"


def chain(origin: str, count: int) -> list[Event]:
    """A node of the store's chain: its certificate (#1), then `count` sales."""
    return signed_chain(origin, count, store_id=STORE)


def positioned(events: list[Event], first: int = 1) -> list[tuple[int, Event]]:
    return list(enumerate(events, start=first))


@pytest.fixture
async def storage(headoffice_db: str) -> AsyncIterator[HeadOfficeStorage]:
    storage = HeadOfficeStorage(headoffice_db)
    await storage.open()
    await storage.add_store(STORE, "Paris 11")
    await storage.pin_store_ca(STORE, cert_pem(store_ca(STORE)[1]))  # as its first push does
    yield storage
    await storage.close()


async def test_each_event_is_kept_once_and_repeats_are_acknowledged(
    storage: HeadOfficeStorage,
) -> None:
    events = chain("n1", 5)
    first = await storage.receive(STORE, "n1", positioned(events[:3]))
    assert (first.acknowledged, first.stored, first.duplicates) == (3, 3, 0)
    again = await storage.receive(STORE, "n1", positioned(events[:4]))
    assert (again.acknowledged, again.stored, again.duplicates) == (4, 1, 3)
    # The same events forwarded by another node, at its own positions.
    forwarded = await storage.receive(STORE, "n2", positioned(events, first=70))
    assert (forwarded.acknowledged, forwarded.stored, forwarded.duplicates) == (75, 2, 4)
    assert await storage.events(STORE) == events


async def test_a_conflicting_event_is_parked_not_stored_and_the_rest_goes_on(
    storage: HeadOfficeStorage,
) -> None:
    events = chain("n1", 4)
    others = chain("n2", 2)
    await storage.receive(STORE, "n1", positioned(events[:2]))
    forged = dataclasses.replace(events[1], body={"id": "s1", "total": 0})  # hash no longer fits
    fork = chain("n1", 2)[1]  # a well-formed rival of n1#2: a node restored from a backup?
    batch = [(10, forged), (11, fork), (12, others[0]), (13, events[2]), (14, others[1])]
    receipt = await storage.receive(STORE, "n1", batch)
    assert receipt.acknowledged == 14 and receipt.gap is None
    assert receipt.conflicts == ["n1#2: hash does not match its content",
                                 "n1#2: differs from the event held here"]
    assert receipt.stored == 3
    assert await storage.events(STORE, "n1") == events[:3]
    assert await storage.events(STORE, "n2") == others[:2]
    parked = await storage.conflicts(STORE)
    assert {(row["origin"], row["seq"], row["hash"]) for row in parked} == {
        ("n1", 2, forged.hash), ("n1", 2, fork.hash)}


async def test_a_tampered_next_event_is_refused(storage: HeadOfficeStorage) -> None:
    events = chain("n1", 2)
    await storage.receive(STORE, "n1", positioned(events[:1]))
    tampered = dataclasses.replace(events[1], body={"id": "s2", "total": 999})
    receipt = await storage.receive(STORE, "n1", [(2, tampered)])
    assert receipt.stored == 0
    assert receipt.conflicts == ["n1#2: hash does not match its content"]
    assert await storage.events(STORE) == events[:1]


async def test_a_gap_stops_the_batch_and_asks_for_what_is_missing(
    storage: HeadOfficeStorage,
) -> None:
    events = chain("n1", 6)
    await storage.receive(STORE, "n1", positioned(events[:2]))
    receipt = await storage.receive(STORE, "n1", [(20, events[2]), (21, events[4]),
                                                  (22, events[5])])
    assert receipt.acknowledged == 20 and receipt.stored == 1
    assert receipt.gap is not None and receipt.gap["expected_seq"] == 4
    assert len(await storage.events(STORE)) == 3


async def test_two_nodes_pushing_the_same_origin_at_once_store_it_once(
    storage: HeadOfficeStorage,
) -> None:
    events = chain("n1", 300)
    receipts = await asyncio.gather(*(storage.receive(STORE, node, positioned(events))
                                      for node in ("n1", "n2", "n3")))
    assert sum(r.stored for r in receipts) == 301  # its certificate, then 300 sales
    assert sum(r.duplicates for r in receipts) == 602
    assert await storage.events(STORE) == events


async def test_a_sale_recorded_by_two_nodes_is_one_sale(storage: HeadOfficeStorage) -> None:
    # A till resent to node n2 a sale n1 acknowledged and never passed on.
    first, again = chain("n1", 3), chain("n2", 1)
    again[1] = sign(rehashed(again[1], body={"id": "s2", "total": 2}),
                    identity("n2", STORE).signing_key)
    await storage.receive(STORE, "n2", positioned(again))
    await storage.receive(STORE, "n1", positioned(first))
    assert len(await storage.events(STORE)) == 6
    assert await storage.sale_ids(STORE) == ["s1", "s2", "s3"]


def product_ids(event: Event) -> list[str]:
    """The products a catalogue event names, one at a time or a batch."""
    return [body["id"] for _, body in one_by_one(event.type, event.body)]


async def test_catalogue_imports_only_what_changed(storage: HeadOfficeStorage) -> None:
    header = "id,barcode,name,price,vat_rate,category\n"
    one = header + "p1,2000001000014,Baguette,120,550,Pain\np2,2000002000013,Croissant,115,550,\n"
    assert str(await import_catalogue_csv(storage, one)) == "2 new, 0 changed, 0 delisted"
    assert str(await import_catalogue_csv(storage, one)) == "0 new, 0 changed, 0 delisted"
    partial = header + "p3,2000003000012,Pain au chocolat,125,550,Viennoiserie\n"
    summary = await import_catalogue_csv(storage, partial, keep_missing=True)
    assert str(summary) == "1 new, 0 changed, 0 delisted"
    assert await delist(storage, ["p2", "p2", "nope"]) == 1
    # Every store reads catalogue batches (none said otherwise): a batch per change.
    events = await storage.catalogue_after(0, 100)
    assert [(e.seq, e.type, product_ids(e)) for e in events] == [
        (1, "origin_certified", []), (2, "products_listed", ["p1", "p2"]),
        (3, "products_listed", ["p3"]), (4, "products_delisted", ["p2"])]
    assert events[0].body == {"role": "headoffice", "public_key": storage.public_key}
    assert all(e.origin == storage.origin and e.sig for e in events)
    assert [e.seq for e in await storage.catalogue_after(2, 1)] == [3]
    # A node whose edge does not read them (it said so at its pull, as an edge from before
    # does by saying nothing): one product an event, while another node reads them.
    await storage.note_edition(STORE, "n1", reads_batches=True)
    await storage.note_edition(STORE, "n2", reads_batches=False)
    dearer = one.replace("Baguette,120", "Baguette,125").replace("Croissant,115", "Croissant,116")
    assert str(await import_catalogue_csv(storage, dearer)) == "0 new, 2 changed, 1 delisted"
    assert [(e.type, product_ids(e)) for e in await storage.catalogue_after(4, 100)] == [
        ("product_upserted", ["p1"]), ("product_upserted", ["p2"]),
        ("product_delisted", ["p3"])]
    # Once it is upgraded, batches again.
    await storage.note_edition(STORE, "n2", reads_batches=True)
    assert await delist(storage, ["p1", "p2"]) == 2
    assert [e.type for e in await storage.catalogue_after(7, 100)] == ["products_delisted"]
    # Relisting a delisted product is a change too.
    assert catalogue_changes([{"id": "p2", "barcode": "2000002000013", "name": "Croissant",
                               "price": 115, "vat_rate": 550, "category": ""}],
                             {p["id"]: p for p in await storage.products()},
                             keep_missing=True)[0][0] == "product_upserted"


async def test_a_store_naming_node_after_node_is_kept_bounded(
    storage: HeadOfficeStorage,
) -> None:
    # A store's token could name a new node at every pull; what head office keeps of
    # them is bounded, and one more said "no batches" past the bound changes nothing.
    for number in range(MOST_NODES_NOTED):
        await storage.note_edition(STORE, f"n{number}", reads_batches=True)
    await storage.note_edition(STORE, "one-too-many", reads_batches=False)
    header = "id,barcode,name,price,vat_rate,category\n"
    await import_catalogue_csv(storage, header + "p1,2000001000014,Baguette,120,550,Pain\n")
    assert [e.type for e in await storage.catalogue_after(1, 10)] == ["products_listed"]


async def test_a_pull_is_bounded_in_bytes_and_says_more_follow(
    storage: HeadOfficeStorage,
) -> None:
    header = "id,barcode,name,price,vat_rate,category\n"
    codes = [f"200{n:09d}" for n in range(250)]
    await import_catalogue_csv(storage, header + "".join(
        f"p{n},{code}{gtin_check_digit(code)},Produit numéro {n},{100 + n},550,Rayon\n"
        for n, code in enumerate(codes)))
    whole = await storage.catalogue_after(0, 100)
    assert [product_ids(e)[:1] for e in whole[1:]] == [["p0"], ["p100"], ["p200"]]
    one_batch = len(canonical_json(whole[1].body))
    got: list[Event] = []
    more = True
    while more:  # a few bodies' worth at a time, at least one event, until none is left
        _, events, more = await storage.catalogue_for(
            {storage.origin: got[-1].seq if got else 0}, {}, 100, max_bytes=one_batch + 10)
        assert 1 <= len(events) <= 2
        got += events
    assert got == whole


# HTTP: only stores get in, and only well-formed batches

@pytest.fixture
async def headoffice_server(
    headoffice_db: str, ca: CertificateAuthority
) -> AsyncIterator[tuple[HeadOfficeServer, str, aiohttp.ClientSession]]:
    headoffice = HeadOffice(headoffice_db, ca)
    server = await headoffice.start()
    token = await server.storage.add_store(STORE)
    connector = aiohttp.TCPConnector(ssl=ca.client_context())
    async with aiohttp.ClientSession(connector=connector) as session:
        yield server, token, session
    await headoffice.stop()


async def post(session: aiohttp.ClientSession, server: HeadOfficeServer, path: str,
               body: bytes, **headers: str) -> tuple[int, dict]:
    async with session.post(f"https://127.0.0.1:{server.port}{path}", data=body,
                            headers=headers) as response:
        return response.status, await response.json()


async def test_only_a_store_with_its_token_gets_in(headoffice_server) -> None:
    server, token, session = headoffice_server
    body = orjson.dumps({"vector": {}})
    status, answer = await post(session, server, PULL_PATH, body)
    assert (status, answer["error"]["code"]) == (401, "invalid_token")
    status, answer = await post(session, server, PULL_PATH, body, Authorization="Bearer nope")
    assert (status, answer["error"]["code"]) == (401, "invalid_token")
    status, answer = await post(session, server, PULL_PATH, body,
                                Authorization=f"Bearer {token}", **{"Edge-Store": "lyon-2"})
    assert status == 403 and "belongs to store 'paris-11'" in answer["error"]["message"]
    status, answer = await post(session, server, PULL_PATH, body, Authorization=f"Bearer {token}")
    assert status == 200 and answer == {"origin": server.storage.origin, "events": [],
                                        "more": False, "held": {}}
    # A new token replaces the old one.
    new_token = await server.storage.add_store(STORE)
    status, _ = await post(session, server, PULL_PATH, body, Authorization=f"Bearer {token}")
    assert status == 401
    status, _ = await post(session, server, PULL_PATH, body,
                           Authorization=f"Bearer {new_token}")
    assert status == 200


@pytest.mark.parametrize(("body", "words"), [
    (b"not json", "not JSON"),
    (b'{"node": "n1", "events": []}', "1 to 5000 events"),
    (b'{"events": [{"seq": 1}]}', "'node'"),
    (b'{"node": "n1", "events": [{"position": 1, "seq": 1}]}', "events[0] is not an event"),
])
async def test_a_malformed_batch_is_refused_whole(headoffice_server, body: bytes,
                                                  words: str) -> None:
    server, token, session = headoffice_server
    status, answer = await post(session, server, PUSH_PATH, gzip.compress(body),
                                Authorization=f"Bearer {token}", **{"Content-Encoding": "gzip"})
    assert status == 400 and words in answer["error"]["message"]


async def test_positions_must_increase_within_a_batch(headoffice_server) -> None:
    server, token, session = headoffice_server
    items = [{"position": 5, **e.as_dict()} for e in chain("n1", 2)]
    body = orjson.dumps({"node": "n1", "events": items})
    status, answer = await post(session, server, PUSH_PATH, body, Authorization=f"Bearer {token}")
    assert status == 400 and "positions must increase" in answer["error"]["message"]
    assert await server.storage.events(STORE) == []


async def test_a_head_office_restored_from_an_old_backup_gets_the_missing_events_again(
    tmp_path: Path, headoffice_db: str, ca: CertificateAuthority
) -> None:
    headoffice = HeadOffice(headoffice_db, ca)
    server = await headoffice.start()
    try:
        token = await server.storage.add_store("demo-boulangerie")
        async with store_node(tmp_path / "a", headoffice.url, token, ca) as node:
            journal = node_of(node).journal
            await sell_in_bulk(journal, ["T11"], 200)
            await wait_for(lambda: settled(node), 30, "the first upload")
            async with server.storage.db.transaction() as tx:  # the restore loses the tail
                await tx.execute("DELETE FROM events WHERE seq > 100")
            await sell_in_bulk(journal, ["T11"], 20)
            await wait_for(lambda: settled(node), 30, "the node to fill the hole")
            received = await server.storage.events("demo-boulangerie", journal.origin)
            assert [(e.seq, e.hash) for e in received] == [
                (e.seq, e.hash) for e in await own_events(journal)]
    finally:
        await headoffice.stop()


async def test_a_store_claiming_over_and_over_that_head_office_lost_events_cuts_it_once(
    storage: HeadOfficeStorage,
) -> None:
    await import_catalogue_csv(
        storage, "id,barcode,name,price,vat_rate,category\n"
                 "p0001,2000001000014,Baguette tradition,120,550,Pain\n", keep_missing=True)
    first = storage.origin
    # Unsigned events mean a store's word is all head office has: a replayed or
    # lying pull may make it cut its chain once, never again and again.
    for _ in range(5):
        origin, _, _ = await storage.catalogue_for({storage.origin: 10**9}, {}, 100)
    origins = await storage.origins()
    assert [o["predecessor"] for o in origins] == ["", first]
    assert origin == origins[1]["origin"]
