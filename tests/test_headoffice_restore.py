"""Head office restored from an old backup: nothing a store sold is lost, no price is skipped.

The drill: a store (node A, holding the events of node R, retired since) syncs
with head office; head office's database is copied while it is stopped; the
store sells on and head office changes a price; head office is stopped and
its old copy put back, and a new price is entered there before it starts.
Head office has then lost sales it had acknowledged (A's and the retired
R's) and rewrites its catalogue chain at seqs the store already holds.

Afterwards: head office noticed (its catalogue continues under a new origin,
the old chain cut and still verifiable), the store sells at the price
entered after the restore, every sale is at head office exactly once, and
nothing sits in conflicts. Run against SQLite and PostgreSQL.
"""

from __future__ import annotations

import contextlib
import shutil
import uuid
from pathlib import Path

from conftest import NodeUnderTest, node_of
from headoffice_support import CertificateAuthority, HeadOffice, store_node, wait_for
from test_sync_outage import forward, health, sell_in_bulk, settled

from edge.headoffice.catalogue import import_catalogue_csv
from edge.journal.chain import Event, chain_problems
from edge.journal.store import Journal
from edge.selling.catalogue_batches import one_by_one

STORE = "demo-boulangerie"
BAGUETTE = "2000001000014"
HEADER = "id,barcode,name,price,vat_rate,category\n"


def catalogue(baguette_price: int) -> str:
    return HEADER + f"p0001,{BAGUETTE},Baguette tradition,{baguette_price},550,Pain\n"


class Backup:
    """A copy of head office's database taken while it is stopped, and put back later."""

    def __init__(self, db_url: str, folder: Path) -> None:
        self.db_url, self.folder = db_url, folder

    async def take(self) -> None:
        if self.db_url.startswith("sqlite://"):
            self.folder.mkdir()
            for file in self._sqlite_files():
                shutil.copy2(file, self.folder / file.name)
        else:
            await self._postgres(f"CREATE DATABASE {self._name}_backup TEMPLATE {self._name}")

    async def restore(self) -> None:
        if self.db_url.startswith("sqlite://"):
            for file in self._sqlite_files():
                file.unlink()
            for file in self.folder.iterdir():
                shutil.copy2(file, Path(self.db_url.removeprefix("sqlite://")).parent / file.name)
        else:
            await self._postgres(f"DROP DATABASE {self._name} WITH (FORCE)")
            await self._postgres(f"CREATE DATABASE {self._name} TEMPLATE {self._name}_backup")

    async def drop(self) -> None:
        if not self.db_url.startswith("sqlite://"):
            await self._postgres(f"DROP DATABASE IF EXISTS {self._name}_backup WITH (FORCE)")

    def _sqlite_files(self) -> list[Path]:
        path = Path(self.db_url.removeprefix("sqlite://"))
        return [file for file in path.parent.glob(path.name + "*") if file.is_file()]

    @property
    def _name(self) -> str:
        return self.db_url.rsplit("/", 1)[1]

    async def _postgres(self, sql: str) -> None:
        import asyncpg

        admin = await asyncpg.connect(self.db_url.rsplit("/", 1)[0] + "/postgres")
        try:
            await admin.execute(sql)
        finally:
            await admin.close()


async def sells_at(node: NodeUnderTest, cents: int) -> bool:
    async with node.till() as till:
        return (await till.call("catalogue/lookup", barcode=BAGUETTE))["price"] == cents


async def sell_baguette(node: NodeUnderTest) -> dict:
    async with node.till() as till:
        basket = str(uuid.uuid4())
        await till.call("basket/add", basket_id=basket, line_id=str(uuid.uuid4()),
                        barcode=BAGUETTE)
        return await till.call("sale/complete", basket_id=basket,
                               tenders=[{"method": "cash", "amount": 500}])


def sale_ids(events: list[Event]) -> list[str]:
    return [event.body["id"] for event in events if event.type == "sale_completed"]


async def test_head_office_restored_from_an_old_backup_loses_nothing_and_skips_no_price(
    tmp_path: Path, headoffice_db: str, ca: CertificateAuthority
) -> None:
    headoffice = HeadOffice(headoffice_db, ca)
    backup = Backup(headoffice_db, tmp_path / "backup")
    server = await headoffice.start()
    try:
        token = await server.storage.add_store(STORE)
        await import_catalogue_csv(server.storage, catalogue(120), keep_missing=True)
        async with store_node(tmp_path / "a", headoffice.url, token, ca) as a, \
                contextlib.AsyncExitStack() as retired:
            journal = node_of(a).journal
            # R: a node of the store that sells, passes its events to A, and is retired.
            r = await retired.enter_async_context(
                store_node(tmp_path / "r", headoffice.url, token, ca, enabled=False))
            r_journal: Journal = node_of(r).journal
            await sell_in_bulk(r_journal, ["T21"], 150)
            await sell_in_bulk(journal, ["T11"], 150)
            await forward(r_journal, journal)
            await wait_for(lambda: settled(a), 60, "the first day to reach head office")

            await headoffice.stop()
            await backup.take()  # yesterday's backup
            server = await headoffice.start()

            # The day goes on: a new price, sales on both nodes, all synced.
            await import_catalogue_csv(server.storage, catalogue(130), keep_missing=True)
            await wait_for(lambda: sells_at(a, 130), 60, "the price of 1.30 to reach the till")
            assert (await sell_baguette(a))["change"] == 370
            await sell_in_bulk(r_journal, ["T21"], 150)
            await sell_in_bulk(journal, ["T11"], 150)
            await forward(r_journal, journal)
            r_origin = r_journal.origin
            await retired.aclose()  # R is gone for good: it will never send anything again
            await wait_for(lambda: settled(a), 60, "the second day to reach head office")
            old_origin = server.storage.origin

            # Head office is restored from yesterday's backup, and a new price is entered
            # there before it serves again: it writes it at a seq the store already holds.
            await headoffice.stop()
            await backup.restore()
            storage = await headoffice.open_storage()
            assert storage.origin == old_origin
            await import_catalogue_csv(storage, catalogue(140), keep_missing=True)
            await storage.close()
            server = await headoffice.start()

            # The store gets the new price: never skipped, never stuck on a broken chain.
            await wait_for(lambda: sells_at(a, 140), 60, "the price of 1.40 to reach the till")
            sale = await sell_baguette(a)
            assert sale["lines"][0]["unit_price"] == 140 and sale["change"] == 360

            # Head office asked again for every sale it lost, the retired node's too.
            origins_sold = (journal.origin, r_origin)

            async def all_back() -> bool:
                for origin in origins_sold:
                    events = await own_events_of(journal, origin)
                    received = await server.storage.events(STORE, origin)
                    if [(e.seq, e.hash) for e in received] != [(e.seq, e.hash) for e in events]:
                        return False
                return True

            await wait_for(lambda: settled(a), 60, "the store to settle")
            await wait_for(all_back, 60, "head office to hold every event again")
            held = [await own_events_of(journal, origin) for origin in origins_sold]
            sold = sale_ids([event for events in held for event in events])
            assert len(sold) == len(set(sold)) == 150 * 4 + 2
            assert await server.storage.sale_ids(STORE) == sorted(sold)
            assert await server.storage.conflicts(STORE) == []

            # Head office's catalogue continues under a new origin; the old chain was cut
            # where the restored database stood, and both chains verify.
            new_origin = server.storage.origin
            assert new_origin != old_origin and new_origin.startswith("headoffice-")
            origins = await server.storage.origins()
            assert [(o["origin"], o["predecessor"]) for o in origins] == [
                (old_origin, ""), (new_origin, old_origin)]
            assert "a store holds another" in origins[1]["reason"]
            history = await server.storage.catalogue_history()
            assert set(history) == {old_origin, new_origin}
            assert origins[1]["cut_seq"] == history[old_origin][-1].seq
            for events in history.values():
                assert chain_problems(events) == []
            assert (await health(a))["catalogue_origin"] == new_origin
            # The store keeps, intact, the old chain's event head office lost (1.30), where
            # the restored head office wrote another (1.40) before it knew.
            kept = await own_events_of(journal, old_origin)
            assert chain_problems(kept) == []
            assert kept[:-1] == history[old_origin][:-1]
            assert kept[-1].seq == history[old_origin][-1].seq
            assert (price_in(kept[-1]), price_in(history[old_origin][-1])) == (130, 140)
    finally:
        await headoffice.stop()
        await backup.drop()


def price_in(event: Event) -> int:
    """The price a one-product listing gives (a batch of one here, or one product)."""
    ((_, product),) = one_by_one(event.type, event.body)
    return product["price"]


async def own_events_of(journal: Journal, origin: str) -> list[Event]:
    return [event async for event in journal.events(origin)]



async def test_a_restore_is_noticed_with_no_new_price_and_a_retired_nodes_sales_come_back(
    tmp_path: Path, headoffice_db: str, ca: CertificateAuthority
) -> None:
    headoffice = HeadOffice(headoffice_db, ca)
    backup = Backup(headoffice_db, tmp_path / "backup")
    server = await headoffice.start()
    try:
        token = await server.storage.add_store(STORE)
        await import_catalogue_csv(server.storage, catalogue(120), keep_missing=True)
        async with store_node(tmp_path / "a", headoffice.url, token, ca) as a, \
                store_node(tmp_path / "r", headoffice.url, token, ca, enabled=False) as r:
            journal, r_journal = node_of(a).journal, node_of(r).journal
            await sell_in_bulk(r_journal, ["T21"], 100)
            await forward(r_journal, journal)
            await wait_for(lambda: settled(a), 60, "the first day to reach head office")
            await headoffice.stop()
            await backup.take()
            server = await headoffice.start()

            await import_catalogue_csv(server.storage, catalogue(130), keep_missing=True)
            await wait_for(lambda: sells_at(a, 130), 60, "the price of 1.30 to reach the till")
            await sell_in_bulk(r_journal, ["T21"], 100)  # R's last sales, then R is retired
            await forward(r_journal, journal)
            await wait_for(lambda: settled(a), 60, "the second day to reach head office")
            old_origin = server.storage.origin

            await headoffice.stop()
            await backup.restore()
            server = await headoffice.start()

            # R sends nothing any more: A sends R's lost sales again.
            async def r_back() -> bool:
                received = await server.storage.events(STORE, r_journal.origin)
                return len(received) == len(await own_events_of(r_journal, r_journal.origin))

            await wait_for(r_back, 60, "the retired node's sales to come back")

            # The store holds more of head office's chain than head office: it is noticed
            # at the store's next pull, before head office writes anything.
            await wait_for(lambda: server.storage.origin != old_origin, 60, "a new origin")
            origins = await server.storage.origins()
            assert origins[-1]["predecessor"] == old_origin
            # (#1 is its origin's certificate, then one price each day.)
            assert f"a store holds {old_origin}#3, head office only up to #2" \
                == origins[-1]["reason"]
            # Head office's catalogue as the backup holds it, then what is entered after.
            await wait_for(lambda: sells_at(a, 120), 60, "head office's own price")
            await import_catalogue_csv(server.storage, catalogue(150), keep_missing=True)
            await wait_for(lambda: sells_at(a, 150), 60, "the price of 1.50 to reach the till")
            await wait_for(lambda: settled(a), 60, "the store to settle")
            assert len(await server.storage.sale_ids(STORE)) == 200
            assert await server.storage.conflicts(STORE) == []
    finally:
        await headoffice.stop()
        await backup.drop()
