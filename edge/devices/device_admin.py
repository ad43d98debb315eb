"""Store IT's view of the printers: `edge devices` and `edge devices test NAME`.

While `edge serve` runs it owns the printers (one program at a time can claim
a USB printer, and many network printers take one connection), so the
command asks the node: its /healthz for their status, and its admin API for
a test page (edge/admin.py). With no node holding the data folder, the
command holds it and talks to the devices itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sqlite3
import sys
from pathlib import Path
from typing import Any

from edge.admin import NodeRefused, ask_node, running_node
from edge.config import Config, PrinterConfig, TerminalConfig
from edge.devices import escpos
from edge.devices.base import DeviceError, PrinterStatus, make_printer
from edge.devices.receipt import Store, as_text, printer_test_page
from edge.devices.store_printers import TILL_CODES_SQL
from edge.devices.till_routing import tills_problems
from edge.journal.datafolder import FolderInUse, FolderLock
from edge.journal.store import local_journal


def probe(
    printer: PrinterConfig, data_dir: Path, usb_backend: Any = None
) -> tuple[str, PrinterStatus]:
    """Open a configured printer and ask its status (no node running)."""
    device = make_printer(printer, data_dir, usb_backend)
    try:
        device.open()
        return device.describe(), device.status(True)
    except DeviceError as error:
        return device.describe(), error.as_status()
    finally:
        device.close()


def print_test_page(config: Config, printer: PrinterConfig, usb_backend: Any = None) -> str:
    """Print the test page and pulse the drawer, straight to the device (no node running)."""
    device = make_printer(printer, config.data_dir, usb_backend)
    try:
        device.open()
        status = device.status(True)
        if not status.printable:
            raise DeviceError(status.state, status.detail)
        lines = printer_test_page(Store(config.store_name, config.store_address), printer.name,
                                  device.describe(), printer.width, printer.code_page,
                                  printer.drawer_pin)
        segments = escpos.receipt_segments(
            lines, code_page=printer.code_page, open_drawer=True, drawer_pin=printer.drawer_pin,
            qr_module=6 if printer.width > 32 else 5,
        )
        for chunk in escpos.chunks(segments, device.chunk_size):
            device.write(chunk)
            if not device.status(False).printable:
                raise DeviceError("offline", "the printer stopped in the middle of the page")
        device.keep_copy(as_text(lines, printer.width) + "\n\n")
        return device.describe()
    finally:
        device.close()


def _line(printer: PrinterConfig, device: str, status: dict[str, Any] | PrinterStatus,
          alone: bool) -> str:
    detail = status["detail"] if isinstance(status, dict) else status.detail
    tills = " ".join(printer.tills) or ("every till" if alone else "every other till")
    return (f"  {printer.name}: {device}; {printer.width} characters, {printer.code_page}, "
            f"drawer pin {printer.drawer_pin}, tills: {tills}\n    -> {detail}")


def run_devices(config: Config, action: str | None, name: str | None, as_json: bool = False,
                usb_backend: Any = None) -> int:
    """`edge devices [test NAME]`; returns the exit code."""
    printers = {printer.name: printer for printer in config.all_printers()}
    terminals = {terminal.name: terminal for terminal in config.terminals}
    node = running_node(config)
    if action == "test":
        if name in terminals:
            return test_terminal(terminals[name], node)
        if name not in printers:
            more = f"; card terminals: {', '.join(terminals)}" if terminals else ""
            print(f"No printer {name!r} in the config; there are: {', '.join(printers)}{more}",
                  file=sys.stderr)
            return 2
        return _test(config, printers[name], node, usb_backend)
    usb_found, usb_problem = _usb_printers(usb_backend)
    statuses = ({p["name"]: p for p in node["printers"]} if node else
                {n: probe(p, config.data_dir, usb_backend) for n, p in printers.items()})
    terminal_states = terminal_statuses(config, node)
    if as_json:
        print(json.dumps({"usb": usb_found, "usb_problem": usb_problem, "node_running": bool(node),
                          "printers": [_json(printers[n], s) for n, s in statuses.items()],
                          "terminals": terminal_states},
                         indent=2))
        return 0
    print("USB printers on this machine:")
    if usb_problem:
        print(f"  cannot look: {usb_problem}")
    elif not usb_found:
        print("  none (is the printer plugged in and switched on?)")
    for info in usb_found:
        print(f"  {info['description']}" + (f"\n    -> {info['problem']}" if info["problem"]
                                              else ""))
    where = ("as the running node reports them" if node
             else "checked directly: no `edge serve` answers for this store")
    print(f"Printers in the config ({where}):")
    alone = len(printers) == 1
    for printer_name, status in statuses.items():
        if isinstance(status, dict):
            print(_line(printers[printer_name], status["device"], status, alone))
        else:
            print(_line(printers[printer_name], *status, alone))
    if terminal_states:
        print(f"Card terminals in the config ({where}):")
        for terminal in terminal_states:
            print(_terminal_line(terminal, len(terminal_states) == 1))
    return 0


def _json(printer: PrinterConfig, status: Any) -> dict[str, Any]:
    if isinstance(status, dict):
        return status
    device, state = status
    return {"name": printer.name, "kind": printer.kind, "device": device, "state": state.state,
            "detail": state.detail}


def _usb_printers(usb_backend: Any) -> tuple[list[dict[str, Any]], str | None]:
    from edge.devices.usb_printers import find_usb_printers

    try:
        found = find_usb_printers(usb_backend)
    except DeviceError as error:
        return [], error.detail
    return [{"id": info.usb_id, "description": info.describe(), "problem": info.problem}
            for info in found], None


def _test(config: Config, printer: PrinterConfig, node: dict[str, Any] | None,
          usb_backend: Any) -> int:
    if node is None:
        try:
            return asyncio.run(_test_alone(config, printer, usb_backend))
        except FolderInUse:
            pass  # a node holds the folder after all (its health check was slow): ask it
    try:
        answer = ask_node(config, "/api/admin/devices/test", {"printer": printer.name})
    except NodeRefused as refused:
        print(refused, file=sys.stderr)
        return 1
    status = answer["status"]
    print(f"Test page queued on {printer.name} by the running node (job {answer['job_id']}); "
          f"the printer is {status['detail']}.")
    return 0


async def _test_alone(config: Config, printer: PrinterConfig, usb_backend: Any) -> int:
    """No node runs: hold the folder as a node would, print, and journal the drawer opening."""
    async with contextlib.AsyncExitStack() as held:
        journal = None
        if config.database.exists():
            journal = await held.enter_async_context(
                local_journal(config.data_dir, config.database, "edge devices test"))
        else:
            lock = FolderLock(config.data_dir)
            lock.acquire("edge devices test")
            held.callback(lock.release)
        try:
            device = print_test_page(config, printer, usb_backend)
        except DeviceError as error:
            print(f"{printer.name}: {error.detail}", file=sys.stderr)
            return 1
        if journal is not None:
            # Every drawer opening is an audit event.
            await journal.write(lambda tx: tx.append("drawer_opened", {
                "printer": printer.name, "reason": "test page", "by": "edge devices test"}))
    print(f"Test page printed on {printer.name} ({device}) and the drawer pulsed "
          f"(pin {printer.drawer_pin}).")
    return 0


def terminal_statuses(config: Config, node: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Each configured terminal, with the running node's view of it (busy, last payment)."""
    live = {t.get("name"): t for t in (node or {}).get("terminals") or []}
    return [{"name": t.name, "host": t.host, "port": t.port, "tills": list(t.tills),
             "connect_timeout": t.connect_timeout, "timeout": t.timeout,
             "busy": live.get(t.name, {}).get("busy"),
             "last_payment": live.get(t.name, {}).get("last_payment")}
            for t in config.terminals]


def _terminal_line(terminal: dict[str, Any], alone: bool) -> str:
    tills = " ".join(terminal["tills"]) or ("every till" if alone else "every other till")
    if terminal["busy"] is None:
        state = f"not checked (`edge devices test {terminal['name']}` checks that it answers)"
    elif terminal["busy"]:
        state = "on a payment now"
    elif terminal["last_payment"]:
        last = terminal["last_payment"]
        state = f"free; last payment {last['status']} (asked at {last['requested_at']})"
    else:
        state = "free; no payment yet"
    return (f"  {terminal['name']}: Caisse-AP at {terminal['host']}:{terminal['port']}, tills: "
            f"{tills}; connect {terminal['connect_timeout']:g} s, payment "
            f"{terminal['timeout']:g} s\n    -> {state}")


def test_terminal(terminal: TerminalConfig, node: dict[str, Any] | None) -> int:
    """`edge devices test NAME` for a card terminal: does it accept a connection?

    A TCP connection, closed at once: nothing is ever sent (a test must never
    charge a card). Not while the running node has it on a payment: many
    terminals take one connection at a time.
    """
    where = f"{terminal.host}:{terminal.port}"
    live = {t.get("name"): t for t in (node or {}).get("terminals") or []}
    if live.get(terminal.name, {}).get("busy"):
        print(f"{terminal.name} is on a payment now: not tested. Try again once it is over.",
              file=sys.stderr)
        return 1
    problem = asyncio.run(_connects(terminal))
    if problem is None:
        print(f"{terminal.name} answers at {where}: it accepts connections. Nothing was sent "
              "to it (a test never makes a payment).")
        return 0
    print(f"{terminal.name} does not answer at {where} ({problem}). Is it switched on, on the "
          "shop network at that address, with Caisse-AP over IP enabled on that port? "
          "(docs/devices.md)", file=sys.stderr)
    return 1


async def _connects(terminal: TerminalConfig) -> str | None:
    """Why a connection to the terminal fails (None: it connects), sending nothing."""
    try:
        async with asyncio.timeout(terminal.connect_timeout):
            _, writer = await asyncio.open_connection(terminal.host, terminal.port)
    except TimeoutError:
        return f"no connection within {terminal.connect_timeout:g} s"
    except OSError as error:
        # asyncio's connect errors say "Connect call failed"; the errno says why.
        words = os.strerror(error.errno) if error.errno else str(error)
        return words.lower()
    writer.close()
    with contextlib.suppress(OSError, TimeoutError):
        async with asyncio.timeout(1):
            await writer.wait_closed()
    return None


def till_code_problems(config: Config) -> list[str]:
    """`edge check`: the printers' `tills` entries that name no paired till, in words.

    Read from the data folder's journal (running node or not): the tills
    paired anywhere in the store, as far as this node has heard.
    """
    printers = [(printer.name, printer.tills) for printer in config.all_printers()
                if printer.tills]
    if not printers:
        return []
    try:
        db = sqlite3.connect(f"file:{config.database}?mode=ro", uri=True, timeout=10)
    except sqlite3.OperationalError:
        return [f"the printers list tills, but there is no store data in {config.data_dir} "
                "to check their codes against (start `edge serve` and pair the tills first)"]
    try:
        codes = [code for (code,) in db.execute(TILL_CODES_SQL)]
    except sqlite3.OperationalError:  # not a journal (yet)
        codes = []
    finally:
        db.close()
    return tills_problems(printers, codes)
