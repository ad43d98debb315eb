"""The automatic archive: each month's and year's archive, written once its closure is made.

French rules want the archive at least yearly. Once this node makes a
month's or a year's closure (`closure_made` of its own origin), it writes
that period's archive into its data folder,
`<data>/archives/edge-archive-<store>-<period>.zip`, as `edge archive` writes
it (archive.py: one snapshot, streamed, fsync'd, renamed once whole), and
records it (`archive_exported`, exports.py). The writing runs in a thread of
its own, never on the event loop (the tills' sales go on); one archive at a
time.

Idempotent, from the journal alone: a period is due while this node's origin
made its closure and recorded no export under that file name. At each start
(and after each closure) the due ones are done: a file already there (the
node stopped between writing and recording) is recorded as it is, never
written again; a half-written one (`.partial`, never under the final name)
is written anew. A failure (disk full, no permission) is logged, said by
`edge status` (`archives/last-failure.json`) and tried again later.
Store IT copies the folder off the machine (docs/operations.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import sqlite3
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import orjson

from edge.fiscal import archive_files as files
from edge.fiscal.archive import ArchiveError, write_archive
from edge.fiscal.archive_admin import archive_name
from edge.fiscal.closures import CLOSURE_MADE
from edge.fiscal.exports import ARCHIVE_EXPORTED, export_body, record_export
from edge.fiscal.periods import MONTH, YEAR, Calendar, Period
from edge.journal.chain import Event, utc_now
from edge.journal.store import Journal

log = logging.getLogger(__name__)

ARCHIVES = "archives"
FAILURE_FILE = "last-failure.json"
AUTO_KINDS = (MONTH, YEAR)
RETRY_AFTER = 300.0  # seconds before a failed archive is tried again


def archives_folder(data_dir: Path) -> Path:
    return data_dir / ARCHIVES


def due(db: sqlite3.Connection, origin: str, store_id: str) -> list[tuple[str, str]]:
    """(kind, period) of this origin's month and year closures whose archive it has not
    recorded (under its file name), oldest first."""
    recorded = {name for (name,) in db.execute(
        "SELECT json_extract(body, '$.name') FROM events WHERE origin = ? AND type = ?",
        (origin, ARCHIVE_EXPORTED))}
    closed = db.execute(
        f"SELECT DISTINCT kind, period FROM closures WHERE origin = ? AND kind IN "
        f"({', '.join('?' * len(AUTO_KINDS))}) ORDER BY period, kind", (origin, *AUTO_KINDS))
    return [(kind, label) for kind, label in closed
            if archive_name(store_id, label) not in recorded]


def _manifest_body(path: Path, period: Period) -> dict[str, Any]:
    """The export record of an archive already written (its manifest says it all)."""
    with zipfile.ZipFile(path) as zf:
        raw = zf.read(files.MANIFEST)
    manifest = orjson.loads(raw)
    if manifest.get("period", {}).get("label") != period.label:
        raise ArchiveError(f"{path} is not the archive of {period.label}")
    return export_body(period.as_dict(), hashlib.sha256(raw).hexdigest(),
                       sorted(manifest["files"]), int(manifest["events"]), path.name)


def archive_one(journal: Journal, folder: Path, period: Period) -> dict[str, Any]:
    """Write `period`'s archive in `folder` unless it is there whole; its export record.
    Blocking: run in a thread."""
    folder.mkdir(parents=True, exist_ok=True)
    out = folder / archive_name(journal.identity.store_id, period.label)
    if out.exists():
        try:
            return _manifest_body(out, period)
        except (zipfile.BadZipFile, KeyError, ValueError, OSError, ArchiveError) as error:
            log.warning("%s cannot be read (%s): it is kept aside and written again", out, error)
            out.replace(out.with_name(out.name + f".unreadable-{utc_now()[:19]}"))
    written = write_archive(journal.path, period, out, journal.identity, journal.origin)
    descriptor = os.open(folder, os.O_RDONLY)  # the rename made durable too
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
    return export_body(period.as_dict(), written.manifest_sha256, written.files,
                       written.events, out.name)


def note_failure(folder: Path, label: str, error: BaseException | None) -> None:
    """Keep (or clear, `error` None) the last failure, for `edge status`."""
    path = folder / FAILURE_FILE
    if error is None:
        path.unlink(missing_ok=True)
        return
    try:
        folder.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"period": label, "at": utc_now(),
                                    "error": f"{error}" or type(error).__name__}))
    except OSError:  # the disk that refused the archive may refuse this too: logged
        pass


def read_failure(data_dir: Path) -> dict[str, Any] | None:
    try:
        failure = json.loads((archives_folder(data_dir) / FAILURE_FILE).read_text())
    except (OSError, ValueError):
        return None
    return failure if isinstance(failure, dict) else None


class AutoArchive:
    """The node's background archiver: a supervised task, and a thread to write in."""

    def __init__(self, journal: Journal, data_dir: Path, calendar: Calendar,
                 retry_after: float = RETRY_AFTER) -> None:
        self.journal = journal
        self.folder = archives_folder(data_dir)
        self.calendar = calendar
        self.retry_after = retry_after
        self.wake = asyncio.Event()
        self._thread: ThreadPoolExecutor | None = None

    def on_events(self, events: list[Event]) -> None:
        """A journal listener: a month or year this node closed wakes the archiver."""
        if any(event.type == CLOSURE_MADE and event.origin == self.journal.origin
               and event.body.get("kind") in AUTO_KINDS for event in events):
            self.wake.set()

    async def _in_thread(self, function: Any, *args: Any) -> Any:
        if self._thread is None:
            self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="auto-archive")
        return await asyncio.get_running_loop().run_in_executor(self._thread, function, *args)

    async def catch_up(self) -> list[str]:
        """Write and record every archive due; the file names recorded. Raises what failed
        (said in `archives/last-failure.json` first)."""
        def read_due() -> list[tuple[str, str]]:
            db = sqlite3.connect(f"file:{self.journal.path}?mode=ro", uri=True)
            try:
                return due(db, self.journal.origin, self.journal.identity.store_id)
            finally:
                db.close()

        done = []
        for kind, label in await self._in_thread(read_due):
            try:
                period = self.calendar.period(kind, label)
                body = await self._in_thread(archive_one, self.journal, self.folder, period)
                await record_export(self.journal, body)
            except Exception as error:
                log.warning("the automatic archive of %s %s failed: %s", kind, label, error)
                await self._in_thread(note_failure, self.folder, label, error)
                raise
            log.info("archive of %s %s written to %s", kind, label, self.folder / body["name"])
            done.append(body["name"])
        if done:
            await self._in_thread(note_failure, self.folder, "", None)
        return done

    async def run(self) -> None:
        while True:
            self.wake.clear()
            try:
                await self.catch_up()
                await self.wake.wait()
            except Exception:  # said and logged: tried again later, or at the next closure
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.wake.wait(), self.retry_after)

    def close(self) -> None:
        """Let an archive being written finish (one at most), then stop the thread: a
        write cut short would only be written again at the next start."""
        if self._thread is not None:
            self._thread.shutdown(wait=True)
            self._thread = None


def status_in_words(db: sqlite3.Connection, data_dir: Path, store_id: str,
                    origin: str) -> dict[str, Any] | None:
    """`edge status`: the last automatic archive (period, file, when), what is waiting to be
    archived, and the last failure, in words; None when nothing was ever due."""
    folder = archives_folder(data_dir).resolve()
    said: dict[str, Any] = {}
    for time, body in db.execute(
            "SELECT time, body FROM events WHERE origin = ? AND type = ? ORDER BY seq DESC",
            (origin, ARCHIVE_EXPORTED)):
        record = orjson.loads(body)
        path = folder / str(record.get("name", ""))
        if record.get("name") and path.exists():
            said["last"] = f"{record['period']}: {path}, written {time}"
            break
    waiting = due(db, origin, store_id)
    if waiting:
        said["waiting"] = ", ".join(f"{kind} {label}" for kind, label in waiting) + \
            " (closed; the running node writes the archive)"
    failure = read_failure(data_dir)
    if failure is not None:
        said["FAILED"] = (f"the archive of {failure.get('period')} could not be written at "
                          f"{failure.get('at')}: {failure.get('error')}; the node tries again "
                          "every 5 minutes (free space in the data folder?)")
    if said:
        said["folder"] = f"{folder} (copy it off this machine: a USB key, a file server)"
    return said or None
