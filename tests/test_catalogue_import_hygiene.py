"""Attacks on the catalogue's CSV files (issue 12): a header naming a column twice, text
shown otherwise than it is held, and cells a spreadsheet runs as formulas.

FINDING-marked tests failed on the code they were written against. Both imports are
run in process: the node's (`import_texts`, what `edge catalogue import` and the store
IT page call) and head office's (`import_catalogue_csv`); the export is
`export_csv`, what `edge catalogue export` prints.
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from edge.api import commands  # noqa: F401  (registers every projection)
from edge.headoffice.catalogue import import_catalogue_csv
from edge.headoffice.storage import HeadOfficeStorage
from edge.journal.store import Journal
from edge.selling.catalogue_admin import export_csv
from edge.selling.catalogue_import import (
    CatalogueError,
    parse_catalogue_csv,
    parse_promotions_csv,
)
from edge.selling.catalogue_loading import import_texts
from edge.selling.catalogue_text import from_spreadsheet_safe, spreadsheet_safe

HEADER = "id,barcode,name,price,vat_rate,category,unit,colour,image,favourite,open_price\n"
GOOD = HEADER + "L-pain,,Pain,130,550,Pain,,,,,\n"
PROMOTIONS_HEADER = "id,name,kind,products,n,m,percent,price,starts,ends\n"
HEADOFFICE_HEADER = "id,barcode,name,price,vat_rate,category\n"
RLO = "\u202e"  # RIGHT-TO-LEFT OVERRIDE: the rest of the line is shown reversed
SEEN_AS = "an invisible character that changes how a receipt or a till shows the text; " \
    "remove it"


@pytest.fixture
async def headoffice(tmp_path: Path) -> AsyncIterator[HeadOfficeStorage]:
    storage = HeadOfficeStorage(f"sqlite://{tmp_path / 'headoffice.sqlite3'}")
    await storage.open()
    yield storage
    await storage.close()


async def _events(journal: Journal) -> int:
    return (await journal.read_one("SELECT COUNT(*) FROM events"))[0]


# FINDING (MEDIUM): a store's CSV naming a column twice (a supplier's price and the
# shop's) was imported, csv.DictReader silently taking the last one: the till sold at
# whichever price came last, nothing said. Head office already refused it. Fixed in
# catalogue_import (`header_problems`, head office's rule, now shared): a bad first line.
async def test_a_store_file_naming_a_column_twice_is_refused(journal: Journal) -> None:
    await import_texts(journal, GOOD, None)
    held = await _events(journal)
    twice = HEADER.strip() + ",price\n" + "L-pain,,Pain,130,550,Pain,,,,,,99\n"
    with pytest.raises(CatalogueError) as refused:
        await import_texts(journal, twice, PROMOTIONS_HEADER.strip() + ",n\n")
    assert refused.value.problems == ["line 1: column price appears twice",
                                      "promotions line 1: column n appears twice"]
    # The same name told apart only by case or spaces is the same column to a reader.
    with pytest.raises(CatalogueError) as alike:
        parse_catalogue_csv(HEADER.strip() + ", Price \n")
    assert alike.value.problems == ["line 1: column price appears twice"]
    # A column name holding a hidden character: two columns shown "price", one read.
    with pytest.raises(CatalogueError) as hidden:
        parse_catalogue_csv("id,barcode,name,pri\u200bce,vat_rate,price\n")
    assert hidden.value.problems == [
        f"line 1: column 4 holds U+200B (ZERO WIDTH SPACE) at character 4: {SEEN_AS}"]
    assert await _events(journal) == held
    row = await journal.read_one("SELECT price FROM products WHERE id = 'L-pain'")
    assert tuple(row) == (130,)
    # A spreadsheet's blank columns (no name) are never read: still a good file.
    assert parse_catalogue_csv(HEADER.strip() + ",,\n" + "L-pain,,Pain,130,550,Pain,,,,,,,\n")


# FINDING (HIGH): an id, a name or a category holding a bidirectional override, an
# isolate, a mark, a C1 control or a zero width space was imported, at the node and at
# head office: "Pain " + U+202E + "05,1" is shown on a till and a receipt as
# "Pain 1,50", and two ids told apart by an invisible character look alike. Fixed in
# catalogue_text (`hidden_character`, used by the node's import and head office's):
# the line, the column and the character are named, nothing imported.
async def test_text_shown_otherwise_than_held_is_refused_at_the_node(journal: Journal) -> None:
    bad = HEADER + (
        "L-a,,Pain,130,550,Pain,,,,,\n"                              # 2: fine
        f'L-b,,"Pain {RLO}05,1",130,550,Pain,,,,,\n'                 # 3
        "L-c,,Pain,130,550,\u2066Pain\u2069,,,,,\n"                  # 4
        "L-\u200bd,,Pain,130,550,Pain,,,,,\n"                        # 5
        "L-e,,Pain\u0085 blanc,130,550,Pain,,,,,\n"                  # 6
        "L-f,,Pain \u200fdemi,130,550,Pain,,,,,\n"                   # 7
        "L-g,,Pain \u200d\U0001f956,130,550,Pain,,,,,\n"             # 8: ZWJ stays (emoji)
    )
    promotions = PROMOTIONS_HEADER + (
        f"L-p,2 pour {RLO}1,n_for_m,L-a,2,1,,,,\n"                   # 2
        "L-q,Lot,bundle,L-a|L-\u202dg,2,,,500,,\n"                   # 3
    )
    held = await _events(journal)
    with pytest.raises(CatalogueError) as refused:
        await import_texts(journal, bad, promotions)
    assert refused.value.problems == [
        f"line 3: name holds U+202E (RIGHT-TO-LEFT OVERRIDE) at character 6: {SEEN_AS}",
        f"line 4: category holds U+2066 (LEFT-TO-RIGHT ISOLATE) at character 1: {SEEN_AS}",
        f"line 5: id holds U+200B (ZERO WIDTH SPACE) at character 3: {SEEN_AS}",
        f"line 6: name holds U+0085 (a control character) at character 5: {SEEN_AS}",
        f"line 7: name holds U+200F (RIGHT-TO-LEFT MARK) at character 6: {SEEN_AS}",
        f"promotions line 2: name holds U+202E (RIGHT-TO-LEFT OVERRIDE) at character 8: "
        f"{SEEN_AS}",
        f"promotions line 3: products holds U+202D (LEFT-TO-RIGHT OVERRIDE) at character 3: "
        f"{SEEN_AS}",
    ]
    assert await _events(journal) == held
    assert parse_catalogue_csv(HEADER + bad.splitlines()[-1] + "\n")[0]["name"] == \
        "Pain \u200d\U0001f956"


async def test_text_shown_otherwise_than_held_is_refused_at_head_office(
        headoffice: HeadOfficeStorage) -> None:
    text = HEADOFFICE_HEADER + (
        "p1,3017620422003,Pain,250,550,Rayon\n"
        f'p2,3760999000012,"Eau {RLO}05,1",160,550,Boissons\n'
        "p3,2000001000014,Lait,120,550,Cr\u00e8merie\u202c\n"
    )
    with pytest.raises(CatalogueError) as refused:
        await import_catalogue_csv(headoffice, text)
    assert refused.value.problems == [
        f"line 3: name holds U+202E (RIGHT-TO-LEFT OVERRIDE) at character 5: {SEEN_AS}",
        f"line 4: category holds U+202C (POP DIRECTIONAL FORMATTING) at character 9: "
        f"{SEEN_AS}",
    ]
    with pytest.raises(CatalogueError) as header:
        await import_catalogue_csv(headoffice, HEADOFFICE_HEADER.strip() + ",\u200eprice\n")
    assert header.value.problems == [
        f"line 1: column 7 holds U+200E (LEFT-TO-RIGHT MARK) at character 1: {SEEN_AS}"]
    assert await headoffice.products() == []


# FINDING (MEDIUM): `edge catalogue export` wrote a name such as "=HYPERLINK(...)" or
# "@SUM(...)" as it was: opened in a spreadsheet by the store's IT, the cell ran as a
# formula. Fixed in catalogue_admin (`rows_csv`, with catalogue_text's
# `spreadsheet_safe`): a text cell starting as a formula is exported behind a single
# quote (OWASP), which the import takes off again: an export imports back unchanged.
async def test_an_export_runs_no_formula_and_imports_back_unchanged(
        journal: Journal, headoffice: HeadOfficeStorage) -> None:
    products = HEADER + (
        '-L-moins,,"=HYPERLINK(""https://evil.example"",""Pain"")",130,550,+Rayon,,,,,\n'
        "L-arobase,,@SUM(1+1),120,550,-5 %,,,,,\n"
        "L-quote,,''=déjà cité,110,550,'' Rayon,,,,,\n"
        "L-cited,,'@cité,110,550,Pain,,,,,\n"
        "L-plain,,'t Hofje,100,550,Pain,,,,,\n"
        "L-wide,,\uff1dSUM(1),100,550,Pain,,,,,\n"
    )
    promotions = PROMOTIONS_HEADER + "=L-p,+2 pour 1,n_for_m,-L-moins|L-plain,2,1,,,,\n"
    summary = await import_texts(journal, products, promotions)
    assert (summary.added, summary.promotions_added) == (6, 1)
    held = {product["id"]: product for product in parse_catalogue_csv(products)}
    # A quote before a formula's first character is the export's (or a spreadsheet's):
    # taken off; one more quote is a quote the text holds.
    assert (held["L-cited"]["name"], held["L-quote"]["name"]) == ("@cité", "'=déjà cité")

    exported = export_csv(journal.path, False, False)
    cells = [cell for row in csv.reader(io.StringIO(exported)) for cell in row]
    assert {"'-L-moins", "'+Rayon", "'@SUM(1+1)", "'-5 %", "''=déjà cité", "'@cité",
            "'\uff1dSUM(1)"} <= set(cells)
    assert "'=HYPERLINK(\"https://evil.example\",\"Pain\")" in cells
    assert not [cell for cell in cells if cell.startswith(("=", "+", "-", "@", "\uff1d"))]
    assert "L-plain,,'t Hofje,100," in exported  # a quote before plain text stays as it is
    assert {product["id"]: product for product in parse_catalogue_csv(exported)} == held

    exported_promotions = export_csv(journal.path, False, True)
    assert "'=L-p,'+2 pour 1,n_for_m,'-L-moins|L-plain,2,1,,,," in exported_promotions
    assert parse_promotions_csv(exported_promotions) == parse_promotions_csv(promotions)

    events = await _events(journal)
    again = await import_texts(journal, exported, exported_promotions)
    assert (again.added, again.changed, again.unchanged) == (0, 0, 6)
    assert (again.promotions_changed, again.promotions_unchanged) == (0, 1)
    assert await _events(journal) == events

    # Head office reads a node's export the same way (`edge catalogue export --all`).
    await import_catalogue_csv(headoffice, HEADOFFICE_HEADER
                               + "p1,3017620422003,'=Pain,250,550,'-Rayon\n")
    assert [(product["name"], product["category"]) for product in
            await headoffice.products()] == [("=Pain", "-Rayon")]


def test_the_quote_is_added_and_taken_off_as_one_pair() -> None:
    for text in ("=1", "'=1", "''+1", "-", "@", "\t", "'", "'t", "a=1", "", "1", "'a'"):
        assert from_spreadsheet_safe(spreadsheet_safe(text)) == text
    assert [spreadsheet_safe(text) for text in ("=1", "'=1", "'t", "\r", "a-")] == [
        "'=1", "''=1", "'t", "'\r", "a-"]
