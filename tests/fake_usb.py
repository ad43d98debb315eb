"""A fake pyusb backend: ESC/POS receipt printers on a USB bus that exists only in memory.

It implements pyusb's `IBackend` the way libusb does, so the code under test
runs its real pyusb path (find, descriptors, kernel driver, claim, bulk
transfers, errors as `USBError(strerror, code, errno)`). Each `FakePrinter`:
- gives its device, configuration, interface and endpoint descriptors and its
  names (string descriptors);
- keeps every byte sent to bulk OUT, and answers DLE EOT status requests on
  bulk IN from its state (paper out, near end, cover open, drawer);
- can be unplugged and plugged back, refuse access, stall writes, and run a
  test's action once it has received a given number of bytes.
"""

from __future__ import annotations

import array
import errno
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import usb.backend
import usb.core

# libusb's codes and messages, as pyusb's libusb1 backend raises them.
NO_DEVICE = ("No such device (it may have been disconnected)", -4, errno.ENODEV)
ACCESS = ("Access denied (insufficient permissions)", -3, errno.EACCES)
BUSY = ("Resource busy", -6, errno.EBUSY)
TIMEOUT = ("Operation timed out", -7, errno.ETIMEDOUT)
DLE_EOT = b"\x10\x04"


@dataclass
class FakePrinter:
    vendor: int = 0x04B8
    product: int = 0x0E28
    manufacturer: str = "EPSON"
    product_name: str = "TM-T20III"
    serial: str = "X5YF012345"
    interface_class: int = 7  # printer class; 0xFF for the vendor-specific clones
    has_status_channel: bool = True  # a bulk IN endpoint that answers DLE EOT
    kernel_driver_active: bool = True  # usblp holds it until we detach it
    paper_out: bool = False
    paper_near_end: bool = False
    cover_open: bool = False
    drawer_open: bool = False
    permission_denied: bool = False
    stalled_writes: int = 0  # the next N bulk writes of data (not status requests) time out
    received: bytearray = field(default_factory=bytearray)
    detached: int = 0
    claims: int = 0
    _replies: bytearray = field(default_factory=bytearray)
    _triggers: list[tuple[int, Callable[[], None]]] = field(default_factory=list)
    lock: threading.RLock = field(default_factory=threading.RLock)

    def printed(self) -> bytes:
        """What reached the paper: everything received but the status requests."""
        with self.lock:
            data = bytes(self.received)
        out, index = bytearray(), 0
        while index < len(data):
            if data[index:index + 2] == DLE_EOT:
                index += 3
            else:
                out.append(data[index])
                index += 1
        return bytes(out)

    def after(self, printed_bytes: int, action: Callable[[], None]) -> None:
        """Run `action` (once) when at least `printed_bytes` have reached the paper."""
        with self.lock:
            self._triggers.append((printed_bytes, action))

    def status_byte(self, request: int) -> int:
        offline = self.paper_out or self.cover_open
        bits = {
            1: (0x08 if offline else 0) | (0x04 if self.drawer_open else 0),
            2: (0x04 if self.cover_open else 0) | (0x20 if self.paper_out else 0),
            3: 0,
            4: (0x0C if self.paper_near_end else 0) | (0x60 if self.paper_out else 0),
        }
        return 0x12 | bits[request]

    def receive(self, data: bytes) -> None:
        due: list[tuple[int, Callable[[], None]]] = []
        with self.lock:
            self.received += data
            index = 0
            while (index := data.find(DLE_EOT, index)) != -1 and index + 2 < len(data):
                if self.has_status_channel:
                    self._replies.append(self.status_byte(data[index + 2]))
                index += 3
            if self._triggers:
                printed = len(self.printed())
                due = [t for t in self._triggers if t[0] <= printed]
                self._triggers = [t for t in self._triggers if t[0] > printed]
        for _, action in due:
            action()

    def take_replies(self, size: int) -> bytes:
        with self.lock:
            out = bytes(self._replies[:size])
            del self._replies[:size]
            return out


class _Handle:
    def __init__(self, device: _Device) -> None:
        self.device = device
        self.claimed: set[int] = set()


@dataclass(eq=False)
class _Device:
    printer: FakePrinter
    bus: int
    address: int
    configuration: int = 1
    plugged: bool = True


class FakeUsbBackend(usb.backend.IBackend):
    """The bus: printers plugged in now, and what the code under test did with them."""

    def __init__(self, *printers: FakePrinter) -> None:
        super().__init__()
        self._lock = threading.RLock()
        self._devices: list[_Device] = []
        self._next_address = 1
        for printer in printers:
            self.plug(printer)

    def plug(self, printer: FakePrinter) -> None:
        with self._lock:
            self._next_address += 1
            self._devices.append(_Device(printer, bus=1, address=self._next_address))

    def unplug(self, printer: FakePrinter) -> None:
        with self._lock:
            for device in self._devices:
                if device.printer is printer:
                    device.plugged = False
            self._devices = [d for d in self._devices if d.printer is not printer]

    # Descriptors (no permission needed, as with libusb).
    def enumerate_devices(self) -> list[_Device]:
        with self._lock:
            return list(self._devices)

    def get_device_descriptor(self, dev: _Device) -> Any:
        printer = dev.printer
        return SimpleNamespace(
            bLength=18, bDescriptorType=1, bcdUSB=0x0200, bDeviceClass=0, bDeviceSubClass=0,
            bDeviceProtocol=0, bMaxPacketSize0=64, idVendor=printer.vendor,
            idProduct=printer.product, bcdDevice=0x0100, iManufacturer=1, iProduct=2,
            iSerialNumber=3, bNumConfigurations=1, address=dev.address, bus=dev.bus,
            port_number=dev.address, port_numbers=(dev.address,), speed=2,
        )

    def get_configuration_descriptor(self, dev: _Device, config: int) -> Any:
        if config != 0:
            raise IndexError("no such configuration")
        return SimpleNamespace(
            bLength=9, bDescriptorType=2, wTotalLength=32, bNumInterfaces=1,
            bConfigurationValue=1, iConfiguration=0, bmAttributes=0xC0, bMaxPower=50,
            extra_descriptors=[],
        )

    def get_interface_descriptor(self, dev: _Device, intf: int, alt: int, config: int) -> Any:
        if intf != 0 or alt != 0 or config != 0:
            raise IndexError("no such interface")
        return SimpleNamespace(
            bLength=9, bDescriptorType=4, bInterfaceNumber=0, bAlternateSetting=0,
            bNumEndpoints=2 if dev.printer.has_status_channel else 1,
            bInterfaceClass=dev.printer.interface_class, bInterfaceSubClass=1,
            bInterfaceProtocol=2, iInterface=0, extra_descriptors=[],
        )

    def get_endpoint_descriptor(
        self, dev: _Device, ep: int, intf: int, alt: int, config: int
    ) -> Any:
        addresses = [0x01, 0x82] if dev.printer.has_status_channel else [0x01]
        if ep >= len(addresses):
            raise IndexError("no such endpoint")
        return SimpleNamespace(
            bLength=7, bDescriptorType=5, bEndpointAddress=addresses[ep], bmAttributes=0x02,
            wMaxPacketSize=64, bInterval=0, bRefresh=0, bSynchAddress=0, extra_descriptors=[],
        )

    # Opening and claiming.
    def _check(self, handle: _Handle) -> FakePrinter:
        if not handle.device.plugged:
            raise usb.core.USBError(*NO_DEVICE)
        return handle.device.printer

    def open_device(self, dev: _Device) -> _Handle:
        if not dev.plugged:
            raise usb.core.USBError(*NO_DEVICE)
        if dev.printer.permission_denied:
            raise usb.core.USBError(*ACCESS)
        return _Handle(dev)

    def close_device(self, dev_handle: _Handle) -> None:
        dev_handle.claimed.clear()

    def set_configuration(self, dev_handle: _Handle, config_value: int) -> None:
        self._check(dev_handle)
        dev_handle.device.configuration = config_value

    def get_configuration(self, dev_handle: _Handle) -> int:
        self._check(dev_handle)
        return dev_handle.device.configuration

    def set_interface_altsetting(self, dev_handle: _Handle, intf: int, altsetting: int) -> None:
        self._check(dev_handle)

    def claim_interface(self, dev_handle: _Handle, intf: int) -> None:
        printer = self._check(dev_handle)
        if printer.kernel_driver_active:
            raise usb.core.USBError(*BUSY)
        dev_handle.claimed.add(intf)
        printer.claims += 1

    def release_interface(self, dev_handle: _Handle, intf: int) -> None:
        self._check(dev_handle)
        dev_handle.claimed.discard(intf)

    def is_kernel_driver_active(self, dev_handle: _Handle, intf: int) -> bool:
        return self._check(dev_handle).kernel_driver_active

    def detach_kernel_driver(self, dev_handle: _Handle, intf: int) -> None:
        printer = self._check(dev_handle)
        printer.kernel_driver_active = False
        printer.detached += 1

    def attach_kernel_driver(self, dev_handle: _Handle, intf: int) -> None:
        self._check(dev_handle).kernel_driver_active = True

    # Transfers.
    def bulk_write(self, dev_handle: _Handle, ep: int, intf: int, data: Any, timeout: int) -> int:
        printer = self._check(dev_handle)
        if intf not in dev_handle.claimed:
            raise usb.core.USBError(*BUSY)
        with printer.lock:
            if printer.stalled_writes and not bytes(data).startswith(DLE_EOT):
                printer.stalled_writes -= 1
                raise usb.core.USBTimeoutError(*TIMEOUT)
        printer.receive(bytes(data))
        return len(data)

    def bulk_read(self, dev_handle: _Handle, ep: int, intf: int, buff: Any, timeout: int) -> int:
        printer = self._check(dev_handle)
        reply = printer.take_replies(len(buff))
        if not reply:
            # A real read would wait `timeout` ms first; nothing is coming either way.
            raise usb.core.USBTimeoutError(*TIMEOUT)
        buff[: len(reply)] = array.array("B", reply)
        return len(reply)

    def ctrl_transfer(self, dev_handle: _Handle, bmRequestType: int, bRequest: int,
                      wValue: int, wIndex: int, data: Any, timeout: int) -> int:
        printer = self._check(dev_handle)
        if (bmRequestType, bRequest) == (0x80, 0x00):  # GET_STATUS: self-powered
            data[:2] = array.array("B", b"\x01\x00")
            return 2
        if bmRequestType != 0x80 or bRequest != 0x06 or wValue >> 8 != 3:
            raise usb.core.USBError("Pipe error", -9, errno.EPIPE)
        index = wValue & 0xFF
        if index == 0:
            payload = (0x0409).to_bytes(2, "little")  # English (US)
        else:
            text = {1: printer.manufacturer, 2: printer.product_name, 3: printer.serial}[index]
            payload = text.encode("utf-16-le")
        descriptor = bytes([2 + len(payload), 3]) + payload
        size = min(len(descriptor), len(data))
        data[:size] = array.array("B", descriptor[:size])
        return size

    def clear_halt(self, dev_handle: _Handle, ep: int) -> None:
        self._check(dev_handle)

    def reset_device(self, dev_handle: _Handle) -> None:
        self._check(dev_handle)
