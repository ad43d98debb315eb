"""Head-office sync, the node's side: outbound HTTPS only, so it works behind any NAT.

Each round pulls head office's catalogue events when a pull is due (by
version vector, applied with `tx.apply`: chain-checked, idempotent, pushed to
subscribed tills like any other event), then pushes this node's journal past
the cursor head office acknowledged, in bounded gzip batches. A failed pull
never blocks the push: the round pushes anyway, then reports the pull's
failure.

- Head office signs its catalogue with a key of its own, which the store CA
  certifies. The first time the pull shows a key (the `origin_certified` of
  a head-office origin) that no certificate here covers, the node holding
  the store CA key issues one (role headoffice) and writes it in its own
  origin (`headoffice_key_trusted` `{"cert"}`) before it applies those
  events: this authenticated link is what the CA vouches for, and its peers
  and `edge verify` accept head office's origins once they hold that
  certificate, whoever relayed it (head office checks it too when pushed).
  A node without the CA key applies
  nothing of a key not yet certified: the pull says so in plain words
  (`HeadOfficeKeyUncertified`, not counted as a failed request) and tries
  again next round, by when the certificate may have come from its peers.
  The push carries the store CA's certificate, which head office pins at
  the first push and checks every event against.
- The pull sends the node's whole version vector and the hash of the last
  event it holds of each head-office origin. Head office answers under its
  current origin: a new one if the vector showed it was restored from a
  backup (it never rewrites a seq a store holds), and the node follows it.
  It also says how far it holds each of the store's origins: where that is
  less than the node had marked acknowledged (head office lost them in a
  restore), the node moves its cursor back and sends them again, whoever
  wrote them, a node retired long ago included.
- Backoff counts failed requests in a row, and any request that succeeds
  resets it: a head office that fails one request in three costs a third of
  the requests, never minutes of waiting. The first failure after a success
  is retried at once; the second in a row starts the backoff.

- The cursor is a local `events.position`: events of every origin this node
  holds (its own, and its peers' it forwards) in the order they were
  committed here. Each origin's events are gapless in that order, so head
  office can check every chain as it goes. SQLite has one writer at a time,
  so no event can later appear below a position already read.
- Head office answers only after its commit, with the batch's positions and
  how far it settled them. An answer for another batch (stale, reordered)
  is not trusted; a lost answer just means sending the batch again, which
  head office recognises event by event. The cursor only moves forward,
  except when head office says it lacks earlier events (its data was
  restored from a backup, and said so in a push's `gap` or a pull's
  `held`): then the node sends them again. Head office's own origins are
  never pushed: their events are its catalogue.
- Selling never waits on sync: batches are read on a connection of sync's
  own, in a thread of its own (with the JSON and gzip work), and sync
  writes only its cursor and status row through the journal.
- Its status costs no read: the status row is kept as last written, and the
  backlog (events past the cursor, the oldest of them) is counted in memory
  (edge/sync/backlog.py), so /healthz and /metrics answer at once whatever
  the backlog.
"""

from __future__ import annotations

import asyncio
import gzip
import logging
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import aiohttp
import orjson

from edge import __version__
from edge.config import Config
from edge.headoffice.protocol import (
    CATALOGUE_BATCHES,
    MAX_BATCH_BYTES,
    MAX_BATCH_EVENTS,
    MAX_PULL_EVENTS,
    PULL_PATH,
    PUSH_PATH,
    is_headoffice_origin,
)
from edge.journal.chain import ChainError, Event, event_from_dict, utc_now
from edge.journal.signing import (
    HEADOFFICE,
    ORIGIN_CERTIFIED,
    certified_headoffice_key,
    headoffice_key_certificate,
    headoffice_key_trusted,
)
from edge.journal.store import Journal, Tx, local_journal
from edge.selling.catalogue_batches import one_by_one
from edge.sync.backlog import Backlog
from edge.sync.link import Batch, SyncError, build_batch, client_tls, describe, read_token, refusal
from edge.sync.schedule import parse_window, retry_delay, seconds_until_window
from edge.trust.certificates import CertificateRefused, cert_pem
from edge.trust.folder import TrustFolder, TrustProblem

log = logging.getLogger(__name__)

CURSOR_SAVE_EVERY = 1.0  # seconds
# Level 1: 2.5x less CPU than the default 6 on a day's batches, for 4.6x smaller
# instead of 5.3x: the store's CPU is there for its tills.
GZIP_LEVEL = 1

Progress = Callable[[str], None]
STATE_COLUMNS = ("acknowledged_position, headoffice_origin, last_attempt, last_success, "
                 "last_error, last_error_at")


class HeadOfficeKeyUncertified(SyncError):
    """Head office's key is not certified here, and this node holds no CA key to certify it.

    Its catalogue waits (nothing of it applied) until the store CA's
    certificate for that key reaches this node from its peers.
    """


@dataclass
class Timing:
    first_retry: float = 1.0
    max_retry: float = 300.0
    push_delay: float = 1.0  # gathers the sales of a second or so into one request
    pull_every: float = 60.0
    timeout: float = 30.0


@dataclass
class Counters:
    pushed: int = 0
    pulled: int = 0
    failures: int = 0  # failed requests in a row: any request that succeeds resets it
    errors: int = 0  # failed rounds since start
    backoffs: int = 0  # waits after a failure (the first failure is retried at once)
    longest_backoff: float = 0.0  # seconds: the longest of those waits
    resent: int = 0  # times head office said it lacked events it had acknowledged
    rounds: int = 0
    refused: int = 0  # events head office parked as conflicts


class SyncClient:
    def __init__(self, journal: Journal, config: Config) -> None:
        self.journal = journal
        self.config = config
        self.timing = Timing(max_retry=config.headoffice_retry_max_seconds,
                             pull_every=config.headoffice_pull_interval_seconds,
                             timeout=config.headoffice_timeout_seconds)
        self.window = parse_window(config.headoffice_nightly_window)
        self.clock: Callable[[], datetime] = datetime.now  # local time, for the window
        self.counters = Counters()
        self.state = "waiting"  # then "ok" or "failing"
        self.last_error: str | None = None
        self._wake = asyncio.Event()
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="headoffice-sync")
        self._reader: sqlite3.Connection | None = None
        self._session: aiohttp.ClientSession | None = None
        self._unlisten: Callable[[], None] | None = None
        self._pull_due_at = 0.0  # time.monotonic(): pull on the first round
        self._backlog = Backlog()
        self._state: dict[str, Any] | None = None  # the headoffice_sync row, as last written

    @property
    def node_id(self) -> str:
        """The node pushing: its journal's origin (known once the journal is open)."""
        return self.journal.origin

    @property
    def _store_ca(self) -> str:
        """The store CA's certificate: head office checks every event pushed against it."""
        return cert_pem(self.journal.identity.ca_cert)

    async def open(self) -> None:
        self._reader = await self._in_thread(self._open_reader)
        # Listening first: a commit meanwhile is counted by one or the other, or both.
        self._unlisten = self.journal.add_listener(self._committed)
        self._state = await self._in_thread(self._read_state)
        await self._in_thread(self._backlog.follow, self._reader)
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(ssl=client_tls(self.config), limit=2),
            timeout=aiohttp.ClientTimeout(total=self.timing.timeout),
            headers={"User-Agent": f"edge/{__version__}"},
            trust_env=False,
        )

    def _committed(self, events: list[Event]) -> None:
        self._backlog.committed(events)
        self._wake.set()

    def _open_reader(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.journal.path, isolation_level=None, check_same_thread=False)
        db.row_factory = sqlite3.Row
        db.execute("PRAGMA query_only = ON")
        db.execute("PRAGMA busy_timeout = 5000")
        return db

    async def close(self) -> None:
        if self._unlisten is not None:
            self._unlisten()
            self._unlisten = None
        if self._session is not None:
            await self._session.close()
            self._session = None
        if self._reader is not None:
            await self._in_thread(self._reader.close)
            self._reader = None
        self._thread.shutdown(wait=True)

    async def _in_thread(self, function: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._thread, function, *args)

    # The background loop

    async def run(self) -> None:
        """Continuous while the link is up (or only in the nightly window); backs off on errors."""
        while True:
            wait = 0.0 if self.config.headoffice_continuous else seconds_until_window(
                self.clock(), self.window)
            if wait:
                await asyncio.sleep(min(wait, 300))
                continue
            self._wake.clear()
            try:
                await self.sync_once(pull=time.monotonic() >= self._pull_due_at)
            except SyncError:
                if self.counters.failures:  # the round ended on a failed request
                    await self._back_off()
                    continue
                # Only the pull failed, the push went through: carry on at the usual pace.
            try:
                # Not wait_for: on 3.11 it swallows a stop that comes as the wake does.
                async with asyncio.timeout(self.timing.pull_every):
                    await self._wake.wait()
                await asyncio.sleep(self.timing.push_delay)
            except TimeoutError:
                pass

    async def _back_off(self) -> None:
        delay = retry_delay(self.counters.failures, self.timing.first_retry,
                            self.timing.max_retry)
        if delay:
            self.counters.backoffs += 1
            self.counters.longest_backoff = max(self.counters.longest_backoff, delay)
            await asyncio.sleep(delay)

    # One round

    async def sync_once(self, progress: Progress | None = None, pull: bool = True) -> None:
        """Pull the catalogue (unless not `pull`), then push everything unsent.

        SyncError says why not; a failed pull is reported after the push ran.
        """
        self.counters.rounds += 1
        attempt = utc_now()
        pulled: str | None = None  # why the pull failed
        pushed: str | None = None  # why the push (or the round) failed
        cause: BaseException | None = None
        pushed_before = self.counters.pushed
        try:
            token = read_token(self.config)
            if pull:
                try:
                    await self._pull(token, progress)
                    self._pull_due_at = time.monotonic() + self.timing.pull_every
                except HeadOfficeKeyUncertified as error:
                    # Head office answered: no failed request, nothing to back off from.
                    self.counters.failures = 0
                    pulled, cause = str(error), error
                except Exception as error:  # a failed pull never blocks the push
                    pulled, cause = self._failed(error), error
            await self._push(token, progress)
        except Exception as error:
            pushed, cause = self._failed(error), error
        if pulled or pushed:
            message = round_error(pulled, pushed, self.counters.pushed > pushed_before)
            log.warning("head-office sync: %s", message)
            # Recorded first, so what /healthz reads from the database is never behind
            # what this object says.
            await self._record("last_attempt = ?, last_error = ?, last_error_at = ?",
                               attempt, message, utc_now())
            self.counters.errors += 1
            self.state, self.last_error = "failing", message
            raise SyncError(message) from cause
        await self._record("last_attempt = ?, last_success = ?", attempt, utc_now())
        self.state = "ok"

    def _failed(self, error: Exception) -> str:
        """Count a failed request (or step); its message for store IT."""
        if not isinstance(error, SyncError | aiohttp.ClientError | TimeoutError):
            log.exception("head-office sync failed")
        self.counters.failures += 1
        return describe(error, self.config, self.timing.timeout)

    async def _post(self, path: str, token: str, body: bytes, compressed: bool) -> Any:
        assert self._session is not None, "sync client not open"
        headers = {"Authorization": f"Bearer {token}", "Edge-Store": self.config.store_id,
                   "Content-Type": "application/json"}
        if compressed:
            headers["Content-Encoding"] = "gzip"
        url = f"{self.config.headoffice_url}{path}"
        async with self._session.post(url, data=body, headers=headers) as response:
            payload = await response.read()
            if response.status != 200:
                raise refusal(response.status, payload)
        try:
            answer = orjson.loads(payload)
        except orjson.JSONDecodeError:
            raise SyncError("head office answered something that is not JSON") from None
        return answer

    async def _pull(self, token: str, progress: Progress | None) -> None:
        checked = False
        while True:
            known = (await self.state_row())["headoffice_origin"]
            vector = await self.journal.version_vector()
            heads = await self._in_thread(self._headoffice_heads, vector)
            request = {"vector": vector, "heads": heads, "limit": MAX_PULL_EVENTS,
                       "node": self.node_id, "reads": [CATALOGUE_BATCHES]}
            answer = await self._post(PULL_PATH, token, orjson.dumps(request), False)
            try:
                origin = str(answer["origin"])
                events = [event_from_dict(item) for item in answer["events"]]
                held = {str(key): int(value) for key, value in answer.get("held", {}).items()}
            except (AttributeError, KeyError, TypeError, ValueError):
                raise SyncError("head office sent a catalogue answer this edge cannot read") \
                    from None
            if not is_headoffice_origin(origin) or any(e.origin != origin for e in events):
                raise SyncError("head office sent catalogue events of another origin")
            if origin != known:
                if known:
                    log.warning("head office's catalogue continues as %s (was %s): head office "
                                "was restored from a backup or its database replaced",
                                origin, known)
                await self._record("headoffice_origin = ?", origin)
            if not checked and "held" in answer:
                checked = True
                await self._resend_lost(vector, held, progress)
            certificates = await self._certify_headoffice_keys(events)
            try:
                applied = await apply_pulled(self.journal, events, certificates)
            except ChainError as error:
                raise SyncError(f"head office's catalogue does not follow what this store "
                                f"holds: {error}") from None
            self.counters.pulled += applied
            self.counters.failures = 0  # a success resets the backoff, whatever came before
            if progress and applied:
                progress(f"catalogue: {applied} change(s) from head office applied")
            if not answer.get("more"):
                return

    async def _certify_headoffice_keys(self, events: list[Event]) -> dict[str, str]:
        """{key: the store CA's certificate} for each head-office key the pull shows
        that no certificate here covers yet: made with the CA key, if this node holds it.

        HeadOfficeKeyUncertified when it does not: then nothing is applied.
        """
        shown = {str(event.body.get("public_key")) for event in events
                 if event.seq == 1 and event.type == ORIGIN_CERTIFIED
                 and event.body.get("role") == HEADOFFICE}
        missing = [key for key in sorted(shown) if not await self._in_thread(
            headoffice_key_trusted, self._reader, key)]
        if not missing:
            return {}
        folder = TrustFolder(self.config.data_dir)
        if not folder.holds_ca_key():
            raise HeadOfficeKeyUncertified(
                f"head office's catalogue is not applied here: its signing key "
                f"({missing[0][:16]}…) is not certified by the store CA yet, and only the node "
                "holding the store CA key (where `edge tls init` ran) can certify it. That node "
                "must sync with head office once (it does so by itself when it runs with the "
                "same [headoffice] settings, or run `edge sync` there); the certificate then "
                "reaches this node from its peers and the catalogue follows")
        identity = self.journal.identity
        try:
            ca_key = await self._in_thread(folder.ca_key)
        except TrustProblem as problem:
            raise SyncError(f"cannot certify head office's key: {problem}") from None
        certificates = {}
        for key in missing:
            try:
                pem = headoffice_key_certificate(ca_key, identity.ca_cert, identity.store_id, key)
            except ValueError:
                continue  # no key at all: the journal refuses that origin_certified itself
            try:  # as every peer will check it: a CA key of another CA would stop our origin
                certified_headoffice_key({"cert": pem}, identity.ca_cert, identity.store_id)
            except CertificateRefused as refused:
                raise SyncError(f"cannot certify head office's key: the CA key in "
                                f"{folder.path} does not make certificates of this store's CA "
                                f"({refused})") from None
            log.info("certified head office's signing key %s… with the store CA", key[:16])
            certificates[key] = pem
        return certificates

    def _headoffice_heads(self, vector: dict[str, int]) -> dict[str, str]:
        """The hash of the last event held of each head-office origin: head office checks it."""
        heads = {}
        for origin, seq in vector.items():
            if is_headoffice_origin(origin):
                row = self._reader.execute(  # type: ignore[union-attr]
                    "SELECT hash FROM events WHERE origin = ? AND seq = ?", (origin, seq)
                ).fetchone()
                if row is not None:
                    heads[origin] = row[0]
        return heads

    async def _resend_lost(
        self, vector: dict[str, int], held: dict[str, int], progress: Progress | None
    ) -> None:
        """Head office holds less of an origin than this node had marked acknowledged: resend."""
        cursor = (await self.state_row())["acknowledged_position"]

        def first_lost() -> tuple[int, str, int] | None:
            lost = None
            for origin, last in vector.items():
                has = held.get(origin, 0)
                if is_headoffice_origin(origin) or has >= last:
                    continue
                if not self._reader.execute(  # type: ignore[union-attr]
                        "SELECT 1 FROM origin_keys WHERE origin = ? UNION ALL "
                        "SELECT 1 FROM unsigned_vouches WHERE origin = ? AND seq > ?",
                        (origin, origin, has)).fetchone():
                    # Written before signing and vouched for by no CA vouch: head office
                    # answers it `waiting` for ever; sending it again only fills logs.
                    continue
                row = self._reader.execute(  # type: ignore[union-attr]
                    "SELECT position FROM events WHERE origin = ? AND seq = ?", (origin, has + 1)
                ).fetchone()
                if row is not None and row[0] <= cursor and (lost is None or row[0] < lost[0]):
                    lost = (int(row[0]), origin, has + 1)
            return lost

        lost = await self._in_thread(first_lost)
        if lost is None:
            return
        position, origin, seq = lost
        self.counters.resent += 1
        log.warning("head office lacks %s#%d onwards, which it had acknowledged (restored from "
                    "a backup?): sending from position %d again", origin, seq, position)
        if progress:
            progress(f"head office lost events it had acknowledged: sending from {origin}#{seq} "
                     "again")
        await self._record("acknowledged_position = MIN(acknowledged_position, ?)", position - 1)

    async def _push(self, token: str, progress: Progress | None) -> None:
        max_events = min(self.config.headoffice_batch_events, MAX_BATCH_EVENTS)
        max_bytes = min(self.config.headoffice_batch_bytes, MAX_BATCH_BYTES // 2)
        rewound: set[tuple[str, int]] = set()
        cursor = (await self.state_row())["acknowledged_position"]
        # The cursor is saved at most every CURSOR_SAVE_EVERY seconds, not after every
        # batch: each save is a commit the tills' writes would queue behind. A crash
        # in between only means sending those batches again (head office skips them).
        saved, saved_at = cursor, time.monotonic()
        try:
            while True:
                batch = await self._in_thread(self._encode, cursor, max_events, max_bytes)
                if batch is None:
                    return
                answer = await self._post(PUSH_PATH, token, batch.body, True)
                cursor = max(cursor, self._check_answer(answer, batch))
                self.counters.failures = 0  # a success resets the backoff, whatever came before
                self.counters.pushed += int(answer.get("stored", 0)) + int(
                    answer.get("duplicates", 0))
                if answer.get("conflicts"):
                    self.counters.refused += len(answer["conflicts"])
                    raise SyncError(f"head office refused {len(answer['conflicts'])} "
                                    "conflicting event(s) (kept aside there): "
                                    f"{answer['conflicts'][0]}")
                if answer.get("gap"):
                    cursor = saved = await self._rewind(answer["gap"], rewound)
                if cursor > saved and time.monotonic() - saved_at >= CURSOR_SAVE_EVERY:
                    await self._save_cursor(cursor)
                    saved, saved_at = cursor, time.monotonic()
                if progress:
                    progress(f"pushed events up to position {cursor}")
        finally:
            if cursor > saved:
                await self._save_cursor(cursor)

    async def _save_cursor(self, position: int) -> None:
        # MAX: `edge sync` and the node may both be pushing; the cursor never goes back here.
        await self._record("acknowledged_position = MAX(acknowledged_position, ?)", position)

    def _encode(self, cursor: int, max_events: int, max_bytes: int) -> Batch | None:
        batch = build_batch(self._reader, cursor, max_events, max_bytes)  # type: ignore[arg-type]
        if batch is None:
            return None
        body = (b'{"node":' + orjson.dumps(self.node_id) + b',"store_ca":'
                + orjson.dumps(self._store_ca) + b',"events":' + batch.body + b"}")
        return Batch(batch.first, batch.last, batch.count, len(body),
                     gzip.compress(body, compresslevel=GZIP_LEVEL))

    @staticmethod
    def _check_answer(answer: Any, batch: Batch) -> int:
        """How far head office settled this very batch; SyncError for any other answer."""
        if not isinstance(answer, dict) or answer.get("batch") != [batch.first, batch.last]:
            raise SyncError(f"head office answered for another batch than positions "
                            f"{batch.first}-{batch.last} (a stale or reordered answer): "
                            "sending again")
        acknowledged = answer.get("acknowledged")
        if not isinstance(acknowledged, int) or not batch.first - 1 <= acknowledged <= batch.last:
            raise SyncError("head office acknowledged positions outside the batch sent")
        return acknowledged

    async def _rewind(self, gap: dict[str, Any], rewound: set[tuple[str, int]]) -> int:
        """Head office lacks earlier events of an origin: move the cursor back to them."""
        key = (str(gap.get("origin")), int(gap.get("expected_seq", 0)))
        row = await self._in_thread(lambda: self._reader.execute(  # type: ignore[union-attr]
            "SELECT position FROM events WHERE origin = ? AND seq = ?", key).fetchone())
        if row is None or key in rewound:
            raise SyncError(f"head office is missing events this node cannot send: "
                            f"{gap.get('message')}")
        rewound.add(key)
        log.warning("head office lacks %s#%d onwards: sending from position %d again",
                    key[0], key[1], row[0])
        await self._record("acknowledged_position = ?", row[0] - 1)
        return int(row[0]) - 1

    # State and status

    async def _record(self, assignments: str, *values: Any) -> None:
        def work(tx: Tx) -> dict[str, Any]:
            tx.db.execute(f"UPDATE headoffice_sync SET {assignments} WHERE id = 1", values)
            return dict(tx.db.execute(
                f"SELECT {STATE_COLUMNS} FROM headoffice_sync WHERE id = 1").fetchone())

        self._state = await self.journal.write(work)
        if self._state["acknowledged_position"] != self._backlog.position:
            # The counts follow the cursor as saved (whichever round moved it last).
            await self._in_thread(self._backlog.follow, self._reader)

    def _read_state(self) -> dict[str, Any]:
        return dict(self._reader.execute(  # type: ignore[union-attr]
            f"SELECT {STATE_COLUMNS} FROM headoffice_sync WHERE id = 1").fetchone())

    async def state_row(self) -> dict[str, Any]:
        assert self._state is not None, "sync client not open"
        return dict(self._state)

    async def backlog(self) -> tuple[int, str | None]:
        """(events not yet acknowledged by head office, time of the oldest of them)."""
        return self._backlog.count()

    async def status(self) -> dict[str, Any]:
        state = await self.state_row()
        backlog, oldest = await self.backlog()
        return {
            "url": self.config.headoffice_url, "state": self.state,
            "backlog_events": backlog, "oldest_unsent": oldest,
            "acknowledged_position": state["acknowledged_position"],
            "last_attempt": state["last_attempt"], "last_success": state["last_success"],
            "last_error": state["last_error"], "last_error_at": state["last_error_at"],
            "events_pushed": self.counters.pushed, "events_pulled": self.counters.pulled,
            "events_refused": self.counters.refused, "failures_in_a_row": self.counters.failures,
            "catalogue_origin": state["headoffice_origin"],
        }


def round_error(pulled: str | None, pushed: str | None, sent: bool) -> str:
    """A failed round in one line: the push's failure first, the pull's if it differs."""
    if pulled is None:
        return pushed or ""
    if pushed is None:
        return f"{pulled} (catalogue pull{'; events were still pushed' if sent else ''})"
    return pushed if pushed == pulled else f"{pushed}; and the catalogue pull: {pulled}"


def changes_in(event: Event) -> int:
    """How many catalogue changes `event` makes: a batch's products each."""
    if event.type == ORIGIN_CERTIFIED:
        return 0
    return len(one_by_one(event.type, event.body)) or 1


async def apply_pulled(journal: Journal, events: list[Event],
                       certificates: dict[str, str] | None = None) -> int:
    """Apply head office's `events` (chain- and signature-checked) in slices the tills'
    sales go between (`Journal.write_in_slices`): how many catalogue changes were new here.

    The store CA's `certificates` ({key: PEM}) for head office's keys this store had
    not certified are written first (`headoffice_key_trusted`), each unless one already
    is (`edge sync` and the node may both have made one). A crash between two slices
    keeps the first ones: the next pull asks from there (the chain's order holds).
    """
    def trust(tx: Tx) -> None:
        for key, pem in (certificates or {}).items():
            if not headoffice_key_trusted(tx.db, key):
                tx.append("headoffice_key_trusted", {"cert": pem})

    def apply(tx: Tx, part: list[Event]) -> int:
        # Counted: the catalogue's changes, a batch's products each (not the certificate).
        return sum(changes_in(event) for event in part if tx.apply(event))

    if certificates:
        await journal.write(trust)
    # Weighed in products: a slice holds a few batches of head office's, not fifty.
    return sum(await journal.write_in_slices(events, apply, weight=changes_in))


async def sync_now(config: Config, progress: Progress) -> dict[str, Any]:
    """`edge sync` while no node runs: one full round from this process.

    Holds the data folder like a node; with a node running, `edge sync` asks
    that node instead (edge/admin.py).
    """
    async with local_journal(config.data_dir, config.database, "edge sync") as journal:
        client = SyncClient(journal, config)
        await client.open()
        try:
            backlog, oldest = await client.backlog()
            progress(f"{backlog} event(s) to send to {config.headoffice_url}"
                     + (f", the oldest from {oldest}" if oldest else ""))
            await client.sync_once(progress)
            return await client.status()
        finally:
            await client.close()
