"""A node's data folder: owned by exactly one process, and the origin its journal writes.

Two processes appending to one journal lose acknowledged sales (each thinks
it holds the chain head). So a process takes an exclusive lock on the folder
before it opens anything in it, and keeps it until it exits; the kernel drops
the lock if the process dies, so a `kill -9` never leaves it stuck.

A journal's own origin must never reuse a sequence number that a peer or head
office may already hold. A data folder restored from a backup, or copied to
another folder or machine, holds an older head of that origin than the world
does, so it must not go on writing it. It is recognised by any of:
- a copy made by `edge backup` is marked as one inside (`backup_of`);
- the journal remembers where its origin lives (machine, database file
  identity, path): a copy or a restore changes one of them;
- a file beside the journal (`head-mark`) holds its incarnation token, new at
  each start, and how far its own origin had got, written every few seconds:
  a journal put back in place (copied over the file) carries an older token,
  or is behind that mark.
The node then continues under a new origin that names its predecessor and
where that chain was cut (`origin_started`). Anything that slips through
(a whole disk image reverted) shows the first time a peer sends an event of
our origin this journal never wrote: it is refused, the node stops writing
at once and takes a new origin when it starts again (`OwnOriginSeen` in
edge/journal.py); a second writer on the same file is fatal the same way
(`OriginClash`).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

LOCK_FILE = "lock"
NODE_ID_FILE = "node-id"


class FolderInUse(Exception):
    """Another process owns this data folder."""

    def __init__(self, folder: Path, holder: str) -> None:
        super().__init__(
            f"the data folder {folder} is in use by another edge process ({holder}). "
            "Stop it first (systemctl stop edge), or give this one another --data folder."
        )
        self.holder = holder


class FolderLock:
    """An exclusive lock on a data folder, held from `acquire` until `release` (or exit)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._fd: int | None = None

    def acquire(self, what: str = "") -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.folder / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 512, 0).decode(errors="replace").strip() or "pid unknown"
            os.close(fd)
            raise FolderInUse(self.folder, holder) from None
        except BaseException:
            os.close(fd)
            raise
        started = datetime.now(UTC).isoformat(timespec="seconds")
        command = what or " ".join(Path(sys.argv[0]).name.split() + sys.argv[1:2])
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()}, {command}, since {started}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, 0)
            os.close(self._fd)  # closing drops the lock
            self._fd = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def __enter__(self) -> FolderLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def machine_id() -> str:
    """This machine's identity: systemd's machine id, else the host name."""
    for path in ("/etc/machine-id", "/var/lib/dbus/machine-id"):
        with contextlib.suppress(OSError):
            value = Path(path).read_text().strip()
            if value:
                return value
    return socket.gethostname()


@dataclass(frozen=True)
class Home:
    """Where an origin's journal lives: a copy or a restore changes at least one of these."""

    machine: str
    inode: int
    path: str

    @classmethod
    def of(cls, database: Path) -> Home:
        return cls(machine_id(), database.stat().st_ino, str(database.resolve()))

    def as_dict(self) -> dict[str, Any]:
        return {"machine": self.machine, "inode": self.inode, "path": self.path}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Home:
        return cls(str(data["machine"]), int(data["inode"]), str(data["path"]))


def home_changed(recorded: Home, current: Home) -> str | None:
    """Why the journal cannot go on writing its origin here (None: it can).

    The same file moved to another folder of the same machine keeps its
    inode: still the same journal, so it carries on.
    """
    if recorded.machine != current.machine:
        return "moved_or_copied_to_another_machine"
    if recorded.inode != current.inode:
        if recorded.path == current.path:
            return "restored_or_replaced"
        return "copied_to_another_folder"
    return None


REASONS = {
    "moved_or_copied_to_another_machine":
        "the data folder was moved or copied onto another machine",
    "restored_or_replaced": "the journal was restored from a backup or replaced",
    "restored_from_backup": "the journal was restored from a backup with `edge restore`",
    "copied_to_another_folder": "the data folder was copied to another folder",
    "journal_replaced": "the journal is not the one this folder last ran "
                        "(restored from a backup or copied over)",
    "origin_clash": "another process wrote under this node's origin",
    "new_signing_key": "this node's signing key changed (it joined the store again, or its "
                       "tls folder was replaced): an origin is signed by one key, ever",
    "journal_from_before_signing": "the journal was written by an edge from before events "
                                   "were signed: the node signs from now on, under a new origin",
}


HEAD_MARK_FILE = "head-mark"


@dataclass(frozen=True)
class HeadMark:
    """What this folder last knew of its journal, kept beside it (not inside).

    `tokens`: the journal's incarnation tokens, newest first (the previous one
    too: a crash between writing this file and committing the token must not
    look like a replaced journal). `head`: how far the folder's own origin had
    got, written every few seconds and at a clean stop: a journal put back
    that is behind it is an older copy.
    """

    origin: str
    tokens: tuple[str, ...]
    head: int

    def as_json(self) -> str:
        return orjson.dumps({"origin": self.origin, "tokens": list(self.tokens),
                             "head": self.head}).decode()


def read_head_mark(folder: Path) -> HeadMark | None:
    try:
        data = orjson.loads((folder / HEAD_MARK_FILE).read_bytes())
        return HeadMark(str(data["origin"]), tuple(map(str, data["tokens"])), int(data["head"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def write_head_mark(folder: Path, mark: HeadMark) -> None:
    """Durably: written and fsync'd under another name, then renamed over the old one."""
    temporary = folder / (HEAD_MARK_FILE + ".new")
    with temporary.open("w") as file:
        file.write(mark.as_json() + "\n")
        file.flush()
        os.fsync(file.fileno())
    temporary.replace(folder / HEAD_MARK_FILE)


def replaced_journal(mark: HeadMark | None, origin: str, token: str | None, head: int) -> bool:
    """Is the journal not the one this folder last ran, or behind what it had written?

    No mark (an older edge, or a deleted file): nothing to compare, carry on.
    """
    if mark is None or mark.origin != origin:
        return False
    return token not in mark.tokens or head < mark.head


def new_node_id() -> str:
    return os.urandom(3).hex()


def write_node_id(folder: Path, node_id: str) -> None:
    """Mirror the journal's origin in `node-id`, for people and scripts (atomic)."""
    path = folder / NODE_ID_FILE
    if path.exists() and path.read_text().strip() == node_id:
        return
    temporary = path.with_suffix(".new")
    temporary.write_text(node_id + "\n")
    temporary.replace(path)


def read_node_id(folder: Path) -> str | None:
    path = folder / NODE_ID_FILE
    with contextlib.suppress(OSError):
        return path.read_text().strip() or None
    return None
