"""Catalogue CSV: validated as a whole, bad rows reported by line number."""

from __future__ import annotations

import pytest

from edge.selling.barcodes import gtin_check_digit, is_valid_gtin
from edge.selling.catalogue import DEMO_CATALOGUE, CatalogueError, fts_query, parse_catalogue_csv

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
