"""`edge headoffice …`: run the reference head office and manage what it holds."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import sys
from pathlib import Path

from edge.selling.catalogue import CatalogueError

log = logging.getLogger("edge.headoffice")

DEFAULT_DB = "headoffice-data/headoffice.sqlite3"


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser("headoffice", help="run the reference head office, manage stores")
    commands = parser.add_subparsers(dest="headoffice_command", metavar="ACTION", required=True)

    def with_db(p: argparse.ArgumentParser) -> None:
        p.add_argument("--db", default=os.environ.get("EDGE_HEADOFFICE_DB", DEFAULT_DB),
                       help="postgresql://… or a SQLite file (default $EDGE_HEADOFFICE_DB, "
                            f"else {DEFAULT_DB})")

    serve = commands.add_parser("serve", help="receive stores' events, serve the catalogue")
    with_db(serve)
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on")
    serve.add_argument("--port", type=int, default=8443, help="port to listen on")
    serve.add_argument("--tls-cert", type=Path, help="certificate chain (PEM); none = plain HTTP")
    serve.add_argument("--tls-key", type=Path, help="private key of the certificate (PEM)")
    serve.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING or ERROR")

    add = commands.add_parser("add-store", help="register a store, or give it a new token")
    with_db(add)
    add.add_argument("--store", required=True, help="the store's id (its store.id)")
    add.add_argument("--name", default="", help="the store's name")
    add.add_argument("--token-file", type=Path,
                     help="write the token to this file (mode 600) instead of printing it")

    load = commands.add_parser("import-catalogue", help="load the catalogue from a CSV file")
    with_db(load)
    load.add_argument("--csv", type=Path, required=True, help="id,barcode,name,price,vat_rate,…")
    load.add_argument("--keep-missing", action="store_true",
                      help="only add and change: do not delist products the CSV leaves out")

    delist = commands.add_parser("delist", help="take products off sale in every store")
    with_db(delist)
    delist.add_argument("products", nargs="+", metavar="PRODUCT_ID")

    stores = commands.add_parser("stores", help="list stores and what head office holds")
    with_db(stores)
    stores.add_argument("--json", action="store_true", help="machine-readable output")

    archive = commands.add_parser(
        "archive", help="write a store's signed archive of a period, as its nodes write it "
                        "(`edge verify ARCHIVE` checks it)")
    with_db(archive)
    archive.add_argument("--store", required=True, help="the store's id")
    archive.add_argument("--period", required=True,
                         help="a business day (2026-11-30), a month (2026-11) or a fiscal year "
                              "(2026); cut as the store's closure of it was, if it has one")
    archive.add_argument("--out", type=Path, help="the file (or folder) to write; default: "
                         "edge-archive-<store>-<period>.zip in the current folder")
    archive.add_argument("--day-cutoff", type=int, default=4,
                         help="for a period the store has not closed: the hour its business "
                              "day starts (its fiscal.day_cutoff; default 4)")
    archive.add_argument("--year-start", default="01-01",
                         help="for a period the store has not closed: its fiscal.year_start "
                              "(default 01-01)")


def run(args: argparse.Namespace) -> int:
    try:
        return asyncio.run(_run(args))
    except CatalogueError as error:
        print(f"{args.csv}: nothing imported, the CSV has problems:", file=sys.stderr)
        for problem in error.problems:
            print(f"  - {problem}", file=sys.stderr)
        return 1
    except OSError as error:
        print(f"head office: {error}", file=sys.stderr)
        return 1


async def _run(args: argparse.Namespace) -> int:
    from edge.headoffice.catalogue import delist, import_catalogue_file
    from edge.headoffice.storage import HeadOfficeStorage

    if args.headoffice_command == "serve":
        return await _serve(args)
    if args.headoffice_command == "archive":
        return await _archive(args)
    storage = HeadOfficeStorage(args.db)
    await storage.open()
    try:
        if args.headoffice_command == "add-store":
            token = await storage.add_store(args.store, args.name)
            if args.token_file:
                args.token_file.parent.mkdir(parents=True, exist_ok=True)
                descriptor = os.open(args.token_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                with os.fdopen(descriptor, "w") as out:
                    out.write(token + "\n")
                print(f"store {args.store}: token written to {args.token_file}")
            else:
                print(f"store {args.store}: token (shown once, keep it secret): {token}")
            print("Put it in the store's headoffice.token_file; an older token stops working.")
        elif args.headoffice_command == "import-catalogue":
            summary = await import_catalogue_file(storage, args.csv, args.keep_missing)
            print(f"{args.csv}: {summary}")
        elif args.headoffice_command == "delist":
            count = await delist(storage, args.products)
            print(f"{count} product(s) delisted")
        elif args.headoffice_command == "stores":
            rows = await storage.stores()
            if args.json:
                print(json.dumps(rows, indent=2))
            for row in [] if args.json else rows:
                print(f"{row['id']:<24} {row['events']:>10} events  last received "
                      f"{row['last_received'] or 'never'}  conflicts {row['conflicts']}")
    finally:
        await storage.close()
    return 0


async def _archive(args: argparse.Namespace) -> int:
    from edge.fiscal.archive import ArchiveError
    from edge.fiscal.archive_admin import archive_name
    from edge.fiscal.periods import Calendar
    from edge.headoffice.archive import store_period, write_headoffice_archive
    from edge.headoffice.storage import HeadOfficeStorage

    storage = HeadOfficeStorage(args.db)
    await storage.open()
    try:
        try:
            period = await store_period(storage, args.store, args.period,
                                        Calendar(args.day_cutoff, args.year_start))
        except ValueError as error:
            print(f"Cannot archive: {error}.", file=sys.stderr)
            return 2
        out = args.out if args.out is not None and not args.out.is_dir() else \
            (args.out or Path.cwd()) / archive_name(args.store, period.label)
        try:
            written = await write_headoffice_archive(storage, args.store, period, out)
        except ArchiveError as error:
            print(f"Archive not written: {error}", file=sys.stderr)
            return 1
    finally:
        await storage.close()
    print(f"Archive of store {args.store}, {period.label} ({period.start} to {period.end} UTC), "
          f"written by head office to {written.path}: {written.events} events, "
          f"{written.sales} sale(s) and refund(s), net {written.totals['net']['total']} cents.")
    print(f"Manifest SHA-256 {written.manifest_sha256}, signed with head office's key as the "
          f"store's CA certified it. Check it with `edge verify {written.path}`.")
    return 0


async def _serve(args: argparse.Namespace) -> int:
    from edge.headoffice.database import safe_url
    from edge.headoffice.server import HeadOfficeServer, server_tls

    logging.basicConfig(level=args.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if bool(args.tls_cert) != bool(args.tls_key):
        print("give both --tls-cert and --tls-key, or neither", file=sys.stderr)
        return 2
    tls = server_tls(args.tls_cert, args.tls_key) if args.tls_cert else None
    server = HeadOfficeServer(args.db, args.host, args.port, tls)
    await server.start()
    try:
        print(f"edge head office {server.storage.origin} on {server.url}/ "
              f"(storage {safe_url(args.db)})", flush=True)
        if tls is None:
            log.warning("plain HTTP: stores accept it only from this machine; use --tls-cert")
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        await stop.wait()
    finally:
        await server.stop()
    return 0
