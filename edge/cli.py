"""The `edge` command: run a node, and the few things store IT does by hand."""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import logging
import os
import signal
import ssl
import sys
from pathlib import Path
from typing import Any

from aiohttp import web

from edge import __version__
from edge.config import Config, ConfigError, load_config, user_name
from edge.trust.folder import NodeTrust, TrustProblem

log = logging.getLogger("edge")

DESCRIPTION = """\
edge: the in-store server for shops with several tills.

With no config, `edge serve` runs an embedded demo store in ./edge-data and
prints the address to open in a browser. A real store passes --config (see
docs/operations.md).
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="edge", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--version", action="version", version=f"edge {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def with_store_options(p: argparse.ArgumentParser) -> None:
        p.add_argument("--config", type=Path, help="store config file (TOML); none = demo store")
        p.add_argument("--data", type=Path, help="data folder (default ./edge-data)")

    serve = sub.add_parser("serve", help="run this node (the demo store without --config)")
    with_store_options(serve)
    serve.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to listen on (default 8080)")
    serve.add_argument("--no-advertise", action="store_true",
                       help="do not announce the node with zeroconf")
    serve.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING or ERROR")
    serve.add_argument("--accept-clock", action="store_true",
                       help="start although the clock is behind this node's last event (the "
                            "clock had run ahead and is right now)")
    serve.add_argument("--tls", choices=["auto", "on", "off"],
                       help="HTTPS with the store's certificates: auto (default: unless "
                            "listening on loopback only), on, or off (loopback or demo only)")

    pair = sub.add_parser("pair", help="make a one-time code to pair a till")
    with_store_options(pair)
    pair.add_argument("--minutes", type=int, default=15, help="how long the code is valid")

    check = sub.add_parser("check", help="check a config file and say what is wrong")
    check.add_argument("--config", type=Path, required=True, help="store config file (TOML)")
    check.add_argument("--data", type=Path,
                       help="data folder whose paired tills the printers' `tills` are checked "
                            "against (default: the config's)")

    discover = sub.add_parser("discover", help="list the edge nodes announced on the network")
    discover.add_argument("--interface", help="address of the interface to search (default all)")
    discover.add_argument("--seconds", type=float, default=2.0, help="how long to listen")
    discover.add_argument("--json", action="store_true", help="machine-readable output")

    verify = sub.add_parser("verify", help="check every hash chain and signature of a "
                                           "journal, offline")
    with_store_options(verify)
    verify.add_argument("--ca", type=Path, help="the store CA's certificate (default: "
                                                "<data>/tls/store-ca.pem)")
    verify.add_argument("archive", nargs="?", type=Path, help="an archive `edge archive` "
                        "wrote: checked with nothing else (no journal, no config)")
    from edge.fiscal.archive_admin import add_parser as add_archive_parser

    add_archive_parser(sub)
    from edge.fiscal.closure_admin import add_parser as add_close_parser

    add_close_parser(sub)

    sync = sub.add_parser("sync", help="sync with head office now, showing progress")
    with_store_options(sync)

    backup = sub.add_parser(
        "backup", help="copy the journal to FILE while the node runs, marked and verified")
    with_store_options(backup)
    backup.add_argument("file", type=Path, help="the backup file to write (must not exist)")

    restore = sub.add_parser(
        "restore", help="put a backup back (stop the node first); the node then continues "
                        "under a new origin and gets the rest from its peers")
    with_store_options(restore)
    restore.add_argument("file", type=Path, help="a file written by `edge backup`")

    status = sub.add_parser("status", help="how this node stands: journal, peers, head-office sync")
    with_store_options(status)
    status.add_argument("--json", action="store_true", help="machine-readable output")

    devices = sub.add_parser(
        "devices", help="list USB and configured printers and card terminals, what is wrong; "
                        "`test NAME` prints a test page and pulses the drawer, or checks that "
                        "a card terminal answers (never a payment)")
    with_store_options(devices)
    devices.add_argument("action", nargs="?", choices=["test"],
                         help="test: print a test page, or connect to a card terminal")
    devices.add_argument("name", nargs="?",
                         help="the printer or card terminal to test (its config name)")
    devices.add_argument("--json", action="store_true", help="machine-readable output")

    from edge.selling.staff_admin import add_parser as add_staff_parser

    add_staff_parser(sub)

    from edge.selling.tills_admin import add_parser as add_tills_parser

    add_tills_parser(sub)

    from edge.selling.catalogue_admin import add_parser as add_catalogue_parser

    add_catalogue_parser(sub)

    from edge.headoffice.cli import add_parser as add_headoffice_parser

    add_headoffice_parser(sub)

    from edge.trust.tls_admin import add_parser as add_tls_parser

    add_tls_parser(sub)
    return parser


def resolve_config(args: argparse.Namespace) -> Config:
    config = load_config(args.config) if args.config else Config()
    return config.with_overrides(
        data_dir=args.data,
        host=getattr(args, "host", None),
        port=getattr(args, "port", None),
        advertise=False if getattr(args, "no_advertise", False) else None,
        accept_clock=True if getattr(args, "accept_clock", False) else None,
        tls=getattr(args, "tls", None),
    )


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "discover":
        return run_discover(args.interface, args.seconds, args.json)
    if args.command == "headoffice":
        from edge.headoffice.cli import run as run_headoffice

        return run_headoffice(args)
    try:
        config = resolve_config(args) if args.command != "check" else None
        if args.command == "serve":
            return run_serve(config, args.log_level)  # type: ignore[arg-type]
        if args.command == "pair":
            return run_pair(config, args.minutes)  # type: ignore[arg-type]
        if args.command == "check":
            return run_check(args.config, args.data)
        if args.command == "verify" and args.archive is not None:
            from edge.fiscal.verify_archive import run as verify_archive

            return verify_archive(args.archive)
        if args.command == "verify":
            return run_verify(config, args.ca)  # type: ignore[arg-type]
        if args.command == "archive":
            from edge.fiscal.archive_admin import run_archive

            return run_archive(config, args.period, args.out)  # type: ignore[arg-type]
        if args.command == "close":
            from edge.fiscal.closure_admin import run_from_args as run_close

            return run_close(config, args)  # type: ignore[arg-type]
        if args.command == "staff":
            from edge.selling.staff_admin import run_staff

            return run_staff(config, args)  # type: ignore[arg-type]
        if args.command == "tills":
            from edge.selling.tills_admin import run_tills

            return run_tills(config, args)  # type: ignore[arg-type]
        if args.command == "catalogue":
            from edge.selling.catalogue_admin import run_catalogue

            return run_catalogue(config, args)  # type: ignore[arg-type]
        if args.command == "devices":
            from edge.devices.device_admin import run_devices

            return run_devices(config, args.action, args.name, args.json)  # type: ignore[arg-type]
        if args.command == "sync":
            return run_sync(config)  # type: ignore[arg-type]
        if args.command == "tls":
            from edge.trust.tls_admin import run_tls

            return run_tls(config, args)  # type: ignore[arg-type]
        if args.command == "status":
            return run_status(config, args.json)  # type: ignore[arg-type]
        if args.command == "backup":
            return run_backup(config, args.file)  # type: ignore[arg-type]
        if args.command == "restore":
            return run_restore(config, args.file)  # type: ignore[arg-type]
    except ConfigError as error:
        print("The configuration has problems:", file=sys.stderr)
        for problem in error.problems:
            print(f"  - {problem}", file=sys.stderr)
        return 2
    except TrustProblem as problem:  # the store certificates a command needs
        print(f"{str(problem)[:1].upper()}{str(problem)[1:]}.", file=sys.stderr)
        return 1
    return 2


class CannotListen(Exception):
    """The node's address or port cannot be taken (in use, not this machine's, privileged)."""


class CannotServeHttps(Exception):
    """The certificates HTTPS would be served with cannot be used."""


def https_context(config: Config, trust: NodeTrust) -> ssl.SSLContext:
    public = (config.public_cert_file, config.public_key_file)
    try:
        return trust.server_context(public if all(public) else None)  # type: ignore[arg-type]
    except (ssl.SSLError, ValueError) as error:
        raise CannotServeHttps(
            f"cannot serve HTTPS with {config.public_cert_file or trust.tls_cert_file}: "
            f"{error} (is it a PEM certificate, and its key the one that goes with it?)"
        ) from None


def run_serve(config: Config, log_level: str) -> int:
    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("aiohttp.server").addFilter(one_line_resets)
    # Everything the node writes (journal, admin token, till-url, receipts) is
    # its user's alone, however it is started (the unit sets UMask= too).
    os.umask(0o077)
    from edge.journal.datafolder import FolderInUse
    from edge.node import ClockBehind, DataFolderProblem, StoreMismatch

    if not files_usable(config):
        return 1
    refusal = config.plain_http_refusal()  # --host or --tls may have changed it
    if refusal:
        log.error("%s", refusal)
        return 1
    try:
        failure = asyncio.run(serve(config))
    except (StoreMismatch, FolderInUse, ClockBehind, DataFolderProblem, CannotListen,
            CannotServeHttps) as error:
        log.error("%s", error)
        return 1
    except OSError as error:
        # A file the node needs: name it and the real error (never "cannot listen").
        where = f" {error.filename}" if error.filename else ""
        log.error("cannot use%s: %s (the node runs as user %s; `edge check` says more)",
                  where, error.strerror or error, user_name(os.geteuid()))
        return 1
    if failure:
        log.critical("stopped: %s", failure)
        return 3
    return 0


def one_line_resets(record: logging.LogRecord) -> bool:
    """A client that vanished mid-answer (a till's socket reset, a tablet gone to sleep) is
    an everyday event: one line in the log, not aiohttp's traceback."""
    error = record.exc_info[1] if record.exc_info else None
    if isinstance(error, ConnectionResetError):
        client = record.getMessage().rpartition(" from ")[2] or "a client"
        record.msg, record.args = "%s closed its connection abruptly (%s)", (client, error)
        record.exc_info = record.exc_text = None
        record.levelno, record.levelname = logging.INFO, "INFO"
    return True


def files_usable(config: Config) -> bool:
    """Before anything starts: every file the config names can be used; each problem logged."""
    from edge.config import file_problems

    usable = True
    for setting, path, kind in config.named_files():
        errors, warnings = file_problems(setting, path, kind)
        for error in errors:
            log.error("%s", error)
            usable = False
        for warning in warnings:
            log.warning("%s", warning)
    return usable


async def serve(config: Config) -> str | None:
    """Run the node until SIGTERM or SIGINT; why it had to stop, if it failed."""
    from edge.api.connections import BACKLOG, CONNECTIONS, raise_open_file_limit
    from edge.api.server import NODE, make_app
    from edge.demo import demo_cashier_lines
    from edge.selling.tills import create_pairing_code
    from edge.systemd_notify import SystemdNotifier

    raise_open_file_limit()  # before make_app: the connection bound follows from it
    app = make_app(config)
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=5)
    await runner.setup()
    assert runner.server is not None
    app[CONNECTIONS].install(runner.server)  # per-client and total connection bounds
    node = app[NODE]
    systemd = SystemdNotifier(lambda: describe_node(node))
    try:
        assert node.trust is not None  # loaded by node.start, in runner.setup
        # HTTPS/WSS with this node's store certificate (docs/tls.md); tills show no
        # client certificate, peers must (checked at /api/peer).
        tls = https_context(config, node.trust) if config.serves_tls else None
        try:
            await web.TCPSite(runner, config.host, config.port, backlog=BACKLOG,
                              ssl_context=tls).start()
        except OSError as error:
            raise CannotListen(f"cannot listen on {config.host}:{config.port}: "
                               f"{error.strerror or error}") from error
        # What start-up made (modules, the node's state) lives as long as the process:
        # kept out of the collector's full passes, which otherwise walk it all, every few
        # seconds while a till copies the catalogue, holding up every till's command
        # (measured at 1M products: 16-29 ms each, 0-1 ms frozen). Its garbage first.
        gc.collect()
        gc.freeze()
        scheme = config.scheme
        local = "127.0.0.1" if config.host == "0.0.0.0" else config.host
        url = f"{scheme}://{local}:{config.port}/"
        banner = [
            f"edge {__version__}: {config.store_name} (store {config.store_id}), "
            f"node {node.node_id}",
            f"Data folder: {config.data_dir.resolve()}",
            f"Till app: {url}",
            f"Store IT page: {url}status",
        ]
        if tls is not None:
            banner.append(f"HTTPS with the store CA {node.trust.ca_file} (install it on the "
                          "tills: docs/tls.md)")
        till_url = url
        if config.host == "0.0.0.0":
            till_url = f"{scheme}://edge-{node.trust.node_name}.local:{config.port}/"
            banner.append(f"On the shop network: {till_url}")
        if config.demo:
            code = create_pairing_code(config.database, ttl=3600)
            banner.append(f"Pair a till (valid 1 hour): {url}#pair={code}")
            banner.append("Demo cashiers:")
            banner += demo_cashier_lines()
        for printer in node.printers.values():
            where = (f"receipts in {printer.text_path}" if printer.text_path
                     else printer.device.describe())
            banner.append(f"Printer {printer.name}: {where}")
        print("\n".join(banner), flush=True)
        # `edge pair` reads it to print a link that works.
        (config.data_dir / "till-url").write_text(till_url + "\n")
        # The node serves: `systemctl start edge` returns now (Type=notify).
        await systemd.ready()
        if systemd.enabled:
            node.tasks.start("systemd-notify", systemd.keep_told)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        stopping = asyncio.create_task(stop.wait())
        failing = asyncio.create_task(node.failed.wait())
        await asyncio.wait((stopping, failing), return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        failing.cancel()
        log.info("stopping")
        systemd.stopping(f"stopping: {node.failure}" if node.failure else "stopping")
        return node.failure
    finally:
        await runner.cleanup()


async def describe_node(node: Any) -> str:
    """The node's state in one line of plain words (systemd's STATUS=), as `edge status`
    words the running node's /healthz."""
    from edge.status import in_words
    from edge.sync.status import sync_health

    return in_words({
        "journal": node.journal.troubles(),
        "failure": node.failure,
        "tills_connected": len(node.till_sockets),
        "peers": await node.peers.status(),
        "headoffice": await sync_health(node.sync),
        "printers": node.print_queue.statuses(),
        "tasks": node.tasks.statuses(),
    })


def run_pair(config: Config, minutes: int) -> int:
    """A one-time pairing code: made by the running node if one holds the folder, else here.

    Like every command that writes to a data folder, it never writes beside
    the process that owns it (`edge restore` mid-way, or a node): which one is
    decided by the folder's lock (edge/admin.py).
    """
    from edge.admin import MAX_PAIRING_MINUTES, NodeRefused, ask_node
    from edge.journal.datafolder import FolderInUse, FolderLock
    from edge.selling.tills import create_pairing_code

    if not config.database.exists():
        print(f"No store data in {config.data_dir}: start `edge serve` once first.",
              file=sys.stderr)
        return 1
    if not 1 <= minutes <= MAX_PAIRING_MINUTES:
        print(f"--minutes must be between 1 and {MAX_PAIRING_MINUTES}.", file=sys.stderr)
        return 2
    lock = FolderLock(config.data_dir)
    try:
        lock.acquire("edge pair")
    except FolderInUse:
        try:
            code = ask_node(config, "/api/admin/pair", {"minutes": minutes})["code"]
        except NodeRefused as refused:
            print(refused, file=sys.stderr)
            return 1
        made_by = ", made by the running node"
    else:
        try:
            code = create_pairing_code(config.database, ttl=minutes * 60)
        finally:
            lock.release()
        made_by = ""
    url_file = config.data_dir / "till-url"
    url = url_file.read_text().strip() if url_file.exists() else f"http://<node>:{config.port}/"
    print(f"Pairing code: {code} (valid {minutes} min, once{made_by})")
    print(f"On the till, open {url}#pair={code}")
    print("or open the till app and type the code.")
    return 0


def run_check(path: Path, data_dir: Path | None = None) -> int:
    from edge.config import file_problems
    from edge.devices.device_admin import till_code_problems
    from edge.trust.folder import TrustFolder

    config = load_config(path).with_overrides(data_dir=data_dir)
    # The files it names, as this user sees them (run it as the node's user, or root).
    problems = [problem for setting, file, kind in config.named_files()
                for problems in file_problems(setting, file, kind) for problem in problems]
    if problems:
        raise ConfigError([f"{path}: {problem}" for problem in problems])
    print(f"{path}: OK")
    print(f"  store {config.store_id} ({config.store_name})")
    print(f"  listens on {config.host}:{config.port}, data in {config.data_dir}")
    print(f"  serves {'HTTPS' if config.serves_tls else 'plain HTTP'} "
          f"(server.tls {config.tls})")
    for printer in config.all_printers():
        tills = f", tills {' '.join(printer.tills)}" if printer.tills else ", every other till"
        print(f"  printer {printer.name}: {printer.kind}, {printer.width} characters wide, "
              f"{printer.code_page}, drawer pin {printer.drawer_pin}{tills}")
    for terminal in config.terminals:
        tills = f", tills {' '.join(terminal.tills)}" if terminal.tills else ", every other till"
        print(f"  card terminal {terminal.name}: {terminal.host}:{terminal.port}{tills}")
    if config.headoffice_url:
        when = ("continuously" if config.headoffice_continuous
                else f"in {config.headoffice_nightly_window}")
        state = "" if config.headoffice_enabled else " (disabled)"
        print(f"  head office {config.headoffice_url}: syncs {when}{state}")
    for problem in till_code_problems(config):
        print(f"  Warning: {problem}")
    if config.serves_tls and not config.demo and not TrustFolder(config.data_dir).exists():
        print(f"  Warning: no store certificates in {config.data_dir / 'tls'}: the node will "
              "not start until `edge tls init` (the store's first node) or `edge tls join` "
              "(the others) is run (docs/tls.md)")
    return 0


def run_verify(config: Config, ca_file: Path | None = None) -> int:
    from edge.journal.verify import run

    return run(config.database, ca_file or config.data_dir / "tls" / "store-ca.pem")


def run_discover(interface: str | None, seconds: float, as_json: bool) -> int:
    from edge.replication.discovery import browse

    nodes = asyncio.run(browse(interface, seconds))
    if as_json:
        print(json.dumps(nodes, indent=2))
        return 0
    if not nodes:
        print(f"No edge node answered within {seconds:g} s.")
        print("Is `edge serve` running, and does this network let multicast (mDNS) through?")
        return 1
    for node in nodes:
        txt = node["txt"]
        addresses = ", ".join(node["addresses"])  # type: ignore[arg-type]
        host = str(node["host"]).rstrip(".")
        print(f"store {txt.get('store')}  node {txt.get('node')}  "  # type: ignore[union-attr]
              f"{host}:{node['port']}  ({addresses})")
    return 0


def run_sync(config: Config) -> int:
    from edge.sync.client import sync_now
    from edge.sync.link import SyncError

    if not config.headoffice_url:
        print("No head office is configured: set [headoffice] url in the config.",
              file=sys.stderr)
        return 2
    if not config.database.exists():
        print(f"No store data in {config.data_dir}: start `edge serve` once first.",
              file=sys.stderr)
        return 1
    from edge.admin import NodeRefused, ask_node
    from edge.journal.datafolder import FolderInUse

    try:
        status = asyncio.run(sync_now(config, lambda line: print(line, flush=True)))
    except SyncError as error:
        print(f"Sync failed: {error}", file=sys.stderr)
        return 1
    except FolderInUse:
        print("The node is running: it syncs now.", flush=True)
        try:
            answer = ask_node(config, "/api/admin/sync", {}, timeout=600)
        except NodeRefused as refused:
            print(refused, file=sys.stderr)
            return 1
        status = answer["status"]
        if answer["error_message"]:
            print(f"Sync failed: {answer['error_message']}", file=sys.stderr)
            return 1
    print(f"Sync done: {status['backlog_events']} event(s) left to send.")
    return 0


def run_backup(config: Config, target: Path) -> int:
    from edge.journal.backup import BackupError, backup

    try:
        summary = backup(config.database, target, lambda line: print(line, flush=True))
    except BackupError as error:
        print(f"Backup failed: {error}", file=sys.stderr)
        return 1
    print(f"Backup written to {target}: {summary.events} events of {summary.origins} "
          f"origin(s), this node ({summary.origin}) up to #{summary.head_seq}; every chain "
          "verified.")
    return 0


def run_restore(config: Config, backup_file: Path) -> int:
    from edge.journal.backup import BackupError, restore
    from edge.journal.datafolder import FolderInUse

    try:
        summary, kept = restore(backup_file, config.data_dir, config.database,
                                lambda line: print(line, flush=True))
    except FolderInUse as error:
        print(f"Cannot restore now: {error}", file=sys.stderr)
        return 1
    except BackupError as error:
        print(f"Restore refused, nothing changed: {error}", file=sys.stderr)
        return 1
    print(f"Restored {backup_file}: {summary.events} events, this node's journal up to "
          f"#{summary.head_seq}.")
    if kept:
        print(f"The journal it replaced is kept as {kept}.")
    print("When the node starts it continues under a new node id (what the backup's node wrote "
          "after the backup is already held by its peers and head office), and gets back from "
          "its peers everything written since. `edge status` tells the story.")
    return 0


def run_status(config: Config, as_json: bool) -> int:
    from edge.status import collect_status, format_status

    if not config.database.exists():
        print(f"No store data in {config.data_dir}.", file=sys.stderr)
        return 1
    status = collect_status(config)
    print(json.dumps(status, indent=2) if as_json else format_status(status))
    return 0
