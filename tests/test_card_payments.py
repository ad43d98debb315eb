"""Card payments through the node: a till asks, the node dials a fake Caisse-AP terminal.

One node in this process per test, its terminal a `FakeTerminal` on
127.0.0.1 (tests/fake_terminal.py). What the codec and the client make of
each kind of answer is tests/test_caisse_ap.py's; here, what the till is told
and what the journal holds: pushed states, a resend never dialled twice, one
payment at a time per terminal, nothing sent to an unreachable terminal, and
an unknown payment settled from the slip.
"""

from __future__ import annotations

import contextlib
import socket
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from conftest import CommandFailed, NodeUnderTest, Till, free_port, node_of
from fake_terminal import AUTHORISATION, FakeTerminal
from printing import BARCODES, eventually

from edge.api.server import make_app
from edge.config import Config, ConfigError, TerminalConfig, parse_config
from edge.devices.card_payments import advance, finished, state_of
from edge.devices.device_admin import run_devices
from edge.journal.chain import Event


@contextlib.asynccontextmanager
async def terminal_node(data_dir: Path, terminal: FakeTerminal) -> AsyncIterator[NodeUnderTest]:
    """The demo store on a loopback port, every till paying on the fake terminal."""
    config = Config(data_dir=data_dir, advertise=False, terminals=(
        TerminalConfig("tpe-1", "127.0.0.1", terminal.port, connect_timeout=2, timeout=15),))
    app = make_app(config)
    server = TestServer(app, host="127.0.0.1", port=free_port())
    await server.start_server()
    try:
        async with aiohttp.ClientSession() as session:
            yield NodeUnderTest(f"http://127.0.0.1:{server.port}", data_dir, session, app)
    finally:
        await server.close()


async def basket(till: Till, barcodes: list[str] | None = None) -> tuple[str, int]:
    """A new basket on the till: its id and total (cents)."""
    basket_id = str(uuid.uuid4())
    for barcode in barcodes or BARCODES[:2]:
        answer = await till.call("basket/add", basket_id=basket_id, line_id=str(uuid.uuid4()),
                                 barcode=barcode)
    return basket_id, answer["totals"]["total"]


def pushed(till: Till, payment_id: str) -> list[dict[str, Any]]:
    return [event["event"]["payment"] for event in till.events
            if event["event"].get("type") == "card_payment"
            and event["event"]["payment"]["payment_id"] == payment_id]


async def until_pushed(till: Till, payment_id: str, status: str) -> dict[str, Any]:
    """Read the till's socket until the payment's state `status` is pushed."""
    async def check() -> dict[str, Any] | None:
        states = [s for s in pushed(till, payment_id) if s["status"] == status]
        if states:
            return states[-1]
        await till.reply("ping")  # reads what was pushed meanwhile
        return None

    return await eventually(check, within=15, what=f"payment {payment_id} {status}")


async def fails(code: str, till: Till, command: str, **args: Any) -> None:
    with pytest.raises(CommandFailed) as refused:
        await till.call(command, **args)
    assert refused.value.code == code


async def test_an_approved_payment_is_pushed_read_again_after_a_reconnect_and_never_dialled_twice(
    tmp_path: Path,
) -> None:
    async with FakeTerminal("approved") as terminal, \
            terminal_node(tmp_path / "data", terminal) as node, node.till() as till:
        basket_id, total = await basket(till)
        await fails("card_payment_too_much", till, "payment/card", basket_id=basket_id,
                    payment_id=str(uuid.uuid4()), amount=total + 1)
        payment_id = str(uuid.uuid4())
        answer = await till.call("payment/card", basket_id=basket_id, payment_id=payment_id,
                                 amount=total)
        assert answer["payment"]["status"] in ("requested", "started")
        approved = await until_pushed(till, payment_id, "approved")
        assert approved["status"] == "approved" and approved["amount"] == total
        assert (approved["authorised"], approved["authorisation"], approved["last4"],
                approved["application"], approved["read_mode"]) == (
            total, AUTHORISATION, "1234", "CB", "C")
        assert [s["status"] for s in pushed(till, payment_id)] == ["started", "approved"]
        assert terminal.connections == 1
        [request] = terminal.requests
        assert dict(request)["CB"] == f"{total:02d}" and dict(request)["CD"] == "0"

        # A till that reconnected reads it; a resend answers it, and dials nothing.
        async with node.till(till.token) as again:
            status = await again.call("payment/card_status", payment_id=payment_id)
            assert status["payment"] == approved
            resent = await again.call("payment/card", basket_id=basket_id,
                                      payment_id=payment_id, amount=total)
            assert resent["payment"] == approved
            await fails("payment_id_reused", again, "payment/card", basket_id=basket_id,
                        payment_id=payment_id, amount=total - 1)
            await fails("payment_not_unknown", again, "payment/card_settle",
                        payment_id=payment_id, approved=True, reference="slip 1")
            await fails("unknown_payment", again, "payment/card_status",
                        payment_id=str(uuid.uuid4()))
        assert terminal.connections == 1

        # The store IT page's view of the terminal.
        async with node.session.get(f"{node.url}/healthz") as response:
            [seen] = (await response.json())["terminals"]
        assert seen["name"] == "tpe-1" and "port" not in seen  # never told to the Wi-Fi
        assert seen["busy"] is False and seen["last_payment"]["status"] == "approved"


async def test_declined_busy_unreachable_and_an_unknown_payment_settled_from_the_slip(
    tmp_path: Path,
) -> None:
    async with FakeTerminal("declined-05") as terminal, \
            terminal_node(tmp_path / "data", terminal) as node, node.till() as till:
        basket_id, total = await basket(till)

        declined = str(uuid.uuid4())
        await till.call("payment/card", basket_id=basket_id, payment_id=declined, amount=total)
        state = await until_pushed(till, declined, "declined")
        assert state["code"] == "05" and state["authorised"] is None

        # One payment at a time on a terminal.
        terminal.script = "hold"
        held = str(uuid.uuid4())
        await till.call("payment/card", basket_id=basket_id, payment_id=held, amount=total)
        await until_pushed(till, held, "started")
        await fails("terminal_busy", till, "payment/card", basket_id=basket_id,
                    payment_id=str(uuid.uuid4()), amount=total)
        terminal.release()
        await until_pushed(till, held, "approved")

        # Connection refused: unreachable, nothing was sent. (On a new basket: the held
        # payment paid the first one in full.)
        await till.call("sale/complete", basket_id=basket_id, tenders=[
            {"method": "card", "amount": total, "payment_id": held}])
        basket_id, total = await basket(till)
        await terminal.use("refuse")
        sent = len(terminal.requests)
        unreachable = str(uuid.uuid4())
        await till.call("payment/card", basket_id=basket_id, payment_id=unreachable,
                        amount=total)
        state = await until_pushed(till, unreachable, "unreachable")
        assert state["code"] == "connection_failed"
        assert len(terminal.requests) == sent
        await fails("payment_not_unknown", till, "payment/card_settle",
                    payment_id=unreachable, approved=True, reference="slip")

        # Garbage after the request went out: unknown; the cashier settles it from the slip.
        await terminal.use("garbage")
        lost = str(uuid.uuid4())
        await till.call("payment/card", basket_id=basket_id, payment_id=lost, amount=total)
        state = await until_pushed(till, lost, "unknown")
        assert state["settled"] is None
        await fails("missing_reference", till, "payment/card_settle", payment_id=lost,
                    approved=True)
        settled = await till.call("payment/card_settle", payment_id=lost, approved=True,
                                  reference="TPE 000123")
        assert settled["payment"]["settled"] == "approved"
        assert settled["payment"]["settled_amount"] == total
        assert settled["payment"]["settled_reference"] == "TPE 000123"
        again = await till.call("payment/card_settle", payment_id=lost, approved=True,
                                reference="TPE 000123")
        assert again == settled  # a resend
        await fails("payment_already_settled", till, "payment/card_settle", payment_id=lost,
                    approved=False)
        # A request that reaches the terminal's node over 15 s late (a partition held it
        # up): never sent, whatever the till does meanwhile.
        journal = node_of(node).journal
        late = {"payment_id": "late-1", "till": "T01", "cashier": "alice", "terminal": "tpe-1",
                "node": journal.origin, "amount": total, "refund": False,
                "basket_id": basket_id, "requested_at": "2026-03-01T10:00:00.000Z"}
        await journal.write(lambda tx: tx.append("card_payment_requested", late))
        row = await eventually(lambda: journal.read_one(
            "SELECT status, code FROM card_payments WHERE payment_id = 'late-1' "
            "AND status != 'requested'"), what="the late request refused")
        assert (row["status"], row["code"]) == ("unreachable", "stale_request")
        # Dialled once per payment, ever: declined, held, garbage (refused: not sent).
        assert len(terminal.requests) == 3


def test_edge_devices_lists_the_terminals_and_tests_one_by_a_connection_alone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    unused = free_port()
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]
        config = Config(data_dir=tmp_path / "data", advertise=False, port=free_port(),
                        terminals=(TerminalConfig("tpe-1", "127.0.0.1", port, ("T01",)),
                                   TerminalConfig("tpe-2", "127.0.0.1", unused)))
        assert run_devices(config, None, None) == 0
        out = capsys.readouterr().out
        assert out.endswith(
            "Card terminals in the config (checked directly: no `edge serve` answers for this "
            "store):\n"
            f"  tpe-1: Caisse-AP at 127.0.0.1:{port}, tills: T01; connect 5 s, payment 180 s\n"
            "    -> not checked (`edge devices test tpe-1` checks that it answers)\n"
            f"  tpe-2: Caisse-AP at 127.0.0.1:{unused}, tills: every other till; connect 5 s, "
            "payment 180 s\n"
            "    -> not checked (`edge devices test tpe-2` checks that it answers)\n")
        assert run_devices(config, "test", "tpe-1") == 0
        assert "tpe-1 answers at" in capsys.readouterr().out
        connection, _ = listener.accept()
        with connection:
            assert connection.recv(100) == b""  # closed, and nothing was ever sent
    assert run_devices(config, "test", "tpe-2") == 1
    assert (f"tpe-2 does not answer at 127.0.0.1:{unused} (connection refused)"
            in capsys.readouterr().err)


def test_a_terminal_config_that_cannot_work_is_refused_in_plain_words() -> None:
    with pytest.raises(ConfigError) as refused:
        parse_config({"store": {"id": "shop"}, "printers": [{"name": "tpe-1"}], "terminals": [
            {"name": "tpe-1", "host": "10.0.0.9", "tills": ["T01"]},
            {"name": "TPE 2", "host": "10.0.0.8"},
            {"name": "tpe-3", "host": "", "port": 0, "timeout": 5, "tills": ["t01"]},
            {"name": "tpe-4", "host": "10.0.0.7", "connect_timeout": "5", "pin": 1}]}, "edge.toml")
    assert refused.value.problems == [
        "edge.toml: terminal 'tpe-1': a printer has that name too: give the terminal another "
        "(`edge devices test NAME` names one device)",
        "edge.toml: terminals #2: name 'TPE 2' is not usable: 1 to 32 lower-case letters, "
        "digits and dashes, like \"tpe-1\"",
        "edge.toml: terminal 'tpe-3': host is required: the terminal's address on the shop "
        "network, like \"192.168.1.60\" (its IP settings show it)",
        "edge.toml: terminal 'tpe-3': port must be between 1 and 65535 (Caisse-AP's is 8888)",
        "edge.toml: terminal 'tpe-3': timeout must be between 10 and 900 seconds (a payment "
        "with a PIN can take 3 minutes)",
        "edge.toml: terminals #4: unknown setting(s) pin",
        "edge.toml: terminal 'tpe-4': connect_timeout must be a number of seconds",
        "edge.toml: till t01 is listed by two terminals",
    ]


def test_a_request_not_taken_within_30_s_reads_unreachable_and_nothing_later_is_started() -> None:
    asked = datetime(2026, 3, 1, 10, 0, 0, tzinfo=UTC)
    row = {"payment_id": "p1", "status": "requested", "amount": 500, "refund": 0,
           "terminal": "tpe-1", "requested_at": "2026-03-01T10:00:00.000Z",
           **dict.fromkeys(("code", "reason", "authorised", "authorisation", "last4", "card",
                            "application", "read_mode", "settled", "settled_reference",
                            "settled_amount"))}
    assert state_of(row, asked + timedelta(seconds=29))["status"] == "requested"
    late = state_of(row, asked + timedelta(seconds=31))
    assert (late["status"], late["code"]) == ("unreachable", "not_taken")
    assert not finished(late)  # its node may still say stale_request
    started = advance(late, Event("n1", 2, "e", "t", "card_payment_started",
                                  {"payment_id": "p1", "node": "n1", "terminal": "tpe-1"},
                                  "", ""))
    assert started is not None and started["status"] == "started"
