"""`edge devices` for store IT: what is plugged in, what is configured, what is wrong."""

from __future__ import annotations

import asyncio
import re
import subprocess
from pathlib import Path

import orjson
import pytest
from conftest import EDGE, ROOT, free_port, node_of
from fake_usb import FakePrinter, FakeUsbBackend
from printing import events, eventually, printing_node

from edge.config import Config, PrinterConfig
from edge.devices import escpos
from edge.devices.device_admin import run_devices
from edge.devices.usb_printers import KNOWN_VENDORS
from edge.node import Node


def store_config(tmp_path: Path, printers: list[PrinterConfig], port: int | None = None) -> Config:
    return Config(data_dir=tmp_path / "data", advertise=False, port=port or free_port(),
                  printers=tuple(printers))


def test_devices_lists_usb_and_configured_printers_with_what_is_wrong(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    backend = FakeUsbBackend(FakePrinter(), FakePrinter(vendor=0x0519, product=0x0003,
                                                        permission_denied=True))
    unused_port = free_port()
    config = store_config(tmp_path, [
        PrinterConfig("caisse", kind="usb", usb="04b8:0e28", tills=("T01", "T02")),
        PrinterConfig("bar", kind="network", host="127.0.0.1", port=unused_port, width=32),
    ])
    assert run_devices(config, None, None, usb_backend=backend) == 0
    out = capsys.readouterr().out
    assert out == (
        "USB printers on this machine:\n"
        "  04b8:0e28 EPSON TM-T20III (bus 1 device 2, serial X5YF012345)\n"
        "  0519:0003 Star Micronics (bus 1 device 3)\n"
        "    -> permission denied: install systemd/99-edge-escpos.rules\n"
        "Printers in the config (checked directly: no `edge serve` answers for this store):\n"
        "  caisse: USB 04b8:0e28 EPSON TM-T20III (bus 1 device 2, serial X5YF012345); "
        "48 characters, pc858, drawer pin 2, tills: T01 T02\n"
        "    -> ready\n"
        f"  bar: network printer 127.0.0.1:{unused_port}; 32 characters, pc858, drawer pin 2, "
        "tills: every other till\n"
        f"    -> not reachable at 127.0.0.1:{unused_port} (connection refused): is it switched "
        "on and on this network?\n"
    )


def test_devices_test_prints_a_test_page_and_pulses_the_drawer(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    printer = FakePrinter()
    config = store_config(tmp_path, [PrinterConfig("caisse", kind="usb", drawer_pin=5)])

    async def make_store() -> None:
        node = Node(config)
        await node.start()
        await node.stop()

    asyncio.run(make_store())
    assert run_devices(config, "test", "caisse", usb_backend=FakeUsbBackend(printer)) == 0
    assert capsys.readouterr().out.startswith("Test page printed on caisse (USB 04b8:0e28 EPSON")
    paper = printer.printed()
    assert paper.startswith(b"\x1b@\x1bt\x13" + escpos.drawer_pulse(5))
    assert "Accents : àâçéèêëîïôûùüÿ".encode("cp858") in paper
    assert b"Euro : 1234,56 \xd5" in paper and paper.endswith(escpos.FEED_AND_CUT)
    assert escpos.qr_code("edge test page", 6) in paper

    async def drawer_events() -> list[str]:
        node = Node(config)
        await node.start()
        try:
            return [e["reason"] for e in await events_of(node)]
        finally:
            await node.stop()

    assert asyncio.run(drawer_events()) == ["test page"]


async def events_of(node: Node) -> list[dict]:
    rows = await node.journal.read_all("SELECT body FROM events WHERE type = 'drawer_opened'")
    return [orjson.loads(row["body"]) for row in rows]


async def test_devices_test_goes_through_the_running_node(tmp_path: Path) -> None:
    """The node owns its printers: the command asks it, with the admin token of its data."""
    async with printing_node(tmp_path / "data", []) as node:
        port = int(node.url.rsplit(":", 1)[1])
        config = store_config(tmp_path, [], port=port)
        code = await asyncio.to_thread(run_devices, config, "test", "receipt")
        assert code == 0
        receipts = tmp_path / "data" / "printer" / "receipts.txt"
        await eventually(lambda: receipts.exists() and "Fin du test" in receipts.read_text(),
                         what="the test page")
        [opened] = await events(node, "drawer_opened")
        assert opened["reason"] == "test page"
        assert node_of(node).admin_token == (tmp_path / "data" / "admin-token").read_text().strip()
        async with node.session.post(f"{node.url}/api/admin/devices/test",
                                     json={"printer": "receipt"},
                                     headers={"Authorization": "Bearer guess"}) as response:
            assert response.status == 403


def test_the_command_line_lists_and_refuses_an_unknown_printer(tmp_path: Path) -> None:
    config = tmp_path / "edge.toml"
    config.write_text(f'[store]\nid = "shop"\n[server]\nport = {free_port()}\n'
                      '[[printers]]\nname = "caisse"\nkind = "file"\npath = "printer"\n')
    listed = subprocess.run([*EDGE, "devices", "--config", str(config)], capture_output=True,
                            text=True, timeout=60, cwd=ROOT)
    assert listed.returncode == 0, listed.stderr
    assert f"  caisse: file printer in {tmp_path / 'printer'}" in listed.stdout
    assert f"    -> ready: receipts in {tmp_path / 'printer' / 'receipts.txt'}" in listed.stdout
    unknown = subprocess.run([*EDGE, "devices", "test", "nope", "--config", str(config)],
                             capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert unknown.returncode == 2
    assert "No printer 'nope' in the config; there are: caisse" in unknown.stderr


def test_the_udev_rules_give_the_service_every_printer_edge_looks_for() -> None:
    rules = (ROOT / "systemd" / "99-edge-escpos.rules").read_text()
    lines = [line for line in rules.splitlines() if line and not line.startswith("#")]
    grants = [line for line in lines if "GROUP=" in line]
    assert all(line.endswith('GROUP="lp", MODE="0660"') for line in grants)
    vendors = {int(v, 16) for v in re.findall(r'ATTR\{idVendor\}=="([0-9a-f]{4})"', rules)}
    assert vendors == set(KNOWN_VENDORS)
    assert any('ENV{ID_USB_INTERFACES}=="*:0701??:*"' in line for line in grants)
    assert lines[-1] == 'LABEL="edge_escpos_end"'
    unit = (ROOT / "systemd" / "edge.service").read_text().splitlines()
    assert "SupplementaryGroups=lp" in unit
