"""The systemd unit and the example config are valid as shipped."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
from conftest import EDGE, ROOT, Till, free_port

UNIT = ROOT / "systemd" / "edge.service"


def test_the_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    # verify needs ExecStart to exist: point it at this checkout's edge.
    edge = Path(sys.executable).with_name("edge")
    assert edge.exists()
    unit = tmp_path / "edge.service"
    unit.write_text(UNIT.read_text().replace("/usr/local/bin/edge", str(edge)))
    result = subprocess.run([shutil.which("systemd-analyze") or "systemd-analyze", "verify",
                             str(unit)], capture_output=True, text=True, timeout=60)
    # verify exits 0 on warnings (unknown keys, bad values): any output is a failure.
    assert result.returncode == 0 and result.stderr == "" and result.stdout == "", result.stderr


def test_the_unit_is_hardened(tmp_path: Path) -> None:
    edge = Path(sys.executable).with_name("edge")
    unit = tmp_path / "edge.service"
    unit.write_text(UNIT.read_text().replace("/usr/local/bin/edge", str(edge)))
    result = subprocess.run(["systemd-analyze", "security", "--offline=true", str(unit)],
                            capture_output=True, text=True, timeout=60)
    exposure = float(result.stdout.split("Overall exposure level for edge.service:")[1].split()[0])
    assert exposure <= 1.5, result.stdout[-600:]


def test_the_example_config_checks_out() -> None:
    result = subprocess.run([*EDGE, "check", "--config", str(ROOT / "systemd" / "edge.toml")],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    assert "listens on 0.0.0.0:8080" in result.stdout


def test_a_bad_config_is_explained(tmp_path: Path) -> None:
    config = tmp_path / "edge.toml"
    config.write_text('[server]\nport = "eighty"\nhots = "0.0.0.0"\n[[printers]]\nkind = "lp"\n')
    result = subprocess.run([*EDGE, "check", "--config", str(config)],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert f"{config}: server.port must be a whole number" in result.stderr
    assert f"{config}: unknown setting server.hots" in result.stderr
    assert f"{config}: store.id is required" in result.stderr
    assert f"{config}: printers #1: name is required" in result.stderr


# --- Issue 9, store IT: the documented install starts, and tells systemd how it stands ---

def unit_settings() -> dict[str, list[str]]:
    settings: dict[str, list[str]] = {}
    for line in UNIT.read_text().splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, value = line.split("=", 1)
            settings.setdefault(key, []).append(value)
    return settings


def test_the_unit_scores_at_most_1_5_and_keeps_what_the_node_needs(tmp_path: Path) -> None:
    edge = Path(sys.executable).with_name("edge")
    unit = tmp_path / "edge.service"
    unit.write_text(UNIT.read_text().replace("/usr/local/bin/edge", str(edge)))
    result = subprocess.run(["systemd-analyze", "security", "--offline=true", str(unit)],
                            capture_output=True, text=True, timeout=60)
    exposure = float(result.stdout.split("Overall exposure level for edge.service:")[1].split()[0])
    assert exposure <= 1.5, result.stdout[-2000:]
    settings = unit_settings()
    assert settings["Type"] == ["notify"] and settings["WatchdogSec"]
    assert "store.key:/etc/edge/store.key" in settings["LoadCredential"]
    # USB receipt printers: their device nodes (the udev rule's usb_device, major 189)
    # are bound into the private /dev and allowed, nothing else is.
    assert settings["PrivateDevices"] == ["yes"]
    assert settings["DeviceAllow"] == ["char-usb_device rw"]
    assert "-/dev/bus/usb" in settings["BindPaths"]
    rules = (ROOT / "systemd" / "99-edge-escpos.rules").read_text()
    assert 'ENV{DEVTYPE}!="usb_device"' in rules and settings["SupplementaryGroups"] == ["lp"]
    # zeroconf lists interfaces over netlink; sd_notify is a unix socket.
    assert {"AF_NETLINK", "AF_UNIX", "AF_INET", "AF_INET6"} <= set(
        settings["RestrictAddressFamilies"][0].split())
    assert "~@privileged @resources" in settings["SystemCallFilter"]
    for key in ("MemoryMax", "TasksMax", "LimitNOFILE", "ProtectProc", "ProcSubset"):
        assert settings.get(key), f"{key} is not set"


def syscalls(*groups: str) -> set[str]:
    """The system calls of systemd's named groups (or plain names), groups expanded."""
    names = {name for name in groups if not name.startswith("@")}
    groups = tuple(name for name in groups if name.startswith("@"))
    if not groups:
        return names
    listing = subprocess.run(["systemd-analyze", "syscall-filter", *groups],
                             capture_output=True, text=True, timeout=30, check=True).stdout
    for line in listing.splitlines():
        name = line.strip()
        if line.startswith("    ") and name and not name.startswith("#"):
            names |= syscalls(name) if name.startswith("@") else {name}
    return names


@pytest.fixture
def node_user_folder() -> Iterator[Path]:
    """A folder the unprivileged `nobody` can use, as DynamicUser= gives the node one."""
    folder = Path(tempfile.mkdtemp(prefix="edge-store-it-", dir="/tmp"))
    folder.chmod(0o755)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


# CI runs as root with setpriv (./dev installs it): there, these run or fail, never skip.
needs_root = pytest.mark.skipif(
    (os.geteuid() != 0 or not shutil.which("setpriv")) and not os.environ.get("CI"),
    reason="runs the node as another user (setpriv), needs root")
AS_NOBODY = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]


def installed_store(folder: Path, port: int) -> Path:
    """The documented install: a root-only 0600 store key the node's user cannot read."""
    key = folder / "store.key"
    key.write_text("0f4c1e5b9a7d3c2e8f6a1b0c9d8e7f6a\n")
    key.chmod(0o600)
    data = folder / "data"
    data.mkdir()
    shutil.chown(data, "nobody")
    config = folder / "edge.toml"
    config.write_text(f'[store]\nid = "demo-boulangerie"\nkey_file = "{key}"\ndemo = true\n'
                      f'[server]\nport = {port}\ndata = "{data}"\nadvertise = false\n')
    config.chmod(0o644)
    return config


def run_as_nobody(args: list[str], env: dict[str, str] | None = None,
                  timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*AS_NOBODY, *EDGE, *args], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT, env={**os.environ, **(env or {})})


@needs_root
def test_an_unreadable_key_is_named_not_a_port_that_cannot_be_listened_on(
        node_user_folder: Path) -> None:
    config = installed_store(node_user_folder, free_port())
    result = run_as_nobody(["serve", "--config", str(config)])
    assert result.returncode == 1
    assert "cannot listen" not in result.stderr, result.stderr
    assert (f"store.key_file {node_user_folder / 'store.key'} cannot be read by user nobody "
            "(owner root, mode 0600): Permission denied") in result.stderr, result.stderr
    assert "LoadCredential=store.key:" in result.stderr
    # `edge check`, run as the node's user, says the same.
    check = run_as_nobody(["check", "--config", str(config)])
    assert check.returncode == 2
    assert "cannot be read by user nobody" in check.stderr, check.stderr


def test_edge_check_refuses_a_key_others_can_read(tmp_path: Path) -> None:
    key = tmp_path / "store.key"
    key.write_text("secret\n")
    key.chmod(0o644)
    config = tmp_path / "edge.toml"
    config.write_text(f'[store]\nid = "s1"\nkey_file = "{key}"\n')
    result = subprocess.run([*EDGE, "check", "--config", str(config)],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert f"store.key_file {key} is readable by others than its owner" in result.stderr
    assert f"chmod 600 {key}" in result.stderr
    key.chmod(0o600)
    result = subprocess.run([*EDGE, "check", "--config", str(config)],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr


class NotifySocket:
    """systemd's side of sd_notify: an AF_UNIX datagram socket, abstract or a path."""

    def __init__(self, address: str) -> None:
        self.address = address
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind("\0" + address[1:] if address.startswith("@") else address)
        self.sock.settimeout(0.2)
        self.messages: list[str] = []

    def wait_for(self, line: str, timeout: float = 30) -> list[str]:
        """Read until a message holds `line`; every message so far."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(line in message.split("\n") for message in self.messages):
                return self.messages
            try:
                self.messages.append(self.sock.recv(4096).decode())
            except TimeoutError:
                continue
        raise AssertionError(f"no {line!r} from the node; got {self.messages}")

    def close(self) -> None:
        self.sock.close()


@needs_root
@pytest.mark.parametrize("abstract", [True, False])
def test_the_node_tells_systemd_ready_status_watchdog_and_stopping(
        node_user_folder: Path, abstract: bool) -> None:
    """What systemd does for the unit, by hand: LoadCredential's copy of the root-only
    key in $CREDENTIALS_DIRECTORY, readable by the node's user; NOTIFY_SOCKET;
    WATCHDOG_USEC."""
    port = free_port()
    config = installed_store(node_user_folder, port)
    credentials = node_user_folder / "credentials"
    credentials.mkdir(mode=0o500)
    copy = credentials / "store.key"
    shutil.copy(node_user_folder / "store.key", copy)
    copy.chmod(0o400)
    shutil.chown(copy, "nobody")
    shutil.chown(credentials, "nobody")
    address = (f"@edge-notify-{uuid.uuid4().hex}" if abstract
               else str(node_user_folder / "notify"))
    notify = NotifySocket(address)
    if not abstract:
        os.chmod(address, 0o777)
    log = node_user_folder / "edge.log"
    env = {**os.environ, "NOTIFY_SOCKET": address, "WATCHDOG_USEC": "400000",
           "CREDENTIALS_DIRECTORY": str(credentials)}
    with log.open("wb") as output:
        node = subprocess.Popen([*AS_NOBODY, *EDGE, "serve", "--config", str(config)],
                                stdout=output, stderr=subprocess.STDOUT, cwd=ROOT, env=env)
    try:
        messages = notify.wait_for("READY=1")
        ready = next(message for message in messages if "READY=1" in message.split("\n"))
        assert "STATUS=selling; 0 tills connected" in ready.split("\n"), ready
        # It serves when it says so, with the key systemd handed it.
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as reply:
            assert json.load(reply)["status"] == "ok"
        assert "peer replication is off" not in log.read_text()
        # The watchdog is pinged at half of WATCHDOG_USEC, again and again.
        for _ in range(3):
            notify.messages.clear()
            notify.wait_for("WATCHDOG=1")
        node.terminate()
        notify.wait_for("STOPPING=1")
        assert node.wait(20) == 0, log.read_text()[-2000:]
        # Files the node wrote are its user's alone (umask 077 in the code itself).
        data = node_user_folder / "data"
        for name in ("admin-token", "till-url", "node-id", "edge.sqlite3", "lock"):
            mode = stat.S_IMODE((data / name).stat().st_mode)
            assert mode & 0o077 == 0, f"{name} is mode {mode:04o}"
    finally:
        if node.poll() is None:
            node.kill()
            node.wait(10)
        notify.close()


@needs_root
def test_the_node_makes_no_system_call_the_unit_forbids(node_user_folder: Path) -> None:
    """Under the unit's SystemCallFilter, a refused call fails with EPERM: the node,
    run as an unprivileged user, starting, selling and stopping, never makes one."""
    assert shutil.which("strace"), "strace is missing: ./dev test installs it"
    allowed: set[str] = set()
    for line in unit_settings()["SystemCallFilter"]:  # in order, as systemd applies them
        if line.startswith("~"):
            allowed -= syscalls(*line[1:].split())
        else:
            allowed |= syscalls(*line.split())
    assert "chown" not in allowed and "setrlimit" not in allowed
    port = free_port()
    config = installed_store(node_user_folder, port)
    (node_user_folder / "store.key").chmod(0o644)  # no systemd here to hand it over
    trace = node_user_folder / "trace"
    log = node_user_folder / "edge.log"
    with log.open("wb") as output:
        tracer = subprocess.Popen(
            ["strace", "-f", "-qq", "-o", str(trace), *AS_NOBODY, *EDGE, "serve", "--config",
             str(config)], stdout=output, stderr=subprocess.STDOUT, cwd=ROOT)
    try:
        for _ in range(600):  # a bound, not a timing: strace slows the start a lot
            if b"\nTill app: " in log.read_bytes():
                break
            assert tracer.poll() is None, log.read_text()
            time.sleep(0.1)
        else:
            pytest.fail(f"the node never started under strace: {log.read_text()}")
        pairing = subprocess.run([*EDGE, "pair", "--config", str(config)],
                                 capture_output=True, text=True, timeout=30, cwd=ROOT)
        code = pairing.stdout.split("Pairing code: ")[1].split()[0]
        asyncio.run(sell_once(f"http://127.0.0.1:{port}", code))
        # The node is strace's child (setpriv execs it).
        node_pid = int(Path(f"/proc/{tracer.pid}/task/{tracer.pid}/children").read_text())
        os.kill(node_pid, signal.SIGTERM)
        assert tracer.wait(30) == 0, log.read_text()[-2000:]
    finally:
        if tracer.poll() is None:
            tracer.kill()
            tracer.wait(10)
    lines = trace.read_text().splitlines()
    # From the node's own start on (setpriv's setresuid before it is not the node's).
    start = max(number for number, line in enumerate(lines)
                if "execve(" in line and "= 0" in line)
    used = {match.group(1) for line in lines[start:]
            if (match := re.match(r"\d+\s+(?:<\.\.\. )?([a-z0-9_]+)[( ]", line))}
    assert len(used) > 30
    assert used - allowed == set(), f"system calls the unit refuses: {sorted(used - allowed)}"


async def sell_once(url: str, code: str) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{url}/api/pair", json={"code": code, "name": "T"}) as reply:
            token = (await reply.json())["token"]
        async with session.ws_connect(f"{url}/api/ws") as ws:
            till = Till(ws)
            await till.call("auth", token=token)
            await till.call("login", cashier_id="alice", pin="1234")
            basket = str(uuid.uuid4())
            await till.call("basket/add", basket_id=basket, line_id=str(uuid.uuid4()),
                            barcode="2000001000014")
            await till.call("sale/complete", basket_id=basket,
                            tenders=[{"method": "cash", "amount": 1000}])
