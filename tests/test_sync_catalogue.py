"""A catalogue change at head office reaches every till; a bad CSV changes nothing.

Head office loads catalogue CSVs; each node pulls the events and applies them
(chain-checked); the tills of both nodes hear `product_upserted` /
`product_delisted` and their lookups answer the new prices. Run against
SQLite and PostgreSQL.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
from conftest import CommandFailed, Till, node_of
from headoffice_support import CertificateAuthority, HeadOffice, store_node, wait_for

from edge.headoffice.catalogue import import_catalogue_csv
from edge.selling.barcodes import gtin_check_digit
from edge.selling.catalogue import CatalogueError
from edge.selling.catalogue_batches import one_by_one

STORE = "demo-boulangerie"
HEADER = "id,barcode,name,price,vat_rate,category\n"
BAGUETTE = "2000001000014"


def gtin(number: int) -> str:
    body = f"210000{number:06d}"
    return body + str(gtin_check_digit(body))


TARTE, ECLAIR = gtin(1), gtin(2)
V1 = HEADER + (f"p0001,{BAGUETTE},Baguette tradition,120,550,Pain\n"
               f"ho-1,{TARTE},Tarte aux pommes,1850,550,Pâtisserie\n")
# The baguette goes up, the tarte is gone (not in the file), an éclair comes in.
V2 = HEADER + (f"p0001,{BAGUETTE},Baguette tradition,130,550,Pain\n"
               f"ho-2,{ECLAIR},Éclair au café,290,550,Pâtisserie\n")
BAD = HEADER + (f"p0001,{BAGUETTE},Baguette tradition,1,550,Pain\n"
                "ho-3,2100000000039,Mauvais code,100,550,Pâtisserie\n"
                f"ho-4,{gtin(4)},Prix en euros,2.50,550,Pâtisserie\n")


async def heard(till: Till, type_: str, product_id: str, **body: object) -> bool:
    await till.call("ping")  # collects what was pushed meanwhile
    return any(message["event"]["type"] == type_ and message["event"]["body"]["id"] == product_id
               and all(message["event"]["body"].get(k) == v for k, v in body.items())
               for message in till.events)


async def finds(till: Till, barcode: str) -> bool:
    try:
        await till.call("catalogue/lookup", barcode=barcode)
    except CommandFailed:
        return False
    return True


async def test_a_catalogue_change_reaches_every_till_and_a_bad_csv_changes_nothing(
    tmp_path: Path, headoffice_db: str, ca: CertificateAuthority
) -> None:
    headoffice = HeadOffice(headoffice_db, ca)
    server = await headoffice.start()
    try:
        storage = server.storage
        token = await storage.add_store(STORE)
        assert str(await import_catalogue_csv(storage, V1)) == "2 new, 0 changed, 0 delisted"
        async with store_node(tmp_path / "a", headoffice.url, token, ca) as a, \
                store_node(tmp_path / "b", headoffice.url, token, ca) as b, \
                contextlib.AsyncExitStack() as stack:
            tills = [await stack.enter_async_context(node.till()) for node in (a, a, b)]
            for till in tills:
                await till.call("subscribe_events",
                                event_types=["product_upserted", "product_delisted"])
            for till in tills:
                await wait_for(lambda till=till: finds(till, TARTE), 30, "the first catalogue")
                assert (await till.call("catalogue/lookup", barcode=TARTE))["price"] == 1850

            summary = await import_catalogue_csv(storage, V2)
            assert str(summary) == "1 new, 1 changed, 1 delisted"
            for till in tills:
                await wait_for(lambda till=till: heard(till, "product_delisted", "ho-1"),
                               30, "the delisting to reach the till")
                assert await heard(till, "product_upserted", "p0001", price=130)
                assert await heard(till, "product_upserted", "ho-2", name="Éclair au café")
                assert (await till.call("catalogue/lookup", barcode=BAGUETTE))["price"] == 130
                assert (await till.call("catalogue/lookup", barcode=ECLAIR))["id"] == "ho-2"
                with pytest.raises(CommandFailed) as gone:
                    await till.call("catalogue/lookup", barcode=TARTE)
                assert gone.value.code == "unknown_barcode"

            # A CSV with bad rows: every bad line named, nothing imported anywhere.
            catalogue_before = await storage.catalogue_after(0, 1000)
            products_before = await storage.products()
            with pytest.raises(CatalogueError) as bad:
                await import_catalogue_csv(storage, BAD)
            assert bad.value.problems == [
                "line 3: barcode '2100000000039' is not a valid EAN/GTIN",
                "line 4: price '2.50' is not a whole number of cents",
            ]
            assert await storage.catalogue_after(0, 1000) == catalogue_before
            assert await storage.products() == products_before
            syncs = [node_of(node).sync for node in (a, b)]
            rounds = [sync.counters.rounds for sync in syncs]
            await wait_for(lambda: all(s.counters.rounds >= r + 2 for s, r in zip(syncs, rounds,
                                                                                 strict=True)),
                           30, "two more sync rounds")
            assert (await tills[0].call("catalogue/lookup", barcode=BAGUETTE))["price"] == 130
            # Every change pulled once, a batch's products each (the origin's certificate
            # is no change).
            changes = sum(len(one_by_one(e.type, e.body)) for e in catalogue_before)
            assert changes == 5  # 2 listed, then 1 new, 1 changed, 1 delisted
            assert [sync.counters.pulled for sync in syncs] == [changes] * 2
    finally:
        await headoffice.stop()
