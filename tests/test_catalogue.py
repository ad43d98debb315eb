"""Catalogue CSV: validated as a whole, bad rows reported by line number; search and lookup."""

from __future__ import annotations

from typing import Any

import pytest

from edge.api import commands  # noqa: F401  (registers every projection)
from edge.journal.store import Journal
from edge.messages import EdgeError
from edge.selling import catalogue
from edge.selling.barcodes import gtin_check_digit, is_valid_gtin
from edge.selling.catalogue import (
    DEMO_CATALOGUE,
    CatalogueError,
    fts_query,
    import_products,
    lookup,
    parse_catalogue_csv,
    search,
)

HEADER = "id,barcode,name,price,vat_rate,category\n"


def test_the_demo_catalogue_is_valid_and_realistic() -> None:
    products = parse_catalogue_csv(DEMO_CATALOGUE.read_text(encoding="utf-8"))
    assert 300 <= len(products) <= 400
    rates = {p["vat_rate"] for p in products}
    assert rates == {210, 550, 1000, 2000}
    coded = [p for p in products if p["barcode"] is not None]
    assert all(len(p["barcode"]) == 13 and is_valid_gtin(p["barcode"]) for p in coded)
    # A bakery: bread and viennoiserie sold from coloured favourite tiles, most without a
    # barcode; a weighed item and a price-embedded one (their base codes); an open price.
    by_id = {p["id"]: p for p in products}
    bare = [p for p in products if p["barcode"] is None]
    assert len(bare) > 40 and all(p["colour"] for p in bare)
    assert {p["category"] for p in bare} >= {"Pain", "Viennoiserie", "Divers"}
    assert sum(1 for p in products if p["favourite"]) >= 8
    assert by_id["p0341"]["unit"] == "kg" and by_id["p0341"]["barcode"].startswith("21")
    assert by_id["p0344"]["barcode"].startswith("22")
    assert by_id["p0346"]["open_price"] and by_id["p0346"]["price"] == 0
    # Products the tests scan keep their barcodes.
    assert by_id["p0001"]["barcode"] == "2000001000014"
    assert by_id["p0005"]["barcode"] == "5449000000996"


def test_bad_rows_are_reported_by_line_and_nothing_is_returned() -> None:
    text = HEADER + (
        "p1,2000001000014,Baguette,120,550,Pain\n"
        "p2,2000001000015,Bad check digit,120,550,Pain\n"
        "p3,2000002000013,,120,550,Pain\n"
        "p4,2000003000012,Free lunch,-5,550,Pain\n"
        "p5,2000004000011,Odd VAT,100,700,Pain\n"
        "p1,2000005000010,Same id,100,550,Pain\n"
        "p6,2000006000019,Price in euros,1.20,550,Pain\n"
    )
    with pytest.raises(CatalogueError) as bad:
        parse_catalogue_csv(text)
    assert bad.value.problems == [
        "line 3: barcode '2000001000015' is not a valid EAN/GTIN",
        "line 4: name is empty",
        "line 5: price -5 must be positive",
        "line 6: vat_rate 700 is not one of 210, 550, 1000, 2000 (basis points)",
        "line 7: id p1 appears twice",
        "line 8: price '1.20' is not a whole number of cents",
    ]


def test_a_missing_column_is_named() -> None:
    with pytest.raises(CatalogueError) as bad:
        parse_catalogue_csv("id,barcode,name\np1,2000001000014,Baguette\n")
    assert bad.value.problems == ["line 1: missing column(s) price, vat_rate"]


def test_check_digits() -> None:
    assert gtin_check_digit("544900000099") == 6
    assert is_valid_gtin("5449000000996")
    assert not is_valid_gtin("5449000000997")
    assert not is_valid_gtin("54490000009x6")


def test_search_queries_are_accent_free_word_prefixes() -> None:
    assert fts_query("Éclair  CAFÉ") == '"eclair"* "cafe"*'
    assert fts_query('pain" OR 1=1 --') == '"pain"* "or"* "1"* "1"*'
    assert fts_query("  -- ") is None


# Search, lookup and loading at scale (issue 12): bounded work, the same answers

def _product(number: int, name: str, category: str = "Divers") -> dict[str, Any]:
    body = f"300000{number:06d}"
    return {"id": f"p{number}", "barcode": body + str(gtin_check_digit(body)), "name": name,
            "price": 100 + number, "vat_rate": 550, "category": category}


async def test_search_puts_names_starting_with_the_first_word_first_then_by_name(
    journal: Journal, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(catalogue, "IMPORT_BATCH", 2)  # loaded a few per transaction
    names = ["Tarte aux pommes", "Pomme golden", "Compote de pommes", "Pomme Pink Lady",
             "Éclair au café", "Café moulu", "Pommeau de Normandie"]
    loaded = await import_products(journal, (_product(n, name) for n, name in
                                             enumerate(names, start=1)))
    assert loaded == len(names)
    found = [p["name"] for p in await search(journal, "POMM", 20)]
    assert found == ["Pomme golden", "Pomme Pink Lady", "Pommeau de Normandie",
                     "Compote de pommes", "Tarte aux pommes"]
    assert [p["name"] for p in await search(journal, "pom pin", 20)] == ["Pomme Pink Lady"]
    assert [p["name"] for p in await search(journal, "cafe", 20)] == [
        "Café moulu", "Éclair au café"]
    assert [p["name"] for p in await search(journal, "pomm", 2)] == [
        "Pomme golden", "Pomme Pink Lady"]
    assert [p["name"] for p in await search(journal, "pomm", 4)][3] == "Compote de pommes"
    assert await search(journal, " -- ", 20) == []
    # A price change leaves the product found; a new name is found, the old one not.
    changed = _product(2, "Poire williams") | {"price": 999}
    await import_products(journal, [_product(1, "Tarte aux pommes") | {"price": 5}, changed])
    assert "Tarte aux pommes" in [p["name"] for p in await search(journal, "tart", 20)]
    assert [p["name"] for p in await search(journal, "poire", 20)] == ["Poire williams"]
    assert "Pomme golden" not in [p["name"] for p in await search(journal, "pomme", 20)]


async def test_lookup_answers_the_latest_committed_listing(
    journal: Journal, monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Each change a millisecond after the one before: the latest listing is the latest by
    # time (two changes within one millisecond are ordered by their hash, on every node
    # alike; CI once ran these three in one).
    clock = (f"2026-12-01T10:00:00.{ms:03d}Z" for ms in range(1000))
    monkeypatch.setattr("edge.journal.chain.utc_now", lambda: next(clock))
    product = _product(1, "Baguette")
    await import_products(journal, [product])
    assert (await lookup(journal, product["barcode"]))["price"] == 101
    await import_products(journal, [product | {"price": 130}])
    assert (await lookup(journal, product["barcode"]))["price"] == 130
    await journal.write(lambda tx: tx.append("product_delisted", {"id": "p1"}))
    with pytest.raises(EdgeError) as gone:
        await lookup(journal, product["barcode"])
    assert gone.value.code == "unknown_barcode"


async def test_a_listing_with_null_for_an_optional_field_reads_it_as_absent(
    journal: Journal,
) -> None:
    # The schema reads null as absent (edge/schema.py); the projection did not, and a
    # listing with "category": null, however signed, failed on every node it reached.
    listing = {**_product(1, "Baguette"), "category": None, "unit": None, "colour": None,
               "image": None, "favourite": None, "open_price": None}
    await journal.write(lambda tx: tx.append("product_upserted", listing))
    rows = await journal.read_all(
        "SELECT category, unit, colour, image, favourite, open_price FROM products")
    assert [dict(row) for row in rows] == [
        {"category": "", "unit": "piece", "colour": "", "image": "", "favourite": 0,
         "open_price": 0}]
