"""The automatic archive (edge/fiscal/auto_archive.py): a month or year this node closes is
archived in `<data>/archives`, once, and what a stop cut short is finished at the next start.

Journal API: one journal, the archiver's task running as the node runs it.
"""

from __future__ import annotations

import asyncio
import hashlib
import sqlite3
import zipfile
from pathlib import Path

import orjson
import pytest
from signing_support import STORE_ID
from test_closures import CALENDAR, Tills, apply, at, close, opened

from edge.fiscal import auto_archive
from edge.fiscal.archive_files import MANIFEST
from edge.fiscal.auto_archive import AutoArchive, archive_one, archives_folder, status_in_words
from edge.fiscal.verify_archive import run as verify_archive
from edge.journal.store import Journal


async def exports(journal: Journal) -> list[dict[str, object]]:
    rows = await journal.read_all("SELECT body FROM events WHERE type = 'archive_exported' "
                                  "ORDER BY seq")
    return [orjson.loads(row["body"]) for row in rows]


async def wait_for_exports(journal: Journal, count: int) -> list[dict[str, object]]:
    for _ in range(500):
        found = await exports(journal)
        if len(found) >= count:
            return found
        await asyncio.sleep(0.02)
    raise AssertionError(f"{count} archive(s) not recorded: {await exports(journal)}")


def status(journal: Journal, data: Path) -> dict[str, str] | None:
    db = sqlite3.connect(journal.path)
    try:
        return status_in_words(db, data, STORE_ID, journal.origin)
    finally:
        db.close()


def test_a_closed_month_is_archived_once_and_a_stop_cut_short_is_finished(
        tmp_path: Path, capsys: object, monkeypatch: pytest.MonkeyPatch) -> None:
    data = tmp_path / "data"
    tills = Tills()
    for day, price in (("12-30", 120), ("12-31", 410)):
        tills.sale(at(day), price=price)

    async def scenario() -> None:
        journal = await opened(tmp_path, "archiver")
        archiver = AutoArchive(journal, data, CALENDAR)
        journal.add_listener(archiver.on_events)
        task = asyncio.create_task(archiver.run())
        try:
            await apply(journal, tills.events("node-a"))
            await close(journal, "day", "2024-12-30")
            await close(journal, "day", "2024-12-31")
            assert await archiver.catch_up() == []  # days are not archived on their own
            await close(journal, "month", "2024-12")
            [recorded] = await wait_for_exports(journal, 1)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            archiver.close()
        path = archives_folder(data) / f"edge-archive-{STORE_ID}-2024-12.zip"
        assert recorded["name"] == path.name and recorded["period"] == "2024-12"
        assert verify_archive(path) == 0  # what `edge verify ARCHIVE` runs
        assert "OK: untouched" in capsys.readouterr().out  # type: ignore[attr-defined]
        first = path.stat()

        # A restart: nothing is due, nothing written again.
        again = AutoArchive(journal, data, CALENDAR)
        assert await again.catch_up() == []
        again.close()
        assert path.stat().st_ino == first.st_ino and path.stat().st_mtime_ns == first.st_mtime_ns

        # The year closed while no archiver ran, and the node stopped between writing its
        # archive and recording it: the next start records that file, as it is.
        await close(journal, "year", "2024")
        # A full disk: said by `edge status`, nothing recorded, tried again later.
        def full(*args: object) -> None:
            raise OSError(28, "No space left on device")

        with monkeypatch.context() as patched:
            patched.setattr(auto_archive, "write_archive", full)
            failing = AutoArchive(journal, data, CALENDAR)
            with pytest.raises(OSError):
                await failing.catch_up()
            failing.close()
        said = status(journal, data)
        assert said is not None and said["waiting"].startswith("year 2024")
        assert "2024" in said["FAILED"] and "No space left on device" in said["FAILED"]
        year = CALENDAR.period("year", "2024")
        written = await asyncio.to_thread(archive_one, journal, archives_folder(data), year)
        year_file = archives_folder(data) / written["name"]
        before = year_file.stat()
        restarted = AutoArchive(journal, data, CALENDAR)
        assert await restarted.catch_up() == [year_file.name]
        restarted.close()
        assert year_file.stat().st_mtime_ns == before.st_mtime_ns
        assert [e["name"] for e in await exports(journal)] == [path.name, year_file.name]
        with zipfile.ZipFile(year_file) as zf:
            manifest = zf.read(MANIFEST)
        assert (await exports(journal))[1]["manifest_sha256"] == \
            hashlib.sha256(manifest).hexdigest()
        assert verify_archive(year_file) == 0

        said = status(journal, data)
        await journal.close()
        assert said is not None and said["last"].startswith(f"2024: {year_file}")
        assert "waiting" not in said and "FAILED" not in said

    asyncio.run(scenario())
