"""Caisse-AP: the codec (vectors written from the protocol text, and properties), the
reading of answers, and the asyncio client against the fake terminal on 127.0.0.1."""

from __future__ import annotations

import asyncio

import pytest
from fake_terminal import AUTHORISATION, CARD, FakeTerminal, approved_answer
from hypothesis import given, settings
from hypothesis import strategies as st

from edge.devices.caisse_ap import (
    PROTOCOL_ID,
    CaisseAPError,
    Decoder,
    Records,
    decode,
    encode,
    payment_request,
    read_answer,
)
from edge.devices.terminal_client import (
    MAX_ANSWER,
    AnswerUnknown,
    TerminalUnreachable,
    run_payment,
)

REQUEST = payment_request(till_number=1, amount=1250, refund=False)
REQUEST_BYTES = b"CZ0040300CJ012012345678901CA00201CB0041250CD0010CE003978BA0010"
APPROVED = [*REQUEST[:3], *REQUEST[4:], ("AE", "10"), ("AC", "123456"),
            ("AA", "4970XXXXXXXX1234"), ("AB", "2812"), ("AI", "A0000000421010"),
            ("CC", "CB"), ("CI", "C"), ("CB", "1250")]
DECODE_ERRORS = {"bad_tag", "bad_length", "zero_length", "bad_value", "truncated"}


# --- the codec ---------------------------------------------------------------------------

def test_payment_request_vectors() -> None:
    assert PROTOCOL_ID == "012345678901"
    assert encode(REQUEST) == REQUEST_BYTES
    refund = payment_request(till_number=12, amount=5, refund=True)
    assert encode(refund) == b"CZ0040300CJ012012345678901CA00212CB00205CD0011CE003978BA0010"
    assert all(tag != "BF" for tag, _ in REQUEST + refund)  # breaks recent Ingenico software


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"till_number": 100, "amount": 1, "refund": False}, "till_number"),
    ({"till_number": -1, "amount": 1, "refund": False}, "till_number"),
    ({"till_number": 1, "amount": 0, "refund": False}, "amount"),
])
def test_payment_request_refuses_what_cannot_be_sent(kwargs: dict, field: str) -> None:
    with pytest.raises(ValueError, match=field):
        payment_request(**kwargs)


@pytest.mark.parametrize(("records", "named"), [
    ([("cz", "0300")], "'cz'"), ([("C", "0300")], "'C'"), ([("C-", "1")], "'C-'"),
    ([("CZ", "")], "CZ"), ([("CB", "1" * 1000)], "CB"), ([("AA", "café")], "AA"),
    ([("AA", "a\nb")], "AA"),
])
def test_encode_refuses_bad_records_naming_the_tag(records: Records, named: str) -> None:
    with pytest.raises(ValueError, match=named):
        encode(records)


def test_decode_vectors() -> None:
    answer = (b"CZ0040300CJ012012345678901CA00201CD0010CE003978BA0010AE00210AC006123456"
              b"AA0164970XXXXXXXX1234AB0042812AI014A0000000421010CC002CBCI001CCB0041250")
    assert decode(answer) == APPROVED
    assert encode([("ZZ", "x" * 999)]) == b"ZZ999" + b"x" * 999
    assert decode(b"AF00804 REFUS") == [("AF", "04 REFUS")]


@pytest.mark.parametrize(("data", "code"), [
    (b"\x00CZ0040300", "bad_tag"), (b"cz0040300", "bad_tag"), (b"CZ0a40300", "bad_length"),
    (b"CZ000", "zero_length"), (b"CZ002\x01\x02", "bad_value"), (b"CZ002\xc3\xa9", "bad_value"),
    (b"CZ0040300\r\n", "bad_tag"), (b"CZ0040300CJ01", "truncated"),
])
def test_decode_names_garbage(data: bytes, code: str) -> None:
    with pytest.raises(CaisseAPError) as raised:
        decode(data)
    assert raised.value.code == code


def test_complete_means_a_record_boundary_with_cz() -> None:
    def complete(data: bytes) -> bool:
        decoder = Decoder()
        decoder.feed(data)
        return decoder.complete()

    assert complete(b"CZ0040300")
    assert complete(REQUEST_BYTES)
    assert not complete(b"CZ00403")
    assert not complete(b"CA00201")  # no CZ
    assert not complete(b"")
    assert not complete(b"CZ0040300\x00")


_TAG = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", min_size=2, max_size=2)
_VALUE = st.one_of(
    st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), min_size=1,
            max_size=40),
    st.integers(1, 999).map(lambda n: "9" * n),
)
_RECORDS = st.lists(st.tuples(_TAG, _VALUE), max_size=12)


@settings(max_examples=150, deadline=None)
@given(_RECORDS)
def test_round_trip(records: Records) -> None:
    assert decode(encode(records)) == records


def _decoded(pieces: list[bytes]) -> tuple[Records, bool, str | None, int]:
    decoder = Decoder()
    for piece in pieces:
        decoder.feed(piece)
    return decoder.records(), decoder.complete(), decoder.error, decoder.size


@settings(max_examples=150, deadline=None)
@given(_RECORDS, st.binary(max_size=8), st.data())
def test_any_split_decodes_the_same(records: Records, tail: bytes, data: st.DataObject) -> None:
    message = encode([("CZ", "0300"), *records]) + tail  # valid, maybe followed by garbage
    cuts = sorted(data.draw(st.sets(st.integers(0, len(message)), max_size=40)))
    pieces = [message[start:end] for start, end in zip([0, *cuts], [*cuts, len(message)],
                                                       strict=True)]
    assert _decoded(pieces) == _decoded([message])


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=60))
def test_any_bytes_are_records_or_a_named_error(data: bytes) -> None:
    try:
        records = decode(data)
    except CaisseAPError as error:
        assert error.code in DECODE_ERRORS
    else:
        assert encode(records) == data


# --- reading the answer ------------------------------------------------------------------

def _answer(*records: tuple[str, str], drop: tuple[str, ...] = ()) -> Records:
    """The approved answer with `records` in place of (or added to) its own."""
    changed = dict(records)
    answer = [(tag, changed.pop(tag, value)) for tag, value in APPROVED if tag not in drop]
    return answer + list(changed.items())


def test_approved() -> None:
    answer = read_answer(REQUEST, APPROVED)
    assert (answer.status, answer.code, answer.authorised, answer.partial) == (
        "approved", None, 1250, False)
    assert (answer.authorisation, answer.card, answer.last4, answer.expiry, answer.aid,
            answer.application, answer.read_mode) == (
        "123456", "4970XXXXXXXX1234", "1234", "2812", "A0000000421010", "CB", "C")
    assert answer.transaction is not None and len(answer.transaction) == 16
    assert read_answer(REQUEST, list(reversed(APPROVED))).transaction == answer.transaction
    other = read_answer(REQUEST, _answer(("AC", "654321")))
    assert other.transaction != answer.transaction


@pytest.mark.parametrize("code", ["04", "05", "06", "07", "08", "09", "11", "13"])
def test_each_refusal_code(code: str) -> None:
    plain = read_answer(REQUEST, _answer(("AE", "01"), ("AF", code)))
    assert (plain.status, plain.code, plain.authorised) == ("declined", code, None)
    assert plain.reason
    extra = read_answer(REQUEST, _answer(("AE", "01"), ("AF", f"{code} CARTE REFUSEE ")))
    assert (extra.status, extra.code) == ("declined", code)
    assert extra.reason == f"{plain.reason}: CARTE REFUSEE"


def test_refusal_without_a_readable_reason() -> None:
    assert read_answer(REQUEST, _answer(("AE", "01"), drop=("AF",))).code == "no_reason"
    odd = read_answer(REQUEST, _answer(("AE", "01"), ("AF", "X")))
    assert (odd.status, odd.code) == ("declined", "no_reason")
    assert odd.reason is not None and odd.reason.endswith(": X")
    other = read_answer(REQUEST, _answer(("AE", "01"), ("AF", "42")))
    assert (other.status, other.code) == ("declined", "42")


def test_operator_cancel_has_no_cb_and_no_echo_check() -> None:
    cancel = [(tag, value) for tag, value in REQUEST if tag != "CB"] + [
        ("AE", "01"), ("AF", "11")]
    answer = read_answer(REQUEST, cancel)
    assert (answer.status, answer.code) == ("declined", "11")
    # a failure is a failure, whatever it echoes: nothing was charged
    wrong = read_answer(REQUEST, [("CZ", "0300"), ("CA", "77"), ("AE", "01"), ("AF", "04")])
    assert (wrong.status, wrong.code) == ("declined", "04")


def test_partial_authorisation() -> None:
    answer = read_answer(REQUEST, _answer(("CB", "800")))
    assert (answer.status, answer.authorised, answer.requested, answer.partial) == (
        "approved", 800, 1250, True)


@pytest.mark.parametrize(("answer", "code"), [
    (_answer(("CA", "02")), "wrong_echo"),
    (_answer(("CD", "1")), "wrong_echo"),
    (_answer(("CE", "840")), "wrong_echo"),
    (_answer(drop=("CA",)), "wrong_echo"),
    (_answer(drop=("CB",)), "no_amount"),
    (_answer(("CB", "1251")), "over_amount"),
    (_answer(("CB", "12.50")), "bad_amount"),
    (_answer(("CB", "0")), "bad_amount"),
    (_answer(drop=("AE",)), "no_result"),
    (_answer(("AE", "00")), "bad_result"),
    ([*APPROVED, ("AE", "01")], "ambiguous_answer"),
    ([*APPROVED, ("CB", "100")], "ambiguous_answer"),
])
def test_success_on_a_doubt_is_unknown(answer: Records, code: str) -> None:
    read = read_answer(REQUEST, answer)
    assert (read.status, read.code, read.authorised, read.transaction) == (
        "unknown", code, None, None)
    assert read.reason


def test_repeated_identical_records_are_not_a_doubt() -> None:
    assert read_answer(REQUEST, [*APPROVED, ("CB", "1250")]).status == "approved"


def test_refund_echo() -> None:
    refund = payment_request(till_number=3, amount=990, refund=True)
    assert read_answer(refund, approved_answer(refund)).status == "approved"
    assert read_answer(REQUEST, approved_answer(refund)).code == "wrong_echo"


# --- the client against the fake terminal ------------------------------------------------

async def _pay(terminal: FakeTerminal, request: Records = REQUEST, *,
               overall_timeout: float = 5) -> Records:
    return await run_payment("127.0.0.1", terminal.port, request, connect_timeout=2,
                             overall_timeout=overall_timeout, quiet=0.2)


async def test_client_approved_and_the_line_closed() -> None:
    async with FakeTerminal("approved") as terminal:
        answer = read_answer(REQUEST, await _pay(terminal))
        assert (answer.status, answer.authorised, answer.authorisation, answer.card) == (
            "approved", 1250, AUTHORISATION, CARD)
        assert terminal.requests == [REQUEST]


@pytest.mark.parametrize("code", ["04", "05", "06", "07", "08", "09", "11", "13"])
async def test_client_each_refusal(code: str) -> None:
    async with FakeTerminal(f"declined-{code}", af_text=" REFUS") as terminal:
        answer = read_answer(REQUEST, await _pay(terminal))
        assert (answer.status, answer.code) == ("declined", code)
        assert answer.reason is not None and answer.reason.endswith(": REFUS")


async def test_client_answer_split_in_many_pieces_with_pauses() -> None:
    # Cut inside every record and at every record boundary: a prefix that looks
    # complete ("CZ0040300") is followed by more after a pause shorter than quiet.
    async with FakeTerminal("split", pause=0.01) as terminal:
        records = await _pay(terminal)
        assert records == approved_answer(REQUEST)
        assert read_answer(REQUEST, records).status == "approved"


async def test_client_line_left_open_after_the_answer() -> None:
    async with FakeTerminal("open") as terminal:
        assert read_answer(REQUEST, await _pay(terminal)).status == "approved"
        assert await terminal.wait_hung_up()  # we hung up, the terminal did not


@pytest.mark.parametrize(("script", "says"), [
    ("garbage", "not Caisse-AP"), ("cut", "closed|broke"), ("hangup", "closed|broke"),
    ("flood", str(MAX_ANSWER)),
])
async def test_client_bad_answers_are_unknown(script: str, says: str) -> None:
    async with FakeTerminal(script) as terminal:
        with pytest.raises(AnswerUnknown, match=says):
            await _pay(terminal)
        assert await terminal.wait_hung_up()


async def test_client_wrong_echo_is_unknown() -> None:
    async with FakeTerminal("wrong-echo") as terminal:
        answer = read_answer(REQUEST, await _pay(terminal))
        assert (answer.status, answer.code) == ("unknown", "wrong_echo")


async def test_client_connection_refused_is_unreachable() -> None:
    async with FakeTerminal("refuse") as terminal:
        with pytest.raises(TerminalUnreachable):
            await _pay(terminal)
        assert terminal.connections == 0 and terminal.requests == []
        await terminal.use("approved")  # back on the same port
        assert read_answer(REQUEST, await _pay(terminal)).status == "approved"


async def test_client_silence_until_the_overall_timeout_is_unknown() -> None:
    async with FakeTerminal("silent") as terminal:
        with pytest.raises(AnswerUnknown, match="timeout"):
            await _pay(terminal, overall_timeout=0.3)
        assert terminal.requests == [REQUEST]  # it was sent: the card may be charged
        assert await terminal.wait_hung_up()


async def test_client_cancelled_mid_payment_hangs_up() -> None:
    async with FakeTerminal("silent") as terminal:
        payment = asyncio.create_task(_pay(terminal))
        await terminal.wait_requests(1)
        payment.cancel()
        with pytest.raises(asyncio.CancelledError):
            await payment
        assert await terminal.wait_hung_up()


async def test_client_hold_answers_once_released() -> None:
    async with FakeTerminal("hold") as terminal:
        payment = asyncio.create_task(_pay(terminal))
        await terminal.wait_requests(1)
        assert not payment.done()
        terminal.release()
        assert read_answer(REQUEST, await payment).status == "approved"


async def test_client_operator_cancel() -> None:
    async with FakeTerminal("cancel") as terminal:
        records = await _pay(terminal)
        assert "CB" not in dict(records)
        answer = read_answer(REQUEST, records)
        assert (answer.status, answer.code) == ("declined", "11")


async def test_client_partial_authorisation_and_sequence() -> None:
    async with FakeTerminal("partial,approved") as terminal:
        partial = read_answer(REQUEST, await _pay(terminal))
        assert (partial.status, partial.authorised, partial.partial) == ("approved", 625, True)
        assert read_answer(REQUEST, await _pay(terminal)).authorised == 1250
