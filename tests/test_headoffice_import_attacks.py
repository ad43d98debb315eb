"""Attacks on head office's streamed catalogue import (issue 12).

FINDING-marked tests failed on the code they were written against.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from edge.headoffice.catalogue import import_catalogue_csv
from edge.headoffice.storage import HeadOfficeStorage
from edge.selling.catalogue_import import CatalogueError

# The import's staging, in a process of its own, stopped for good while it reads the CSV.
STAGING_KILLED = """
import sys, time
from edge.headoffice.catalogue_staging import stage_catalogue

def lines():
    yield "id,barcode,name,price,vat_rate,category\\n"
    for number in range(50):
        yield f"p{number},3017620422003,Article {number},100,550,Rayon\\n"
    print("staging", flush=True)
    time.sleep(60)

stage_catalogue(lines())
"""


# FINDING (LOW): the staged rows of a CSV (about 100 MB for a million products) went to
# a named scratch file in $TMPDIR, removed only by `close`: a head-office process
# killed or crashing mid-import left it there for good, one more each time (on a
# tmpfs /tmp, held in RAM). Fixed in catalogue_staging: SQLite's own temporary
# database (`sqlite3.connect("")`), whose file is unlinked as it is opened.
def test_a_head_office_killed_while_staging_leaves_no_scratch_file(tmp_path: Path) -> None:
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    root = Path(__file__).resolve().parent.parent
    child = subprocess.Popen(
        [sys.executable, "-c", STAGING_KILLED], stdout=subprocess.PIPE,
        env={**os.environ, "TMPDIR": str(scratch), "SQLITE_TMPDIR": str(scratch),
             "PYTHONPATH": str(root)})
    try:
        assert child.stdout is not None
        assert child.stdout.readline() == b"staging\n"
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(timeout=10)
        if child.stdout is not None:
            child.stdout.close()
    assert sorted(path.name for path in scratch.iterdir()) == []


# FINDING (MEDIUM): a CSV naming a column twice (an export with two `price` columns:
# the supplier's and the shop's) was imported, csv.DictReader silently taking the last
# one: every store would sell at the wrong price, nothing said. Fixed in
# catalogue_staging: a column named twice is a bad header, nothing imported.
async def test_a_column_named_twice_is_refused_not_guessed(tmp_path: Path) -> None:
    storage = HeadOfficeStorage(f"sqlite://{tmp_path / 'headoffice.sqlite3'}")
    await storage.open()
    try:
        text = ("id,barcode,name,price,vat_rate,category,price\n"
                "p1,3017620422003,Pain,250,550,Rayon,120\n")
        with pytest.raises(CatalogueError) as refused:
            await import_catalogue_csv(storage, text)
        assert refused.value.problems == ["line 1: column price appears twice"]
        assert await storage.products() == []
    finally:
        await storage.close()
