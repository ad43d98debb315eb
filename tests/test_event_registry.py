"""One registry of event types: every type written is declared, documented, and checked.

The journal refuses (a ChainError, nothing applied) an event of a type it
does not know or whose body does not fit its type's schema, from a peer or
head office (`Tx.apply`) as from this node (`Tx.append`).
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest
from conftest import ROOT
from signing_support import SignedChain, headoffice_trusted, identity, rehashed

from edge.journal.chain import ChainError, ChainHead, Event
from edge.journal.event_types import DECLARING_MODULES, UnfitEvent, registry
from edge.journal.signing import sign
from edge.journal.store import Journal, Tx

EDGE = ROOT / "edge"
# Where code names the type of an event it writes: `tx.append("type", ...)` (`self.`
# in Tx itself),
# `head.next(origin, "type", ...)`, head office's catalogue changes, and the batches
# they are packed into (`BATCH_TYPES`' values, edge/selling/catalogue_batches.py).
WRITTEN = [re.compile(r"(?:tx|self|\))\.append\(\s*\"([a-z]+_[a-z_]+)\""),
           re.compile(r"\.next\([^,()]+,\s*\"([a-z]+_[a-z_]+)\""),
           re.compile(r"\(\"(product_[a-z]+ed)\", "),
           re.compile(r"\"product_[a-z]+ed\": \"(products_[a-z]+ed)\"")]


def written_types() -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for path in sorted(EDGE.rglob("*.py")):
        text = path.read_text()
        for pattern in WRITTEN:
            for name in pattern.findall(text):
                found.setdefault(name, []).append(str(path.relative_to(ROOT)))
    return found


def test_every_event_type_written_is_registered() -> None:
    written = written_types()
    assert {"sale_completed", "till_paired", "product_delisted", "origin_started"} <= set(written)
    unregistered = {name: where for name, where in written.items() if name not in registry()}
    assert unregistered == {}


def test_every_registered_type_is_written_somewhere() -> None:
    assert set(registry()) - set(written_types()) == set()


DECLARES = r"^(@event_type|record_type)\("


def test_every_module_declaring_types_is_loaded_with_the_registry() -> None:
    declaring = {f"edge.{path.stem}" for path in EDGE.glob("*.py")
                 if re.search(DECLARES, path.read_text(), re.MULTILINE)}
    declaring |= {f"edge.{path.parent.name}.{path.stem}" for path in EDGE.glob("*/*.py")
                  if re.search(DECLARES, path.read_text(), re.MULTILINE)}
    assert declaring == set(DECLARING_MODULES)


def test_every_type_declares_a_schema_and_a_merge_rule() -> None:
    for name, kind in registry().items():
        assert kind.name == name
        assert kind.merge.strip(), f"{name} has no merge rule"
        assert kind.schema.__dataclass_fields__, f"{name} has no schema"


def test_every_type_is_in_the_events_table_of_the_architecture_page() -> None:
    """Its first column names each type once; nothing else."""
    page = (ROOT / "docs" / "architecture.md").read_text()
    table = page.split("## Events and their merge rules", 1)[1].split("\n## ", 1)[0]
    rows = [line.split("|")[1] for line in table.splitlines()
            if line.startswith("| `")]
    documented = [name for cell in rows for name in re.findall(r"`([a-z_]+)`", cell)]
    assert sorted(documented) == sorted(registry())


def _events(origin: str, type_: str, body: dict) -> list[Event]:
    """The first events of `origin`'s chain: its certificate, then this one (#2)."""
    chain = SignedChain(origin)
    chain.add(type_, body)
    return chain.events


async def _journal(tmp_path: Path) -> Journal:
    journal = Journal(tmp_path / "edge.sqlite3", origin="observer", trust=identity("observer"))
    await journal.open()
    return journal


@pytest.mark.parametrize(("type_", "body", "says"), [
    ("coupon_redeemed", {"id": "c1"}, "unknown event type 'coupon_redeemed'"),
    ("product_upserted", {"id": "p1", "name": "Pain", "vat_rate": 550},
     "a product_upserted body that does not fit its schema: 'price' is required"),
    ("product_upserted", {"id": "p1", "name": "Pain", "price": "1.20", "vat_rate": 550},
     "'price' must be an integer"),
    ("sale_completed", {"id": "s1", "till": "T01", "receipt_no": 1, "cashier": "c1",
                        "lines": [{"id": "l1"}], "totals": {"total": 0, "items": 0, "vat": []},
                        "tenders": []},
     "'lines[0].product_id' is required"),
    ("printers_announced", {"node": "n1", "printers": "comptoir"}, "'printers' must be a list"),
    ("basket_taken_over", ["not", "an", "object"], "must be an object"),
])
async def test_a_peer_event_that_does_not_fit_is_refused_and_nothing_of_it_applied(
    tmp_path: Path, type_: str, body: dict, says: str,
) -> None:
    journal = await _journal(tmp_path)
    try:
        certified, unfit = _events("peer", type_, body)
        assert await journal.write(lambda tx: tx.apply(certified)) is True
        with pytest.raises(ChainError, match=re.escape(says)) as refused:
            await journal.write(lambda tx: tx.apply(unfit))
        assert isinstance(refused.value, UnfitEvent)
        assert str(refused.value).startswith("peer#2: ")
        assert len(await journal.read_all("SELECT * FROM events")) == 1
        assert await journal.read_all("SELECT * FROM products") == []
        # The origin's chain stays where it was: a fitting event #2 is taken.
        _, fitting = _events("peer", "product_delisted", {"id": "p1"})
        fitting = dataclasses.replace(fitting, prev_hash=certified.hash)
        fitting = sign(rehashed(fitting), identity("peer").signing_key)
        assert await journal.write(lambda tx: tx.apply(fitting)) is True
    finally:
        await journal.close()


async def test_a_fitting_body_is_taken_as_it_is_extra_fields_included(tmp_path: Path) -> None:
    """A newer edge may add fields: they pass, and the body is stored unchanged."""
    journal = await _journal(tmp_path)
    try:
        body = {"id": "p1", "name": "Pain", "price": 120, "vat_rate": 550, "barcode": None,
                "origin_country": "FR"}
        certified, event = _events("headoffice-1", "product_upserted", body)
        await journal.write(lambda tx: tx.append("headoffice_key_trusted", headoffice_trusted()))
        assert await journal.write(lambda tx: [tx.apply(certified), tx.apply(event)]) == [
            True, True]
        [_, stored] = [e async for e in journal.events("headoffice-1")]
        assert stored == event
        row = await journal.read_one("SELECT name, price, active FROM products WHERE id = 'p1'")
        assert tuple(row) == ("Pain", 120, 1)
    finally:
        await journal.close()


async def test_this_node_never_writes_an_event_it_would_refuse(tmp_path: Path) -> None:
    journal = await _journal(tmp_path)
    try:
        with pytest.raises(UnfitEvent, match="unknown event type 'note'"):
            await journal.write(lambda tx: tx.append("note", {"n": 1}))
        with pytest.raises(UnfitEvent, match="'name' is required"):
            await journal.write(lambda tx: tx.append("till_paired", {
                "code": "T01-observer", "token_sha256": "ab"}))
        assert journal.head == ChainHead()  # nothing written: the chain did not move

        def pair(tx: Tx) -> Event:
            return tx.append("till_paired", {"code": "T01-observer", "name": "one",
                                             "token_sha256": "ab"})

        event = await journal.write(pair)
        # After the origin's certificate, which its first write puts first.
        assert (event.seq, journal.head.hash) == (2, event.hash)
    finally:
        await journal.close()
