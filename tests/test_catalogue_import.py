"""A store loads its own catalogue: checked whole with line-numbered problems, all or nothing.

The CSV rules are head office's (edge/selling/catalogue_import.py, shared);
a store's import also checks the files against what the store holds (head
office's ids and barcodes are refused) and writes only the differences, in
one transaction. `edge catalogue import` does it through the running node
(the files in parts) or under the folder's lock; the store IT page's form
through the same admin endpoint.
"""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

import aiohttp
import pytest
from conftest import EDGE, ROOT, EdgeProcess, Till, free_port

from edge.api import commands  # noqa: F401  (registers every projection)
from edge.journal import store
from edge.journal.store import Journal
from edge.selling import catalogue_loading
from edge.selling.catalogue import DEMO_CATALOGUE
from edge.selling.catalogue_import import (
    CatalogueError,
    parse_catalogue_csv,
    parse_promotions_csv,
)
from edge.selling.catalogue_loading import import_texts
from edge.selling.tills import create_pairing_code

HEADER = "id,barcode,name,price,vat_rate,category,unit,colour,image,favourite,open_price\n"
GOOD = HEADER + (
    "L-baguette,,Baguette maison,130,550,Pain,,brown,,1,\n"
    "L-croissant,,Croissant maison,120,550,Viennoiserie,,#f5c542,img/croissant.webp,2,\n"
    "L-comte,2100009000006,Comté au poids,2490,550,Crèmerie,kg,,,,\n"
    "L-divers,,Divers,0,550,Divers,,grey,,,yes\n"
    "L-eau,3760999000012,\"Évian 1,5 L\",160,550,Boissons,,,,,no\n"
)
PROMOTIONS_HEADER = "id,name,kind,products,n,m,percent,price,starts,ends\n"
PROMOTIONS = PROMOTIONS_HEADER + (
    "L-3-pour-2,3 croissants pour 2,n_for_m,L-croissant,3,2,,,,\n"
    "L-formule,Formule,bundle,L-baguette|L-eau|p0001,3,,,500,2026-01-01,2026-12-31\n"
)


def test_a_store_catalogue_parses_with_its_tile_fields() -> None:
    products = {p["id"]: p for p in parse_catalogue_csv(GOOD)}
    assert products["L-baguette"] == {
        "id": "L-baguette", "barcode": None, "name": "Baguette maison", "price": 130,
        "vat_rate": 550, "category": "Pain", "unit": "piece", "colour": "brown", "image": "",
        "favourite": 1, "open_price": False}
    assert products["L-croissant"]["colour"] == "#f5c542"
    assert products["L-croissant"]["image"] == "img/croissant.webp"
    assert products["L-comte"]["unit"] == "kg"
    assert products["L-divers"]["open_price"] and products["L-divers"]["price"] == 0
    assert products["L-eau"]["name"] == "Évian 1,5 L"
    # Head office keeps its columns only, and a barcode on every product.
    plain = parse_catalogue_csv(GOOD.replace(",,Baguette", ",2000001000014,Baguette")
                                .replace(",,Croissant", ",2000002000013,Croissant")
                                .replace(",,Divers,0", ",2000003000012,Divers,5"),
                                store_fields=False)
    assert set(plain[0]) == {"id", "barcode", "name", "price", "vat_rate", "category"}


def test_every_bad_product_line_is_named() -> None:
    text = HEADER + (
        "a1,,Pain,120,550,Pain,,,,,\n"                       # fine: line 2
        "a2,,Pain,120,550,Pain,litre,,,,\n"                  # 3
        "a3,,Pain,120,550,Pain,,fuchsia,,,\n"                # 4
        "a4,,Pain,120,550,Pain,,#12345g,,,\n"                # 5
        "a5,,Pain,120,550,Pain,,,https://evil.example/x.png,,\n"  # 6
        "a6,,Pain,120,550,Pain,,,img/../../etc/passwd,,\n"   # 7
        "a7,,Pain,120,550,Pain,,,,-1,\n"                     # 8
        "a8,,Pain,120,550,Pain,,,,first,\n"                  # 9
        "a9,,Pain,120,550,Pain,,,,,perhaps\n"                # 10
        "b1,,Pain,0,550,Pain,,,,,\n"                         # 11
        "b2,,Pain,0,550,Pain,kg,,,,yes\n"                    # 12
        f"b3,,{'P' * 121},120,550,Pain,,,,,\n"               # 13
        "b4,2000001000014,Pain,120,550,Pain,,,,,\n"          # 14
        "b5,2000001000014,Pain,120,550,Pain,,,,,\n"          # 15
        "b6,,Pain,1.20,550,Pain,,,,,\n"                      # 16
        "b7,,Pain,120,700,Pain,,,,,\n"                       # 17
        "a1,,Pain,120,550,Pain,,,,,\n"                       # 18
        "b8,,Pain,120,550,Pain,,,//cdn.example/x.png,,\n"    # 19
    )
    with pytest.raises(CatalogueError) as bad:
        parse_catalogue_csv(text)
    assert bad.value.problems == [
        "line 3: unit 'litre' is not one of piece, kg",
        "line 4: colour 'fuchsia' is not #rrggbb nor one of red, orange, yellow, green, teal, "
        "blue, purple, pink, brown, grey",
        "line 5: colour '#12345g' is not #rrggbb nor one of red, orange, yellow, green, teal, "
        "blue, purple, pink, brown, grey",
        "line 6: image 'https://evil.example/x.png' is not a relative path on the node "
        "(letters, digits, . _ ~ / -; at most 200 characters; no '..')",
        "line 7: image 'img/../../etc/passwd' is not a relative path on the node (letters, "
        "digits, . _ ~ / -; at most 200 characters; no '..')",
        "line 8: favourite -1 must be 0 (not a favourite) to 9999",
        "line 9: favourite 'first' is not a whole number",
        "line 10: open_price 'perhaps' is not yes or no",
        "line 11: price 0 must be positive (0 only with open_price: the price is typed at "
        "the till)",
        "line 12: an open_price product is sold by the piece (unit piece)",
        "line 13: name is longer than 120 characters",
        "line 15: barcode 2000001000014 appears twice",
        "line 16: price '1.20' is not a whole number of cents",
        "line 17: vat_rate 700 is not one of 210, 550, 1000, 2000 (basis points)",
        "line 18: id a1 appears twice",
        "line 19: image '//cdn.example/x.png' is not a relative path on the node (letters, "
        "digits, . _ ~ / -; at most 200 characters; no '..')",
    ]


def test_every_bad_promotion_line_is_named() -> None:
    text = PROMOTIONS_HEADER + (
        "ok,Fine,n_for_m,p1,3,2,,,,\n"                      # 2
        "k1,Kind,two_for_one,p1,2,1,,,,\n"                  # 3
        "k2,Small,n_for_m,p1,1,0,,,,\n"                     # 4
        "k3,M too big,n_for_m,p1,3,3,,,,\n"                 # 5
        "k4,No m,n_for_m,p1,3,,,,,\n"                       # 6
        "k5,Zero percent,nth_percent,p1,2,,0,,,\n"          # 7
        "k6,Too much,nth_percent,p1,2,,10001,,,\n"          # 8
        "k7,Free bundle,bundle,p1|p2,2,,,0,,\n"             # 9
        "k8,Mixed,bundle,p1|p2,2,1,,500,,\n"                # 10
        "k9,Bad date,bundle,p1|p2,2,,,500,2026-13-01,\n"    # 11
        "m1,Backwards,bundle,p1|p2,2,,,500,2026-05-02,2026-05-01\n"  # 12
        "m2,No products,bundle,,2,,,500,,\n"                # 13
        "m3,Twice,bundle,p1|p1,2,,,500,,\n"                 # 14
        "m4,Unknown,bundle,p1|zz,2,,,500,,\n"               # 15
        "ok,Again,n_for_m,p1,3,2,,,,\n"                     # 16
        ",No id,n_for_m,p1,3,2,,,,\n"                       # 17
    )
    with pytest.raises(CatalogueError) as bad:
        parse_promotions_csv(text, {"p1", "p2"})
    assert bad.value.problems == [
        "promotions line 3: kind 'two_for_one' is not one of n_for_m, nth_percent, bundle",
        "promotions line 4: n must be a whole number from 2 to 99 (the group size)",
        "promotions line 5: m must be at least 1 and less than n (3): 3",
        "promotions line 6: a n_for_m promotion needs m",
        "promotions line 7: percent must be 1 to 10000 (basis points: 5000 = 50 %): 0",
        "promotions line 8: percent must be 1 to 10000 (basis points: 5000 = 50 %): 10001",
        "promotions line 9: price 0 must be positive (cents)",
        "promotions line 10: m is not used by a bundle promotion (leave it empty)",
        "promotions line 11: starts '2026-13-01' is not a date (YYYY-MM-DD)",
        "promotions line 12: ends is before starts",
        "promotions line 13: products must be product ids separated by |, none empty",
        "promotions line 14: a product appears twice in products",
        "promotions line 15: product(s) zz not in the catalogue",
        "promotions line 16: id ok appears twice",
        "promotions line 17: id is empty",
    ]
    with pytest.raises(CatalogueError) as missing:
        parse_promotions_csv("id,name,kind\n")
    assert missing.value.problems == ["promotions line 1: missing column(s) products, n"]


async def _count(journal: Journal) -> int:
    return (await journal.read_one("SELECT COUNT(*) FROM events"))[0]


async def test_an_import_writes_only_differences_in_one_transaction(journal: Journal) -> None:
    local_promotions = PROMOTIONS.replace("|p0001", "")  # no head office here
    summary = await import_texts(journal, GOOD, local_promotions)
    assert (summary.added, summary.changed, summary.unchanged) == (5, 0, 0)
    assert summary.promotions_added == 2
    again = await import_texts(journal, GOOD, None)
    assert (again.added, again.changed, again.unchanged) == (0, 0, 5)
    held = await _count(journal)
    dearer = GOOD.replace("Baguette maison,130", "Baguette maison,135")
    changed = await import_texts(journal, dearer,
                                 PROMOTIONS_HEADER + PROMOTIONS.splitlines()[1] + "\n")
    assert (changed.added, changed.changed, changed.unchanged) == (0, 1, 4)
    # The promotions file is the store's promotions: the one it no longer names ends.
    assert (changed.promotions_unchanged, changed.promotions_ended) == (1, 1)
    assert await _count(journal) == held + 2
    row = await journal.read_one("SELECT price, listed_origin FROM products WHERE id = ?",
                                 ("L-baguette",))
    assert tuple(row) == (135, "node-a")
    assert [r["id"] for r in await journal.read_all(
        "SELECT id FROM promotions WHERE active ORDER BY id")] == ["L-3-pour-2"]


async def test_nothing_of_a_bad_import_is_written(journal: Journal) -> None:
    await import_texts(journal, GOOD, None)
    held = await _count(journal)
    # Head office's product: its id and its barcode are refused, by line; nothing written.
    await journal.write(lambda tx: tx.db.execute(
        "UPDATE products SET listed_origin = 'headoffice-1a2b3c' WHERE id = 'L-eau'"))
    bad = HEADER + (
        "L-new,,Nouveau,100,550,Pain,,,,,\n"
        "L-eau,3760999000029,Évian,170,550,Boissons,,,,,\n"
        "L-eau2,3760999000012,Évian bis,170,550,Boissons,,,,,\n"
    )
    with pytest.raises(CatalogueError) as refused:
        await import_texts(journal, bad, PROMOTIONS_HEADER + "L-p,P,n_for_m,L-new|nope,3,2,,,,\n")
    assert refused.value.problems == [
        "line 3: id L-eau is head office's product (Évian 1,5 L): give the store's own products "
        "ids of their own, e.g. L-L-eau",
        "line 4: barcode 3760999000012 is product L-eau's (Évian 1,5 L): change or remove one",
        "promotions line 2: product(s) nope not in the catalogue",
    ]
    assert await _count(journal) == held
    assert await journal.read_one("SELECT 1 FROM products WHERE id = 'L-new'") is None
    # A bad line anywhere in either file: nothing is read into the store either.
    with pytest.raises(CatalogueError) as parse_refused:
        await import_texts(journal, GOOD + "L-x,,X,-1,550,,,,,,\n",
                           PROMOTIONS_HEADER + "L-q,Q,bundle,L-baguette,1,,,100,,\n")
    assert parse_refused.value.problems == [
        "line 7: price -1 must be positive",
        "promotions line 2: n must be a whole number from 2 to 99 (the group size)"]
    assert await _count(journal) == held


# The command, on a running node and alone under the lock

def _config(tmp_path: Path, port: int) -> Path:
    config = tmp_path / "edge.toml"
    config.write_text(f'[store]\nid = "demo-boulangerie"\ndemo = true\n'
                      f'[server]\nport = {port}\nadvertise = false\ndata = "data"\n'
                      '[grid]\ncategories = ["Viennoiserie"]\nfavourites = ["L-croissant"]\n')
    return config


async def catalogue(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(
        subprocess.run, [*EDGE, "catalogue", *args, "--config", str(config)],
        capture_output=True, text=True, timeout=120, cwd=ROOT, stdin=subprocess.DEVNULL)


def _big_catalogue(count: int) -> str:
    return HEADER + "".join(f"L-{n:05d},,Produit local n° {n} « spécial »,{100 + n},550,"
                            f"Local {n % 7},,,,,\n" for n in range(count))


async def test_the_command_imports_through_the_running_node_and_alone(tmp_path: Path) -> None:
    port = free_port()
    config = _config(tmp_path, port)
    products, promotions, big = (tmp_path / "products.csv", tmp_path / "promotions.csv",
                                 tmp_path / "big.csv")
    products.write_text(GOOD, encoding="utf-8")
    promotions.write_text(PROMOTIONS, encoding="utf-8")
    big.write_text(_big_catalogue(2500), encoding="utf-8")  # ~150 KB: several parts
    node = EdgeProcess(tmp_path / "data", port, ["--config", str(config)])
    node.start()
    try:
        done = await catalogue(config, "import", str(products), "--promotions", str(promotions))
        assert done.returncode == 0, done.stderr
        assert "Checking 5 product line(s) and 2 promotion line(s)" in done.stderr
        # The demo's three promotions were the store's: a promotions file replaces them.
        assert done.stdout.strip() == ("Imported by the running node: 5 added, 0 changed, 0 "
                                       "unchanged; promotions: 2 added, 0 changed, 0 unchanged, "
                                       "3 ended.")
        bad = tmp_path / "bad.csv"
        bad.write_text(GOOD + "L-x,,X,12.5,550,,,,,,\np0001,,Baguette,1,550,,,,,,\n")
        refused = await catalogue(config, "import", str(bad))
        assert refused.returncode == 2
        assert "line 7: price '12.5' is not a whole number of cents" in refused.stderr
        assert "nothing imported" in refused.stderr
        many = await catalogue(config, "import", str(big))
        assert many.returncode == 0, many.stderr
        assert "part 14 of 14" in many.stderr and "2500 added" in many.stdout

        async with aiohttp.ClientSession() as session:
            # The admin endpoint (the store IT page's form) wants the node's admin token.
            async with session.post(f"{node.url}/api/admin/catalogue",
                                    json={"action": "import", "products": GOOD}) as answer:
                assert answer.status == 403
            code = create_pairing_code(node.data_dir / "edge.sqlite3")
            async with session.post(f"{node.url}/api/pair",
                                    json={"code": code, "name": "T"}) as answer:
                token = (await answer.json())["token"]
            till = Till(await session.ws_connect(f"{node.url}/api/ws"), token)
            try:
                await till.call("auth", token=token)
                grid = await till.call("catalogue/grid")
                favourites = grid["categories"][0]
                assert favourites["favourites"] and favourites["tiles"][0]["id"] == "L-croissant"
                assert grid["categories"][1]["name"] == "Viennoiserie"
                first = await till.call("catalogue/export", limit=10)
                assert first["grid"] == {"categories": ["Viennoiserie"],
                                         "favourites": ["L-croissant"], "tiles": 48}
                assert [p["id"] for p in first["promotions"]] == ["L-3-pour-2", "L-formule"]
                assert first["embedded_barcodes"] == []
                comte = await till.call("catalogue/lookup", barcode="2100009000006")
                assert (comte["unit"], comte["open_price"]) == ("kg", False)
            finally:
                await till.ws.close()
    finally:
        node.stop()

    # No node: the command takes the folder's lock and imports itself.
    products.write_text(GOOD.replace("Croissant maison,120", "Croissant maison,125"))
    alone = await catalogue(config, "import", str(products))
    assert alone.returncode == 0, alone.stderr
    assert alone.stdout.strip() == "Imported: 0 added, 1 changed, 4 unchanged."
    exported = await catalogue(config, "export")
    assert exported.returncode == 0
    lines = exported.stdout.splitlines()
    demo = len(parse_catalogue_csv(DEMO_CATALOGUE.read_text(encoding="utf-8")))
    assert lines[0] == HEADER.strip() and len(lines) == 1 + 5 + 2500 + demo  # the demo's too
    assert "L-croissant,,Croissant maison,125,550,Viennoiserie,piece,#f5c542," \
        "img/croissant.webp,2," in lines
    assert "L-divers,,Divers,0,550,Divers,piece,grey,,0,yes" in lines
    promotions_out = await catalogue(config, "export", "--promotions")
    assert "L-formule,Formule,bundle,L-baguette|L-eau|p0001,3,,,500,2026-01-01,2026-12-31" \
        in promotions_out.stdout.splitlines()


async def test_the_store_it_page_form_imports_all_or_nothing(tmp_path: Path) -> None:
    from playwright.async_api import async_playwright, expect
    from test_status_page import CHROMIUM_ARGS

    good, bad = tmp_path / "good.csv", tmp_path / "bad.csv"
    good.write_text(GOOD, encoding="utf-8")
    bad.write_text(GOOD + "L-x,,X,12.5,550,,,,,,\n", encoding="utf-8")
    port = free_port()
    config = _config(tmp_path, port)
    node = EdgeProcess(tmp_path / "data", port, ["--config", str(config)])
    node.start()
    try:
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path="/usr/bin/chromium",
                                                       args=CHROMIUM_ARGS)
            try:
                page = await browser.new_page(locale="fr-FR")
                await page.goto(f"{node.url}/status")
                await page.click("text=Catalogue du magasin")
                await page.fill("#token", "not the token")
                await page.set_input_files("#products", str(good))
                await page.click("#send")
                await expect(page.locator("#progress")).to_have_text("Rien n\u2019a été importé :")
                await expect(page.locator("#outcome")).to_contain_text("admin-token")
                token = (node.data_dir / "admin-token").read_text().strip()
                await page.fill("#token", token)
                await page.set_input_files("#products", str(bad))
                await page.click("#send")
                await expect(page.locator("#outcome")).to_contain_text(
                    "line 7: price '12.5' is not a whole number of cents")
                await page.set_input_files("#products", str(good))
                await page.click("#send")
                await expect(page.locator("#progress")).to_have_text(
                    "Importé : 5 added, 0 changed, 0 unchanged")
            finally:
                await browser.close()
        exported = await catalogue(config, "export")
        assert "L-eau,3760999000012," in exported.stdout
    finally:
        node.stop()


# A large file: read and written a batch at a time (issue 12)

async def test_a_file_larger_than_a_batch_is_imported_whole_or_not_at_all(
    journal: Journal, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(catalogue_loading, "IMPORT_BATCH", 2)
    # L-eau's barcode moves to L-eau-bis, named before it in the file (another batch).
    moved = GOOD.replace("L-eau,3760999000012", "L-eau,").replace(
        "L-baguette,", "L-eau-bis,3760999000012,Eau bis,90,550,Boissons,,,,,\nL-baguette,", 1)
    await import_texts(journal, GOOD, None)
    held = await _count(journal)
    # A bad line in the last batch, a repeat across batches: nothing written.
    with pytest.raises(CatalogueError) as bad:
        await import_texts(journal, moved + "L-baguette,,Encore,1,550,,,,,,\n"
                           "L-z,,Z,-1,550,,,,,,\n", None)
    assert bad.value.problems == ["line 8: id L-baguette appears twice",
                                  "line 9: price -1 must be positive"]
    assert await _count(journal) == held
    summary = await import_texts(journal, moved, None)
    assert (summary.added, summary.changed, summary.unchanged) == (1, 1, 4)
    owner = await journal.read_one("SELECT id FROM products WHERE barcode = '3760999000012'")
    assert owner["id"] == "L-eau-bis"


async def test_an_import_cut_short_keeps_whole_slices_and_finishes_when_run_again(
    journal: Journal, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(catalogue_loading, "IMPORT_BATCH", 2)
    monkeypatch.setattr(store, "FIRST_SLICE", 2)  # then sized by time: the rest at once
    writes = 0
    real_import_into = catalogue_loading.import_into

    def crash_on_the_second_batch(tx, products, promotions, in_file=None, write=True):  # type: ignore[no-untyped-def]
        nonlocal writes
        writes += write
        if write and writes == 2:
            raise RuntimeError("power cut")
        return real_import_into(tx, products, promotions, in_file, write)

    monkeypatch.setattr(catalogue_loading, "import_into", crash_on_the_second_batch)
    with pytest.raises(RuntimeError):
        await import_texts(journal, GOOD, None)
    ids = [row["id"] for row in await journal.read_all("SELECT id FROM products ORDER BY id")]
    assert ids == ["L-baguette", "L-croissant"]  # the first slice, whole
    summary = await import_texts(journal, GOOD, None)
    assert (summary.added, summary.unchanged) == (3, 2)
    assert (await journal.read_one("SELECT COUNT(*) FROM products WHERE active"))[0] == 5


async def test_a_sale_written_during_a_large_import_does_not_wait_for_it(
    journal: Journal,
) -> None:
    # Issue 12: a 20,000-price change held the writer for a whole batch of signed
    # events, and every till's scan queued behind it. Now the import goes in slices
    # (the first of FIRST_SLICE products), and a write queued meanwhile goes between.
    text = HEADER + "".join(f"L-{n},,Produit {n},{100 + n},550,,,,,,\n" for n in range(3000))
    first_slice = asyncio.Event()
    journal.add_listener(lambda events: first_slice.set())
    importing = asyncio.ensure_future(import_texts(journal, text, None))
    await first_slice.wait()
    sale = await journal.write(lambda tx: tx.append("product_delisted", {"id": "L-between"}))
    assert not importing.done()  # answered while the import still had slices to write
    assert (await importing).added == 3000
    # It waited for a slice or two of the import, not for a batch of IMPORT_BATCH.
    before = await journal.read_one(
        "SELECT SUM(json_array_length(body, '$.products')) FROM events WHERE type = "
        "'products_listed' AND position < (SELECT position FROM events WHERE id = ?)",
        (sale.id,))
    assert 0 < before[0] < catalogue_loading.IMPORT_BATCH
