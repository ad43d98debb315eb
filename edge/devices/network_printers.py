"""Network receipt printers: raw TCP on port 9100, with the same DLE EOT status as USB.

The printer answers status requests on the same connection, at once, even
while it is offline or busy. An answer also proves that every byte sent
before the request reached the printer, which is how the print queue knows
how far a receipt got when the link drops.

Blocking: only the printer's own thread (edge/devices.py) calls this.
"""

from __future__ import annotations

import socket

from edge.devices.base import DeviceError, StatusChannel


class NetworkPrinter(StatusChannel):
    kind = "network"
    chunk_size = 1024
    CONNECT_TIMEOUT = 3.0
    WRITE_TIMEOUT = 10.0

    def __init__(self, host: str, port: int = 9100) -> None:
        self.host = host
        self.port = port
        self._sock: socket.socket | None = None

    def describe(self) -> str:
        return f"network printer {self.host}:{self.port}"

    def open(self) -> None:
        try:
            sock = socket.create_connection((self.host, self.port), timeout=self.CONNECT_TIMEOUT)
        except OSError as error:
            raise DeviceError(
                "unreachable",
                f"not reachable at {self.host}:{self.port} ({_reason(error)}): is it switched "
                "on and on this network?",
            ) from None
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._sock = sock
        self.answers_status = None

    def _lost(self, error: OSError | None) -> DeviceError:
        self.close()
        why = _reason(error) if error else "the printer closed the connection"
        return DeviceError("unreachable", f"connection to {self.host}:{self.port} lost ({why})")

    def write(self, data: bytes) -> None:
        if self._sock is None:
            raise DeviceError("unreachable", "not connected")
        try:
            self._sock.settimeout(self.WRITE_TIMEOUT)
            self._sock.sendall(data)
        except OSError as error:
            raise self._lost(error) from None

    def _send(self, data: bytes) -> None:
        self.write(data)

    def _receive(self, timeout: float) -> bytes:
        if self._sock is None:
            raise DeviceError("unreachable", "not connected")
        try:
            self._sock.settimeout(timeout)
            data = self._sock.recv(64)
        except TimeoutError:
            return b""
        except OSError as error:
            raise self._lost(error) from None
        if not data:
            raise self._lost(None)
        return data

    def keep_copy(self, text: str) -> None:
        pass

    def close(self) -> None:
        sock, self._sock = self._sock, None
        if sock is not None:
            sock.close()


def _reason(error: OSError) -> str:
    if isinstance(error, TimeoutError):
        return "no answer"
    if isinstance(error, ConnectionRefusedError):
        return "connection refused"
    return error.strerror or str(error) or type(error).__name__
