"""Store IT's view of the printers: `edge devices` and `edge devices test NAME`.

While `edge serve` runs it owns the printers (one program at a time can claim
a USB printer, and many network printers take one connection), so the
command asks the node: its /healthz for their status, and POST
/api/devices/test for a test page, authenticated by the admin token the node
keeps in its data folder (readable only by whoever may read the journal).
With no node running, the command talks to the devices itself.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import secrets
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from aiohttp import web

from edge import escpos
from edge.config import Config, PrinterConfig
from edge.devices import DeviceError, PrinterStatus, make_printer
from edge.receipt import Store, as_text, printer_test_page

TOKEN_FILE = "admin-token"


def write_admin_token(data_dir: Path) -> str:
    """A fresh token for local admin calls, readable by the node's user only."""
    token = secrets.token_urlsafe(32)
    path = data_dir / TOKEN_FILE
    path.touch(mode=0o600, exist_ok=True)
    path.chmod(0o600)
    path.write_text(token + "\n")
    return token


async def test_page_handler(request: web.Request) -> web.Response:
    """POST /api/devices/test {"printer": NAME}: queue a test page and a drawer pulse."""
    from edge.print_jobs import request_test
    from edge.server import NODE

    node = request.app[NODE]
    given = request.headers.get("Authorization", "").removeprefix("Bearer ")
    if not node.admin_token or not hmac.compare_digest(given, node.admin_token):
        return _error(403, "invalid_token", f"give the token in {TOKEN_FILE} of the data folder")
    try:
        name = (await request.json()).get("printer")
    except (ValueError, AttributeError):
        name = None
    worker = node.print_queue.workers.get(name)
    if worker is None:
        return _error(404, "no_printer", f"no printer {name!r} on this node")
    job = await request_test(node.journal, name)
    return web.json_response({**job, "status": worker.status_json()})


def _error(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message}}, status=status)


def node_url(config: Config) -> str:
    host = "127.0.0.1" if config.host in ("0.0.0.0", "", "::") else config.host
    return f"http://{host}:{config.port}"


def running_node(config: Config) -> dict[str, Any] | None:
    """The health of this store's node running on this machine, if one is."""
    try:
        with urllib.request.urlopen(f"{node_url(config)}/healthz", timeout=2) as response:
            health = json.loads(response.read())
    except (OSError, ValueError):
        return None
    return health if health.get("store_id") == config.store_id else None


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
    node = running_node(config)
    if action == "test":
        if name not in printers:
            print(f"No printer {name!r} in the config; there are: {', '.join(printers)}",
                  file=sys.stderr)
            return 2
        return _test(config, printers[name], node, usb_backend)
    usb_found, usb_problem = _usb_printers(usb_backend)
    statuses = ({p["name"]: p for p in node["printers"]} if node else
                {n: probe(p, config.data_dir, usb_backend) for n, p in printers.items()})
    if as_json:
        print(json.dumps({"usb": usb_found, "usb_problem": usb_problem, "node_running": bool(node),
                          "printers": [_json(printers[n], s) for n, s in statuses.items()]},
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
    return 0


def _json(printer: PrinterConfig, status: Any) -> dict[str, Any]:
    if isinstance(status, dict):
        return status
    device, state = status
    return {"name": printer.name, "kind": printer.kind, "device": device, "state": state.state,
            "detail": state.detail}


def _usb_printers(usb_backend: Any) -> tuple[list[dict[str, Any]], str | None]:
    from edge.usb_printers import find_usb_printers

    try:
        found = find_usb_printers(usb_backend)
    except DeviceError as error:
        return [], error.detail
    return [{"id": info.usb_id, "description": info.describe(), "problem": info.problem}
            for info in found], None


def _test(config: Config, printer: PrinterConfig, node: dict[str, Any] | None,
          usb_backend: Any) -> int:
    if node is not None:
        return _test_through_node(config, printer)
    try:
        device = print_test_page(config, printer, usb_backend)
    except DeviceError as error:
        print(f"{printer.name}: {error.detail}", file=sys.stderr)
        return 1
    _record_test_drawer(config, printer)
    print(f"Test page printed on {printer.name} ({device}) and the drawer pulsed "
          f"(pin {printer.drawer_pin}).")
    return 0


def _test_through_node(config: Config, printer: PrinterConfig) -> int:
    token_file = config.data_dir / TOKEN_FILE
    try:
        token = token_file.read_text().strip()
    except OSError as error:
        print(f"The node runs but {token_file} cannot be read ({error.strerror}): run this as "
              "the node's user or root.", file=sys.stderr)
        return 1
    request = urllib.request.Request(
        f"{node_url(config)}/api/devices/test", method="POST",
        data=json.dumps({"printer": printer.name}).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            answer = json.loads(response.read())
    except urllib.error.HTTPError as error:
        print(f"The node refused: {json.loads(error.read())['error']['message']}",
              file=sys.stderr)
        return 1
    status = answer["status"]
    print(f"Test page queued on {printer.name} by the running node (job {answer['job_id']}); "
          f"the printer is {status['detail']}.")
    return 0


def _record_test_drawer(config: Config, printer: PrinterConfig) -> None:
    """Every drawer opening is an audit event: journal this one too, if the store has data."""
    if not config.database.exists():
        return
    from edge.journal import Journal
    from edge.node import load_node_id

    async def record() -> None:
        journal = Journal(config.database, origin=load_node_id(config))
        await journal.open()
        try:
            await journal.write(lambda tx: tx.append("drawer_opened", {
                "printer": printer.name, "reason": "test page", "by": "edge devices test"}))
        finally:
            await journal.close()

    asyncio.run(record())
