"""`edge catalogue`: a store loads its own products and promotions from CSV files.

`edge catalogue import FILE.csv [--promotions FILE.csv]` checks both files
whole, with head office's rules and line-numbered problems
(edge/selling/catalogue_import.py), then against what the store holds, and
writes nothing if one line does not fit; then writes every change, a batch
of products per transaction (bounded memory at a million products, the tills
selling meanwhile; after a crash mid-import, the same import again finishes
it: see `import_texts`). Like `edge
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
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from edge.admin import AdminRefused
from edge.config import Config
from edge.journal.datafolder import FolderInUse
from edge.journal.signing import is_headoffice_origin
from edge.journal.store import Journal, Tx, local_journal
from edge.selling.catalogue import TILE_DEFAULTS, product_json
from edge.selling.catalogue_import import (
    CatalogueError,
    CheckedFile,
    check_catalogue,
    parse_promotion_rows,
)
from edge.selling.promotions import PROMOTION_FIELDS, promotion_json, store_promotion_ids

MAX_IMPORT_BYTES = 8 * 1024 * 1024  # both files together, as the node holds them
PART_CHARACTERS = 12_000  # a part's JSON stays under the node's 64 KB request bound
UPLOAD_SECONDS = 600  # an upload left unfinished this long is dropped
MAX_PROBLEMS_SHOWN = 100
FILES = ("products", "promotions")
# Products per transaction of a large import: bounded memory, and the tills' sales
# wait for one batch at most, never for the whole file.
IMPORT_BATCH = 1000
InFile = Callable[[str], bool]
PRODUCT_FIELDS = ("id", "barcode", "name", "price", "vat_rate", "category", *TILE_DEFAULTS)


@dataclass
class ImportSummary:
    added: int = 0
    changed: int = 0
    unchanged: int = 0
    promotions_added: int = 0
    promotions_changed: int = 0
    promotions_unchanged: int = 0
    promotions_ended: int = 0

    def __str__(self) -> str:
        text = f"{self.added} added, {self.changed} changed, {self.unchanged} unchanged"
        promotions = (self.promotions_added + self.promotions_changed
                      + self.promotions_unchanged + self.promotions_ended)
        if promotions:
            text += (f"; promotions: {self.promotions_added} added, {self.promotions_changed} "
                     f"changed, {self.promotions_unchanged} unchanged, "
                     f"{self.promotions_ended} ended")
        return text


# The import itself, in one write transaction

def import_into(tx: Tx, products: list[tuple[int, dict[str, Any]]],
                promotions: list[tuple[int, dict[str, Any]]] | None,
                in_file: InFile | None = None, write: bool = True) -> ImportSummary:
    """Check the parsed files against the store and write the differences; CatalogueError
    (every problem, by line) and nothing written if one does not fit. `in_file`: is a
    product id in the products file (by default: among `products`); not `write`: the
    checks and the summary only."""
    summary, problems = ImportSummary(), []
    if in_file is None:
        ids = {product["id"] for _, product in products}
        in_file = ids.__contains__
    upserts = []
    # What the store holds of the batch's ids and barcodes: two reads, not two per line.
    holding = {row["id"]: row for row in _rows_naming(
        tx, "SELECT * FROM products WHERE id IN ({})", [p["id"] for _, p in products])}
    owners: dict[str, list[sqlite3.Row]] = {}
    for row in _rows_naming(
            tx, "SELECT id, name, listed_origin, declared_barcode FROM products "
                "WHERE declared_barcode IN ({}) AND active ORDER BY declared_barcode, rowid",
            [p["barcode"] for _, p in products if p["barcode"] is not None]):
        owners.setdefault(row["declared_barcode"], []).append(row)
    for line, product in products:
        held = holding.get(product["id"])
        if held is not None and is_headoffice_origin(held["listed_origin"]):
            problems.append(f"line {line}: id {product['id']} is head office's product "
                            f"({held['name']}): give the store's own products ids of their "
                            f"own, e.g. L-{product['id']}")
            continue
        if product["barcode"] is not None:
            owner = next((row for row in owners.get(product["barcode"], [])
                          if row["id"] != product["id"]), None)
            if owner is not None and (not in_file(owner["id"])
                                      or is_headoffice_origin(owner["listed_origin"])):
                problems.append(f"line {line}: barcode {product['barcode']} is product "
                                f"{owner['id']}'s ({owner['name']}): change or remove one")
                continue
        if held is None or held["listed_time"] == "":
            summary.added += 1
        elif held["active"] and _same_product(held, product):
            summary.unchanged += 1
            continue
        else:
            summary.changed += 1
        upserts.append(product)
    endings: list[str] = []
    if promotions is not None:
        endings = _promotion_changes(tx, promotions, in_file, summary, problems)
    if problems:
        raise CatalogueError(problems)
    if not write:
        return summary
    for product in upserts:
        tx.append("product_upserted", product)
    for _, promotion in promotions or []:
        if promotion.get("write"):
            tx.append("promotion_upserted", {key: value for key, value in promotion.items()
                                             if key != "write"})
    for promotion_id in endings:
        tx.append("promotion_ended", {"id": promotion_id})
    return summary


def _rows_naming(tx: Tx, sql: str, keys: list[str]) -> list[sqlite3.Row]:
    """`sql`'s rows for `keys` (its `IN ({})`), asked in parts SQLite takes."""
    rows = []
    for start in range(0, len(keys), 500):
        part = keys[start:start + 500]
        rows += tx.fetchall(sql.format(", ".join("?" * len(part))), part)
    return rows


def _same_product(held: sqlite3.Row, product: dict[str, Any]) -> bool:
    now = {key: held[key] for key in PRODUCT_FIELDS} | {
        "barcode": held["declared_barcode"], "open_price": bool(held["open_price"])}
    return now == {key: product[key] for key in PRODUCT_FIELDS}


def _promotion_changes(tx: Tx, promotions: list[tuple[int, dict[str, Any]]], in_file: InFile,
                       summary: ImportSummary, problems: list[str]) -> list[str]:
    """Mark the promotions to write; the store's own ones to end (not in the file)."""
    current = store_promotion_ids(tx.db)
    for line, promotion in promotions:
        unknown = [product_id for product_id in promotion["products"]
                   if not in_file(product_id) and tx.fetchone(
                       "SELECT 1 FROM products WHERE id = ? AND active", (product_id,)) is None]
        held = tx.fetchone("SELECT listed_origin, listed_time FROM promotions WHERE id = ?",
                           (promotion["id"],))
        if unknown:
            problems.append(f"promotions line {line}: product(s) {', '.join(unknown)} not in "
                            "the catalogue")
        elif held is not None and is_headoffice_origin(held["listed_origin"]):
            problems.append(f"promotions line {line}: id {promotion['id']} is head office's "
                            "promotion: give the store's own promotions ids of their own")
        elif held is None or held["listed_time"] == "":
            summary.promotions_added += 1
            promotion["write"] = True
        elif _same_promotion(current.get(promotion["id"]), promotion):
            summary.promotions_unchanged += 1
        else:
            summary.promotions_changed += 1
            promotion["write"] = True
    named = {promotion["id"] for _, promotion in promotions}
    endings = sorted(promotion_id for promotion_id, held in current.items()
                     if promotion_id not in named and not is_headoffice_origin(held["origin"]))
    summary.promotions_ended = len(endings)
    return endings


def _same_promotion(held: dict[str, Any] | None, promotion: dict[str, Any]) -> bool:
    return held is not None and all(held.get(key) == promotion.get(key)
                                    for key in PROMOTION_FIELDS)


async def import_texts(journal: Journal, products_text: str,
                       promotions_text: str | None) -> ImportSummary:
    """Check both files whole (every problem at once), then import them.

    Read a batch of IMPORT_BATCH products at a time, in bounded memory, the
    tills selling between two batches: every line checked, then every batch
    against the store; nothing is written if one line does not fit. Then
    written, a batch per transaction. A crash (power cut, kill) while writing
    leaves the batches written so far, never half of one: the same import run
    again writes only what is still missing (only differences become events).
    """
    checked = CheckedFile()
    try:
        parse_problems: list[str] = []
        store_problems: list[str] = []
        promotions = None
        try:  # every line read first (every id met: a product may name a later one)
            check_catalogue(products_text, checked)
        except CatalogueError as error:
            parse_problems += error.problems
        if promotions_text is not None:
            try:
                promotions = parse_promotion_rows(promotions_text)
            except CatalogueError as error:
                parse_problems += error.problems
        if parse_problems:
            raise CatalogueError(parse_problems)
        for batch in checked.batches(IMPORT_BATCH):
            store_problems += await journal.write(_check(batch, None, checked))
        if promotions is not None:
            store_problems += await journal.write(_check([], promotions, checked))
        if store_problems:
            raise CatalogueError(store_problems)
        return await _write_in_batches(journal, promotions, checked)
    finally:
        checked.close()


Rows = list[tuple[int, dict[str, Any]]]


def _check(batch: Rows, promotions: Rows | None, checked: CheckedFile) -> Callable[[Tx], list[str]]:
    """A write that checks a batch against the store and writes nothing: its problems."""
    def work(tx: Tx) -> list[str]:
        try:
            import_into(tx, batch, promotions and [(line, dict(promotion))
                                                   for line, promotion in promotions],
                        _in_file(checked), write=False)
        except CatalogueError as error:
            return error.problems
        return []
    return work


def _in_file(checked: CheckedFile) -> InFile:
    return lambda product_id: checked.has("id", product_id)


async def _write_in_batches(journal: Journal, promotions: Rows | None,
                            checked: CheckedFile) -> ImportSummary:
    summary, last_line = ImportSummary(), 0
    try:
        for batch in checked.batches(IMPORT_BATCH):
            done = await journal.write(
                lambda tx, batch=batch: import_into(tx, batch, None, _in_file(checked)))
            summary.added += done.added
            summary.changed += done.changed
            summary.unchanged += done.unchanged
            last_line = batch[-1][0]
        if promotions is not None:
            done = await journal.write(
                lambda tx: import_into(tx, [], promotions, _in_file(checked)))
            summary.promotions_added = done.promotions_added
            summary.promotions_changed = done.promotions_changed
            summary.promotions_unchanged = done.promotions_unchanged
            summary.promotions_ended = done.promotions_ended
    except CatalogueError as error:  # the store changed between the check and the write
        written = ([f"the products up to line {last_line} were imported: correct the file "
                    "and import it again"] if last_line else [])
        raise CatalogueError([*error.problems, *written]) from None
    return summary


# The running node's side: parts of an upload, then the import

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
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(columns), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
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
