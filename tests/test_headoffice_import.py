"""Head office's catalogue import, streamed: many pages of a CSV, one all-or-nothing change.

Pages and batches are made tiny here so a few dozen rows cross many of them:
what a million-product CSV does, at the sizes of a test. SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from edge.headoffice import catalogue_staging, catalogue_storage
from edge.headoffice.catalogue import import_catalogue_csv, import_catalogue_file
from edge.headoffice.storage import HeadOfficeStorage
from edge.journal.chain import Event
from edge.selling.barcodes import gtin_check_digit
from edge.selling.catalogue_batches import one_by_one
from edge.selling.catalogue_import import CatalogueError

HEADER = "id,barcode,name,price,vat_rate,category\n"


def barcode(number: int) -> str:
    digits = f"200{number:09d}"
    return digits + str(gtin_check_digit(digits))


def row(number: int, price: int = 100) -> str:
    return f"p{number:04d},{barcode(number)},Produit {number},{price + number},550,Rayon\n"


def csv_of(numbers: range, price: int = 100) -> str:
    return HEADER + "".join(row(number, price) for number in numbers)


def changes_in(events: list[Event]) -> list[tuple[str, str]]:
    """Each product listed or delisted by `events`, in order, batches opened."""
    return [(type_, body["id"]) for event in events
            for type_, body in one_by_one(event.type, event.body)]


@pytest.fixture
async def storage(headoffice_db: str, monkeypatch: pytest.MonkeyPatch
                  ) -> AsyncIterator[HeadOfficeStorage]:
    monkeypatch.setattr(catalogue_storage, "PAGE", 4)
    monkeypatch.setattr(catalogue_staging, "ROWS_PER_WRITE", 3)
    monkeypatch.setattr(catalogue_staging, "MAX_PROBLEMS", 3)
    storage = HeadOfficeStorage(headoffice_db)
    await storage.open()
    yield storage
    await storage.close()


async def test_a_csv_of_many_pages_imports_whole_and_only_its_differences(
    storage: HeadOfficeStorage, tmp_path: Path
) -> None:
    path = tmp_path / "catalogue.csv"
    path.write_text("\ufeff" + csv_of(range(1, 31)), encoding="utf-8")
    assert str(await import_catalogue_file(storage, path)) == "30 new, 0 changed, 0 delisted"
    events = await storage.catalogue_after(0, 1000)
    assert [e.type for e in events] == ["origin_certified"] + ["products_listed"] * 8
    assert changes_in(events) == [("product_upserted", f"p{n:04d}") for n in range(1, 31)]
    assert [e.seq for e in events] == list(range(1, 10))  # a batch a page of 4
    products = await storage.products()
    assert len(products) == 30 and products[4] == {
        "id": "p0005", "barcode": barcode(5), "name": "Produit 5", "price": 105,
        "vat_rate": 550, "category": "Rayon", "active": 1}

    # The same CSV again: nothing to publish.
    assert str(await import_catalogue_file(storage, path)) == "0 new, 0 changed, 0 delisted"
    assert len(await storage.catalogue_after(0, 1000)) == 9

    # Kept missing: 1-10 untouched, 11-20 repriced, 31-36 new; nothing delisted.
    text = csv_of(range(11, 21), price=200) + csv_of(range(31, 37)).removeprefix(HEADER)
    summary = await import_catalogue_csv(storage, text, keep_missing=True)
    assert str(summary) == "6 new, 10 changed, 0 delisted"
    assert all(p["active"] for p in await storage.products())

    # The whole catalogue is now 5-35: 1-4 and 36 delisted, in id order, after the upserts.
    before = len(await storage.catalogue_after(0, 1000))
    summary = await import_catalogue_csv(storage, csv_of(range(5, 36)))
    assert str(summary) == "0 new, 10 changed, 5 delisted"  # 11-20 back to their old price
    changes = changes_in((await storage.catalogue_after(0, 1000))[before:])
    assert [product_id for type_, product_id in changes if type_ == "product_delisted"] == [
        "p0001", "p0002", "p0003", "p0004", "p0036"]
    assert changes[-1][0] == "product_delisted"
    active = {p["id"] for p in await storage.products() if p["active"]}
    assert active == {f"p{n:04d}" for n in range(5, 36)}
    # Relisting a delisted product is a change.
    assert str(await import_catalogue_csv(storage, csv_of(range(1, 36)))) == \
        "0 new, 4 changed, 0 delisted"


async def test_a_bad_row_late_in_a_csv_changes_nothing_and_bad_lines_are_bounded(
    storage: HeadOfficeStorage,
) -> None:
    await import_catalogue_csv(storage, csv_of(range(1, 11)))
    events, products = await storage.catalogue_after(0, 1000), await storage.products()

    late = csv_of(range(1, 40), price=300) + "p9999,2000000000000,Faux,100,550,\n"
    with pytest.raises(CatalogueError) as bad:
        await import_catalogue_csv(storage, late)
    assert bad.value.problems == ["line 41: barcode '2000000000000' is not a valid EAN/GTIN"]
    twice = csv_of(range(1, 30)) + row(7)
    with pytest.raises(CatalogueError) as bad:
        await import_catalogue_csv(storage, twice)
    assert bad.value.problems == ["line 31: id p0007 appears twice",
                                  f"line 31: barcode {barcode(7)} appears twice"]
    # Many bad lines: the first three named, in line order, and how many more.
    many = csv_of(range(1, 20)) + row(3) + "".join(
        f"q{n},{barcode(500 + n)},,100,550,\n" for n in range(6))
    with pytest.raises(CatalogueError) as bad:
        await import_catalogue_csv(storage, many)
    assert bad.value.problems == [
        "line 21: id p0003 appears twice", f"line 21: barcode {barcode(3)} appears twice",
        "line 22: name is empty", "… and 5 more problem(s), not listed"]
    with pytest.raises(CatalogueError) as bad:
        await import_catalogue_csv(storage, "id,name,price\np1,Pain,100\n")
    assert bad.value.problems == ["line 1: missing column(s) barcode, vat_rate"]

    assert await storage.catalogue_after(0, 1000) == events
    assert await storage.products() == products
