"""Opt-in: our client against an external Caisse-AP terminal simulator (not vendored).

Set `CAISSE_AP_SIMULATOR` to the simulator's server script (a `.py` file is run
with this Python, anything else is executed as is), e.g. the public simulator's
server script from akretion/caisse-ap-ip (GPL: never copied here; it needs
Twisted). Optional:
- `CAISSE_AP_SIMULATOR_ARGS`: extra arguments for it (shell words);
- `CAISSE_AP_SIMULATOR_PORT`: the port it listens on (default 8888, the
  protocol's), on 127.0.0.1;
- `CAISSE_AP_SIMULATOR_TIMEOUT`: seconds for one payment (default 60).

The simulator may be set up to approve or to refuse: the test holds that its
answer is read as a definite approval or refusal of the payment we asked for
(never `unknown`: its echo matches), for a debit and for a refund.
"""

from __future__ import annotations

import os
import shlex
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from edge.devices.caisse_ap import payment_request, read_answer
from edge.devices.terminal_client import TerminalUnreachable, run_payment

SCRIPT = os.environ.get("CAISSE_AP_SIMULATOR", "")
PORT = int(os.environ.get("CAISSE_AP_SIMULATOR_PORT", "8888"))
TIMEOUT = float(os.environ.get("CAISSE_AP_SIMULATOR_TIMEOUT", "60"))


@pytest.fixture(scope="module")
def simulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    if not SCRIPT:
        pytest.skip("opt-in: set CAISSE_AP_SIMULATOR to a Caisse-AP simulator's server script "
                    "(not vendored) to run our client against it")
    command = [sys.executable, SCRIPT] if SCRIPT.endswith(".py") else [SCRIPT]
    command += shlex.split(os.environ.get("CAISSE_AP_SIMULATOR_ARGS", ""))
    log = tmp_path_factory.mktemp("simulator") / "output.txt"
    with log.open("wb") as output:
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL)
    try:
        _wait_until_listening(process, log)
        yield PORT
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_until_listening(process: subprocess.Popen[bytes], log: Path) -> None:
    """10 s at most; a simulator that stopped or never listens fails with its output."""
    for _ in range(100):
        if process.poll() is not None:
            break
        try:
            socket.create_connection(("127.0.0.1", PORT), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"the simulator never listened on 127.0.0.1:{PORT} (exit code "
                         f"{process.poll()}); its output:\n"
                         + log.read_text(errors="replace")[-2000:])


@pytest.mark.timeout(300)
@pytest.mark.parametrize("refund", [False, True], ids=["debit", "refund"])
async def test_simulator_answers_a_payment(simulator: int, refund: bool) -> None:
    request = payment_request(till_number=1, amount=1234, refund=refund)
    try:
        records = await run_payment("127.0.0.1", simulator, request, connect_timeout=5,
                                    overall_timeout=TIMEOUT)
    except TerminalUnreachable as error:
        raise AssertionError(f"the simulator went away: {error.reason}") from None
    answer = read_answer(request, records)
    assert answer.status in ("approved", "declined"), (answer, records)
    if answer.status == "approved":
        assert answer.authorised is not None and 0 < answer.authorised <= 1234
        assert answer.transaction is not None
    else:
        assert answer.code and answer.reason
