"""Head office under attack: malformed batches get a 4xx naming what is wrong, bombs stay small.

A real `edge headoffice serve` process over TLS, on SQLite and PostgreSQL:
every malformed push or pull is refused with a specific error and changes
nothing, never a 500; gzip bombs, one or eight at once, are refused (413)
while the process grows by less than 100 MB; a store pushing honestly is
served throughout.
"""

from __future__ import annotations

import asyncio
import functools
import gzip
import subprocess
import zlib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from conftest import EDGE, ROOT, free_port
from headoffice_support import CertificateAuthority
from resources import MemoryWatch
from signing_support import SignedChain, store_ca
from test_headoffice_cli import wait_for_port

from edge.headoffice.protocol import MAX_BATCH_BYTES, PULL_PATH, PUSH_PATH
from edge.headoffice.storage import HeadOfficeStorage
from edge.journal.chain import Event
from edge.trust.certificates import cert_pem

ATTACKER, HONEST = "attacker-store", "honest-store"


def till_events(origin: str, count: int, chain: SignedChain | None = None,
                store: str = ATTACKER) -> list[Event]:
    """Events that fit their schema (`till_paired` has a small body), signed; a new chain's
    certificate first."""
    chain = chain or SignedChain(origin, store_id=store)
    start = len(chain.events)
    for number in range(count):
        chain.add("till_paired", {"code": f"T{number + 1:02d}-{origin}", "name": "Caisse",
                                  "token_sha256": "ab" * 32})
    return chain.events[start:]


def push_body(events: list[Event], node: str = "n1", first: int = 1,
              store: str = ATTACKER) -> dict[str, Any]:
    return {"node": node, "store_ca": cert_pem(store_ca(store)[1]),
            "events": [{"position": first + number, **event.as_dict()}
                       for number, event in enumerate(events)]}


@functools.cache
def gzip_bomb() -> bytes:
    """1 GiB of zeros in about 1 MB of gzip."""
    deflate = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    zeros = bytes(1024 * 1024)
    return b"".join([deflate.compress(zeros) for _ in range(1024)] + [deflate.flush()])


@dataclass
class HeadOfficeProcess:
    url: str
    tokens: dict[str, str]
    process: subprocess.Popen[bytes]
    session: aiohttp.ClientSession
    origin: str = ""

    async def post(self, path: str, body: bytes, store: str = ATTACKER,
                   gzipped: bool = True, **headers: str) -> tuple[int, dict[str, Any]]:
        headers = {"Authorization": f"Bearer {self.tokens[store]}",
                   **({"Content-Encoding": "gzip"} if gzipped else {}), **headers}
        async with self.session.post(f"{self.url}{path}", data=body,
                                     headers=headers) as response:
            text = await response.read()
            try:
                return response.status, orjson.loads(text)
            except orjson.JSONDecodeError:
                return response.status, {"raw": text[:200].decode(errors="replace")}

    async def push(self, data: Any, store: str = ATTACKER) -> tuple[int, dict[str, Any]]:
        return await self.post(PUSH_PATH, gzip.compress(orjson.dumps(data)), store)


@pytest.fixture
async def headoffice_process(
    tmp_path: Path, headoffice_db: str, ca: CertificateAuthority
) -> AsyncIterator[HeadOfficeProcess]:
    storage = HeadOfficeStorage(headoffice_db)
    await storage.open()
    try:
        tokens = {store: await storage.add_store(store) for store in (ATTACKER, HONEST)}
    finally:
        await storage.close()
    cert, key = ca.issue("headoffice-limits")
    port, log = free_port(), tmp_path / "headoffice.log"
    with log.open("wb") as out:
        process = await asyncio.to_thread(
            subprocess.Popen,
            [*EDGE, "headoffice", "serve", "--db", headoffice_db, "--host", "127.0.0.1",
             "--port", str(port), "--tls-cert", str(cert), "--tls-key", str(key)],
            stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)
    try:
        await asyncio.to_thread(wait_for_port, port, process, log)
        connector = aiohttp.TCPConnector(ssl=ca.client_context(), limit=64)
        async with aiohttp.ClientSession(connector=connector) as session:
            headoffice = HeadOfficeProcess(f"https://127.0.0.1:{port}", tokens, process, session)
            async with session.get(f"{headoffice.url}/healthz") as response:
                headoffice.origin = (await response.json())["origin"]
            yield headoffice
    finally:
        process.terminate()
        process.wait(20)
    assert "Traceback" not in log.read_text(), log.read_text()[-3000:]


def malformed_pushes() -> Iterator[tuple[str, Any, str]]:
    """(what, push body, the error code head office must answer with)."""
    good = push_body(till_events("n1", 2))

    def changed(number: int = 1, **fields: Any) -> dict[str, Any]:  # a till_paired
        body = orjson.loads(orjson.dumps(good))
        body["events"][number].update(fields)
        return body

    def without(key: str) -> dict[str, Any]:
        body = orjson.loads(orjson.dumps(good))
        del body["events"][0][key]
        return body

    yield "a list, not an object", [good], "invalid_request"
    yield "no node", {"events": good["events"]}, "invalid_request"
    yield "node is a number", {**good, "node": 5}, "invalid_request"
    yield "node with a NUL", {**good, "node": "n\x001"}, "invalid_request"
    yield "events is an object", {**good, "events": {"0": 1}}, "invalid_request"
    yield "no events", {**good, "events": []}, "invalid_request"
    yield "an event is a string", {**good, "events": ["x"]}, "invalid_request"
    for key in ("position", "origin", "seq", "id", "time", "type", "body", "prev_hash", "hash"):
        yield f"no {key}", without(key), "invalid_request"
    yield "seq is a string", changed(seq="1"), "invalid_request"
    yield "seq is a float", changed(seq=1.5), "invalid_request"
    yield "seq is true", changed(seq=True), "invalid_request"
    yield "negative seq", changed(seq=-1), "invalid_request"
    yield "seq 0", changed(seq=0), "invalid_request"
    yield "seq past BIGINT", changed(seq=2**63), "invalid_request"
    yield "position past BIGINT", changed(position=2**64 - 1), "invalid_request"
    yield "negative position", changed(position=-5), "invalid_request"
    yield "origin with a NUL", changed(origin="n1\x00"), "invalid_request"
    yield "origin of 1 MB", changed(origin="n" * 1_000_000), "invalid_request"
    yield "origin is a list", changed(origin=["n1"]), "invalid_request"
    yield "id of 1 MB", changed(id="x" * 1_000_000), "invalid_request"
    yield "time is not a time", changed(time="yesterday"), "invalid_request"
    yield "type of 1 MB", changed(type="t" * 1_000_000), "invalid_request"
    yield "hash is not hex", changed(hash="z" * 64), "invalid_request"
    yield "body is a list", changed(body=[["code", "T01"]]), "invalid_request"
    yield "unknown type", changed(type="free_money"), "unknown_event_type"
    yield "body missing a field", changed(body={"code": "T01"}), "unfit_event"
    yield "body field of 1 MB", changed(body={"code": "T01", "name": "x" * 1_000_000,
                                              "token_sha256": "ab" * 32}), "unfit_event"
    yield "body field of the wrong type", changed(body={"code": 1, "name": "x",
                                                        "token_sha256": "ab" * 32}), "unfit_event"
    yield "a sale without its id", changed(type="sale_completed", body={"total": 1}), \
        "unfit_event"
    yield "positions going back", changed(1, position=1), "invalid_request"
    yield "sig is not hex", changed(sig="z" * 128), "invalid_request"
    yield "sig of 1 MB", changed(sig="ab" * 500_000), "invalid_request"
    yield "store_ca of 1 MB", {**good, "store_ca": "x" * 1_000_000}, "store_ca_invalid"
    yield "store_ca is not a certificate", {**good, "store_ca": "nope"}, "store_ca_invalid"
    yield "store_ca of another store", {**good, "store_ca": cert_pem(store_ca(HONEST)[1])}, \
        "store_ca_invalid"


async def test_every_malformed_request_is_refused_with_its_code_and_changes_nothing(
    headoffice_process: HeadOfficeProcess, headoffice_db: str
) -> None:
    headoffice = headoffice_process
    for what, body, code in malformed_pushes():
        status, answer = await headoffice.push(body)
        assert (status, answer.get("error", {}).get("code")) == (400, code), (what, answer)
    raw = [
        ("not JSON", gzip.compress(b"{not json"), {}, 400, "invalid_request"),
        ("not UTF-8", gzip.compress(b'{"node": "\xff\xfe"}'), {}, 400, "invalid_request"),
        ("says gzip, is not", b"plain text", {}, 400, "invalid_request"),
        ("a gzip cut short", gzip.compress(orjson.dumps(push_body(till_events("n1", 50))))[:-40],
         {}, 400, "invalid_request"),
        ("brotli", b"\x00", {"Content-Encoding": "br"}, 415, "unsupported_encoding"),
        ("17 MiB of JSON", b" " * (MAX_BATCH_BYTES + 1), {"Content-Encoding": "identity"},
         413, "too_large"),
        ("a gzip bomb", gzip_bomb(), {}, 413, "too_large"),
    ]
    for what, payload, headers, status, code in raw:
        got, answer = await headoffice.post(PUSH_PATH, payload, **headers)
        assert (got, answer.get("error", {}).get("code")) == (status, code), (what, answer)
    for what, vector, heads in [
        ("a seq past BIGINT", {headoffice.origin: 2**64 - 1}, {}),
        ("an origin with a NUL", {"n1\x00": 1}, {}),
        ("a negative seq", {"n1": -1}, {}),
        ("an origin of 1 MB", {"n" * 1_000_000: 1}, {}),
        ("a head that is not a hash", {}, {headoffice.origin: "x" * 1000}),
    ]:
        status, answer = await headoffice.post(
            PULL_PATH, orjson.dumps({"vector": vector, "heads": heads}), gzipped=False)
        assert (status, answer.get("error", {}).get("code")) == (400, "invalid_request"), \
            (what, answer)
    # Nothing of it was stored; the store still pushes and pulls.
    events = till_events("n1", 3)
    status, answer = await headoffice.push(push_body(events))
    assert status == 200 and answer["stored"] == 4, answer  # its certificate, then 3
    storage = HeadOfficeStorage(headoffice_db)
    await storage.open()
    try:
        assert await storage.events(ATTACKER) == events
        assert await storage.conflicts(ATTACKER) == []
    finally:
        await storage.close()


@pytest.mark.parametrize("headoffice_db", ["postgresql"], indirect=True)
async def test_eight_gzip_bombs_at_once_cost_little_and_an_honest_store_is_served(
    headoffice_process: HeadOfficeProcess,
) -> None:
    headoffice = headoffice_process
    bomb = gzip_bomb()
    watch = MemoryWatch(headoffice.process.pid)
    served: list[int] = []
    attack_over = asyncio.Event()

    async def honest_store() -> None:
        chain = SignedChain("h1", store_id=HONEST)
        while not attack_over.is_set() or len(served) < 3:
            events = till_events("h1", 1, chain)
            status, answer = await headoffice.push(
                push_body(events, "h1", first=events[0].seq, store=HONEST), store=HONEST)
            assert status == 200 and answer["stored"] == len(events), answer
            served.append(status)

    honest = asyncio.create_task(honest_store())
    try:
        for _ in range(3):  # three volleys: memory freed after one is not grown by the next
            answers = await asyncio.gather(
                *(headoffice.post(PUSH_PATH, bomb) for _ in range(8)),
                *(headoffice.post(PULL_PATH, bomb) for _ in range(2)),
                *(headoffice.post(PUSH_PATH, bomb, store=HONEST, Authorization="Bearer x")
                  for _ in range(4)))
            codes = [(status, answer.get("error", {}).get("code")) for status, answer in answers]
            assert set(codes[:10]) <= {(413, "too_large"), (429, "busy")}, codes
            assert (413, "too_large") in codes[:10]
            assert set(codes[10:]) == {(401, "invalid_token")}, codes
        attack_over.set()
        await asyncio.wait_for(honest, 30)
    finally:
        attack_over.set()
        honest.cancel()
        await asyncio.gather(honest, return_exceptions=True)
    assert headoffice.process.poll() is None
    watch.check("eight gzip bombs at once, three times")
    assert len(served) >= 3
