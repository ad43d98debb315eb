"""USB receipt printers through pyusb: finding them, taking them, talking to them.

A receipt printer shows up as a USB printer-class interface (class 7), or,
for many 80 mm clones, as a vendor-specific interface of a known printer
maker. We take its interface from the kernel's usblp driver if that holds
it, claim it, write bulk OUT in chunks with a timeout, and read the DLE EOT
status answers on bulk IN.

Every function here blocks: only a printer's own thread (edge/devices.py)
calls them. All of them take a pyusb `backend`: libusb in production, the
fake printer backend in the tests (tests/fake_usb.py).
"""

from __future__ import annotations

import contextlib
import errno
import logging
from dataclasses import dataclass
from typing import Any

import usb.backend.libusb1
import usb.core
import usb.util

from edge.devices.base import PERMISSION_HINT, DeviceError, PrinterStatus, StatusChannel

log = logging.getLogger(__name__)

PRINTER_CLASS = 7
# Makers of ESC/POS receipt printers, and the chip vendors whose ids the
# cheap clones ship with (often with a vendor-specific interface class).
KNOWN_VENDORS = {
    0x04B8: "Epson",
    0x0519: "Star Micronics",
    0x1504: "Bixolon",
    0x1D90: "Citizen",
    0x2730: "Citizen",
    0x0DD4: "Custom",
    0x154F: "SNBC",
    0x20D1: "HPRT",
    0x0FE6: "Xprinter/Rongta clone",
    0x0416: "POS-58/80 clone",
    0x28E9: "POS-80 clone",
}
NO_LIBUSB = "libusb is not installed: apt-get install libusb-1.0-0"


def get_backend(backend: Any = None) -> Any:
    if backend is not None:
        return backend
    found = usb.backend.libusb1.get_backend()
    if found is None:
        raise DeviceError("no_backend", NO_LIBUSB)
    return found


def usb_error(error: usb.core.USBError) -> DeviceError:
    """A pyusb error in plain words, with what to do."""
    if isinstance(error, usb.core.USBTimeoutError) or error.errno == errno.ETIMEDOUT:
        return DeviceError("offline", "not taking data: is it switched on, with paper "
                                      "and its cover closed?")
    if error.errno == errno.EACCES:
        return DeviceError("permission_denied", PERMISSION_HINT)
    if error.errno in (errno.ENODEV, errno.ENOENT, errno.EIO):
        return DeviceError("unplugged", "unplugged: check the USB cable and that the "
                                        "printer is switched on")
    if error.errno == errno.EBUSY:
        return DeviceError("busy", "busy: another program holds the printer (CUPS, or "
                                   "`edge serve` while you run `edge devices`?)")
    if error.errno == errno.EPIPE:
        return DeviceError("error", "the printer refused the data: switch it off and on")
    return DeviceError("error", f"USB error: {error.strerror or error}")


@dataclass(frozen=True)
class Endpoints:
    interface: int
    out: int
    into: int | None  # bulk IN, for status answers; some printers have none


def printer_endpoints(configuration: Any) -> Endpoints | None:
    """The printer interface of a configuration: class 7 first, else any with bulk OUT."""
    candidates = sorted(configuration, key=lambda intf: intf.bInterfaceClass != PRINTER_CLASS)
    for interface in candidates:
        out = into = None
        for endpoint in interface:
            if usb.util.endpoint_type(endpoint.bmAttributes) != usb.util.ENDPOINT_TYPE_BULK:
                continue
            if usb.util.endpoint_direction(endpoint.bEndpointAddress) == usb.util.ENDPOINT_OUT:
                out = out or endpoint.bEndpointAddress
            else:
                into = into or endpoint.bEndpointAddress
        if out is not None:
            return Endpoints(interface.bInterfaceNumber, out, into)
    return None


def is_receipt_printer(device: Any) -> bool:
    """A printer-class interface, or a known printer vendor with a bulk OUT endpoint.

    Reads descriptors only (no permission needed).
    """
    try:
        configuration = device[0]
    except (usb.core.USBError, IndexError):
        return False
    if any(intf.bInterfaceClass == PRINTER_CLASS for intf in configuration):
        return True
    return device.idVendor in KNOWN_VENDORS and printer_endpoints(configuration) is not None


@dataclass(frozen=True)
class UsbPrinterInfo:
    """A USB printer found on the bus, as `edge devices` shows it."""

    vendor: int
    product: int
    bus: int | None
    address: int | None
    manufacturer: str | None = None
    product_name: str | None = None
    serial: str | None = None
    problem: str | None = None  # why its names could not be read

    @property
    def usb_id(self) -> str:
        return f"{self.vendor:04x}:{self.product:04x}"

    def describe(self) -> str:
        names = " ".join(n for n in (self.manufacturer, self.product_name) if n)
        names = names or KNOWN_VENDORS.get(self.vendor, "USB printer")
        serial = f", serial {self.serial}" if self.serial else ""
        return f"{self.usb_id} {names} (bus {self.bus} device {self.address}{serial})"


def device_info(device: Any) -> UsbPrinterInfo:
    """Read a device's names; a permission problem is reported, not raised."""
    names: dict[str, str | None] = {"manufacturer": None, "product_name": None, "serial": None}
    problem = None
    try:
        # Asked first because pyusb's name properties turn "permission denied" into ValueError.
        if usb.util.get_langids(device):
            names["manufacturer"] = device.manufacturer
            names["product_name"] = device.product
            names["serial"] = device.serial_number
    except usb.core.USBError as error:
        problem = usb_error(error).detail
    except ValueError:
        pass  # no string descriptors: nothing to show
    finally:
        usb.util.dispose_resources(device)
    return UsbPrinterInfo(device.idVendor, device.idProduct, device.bus, device.address,
                          **names, problem=problem)


def find_usb_printers(backend: Any = None) -> list[UsbPrinterInfo]:
    """Every receipt printer on the USB buses, with what could be read of it."""
    found = usb.core.find(find_all=True, backend=get_backend(backend),
                          custom_match=is_receipt_printer)
    return [device_info(device) for device in found]


class UsbPrinter(StatusChannel):
    """One USB printer: the configured vendor:product (and serial), or the first one found."""

    kind = "usb"
    chunk_size = 1024
    WRITE_TIMEOUT_MS = 5000
    STATUS_TIMEOUT = 0.5

    def __init__(self, vendor: int | None = None, product: int | None = None,
                 serial: str | None = None, backend: Any = None) -> None:
        self.vendor = vendor
        self.product = product
        self.serial = serial
        self._backend = backend
        self._device: Any = None
        self._endpoints: Endpoints | None = None
        self._info: UsbPrinterInfo | None = None
        # Without a configured id: the model first taken, so a replug finds the same
        # printer (or the same model swapped in), never another printer on the bus.
        self._model: tuple[int, int] | None = None
        self.detached_kernel_driver = False

    def describe(self) -> str:
        if self._info is not None:
            return f"USB {self._info.describe()}"
        if self.vendor is not None:
            return f"USB {self.vendor:04x}:{self.product:04x}"
        return "USB (the first receipt printer found)"

    def _matches(self, device: Any) -> bool:
        wanted = (self.vendor, self.product) if self.vendor is not None else self._model
        if wanted is None:
            if not is_receipt_printer(device):
                return False
        elif (device.idVendor, device.idProduct) != wanted:
            return False
        if self.serial is None:
            return True
        try:
            return device.serial_number == self.serial
        except (usb.core.USBError, ValueError):
            return False
        finally:
            usb.util.dispose_resources(device)

    def open(self) -> None:
        backend = get_backend(self._backend)
        device = usb.core.find(backend=backend, custom_match=self._matches)
        if device is None:
            if self._info is not None:
                raise DeviceError("unplugged", "unplugged: check the USB cable and that the "
                                               "printer is switched on")
            which = (f"USB printer {self.vendor:04x}:{self.product:04x}"
                     if self.vendor is not None else "USB receipt printer")
            raise DeviceError("not_found", f"not found: no {which} is plugged in and switched "
                                           "on (`edge devices` lists what is)")
        try:
            self._take(device)
        except usb.core.USBError as error:
            usb.util.dispose_resources(device)
            raise usb_error(error) from None

    def _take(self, device: Any) -> None:
        self._info = device_info(device)
        endpoints = printer_endpoints(device[0])
        if endpoints is None:
            raise DeviceError("error", f"{device.idVendor:04x}:{device.idProduct:04x} has no "
                                       "bulk OUT endpoint: not a receipt printer")
        try:
            if device.is_kernel_driver_active(endpoints.interface):
                # usblp (/dev/usb/lp0) holds printer-class devices; we talk ESC/POS ourselves.
                device.detach_kernel_driver(endpoints.interface)
                self.detached_kernel_driver = True
                log.info("detached the usblp kernel driver from %04x:%04x",
                         device.idVendor, device.idProduct)
        except NotImplementedError:
            pass  # not Linux: no kernel driver to detach
        try:
            device.get_active_configuration()
        except usb.core.USBError as error:
            if error.errno is not None:
                raise
            device.set_configuration()  # "Configuration not set": the first one
        usb.util.claim_interface(device, endpoints.interface)
        self._device, self._endpoints = device, endpoints
        self._model = (device.idVendor, device.idProduct)
        self.answers_status = None if endpoints.into is not None else False
        self._drain()

    def _drain(self) -> None:
        """Drop status bytes left over from before (a late answer, an automatic report)."""
        for _ in range(8):
            if not self._receive(0.01):
                return

    def write(self, data: bytes) -> None:
        if self._device is None or self._endpoints is None:
            raise DeviceError("unplugged", "not open")
        try:
            written = self._device.write(self._endpoints.out, data, self.WRITE_TIMEOUT_MS)
        except usb.core.USBError as error:
            raise usb_error(error) from None
        if written != len(data):
            raise DeviceError("offline", f"the printer took {written} of {len(data)} bytes")

    def _send(self, data: bytes) -> None:
        self.write(data)

    def _receive(self, timeout: float) -> bytes:
        if self._device is None or self._endpoints is None or self._endpoints.into is None:
            return b""
        try:
            return bytes(self._device.read(self._endpoints.into, 64, int(timeout * 1000)))
        except usb.core.USBTimeoutError:
            return b""
        except usb.core.USBError as error:
            if error.errno == errno.ETIMEDOUT:
                return b""
            raise usb_error(error) from None

    def status(self, full: bool = True) -> PrinterStatus:
        if self.answers_status is False and self._device is not None:
            # No DLE EOT answers: at least notice an unplug, with the standard
            # GET_STATUS request every USB device must answer.
            try:
                self._device.ctrl_transfer(0x80, 0x00, 0, 0, 2, 1000)
            except usb.core.USBError as error:
                raise usb_error(error) from None
        return super().status(full)

    def keep_copy(self, text: str) -> None:
        pass

    def close(self) -> None:
        device, self._device = self._device, None
        if device is None:
            return
        with contextlib.suppress(usb.core.USBError):  # unplugged: nothing to release
            usb.util.release_interface(device, self._endpoints.interface)
        usb.util.dispose_resources(device)
        self.answers_status = None
