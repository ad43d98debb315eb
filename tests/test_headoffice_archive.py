"""`edge headoffice archive` (edge/headoffice/archive.py): head office writes a store's
archive of a period from what it holds, signed with its own key as the store CA certified
it; `edge verify ARCHIVE` accepts it, and its events, sales, totals and closures are the
node's archive's, byte for byte.

A node's journal built with the journal API (head office's catalogue pulled, two nodes'
sales, December's days and month closed), pushed to head office's storage as a sync would.
"""

from __future__ import annotations

import asyncio
import subprocess
import zipfile
from pathlib import Path

import pytest
from conftest import EDGE
from signing_support import STORE_ID, identity, store_ca
from test_closures import CALENDAR, Tills, apply, at, close, opened

from edge.fiscal.archive import ArchiveError, write_archive
from edge.fiscal.archive_files import CLOSURES, EVENTS, SALES, TOTALS
from edge.fiscal.periods import Calendar
from edge.fiscal.verify_archive import run as verify_archive
from edge.fiscal.verify_archive import verify
from edge.headoffice.archive import store_period, write_headoffice_archive
from edge.headoffice.catalogue import import_catalogue_csv
from edge.headoffice.storage import HeadOfficeStorage
from edge.journal.signing import headoffice_key_certificate
from edge.trust.certificates import cert_pem

CATALOGUE = ("id,barcode,name,price,vat_rate,category\n"
             "p1,2000001000014,Baguette,120,550,Pain\np2,2000002000013,Croissant,115,550,\n")


def members(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as zf:
        return {name: zf.read(name) for name in (EVENTS, SALES, TOTALS, CLOSURES)}


async def test_head_office_writes_the_nodes_archive_of_a_period(
        headoffice_db: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    storage = HeadOfficeStorage(headoffice_db)
    await storage.open()
    journal = await opened(tmp_path, "archiver")
    try:
        await storage.add_store(STORE_ID)
        await storage.pin_store_ca(STORE_ID, cert_pem(store_ca()[1]))  # as its first push does
        with pytest.raises(ArchiveError, match="not certified head office's key"):
            await write_headoffice_archive(storage, STORE_ID, CALENDAR.period("month", "2024-12"),
                                           tmp_path / "early.zip")
        await import_catalogue_csv(storage, CATALOGUE)
        # The node holding the store CA certifies head office's key, then pulls the catalogue.
        cert = headoffice_key_certificate(*store_ca(), STORE_ID, storage.public_key)
        await journal.write(lambda tx: tx.append("headoffice_key_trusted", {"cert": cert}))
        await apply(journal, await storage.catalogue_after(0, 100))
        tills = Tills()
        tills.sale(at("12-30", 9), price=120)
        tills.sale(at("12-30", 15), node="node-b", price=333)
        tills.refund(at("12-31", 11), 50)
        tills.sale(at("12-31", 12), price=410)
        await apply(journal, tills.events("node-a") + tills.events("node-b"))
        for kind, label in (("day", "2024-12-30"), ("day", "2024-12-31"), ("month", "2024-12")):
            await close(journal, kind, label)
        pushed = [event async for event in journal.events()]
        receipt = await storage.receive(STORE_ID, "archiver", list(enumerate(pushed, 1)))
        assert receipt.conflicts == [] and receipt.gap is None

        month = CALENDAR.period("month", "2024-12")
        node_zip = write_archive(journal.path, month, tmp_path / "node.zip", identity("archiver"))
        # The store's closure gives the bounds, whatever head office's own calendar.
        period = await store_period(storage, STORE_ID, "2024-12", Calendar(0, "07-01"))
        assert period == month
        written = await write_headoffice_archive(storage, STORE_ID, period,
                                                 tmp_path / "headoffice.zip")
    finally:
        await journal.close()
        await storage.close()

    report = verify(written.path)
    assert report.problems == [] and report.exporter == "head office" and report.closures == 3
    assert verify_archive(written.path) == 0  # what `edge verify ARCHIVE` runs
    assert "written by head office, with its key the store CA certified" in \
        capsys.readouterr().out
    ours, theirs = members(written.path), members(node_zip.path)
    assert ours == theirs
    assert b'"origin":"headoffice-' in ours[EVENTS] and written.sales == 4

    if headoffice_db.startswith("sqlite"):  # the command itself, once
        out = tmp_path / "cli.zip"
        done = await asyncio.to_thread(subprocess.run, [
            *EDGE, "headoffice", "archive", "--db", headoffice_db, "--store", STORE_ID,
            "--period", "2024-12", "--out", str(out)], capture_output=True, text=True,
            timeout=60, cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        assert "written by head office" in done.stdout
        assert verify(out).problems == [] and members(out) == theirs
