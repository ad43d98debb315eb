"""A catalogue CSV checked whole, a row at a time, into a scratch file: memory stays flat.

Head office's catalogue may hold a million products. The CSV is read as a
stream (never whole), each row checked by the node's rules
(`product_from_row`, head office's columns: an id, name or category holding a
bidirectional override or another hidden character is a bad line), and the good
rows written to SQLite's own temporary database (in `$SQLITE_TMPDIR` or
`$TMPDIR`; its file unlinked as it is opened, so a process killed mid-import
leaves none). Ids and barcodes that appear twice are found there, by index, not
in sets held in memory. One bad row and nothing is imported: `CatalogueError` names the
bad lines in line order, the first MAX_PROBLEMS of them, then how many more.

Synchronous (file and SQLite work): callers run it in a thread.
"""

from __future__ import annotations

import csv
import sqlite3
from collections.abc import Iterator
from typing import Any, TextIO

from edge.selling.catalogue_import import (
    PRODUCT_COLUMNS,
    CatalogueError,
    header_problems,
    product_from_row,
)

# Bad lines named in full: a wrong export names the same mistake a million times.
MAX_PROBLEMS = 100
ROWS_PER_WRITE = 10_000
STAGED_COLUMNS = ("line", "id", "barcode", "name", "price", "vat_rate", "category")


class StagedCatalogue:
    """The checked rows of one CSV, in a temporary SQLite database gone at `close`."""

    def __init__(self) -> None:
        # "": SQLite's private temporary database, in memory until its cache fills,
        # then in a file it unlinks at once (nothing left behind by a kill -9).
        self.db = sqlite3.connect("", isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode = OFF")  # scratch: nothing to recover
        self.db.execute("PRAGMA synchronous = OFF")
        self.rows = 0

    def pages(self, size: int) -> Iterator[list[tuple[Any, ...]]]:
        """The rows in file order, `size` at a time (each a tuple in STAGED_COLUMNS order)."""
        last = 0
        while True:
            page = self.db.execute(
                f"SELECT {', '.join(STAGED_COLUMNS)} FROM staged WHERE line > ? "
                "ORDER BY line LIMIT ?", (last, size)).fetchall()
            if not page:
                return
            last = page[-1][0]
            yield page

    def close(self) -> None:
        self.db.close()


def stage_catalogue(stream: TextIO) -> StagedCatalogue:
    """Check the CSV in `stream` whole; its rows staged, or CatalogueError and nothing kept."""
    staged = StagedCatalogue()
    try:
        _stage(stream, staged)
    except BaseException:
        staged.close()
        raise
    return staged


def _stage(stream: TextIO, staged: StagedCatalogue) -> None:
    db = staged.db
    db.execute("CREATE TABLE staged (line INTEGER PRIMARY KEY, id TEXT NOT NULL, "
               "barcode TEXT NOT NULL, name TEXT NOT NULL, price INTEGER NOT NULL, "
               "vat_rate INTEGER NOT NULL, category TEXT NOT NULL)")
    reader = csv.DictReader(stream)
    problems: list[tuple[int, str]] = []
    bad = 0
    batch: list[tuple[Any, ...]] = []
    insert = f"INSERT INTO staged VALUES ({', '.join('?' * len(STAGED_COLUMNS))})"
    try:
        # The node's rules: a column missing, named twice (a supplier's price and the
        # shop's: DictReader would take the last one silently), or holding a hidden
        # character.
        header = header_problems(reader.fieldnames or [], PRODUCT_COLUMNS)
        if header:
            raise CatalogueError(header[:MAX_PROBLEMS])
        db.execute("BEGIN")
        for row in reader:
            try:
                product = product_from_row(row, store_fields=False)
            except ValueError as error:
                bad += 1
                if len(problems) < MAX_PROBLEMS:
                    problems.append((reader.line_num, f"line {reader.line_num}: {error}"))
                continue
            batch.append((reader.line_num, *(product[column] for column in STAGED_COLUMNS[1:])))
            if len(batch) >= ROWS_PER_WRITE:
                db.executemany(insert, batch)
                batch.clear()
        db.executemany(insert, batch)
        db.execute("COMMIT")
    except UnicodeDecodeError:
        raise CatalogueError([f"line {reader.line_num + 1}: not UTF-8 text"]) from None
    except csv.Error as error:
        raise CatalogueError([f"line {reader.line_num}: {error}"]) from None
    staged.rows = db.execute("SELECT COUNT(*) FROM staged").fetchone()[0]
    for column in ("id", "barcode"):
        db.execute(f"CREATE INDEX staged_{column} ON staged ({column}, line)")
        # Every occurrence after the first, as a whole-file check names them.
        twice = (f"FROM staged AS s WHERE EXISTS (SELECT 1 FROM staged AS t "
                 f"WHERE t.{column} = s.{column} AND t.line < s.line)")
        bad += db.execute(f"SELECT COUNT(*) {twice}").fetchone()[0]
        problems += [(line, f"line {line}: {column} {value} appears twice") for line, value in
                     db.execute(f"SELECT line, {column} {twice} ORDER BY line LIMIT ?",
                                (MAX_PROBLEMS,))]
    if bad:
        # Stable: a line's own problem before its repeated id, before its repeated barcode.
        named = [text for _, text in sorted(problems, key=lambda problem: problem[0])]
        named = named[:MAX_PROBLEMS]
        if bad > len(named):
            named.append(f"… and {bad - len(named)} more problem(s), not listed")
        raise CatalogueError(named)
