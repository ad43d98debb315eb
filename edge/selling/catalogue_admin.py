"""`edge catalogue`: a store loads its own products and promotions from CSV files.

`edge catalogue import FILE.csv [--promotions FILE.csv]` checks both files
whole, with head office's rules and line-numbered problems
(edge/selling/catalogue_import.py), then against what the store holds, and
writes nothing if one line does not fit; then writes every change, a batch
of products per transaction (bounded memory at a million products, the tills
selling meanwhile; after a crash mid-import, the same import again finishes
it: edge/selling/catalogue_loading.py). Like `edge
staff` (edge/admin.py): through the running node when one holds the data
folder (`POST /api/admin/catalogue`, the files sent in parts that fit the
node's request bound, put together by the node), else here, under the lock.
The store IT page's form (web/catalogue-import.html) does the same.

The store's products live beside head office's: an id or a barcode that head
office's catalogue holds is refused (say `L-` + the id), so neither side
changes the other's product. A product the file does not name is left as it
is; a promotions file lists the store's promotions: the store's own that it
no longer names are ended (`promotion_ended`). Re-importing the same files
changes nothing (only differences become events).
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
import sqlite3
import sys
import time
import uuid
import weakref
from dataclasses import asdict
from pathlib import Path
from typing import Any

from edge.admin import AdminRefused
from edge.config import Config
from edge.journal.datafolder import FolderInUse
from edge.journal.store import Journal, local_journal
from edge.selling.catalogue import product_json
from edge.selling.catalogue_import import CatalogueError
from edge.selling.catalogue_loading import PRODUCT_FIELDS, import_texts
from edge.selling.catalogue_text import spreadsheet_safe
from edge.selling.promotions import PROMOTION_FIELDS, promotion_json

MAX_IMPORT_BYTES = 8 * 1024 * 1024  # both files together, as the node holds them
PART_CHARACTERS = 12_000  # a part's JSON stays under the node's 64 KB request bound
UPLOAD_SECONDS = 600  # an upload left unfinished this long is dropped
MAX_PROBLEMS_SHOWN = 100
FILES = ("products", "promotions")
class Uploads:
    """The one upload a node puts together (store IT imports one catalogue at a time)."""

    def __init__(self) -> None:
        self.id: str | None = None
        self.texts: dict[str, list[str]] = {}
        self.size = 0
        self.touched = 0.0

    def add(self, upload_id: str, file: str, text: str) -> int:
        now = time.monotonic()
        if upload_id != self.id or now - self.touched > UPLOAD_SECONDS:
            self.id, self.texts, self.size = upload_id, {}, 0  # a new upload replaces it
        self.size += len(text.encode())
        if self.size > MAX_IMPORT_BYTES:
            self.id, self.texts, self.size = None, {}, 0
            raise AdminRefused("import_too_large", f"the files are over "
                               f"{MAX_IMPORT_BYTES // 1024 // 1024} MB together: split them",
                               413)
        self.texts.setdefault(file, []).append(text)
        self.touched = now
        return self.size

    def take(self, upload_id: str) -> dict[str, str]:
        if upload_id != self.id or time.monotonic() - self.touched > UPLOAD_SECONDS:
            raise AdminRefused("unknown_upload", "no such upload on the node (or it was left "
                               f"over {UPLOAD_SECONDS // 60} minutes): send the files again",
                               404)
        texts = {file: "".join(parts) for file, parts in self.texts.items()}
        self.id, self.texts, self.size = None, {}, 0
        return texts


_UPLOADS: weakref.WeakKeyDictionary[Journal, Uploads] = weakref.WeakKeyDictionary()


async def carry_out(journal: Journal, request: dict[str, Any]) -> dict[str, Any]:
    """One `/api/admin/catalogue` request: `upload` a part of a file, or `import`."""
    uploads = _UPLOADS.setdefault(journal, Uploads())
    action, upload_id = request.get("action"), request.get("upload")
    if action == "upload":
        file, text = request.get("file"), request.get("text")
        if not isinstance(upload_id, str) or file not in FILES or not isinstance(text, str):
            raise AdminRefused("invalid_request", "upload: {upload, file: products or "
                                                "promotions, text}")
        return {"received": uploads.add(upload_id, file, text)}
    if action != "import":
        raise AdminRefused("invalid_request", "action must be upload or import")
    texts = uploads.take(upload_id) if isinstance(upload_id, str) else {
        file: request[file] for file in FILES if isinstance(request.get(file), str)}
    if "products" not in texts:
        raise AdminRefused("invalid_request", "no products file was sent")
    try:
        summary = await import_texts(journal, texts["products"], texts.get("promotions"))
    except CatalogueError as error:
        raise AdminRefused("invalid_catalogue", problems_message(error.problems)) from None
    return {"summary": asdict(summary), "message": str(summary)}


def problems_message(problems: list[str]) -> str:
    shown = problems[:MAX_PROBLEMS_SHOWN]
    more = len(problems) - len(shown)
    return "\n".join([f"{len(problems)} problem(s), nothing imported:", *shown,
                      *([f"... and {more} more"] if more else [])])


# The command

def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser("catalogue", help="the store's own products and promotions: "
                                              "import or export CSV files")
    actions = parser.add_subparsers(dest="catalogue_action", metavar="ACTION", required=True)
    importing = actions.add_parser("import", help="add or change the store's products (and "
                                                  "promotions) from CSV files, all or nothing")
    importing.add_argument("file", type=Path, help="products CSV: id, barcode, name, price, "
                           "vat_rate, category, unit, colour, image, favourite, open_price")
    importing.add_argument("--promotions", type=Path, help="promotions CSV: id, name, kind, "
                           "products, n, m, percent, price, starts, ends")
    exporting = actions.add_parser("export", help="print the store's own products as CSV")
    exporting.add_argument("--all", action="store_true", help="every product on sale, head "
                                                             "office's too")
    exporting.add_argument("--promotions", action="store_true",
                           help="print the promotions instead")
    for action in (importing, exporting):
        action.add_argument("--config", type=Path, help="store config file (TOML); none = "
                                                       "demo store")
        action.add_argument("--data", type=Path, help="data folder (default ./edge-data)")


def run_catalogue(config: Config, args: argparse.Namespace) -> int:
    if not config.database.exists():
        print(f"No store data in {config.data_dir}: start `edge serve` once first.",
              file=sys.stderr)
        return 1
    if args.catalogue_action == "export":
        sys.stdout.write(export_csv(config.database, args.all, args.promotions))
        return 0
    try:
        texts = {"products": _read(args.file)}
        if args.promotions:
            texts["promotions"] = _read(args.promotions)
    except AdminRefused as error:
        print(error.message, file=sys.stderr)
        return 2
    lines = {file: max(0, text.count("\n") + (not text.endswith("\n")) - 1)  # no copy
             for file, text in texts.items()}
    print(f"Checking {lines['products']} product line(s)"
          + (f" and {lines['promotions']} promotion line(s)" if "promotions" in texts else "")
          + "…", file=sys.stderr)
    try:
        answer = _here_or_by_node(config, texts)
    except AdminRefused as error:
        print(error.message, file=sys.stderr)
        return 2 if error.code == "invalid_catalogue" else 1
    print(f"Imported{answer.get('by', '')}: {answer['message']}.")
    return 0


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise AdminRefused("invalid_request", f"{path} is not UTF-8 text: save it as "
                                            "\"CSV UTF-8\"; nothing imported") from None
    except OSError as error:
        raise AdminRefused("invalid_request", f"{path}: {error.strerror}; nothing "
                                            "imported") from None


def _here_or_by_node(config: Config, texts: dict[str, str]) -> dict[str, Any]:
    from edge.admin import NodeRefused, ask_node

    try:
        return asyncio.run(_import_alone(config, texts))
    except FolderInUse:
        pass  # a node (or another command) holds the folder: the node does it
    upload = str(uuid.uuid4())
    parts = [(file, text[start:start + PART_CHARACTERS]) for file, text in texts.items()
             for start in range(0, max(len(text), 1), PART_CHARACTERS)]
    try:
        for number, (file, part) in enumerate(parts, start=1):
            if len(parts) > 1:
                print(f"Sending to the running node: part {number} of {len(parts)}",
                      file=sys.stderr)
            ask_node(config, "/api/admin/catalogue",
                     {"action": "upload", "upload": upload, "file": file, "text": part})
        answer = ask_node(config, "/api/admin/catalogue",
                          {"action": "import", "upload": upload}, timeout=120)
    except NodeRefused as refused:
        code = "invalid_catalogue" if "nothing imported" in str(refused) else "node_refused"
        raise AdminRefused(code, str(refused), 409) from None
    return {**answer, "by": " by the running node"}


async def _import_alone(config: Config, texts: dict[str, str]) -> dict[str, Any]:
    async with local_journal(config.data_dir, config.database, "edge catalogue") as journal:
        return await carry_out(journal, {"action": "import", **texts})


def rows_csv(columns: tuple[str, ...], rows: list[dict[str, Any]]) -> str:
    """The rows as CSV, each text cell a spreadsheet would run as a formula (a name
    "=HYPERLINK(...)") behind a single quote, which the import takes off again. Numbers
    are written as they are: none is negative in a catalogue, and a number is no formula."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(columns), lineterminator="\n")
    writer.writeheader()
    writer.writerows({column: spreadsheet_safe(value) if isinstance(value, str) else value
                      for column, value in row.items()} for row in rows)
    return out.getvalue()


def export_csv(database: Path, everything: bool, promotions: bool) -> str:
    """The store's own products (or promotions) on sale as an importable CSV; with
    `everything`, head office's too. Read straight from the file: a node may run."""
    db = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    db.row_factory = sqlite3.Row
    own = "" if everything else " AND listed_origin NOT LIKE 'headoffice-%'"
    try:
        if promotions:
            rows = [promotion_json(row) for row in db.execute(
                f"SELECT {', '.join(PROMOTION_FIELDS)} FROM promotions WHERE active{own} "
                "ORDER BY id")]
            return rows_csv(PROMOTION_FIELDS, [
                {**row, "products": "|".join(row["products"])} for row in rows])
        rows = [product_json(row) for row in db.execute(
            f"SELECT * FROM products WHERE active{own} ORDER BY id")]
        return rows_csv(PRODUCT_FIELDS, [
            {**row, "barcode": row["barcode"] or "", "open_price": "yes" if row["open_price"]
             else ""} for row in rows])
    finally:
        db.close()
