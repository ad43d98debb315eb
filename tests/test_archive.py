"""`edge archive` and `edge verify ARCHIVE` (edge/fiscal/): an untouched archive verifies
with nothing but itself; every kind of tampering is refused and named.

One journal is built for the module with the journal API (signed chains of
two nodes, applied as a peer link would), one archive of its November is
written, and each test checks a tampered copy of it. One test runs the
commands for real, against a running node.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import shutil
import sqlite3
import subprocess
import textwrap
import zipfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from conftest import EDGE, ROOT, EdgeProcess, free_port
from signing_support import SignedChain, identity, rehashed
from test_fiscal_totals import refund_body, sale_body

from edge.fiscal.archive import Written, write_archive
from edge.fiscal.archive_files import EVENTS, MANIFEST, SALES, TOTALS
from edge.fiscal.exports import export_body, record_export
from edge.fiscal.periods import parse_period
from edge.fiscal.verify_archive import Report, run, verify
from edge.journal.chain import Event, event_from_dict
from edge.journal.store import Journal

NOVEMBER = parse_period("2024-11", UTC)
PIN_HASH = "9f" * 32


def _time(day: str, hour: int = 10) -> str:
    return f"2024-{day}T{hour:02d}:00:00.000Z"


def _chains() -> tuple[list[Event], dict[str, Any]]:
    """Two nodes' chains over October to December; what November counts."""
    a, b = SignedChain("node-a"), SignedChain("node-b")
    for chain in (a, b):
        chain.add("origin_certified", chain.certified_body(), time=_time("10-01", 8))
    a.add("cashier_added", {"id": "c1", "name": "Alice", "role": "cashier", "secret": {
        "pin_salt": "ab" * 16, "pin_hash": PIN_HASH, "pin_key": "k1"}}, time=_time("10-01"))
    a.add("sale_completed", sale_body("s0@T01", [(300, 1, 550)]), time=_time("10-31", 22))
    november = [sale_body("s1@T01", [(120, 3, 550)], "cash", 1),
                sale_body("s2@T01", [(1999, 1, 2000), (250, 2, 550)], "card", 2),
                sale_body("s3@T01", [(4500, 1, 1000)], "split", 3)]
    for number, body in enumerate(november, 1):
        a.add("sale_completed", body, time=_time(f"11-{number:02d}"))
    b.add("sale_completed", {**november[1], "resent": True}, time=_time("11-04"))  # failover
    refund = refund_body("r1@T01#refund", 120, 1, 550)
    a.add("sale_refunded", refund, time=_time("11-05"))
    a.add("sale_completed", {**sale_body("s4@T01", [(999, 1, 2000)]), "training": True},
          time=_time("11-06"))
    late = sale_body("s5@T02", [(700, 2, 550)], "card", 1, till="T02")
    b.add("sale_completed", late, time=_time("11-30", 22))
    b.add("sale_completed", sale_body("s6@T02", [(50, 1, 550)], till="T02"),
          time=_time("12-01", 9))
    a.add("sale_completed", sale_body("s7@T01", [(80, 1, 550)]), time=_time("12-02"))
    counted = [*november, refund, late]
    return a.events + b.events, {
        "count": len(counted), "net": sum(body["totals"]["total"] for body in counted)}


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> tuple[Written, dict[str, Any], Path]:
    folder = tmp_path_factory.mktemp("archive")
    events, expected = _chains()

    async def build() -> Written:
        journal = Journal(folder / "edge.sqlite3", origin="archiver", trust=identity("archiver"))
        await journal.open()
        try:
            await journal.write(lambda tx: [tx.apply(event) for event in events])
            written = write_archive(journal.path, NOVEMBER, folder / "november.zip",
                                    identity("archiver"))
            await record_export(journal, export_body(
                NOVEMBER.as_dict(), written.manifest_sha256, written.files, written.events,
                written.path.name))
            [recorded] = await journal.read_all(
                "SELECT body FROM events WHERE type = 'archive_exported'")
            assert orjson.loads(recorded["body"])["manifest_sha256"] == written.manifest_sha256
            return written
        finally:
            await journal.close()

    return asyncio.run(build()), expected, folder


def tampered(archive: Path, target: Path, **changes: Callable[[bytes], bytes]) -> Path:
    """A copy of `archive` with members changed (`events_jsonl=lambda data: ...`)."""
    named = {name.replace("_", ".", 1) if name.count("_") else name: change
             for name, change in changes.items()}
    with zipfile.ZipFile(archive) as source, zipfile.ZipFile(target, "w") as copy:
        for name in source.namelist():
            data = source.read(name)
            copy.writestr(name, named[name](data) if name in named else data)
    return target


def lines(data: bytes) -> list[bytes]:
    return data.splitlines(keepends=True)


def problems_beyond_sums(report: Report) -> list[str]:
    return [p for p in report.problems if "SHA-256 is not the manifest's" not in p]


def test_an_untouched_archive_verifies_with_nothing_else(
        archive: tuple[Written, dict[str, Any], Path], capsys: pytest.CaptureFixture[str],
        tmp_path: Path) -> None:
    written, expected, _ = archive
    alone = shutil.copy(written.path, tmp_path / "alone.zip")  # no journal beside it
    report = verify(Path(alone))
    assert report.problems == []
    assert (report.sales, report.totals["net"]["total"]) == (expected["count"], expected["net"])
    assert report.origins == 2
    assert run(Path(alone)) == 0
    out = capsys.readouterr().out
    assert f"Store CA fingerprint (SHA-256): {report.ca_fingerprint}" in out
    assert "OK: untouched" in out
    with zipfile.ZipFile(alone) as zf:
        events = [orjson.loads(line) for line in lines(zf.read(EVENTS))]
        sales_rows = zf.read(SALES).decode().splitlines()
        names = set(zf.namelist())
    # Every chain from its first event up to the end of November, nothing of December's.
    assert [(e["origin"], e["seq"]) for e in events] == sorted(
        (e["origin"], e["seq"]) for e in events)
    assert {e["seq"] for e in events if e["origin"] == "node-a"} == set(range(1, 9))
    assert {e["seq"] for e in events if e["origin"] == "node-b"} == {1, 2, 3}
    assert PIN_HASH not in json.dumps(events)  # a PIN hash is given by its digest only
    assert len(sales_rows) == 1 + expected["count"]
    assert sales_rows[0].startswith("sale_id;receipt_number;kind;till;cashier;recorded_at;")
    assert {"keys/store-ca.pem", "keys/exporter.pem", "keys/origins/node-a.pem",
            "README.md", "LISEZMOI.md", "closures.json", "manifest.sig"} <= names


def test_the_readmes_check_by_hand_holds(archive: tuple[Written, dict[str, Any], Path],
                                          tmp_path: Path) -> None:
    """The README's Python lines and openssl commands, as an auditor would run them."""
    written, _, _ = archive
    with zipfile.ZipFile(written.path) as zf:
        zf.extractall(tmp_path)
        manifest = orjson.loads(zf.read(MANIFEST))
    readme = (tmp_path / "README.md").read_text()
    for name, listed in manifest["files"].items():
        assert hashlib.sha256((tmp_path / name).read_bytes()).hexdigest() == listed["sha256"]
    program = readme.split("In Python 3:\n\n", 1)[1].split("\n\n", 1)[0]
    subprocess.run([*EDGE[:1], "-c", textwrap.dedent(program)],
                   cwd=tmp_path, check=True, timeout=30)
    assert shutil.which("openssl"), "openssl is missing: ./dev test installs it"
    commands = re.findall(r"^       (openssl .*?)(?<!\\)$", readme.replace("\\\n", " "),
                          re.MULTILINE)
    assert len(commands) == 3
    for command in commands:
        subprocess.run(command, shell=True, cwd=tmp_path, check=True, timeout=30,
                       capture_output=True)
    der = subprocess.run(["openssl", "x509", "-in", "keys/store-ca.pem", "-outform", "DER"],
                         cwd=tmp_path, check=True, capture_output=True).stdout
    assert hashlib.sha256(der).hexdigest() in readme


def test_one_flipped_byte_in_any_event_is_named(archive: tuple[Written, dict[str, Any], Path],
                                                tmp_path: Path) -> None:
    written, _, _ = archive
    with zipfile.ZipFile(written.path) as zf:
        original = lines(zf.read(EVENTS))
    for number, line in enumerate(original, 1):
        event = event_from_dict(orjson.loads(line))
        at = line.index(b'"body":') + 12 + number % 7  # somewhere in its body
        flipped = line[:at] + bytes([line[at] ^ 1]) + line[at + 1:]
        copy = tampered(written.path, tmp_path / f"flipped-{number}.zip", events_jsonl=lambda d,
                        n=number, f=flipped: b"".join(f if i == n else x
                                                      for i, x in enumerate(lines(d), 1)))
        report = verify(copy)
        named = problems_beyond_sums(report)
        assert any(f"{event.origin}#{event.seq}:" in p or f"line {number}:" in p
                   for p in named), (number, named)
        assert f"{EVENTS}: its SHA-256 is not the manifest's: the file was changed" in \
            report.problems


@pytest.mark.parametrize(("field", "says"), [
    ("hash", "node-a#5: hash does not match its content"),
    ("sig", "node-a#5: the signature does not verify"),
    ("prev_hash", "node-a#5: prev_hash does not match the previous event"),
    ("time", "node-a#5: hash does not match its content"),
])
def test_a_changed_field_of_an_event_is_named(archive: tuple[Written, dict[str, Any], Path],
                                              tmp_path: Path, field: str, says: str) -> None:
    written, _, _ = archive

    def change(data: bytes) -> bytes:
        rows = [orjson.loads(line) for line in lines(data)]
        value = rows[4][field]
        rows[4][field] = value[:-2] + ("0" if value[-2] != "0" else "1") + value[-1]
        return b"".join(orjson.dumps(row, option=orjson.OPT_SORT_KEYS) + b"\n" for row in rows)

    report = verify(tampered(written.path, tmp_path / "changed.zip", events_jsonl=change))
    assert any(says in problem for problem in report.problems), report.problems


def test_a_deleted_event_is_named(archive: tuple[Written, dict[str, Any], Path],
                                  tmp_path: Path) -> None:
    written, _, _ = archive
    copy = tampered(written.path, tmp_path / "deleted.zip",
                    events_jsonl=lambda data: b"".join(lines(data)[:4] + lines(data)[5:]))
    report = verify(copy)
    assert "node-a#6: expected seq 5" in report.problems
    assert "node-a#6: prev_hash does not match the previous event" in report.problems


def test_two_events_swapped_are_named(archive: tuple[Written, dict[str, Any], Path],
                                      tmp_path: Path) -> None:
    written, _, _ = archive

    def swap(data: bytes) -> bytes:
        rows = lines(data)
        rows[4], rows[5] = rows[5], rows[4]
        return b"".join(rows)

    report = verify(tampered(written.path, tmp_path / "swapped.zip", events_jsonl=swap))
    assert any(p.startswith(f"{EVENTS} line 6: node-a#5 comes after node-a#6: out of order")
               for p in report.problems), report.problems


def test_a_deleted_tail_is_named(archive: tuple[Written, dict[str, Any], Path],
                                 tmp_path: Path) -> None:
    written, _, _ = archive
    copy = tampered(written.path, tmp_path / "tail.zip",
                    events_jsonl=lambda data: b"".join(lines(data)[:-1]))
    report = verify(copy)
    assert any(p.startswith("node-b#3: the manifest's last event of this origin, but "
                            f"{EVENTS} ends at #2 (events deleted at the end)")
               for p in report.problems), report.problems


def test_a_chain_rehashed_with_a_changed_amount_without_the_key_is_named(
        archive: tuple[Written, dict[str, Any], Path], tmp_path: Path) -> None:
    """Whoever holds the file can re-hash a whole chain, and recompute every sum: not sign."""
    written, _, _ = archive
    with zipfile.ZipFile(written.path) as zf:
        events = [event_from_dict(orjson.loads(line)) for line in lines(zf.read(EVENTS))]
        manifest = orjson.loads(zf.read(MANIFEST))
    forged, prev = [], None
    for event in events:
        if event.origin == "node-a" and event.seq >= 4:
            body = event.body
            if event.seq == 4:  # s1: 3.60 in cash becomes 0.36
                body = {**body, "totals": {**body["totals"], "total": 36}}
            event = rehashed(event, body=body, prev_hash=prev or event.prev_hash)
        forged.append(event)
        prev = event.hash if event.origin == "node-a" and event.seq >= 4 else None
    data = b"".join(orjson.dumps(e.as_dict(), option=orjson.OPT_SORT_KEYS) + b"\n"
                    for e in forged)
    manifest["files"][EVENTS]["sha256"] = hashlib.sha256(data).hexdigest()
    manifest["heads"]["node-a"]["hash"] = forged[8].hash
    copy = tampered(written.path, tmp_path / "rehashed.zip", events_jsonl=lambda _: data,
                    manifest_json=lambda _: orjson.dumps(manifest))
    report = verify(copy)
    assert "node-a#4: the signature does not verify with its origin's key (forged, or " \
           "re-hashed without that key)" in report.problems
    assert not any("hash does not match" in p for p in report.problems)  # re-hashed well
    assert any(p.startswith("manifest.sig: the manifest's signature does not verify")
               for p in report.problems)


def test_an_edited_manifest_is_named(archive: tuple[Written, dict[str, Any], Path],
                                     tmp_path: Path) -> None:
    written, _, _ = archive
    copy = tampered(written.path, tmp_path / "manifest.zip",
                    manifest_json=lambda data: data.replace(b'"sales": 5', b'"sales": 4'))
    report = verify(copy)
    assert report.problems == ["manifest.sig: the manifest's signature does not verify with "
                               "the exporting node's key: manifest.json was changed"]


def test_edited_totals_and_sales_are_named(archive: tuple[Written, dict[str, Any], Path],
                                           tmp_path: Path) -> None:
    written, expected, _ = archive

    def totals(data: bytes) -> bytes:
        figures = orjson.loads(data)
        figures["sales"]["total"] -= 100
        return orjson.dumps(figures)

    copy = tampered(written.path, tmp_path / "totals.zip", totals_json=totals,
                    sales_csv=lambda data: data.replace(b";360;", b";260;"))
    report = verify(copy)
    sales_total = expected["net"] + 120  # the refund of 1.20 aside
    assert f"{TOTALS}: sales.total is {sales_total - 100}, the events give {sales_total}" in \
        report.problems
    assert any(p.startswith(f"{SALES} line 2: not what the events give") for p in report.problems)


def test_edge_archive_and_edge_verify_archive_with_the_node_running(tmp_path: Path) -> None:
    """The commands for real: the running node records the export; the archive verifies."""
    port = free_port()
    config = tmp_path / "edge.toml"
    config.write_text(f'[store]\nid = "demo-boulangerie"\ndemo = true\n'
                      f'[server]\nport = {port}\nadvertise = false\ndata = "data"\n')
    node = EdgeProcess(tmp_path / "data", port, ["--config", str(config)])
    node.start()
    try:
        year = str(datetime.now().year)
        done = subprocess.run([*EDGE, "archive", "--config", str(config), "--period", year,
                               "--out", str(tmp_path)], capture_output=True, text=True,
                              timeout=60, cwd=ROOT)
        assert done.returncode == 0, done.stderr
        assert "its export is recorded in the journal by the running node" in done.stdout
    finally:
        node.stop()
    # With no node running, the command records the export itself, under the folder's lock.
    alone = subprocess.run([*EDGE, "archive", "--config", str(config), "--period", year,
                            "--out", str(tmp_path / "alone.zip")], capture_output=True,
                           text=True, timeout=60, cwd=ROOT)
    assert alone.returncode == 0, alone.stderr
    assert "its export is recorded in the journal. Check it" in alone.stdout
    path = tmp_path / f"edge-archive-demo-boulangerie-{year}.zip"
    checked = subprocess.run([*EDGE, "verify", str(path)], capture_output=True, text=True,
                             timeout=60, cwd=tmp_path)
    assert checked.returncode == 0, checked.stdout
    assert "OK: untouched" in checked.stdout
    db = sqlite3.connect(tmp_path / "data" / "edge.sqlite3")
    names = [orjson.loads(body)["name"] for (body,) in db.execute(
        "SELECT body FROM events WHERE type = 'archive_exported' ORDER BY position")]
    db.close()
    assert names == [path.name, "alone.zip"]
    broken = tampered(path, tmp_path / "broken.zip", events_jsonl=lambda d: d[:-200])
    failed = subprocess.run([*EDGE, "verify", str(broken)], capture_output=True, text=True,
                            timeout=60, cwd=tmp_path)
    assert failed.returncode == 1 and "BROKEN" in failed.stdout


# Closures in an archive (issue 11, slice B): December 30 and 31 closed, and the month.
@pytest.fixture(scope="module")
def closed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    from test_closures import CALENDAR, Tills, at, close, opened

    folder = tmp_path_factory.mktemp("closed")
    tills = Tills()
    tills.sale(at("12-29"), price=120)
    for hour in (9, 12, 15):
        tills.sale(at("12-30", hour), price=100 * hour)
    tills.refund(at("12-30", 16), 50)
    tills.sale(at("12-30", 17), node="node-b", price=333)  # arrives after the 30th's closure
    tills.sale(at("12-31", 10), price=410)

    async def build() -> dict[str, Any]:
        journal = await opened(folder, "archiver")
        try:
            a = tills.events("node-a")
            await apply_events(journal, a[:-1])
            await close(journal, "day", "2024-12-30")
            await apply_events(journal, [a[-1], *tills.events("node-b")])
            await close(journal, "day", "2024-12-31")
            month = await close(journal, "month", "2024-12")
            written = {}
            for label, kind in (("2024-12-31", "day"), ("2024-12", "month")):
                written[label] = write_archive(journal.path, CALENDAR.period(kind, label),
                                               folder / f"{label}.zip", identity("archiver"))
            return {"archives": written, "month": month}
        finally:
            await journal.close()

    return asyncio.run(build())


async def apply_events(journal: Journal, events: list[Event]) -> None:
    await journal.write(lambda tx: [tx.apply(event) for event in events])


def closures_of(path: Path) -> list[dict[str, Any]]:
    with zipfile.ZipFile(path) as zf:
        return orjson.loads(zf.read("closures.json"))


def test_closures_in_an_untouched_archive_are_recomputed_from_its_events(
        closed: dict[str, Any]) -> None:
    day, month = closed["archives"]["2024-12-31"].path, closed["archives"]["2024-12"].path
    report = verify(day)
    assert report.problems == [] and report.closures == 2
    listed = closures_of(day)
    assert [(c["period"], c["context"], c["winner"]) for c in listed] == [
        ("2024-12-30", True, True), ("2024-12-31", False, True)]
    assert listed[1]["closure"]["late"] == {"count": 1, "total": 333}
    report = verify(month)
    assert report.problems == [] and report.closures == 3
    assert [c["closure"]["kind"] for c in closures_of(month)] == ["day", "day", "month"]
    assert closures_of(month)[2]["closure"] == closed["month"].body


def _with_closure(data: bytes, change: Callable[[dict[str, Any]], None]) -> bytes:
    rows = [orjson.loads(line) for line in lines(data)]
    for row in rows:
        if row["type"] == "closure_made" and row["body"]["period"] == "2024-12-31":
            change(row["body"])
    return b"".join(orjson.dumps(row, option=orjson.OPT_SORT_KEYS) + b"\n" for row in rows)


def test_a_closure_with_a_changed_total_is_named(closed: dict[str, Any], tmp_path: Path) -> None:
    day = closed["archives"]["2024-12-31"].path

    def richer(body: dict[str, Any]) -> None:
        body["totals"]["sales"]["total"] += 100
        body["grand_total"] += 100

    def listed(data: bytes) -> bytes:
        entries = orjson.loads(data)
        richer(entries[1]["closure"])
        return orjson.dumps(entries)

    report = verify(tampered(day, tmp_path / "total.zip",
                             events_jsonl=lambda d: _with_closure(d, richer),
                             closures_json=listed))
    origin_seq = f"archiver#{closures_of(day)[1]['seq']}"
    assert f"{origin_seq}: hash does not match its content" in report.problems
    assert any(p.startswith(f"{origin_seq} (day closure of 2024-12-31): totals.sales.total is ")
               and p.endswith(", the events give 743") for p in report.problems), report.problems
    assert f"{origin_seq} (day closure of 2024-12-31): grand_total is " \
           f"{closures_of(day)[1]['closure']['grand_total'] + 100}, the events give " \
           f"{closures_of(day)[1]['closure']['grand_total']}" in report.problems


def test_a_deleted_tail_after_the_last_closure_is_named(closed: dict[str, Any],
                                                       tmp_path: Path) -> None:
    day = closed["archives"]["2024-12-31"].path

    def without_node_a_tail(data: bytes) -> bytes:
        rows = lines(data)
        last = max(i for i, line in enumerate(rows) if orjson.loads(line)["origin"] == "node-a")
        return b"".join(rows[:last] + rows[last + 1:])

    report = verify(tampered(day, tmp_path / "tail.zip", events_jsonl=without_node_a_tail))
    head = closures_of(day)[1]["closure"]["covers"]["node-a"]["seq"]
    assert f"archiver#{closures_of(day)[1]['seq']} (day closure of 2024-12-31): covers " \
           f"node-a#{head}, which events.jsonl does not hold with that hash (events deleted " \
           "or changed)" in report.problems
    assert any(p.startswith(f"node-a#{head}: the manifest's last event of this origin")
               for p in report.problems)


def test_closures_json_edited_or_cut_is_named(closed: dict[str, Any], tmp_path: Path) -> None:
    day = closed["archives"]["2024-12-31"].path

    def edited(data: bytes) -> bytes:
        entries = orjson.loads(data)
        entries[1]["closure"]["late"]["count"] = 0
        return orjson.dumps(entries)

    report = verify(tampered(day, tmp_path / "edited.zip", closures_json=edited))
    assert any(p.startswith(f"{'closures.json'} entry 2 (day 2024-12-31): not what archiver#")
               and "late.count is 0" in p for p in report.problems), report.problems
    report = verify(tampered(day, tmp_path / "cut.zip",
                             closures_json=lambda data: orjson.dumps(orjson.loads(data)[:1])))
    assert any(p.endswith("the day closure of 2024-12-31 is not listed in closures.json")
               for p in report.problems), report.problems
