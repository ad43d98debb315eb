"""A batch of a store's events taken in by head office, inside the batch's transaction.

Each origin's chain is checked on arrival against what is stored: an event
already held with the same hash is a duplicate (skipped, still acknowledged);
one that extends the chain is stored; one that contradicts it (a different hash
for a held seq, a broken link, a forged hash) is a conflict, parked whole in
`conflicts` for a person to look at, never stored as the truth and never lost;
one that skips ahead of what is held is a gap, and the batch stops there so the
node sends what is missing first.

Signed events (edge/journal/signing.py): every event a store pushes must be
signed by its origin's key, certified by the store's pinned CA, and be of a
type a node may write: else it is parked as a conflict like a forged hash. An
event written before signing is taken only as far as a vouch the store CA
signed covers it (checked against the pinned CA; a vouch without that signature
is parked like a forgery), and only of a type from before signing its origin's
role may write (edge/journal/vouches.py); one not covered yet is neither stored
nor parked but answered `waiting` (acknowledged): the vouch comes after it in
the node's push, and the next pull's `held` has the node send it again.
Head office's own catalogue coming back from an older edge is skipped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson
from cryptography import x509

from edge.headoffice.database import Transaction
from edge.headoffice.protocol import is_headoffice_origin
from edge.journal.chain import ChainError, ChainHead, Event, Verdict, canonical_json, judge, utc_now
from edge.journal.event_types import authorize
from edge.journal.lineage import retired_by
from edge.journal.signing import OriginKey, certified_key, check_signed, load_public_hex
from edge.journal.vouches import (
    UNSIGNED_HEADS_VOUCHED,
    NotVouched,
    StagedUnsigned,
    Vouch,
    VouchConflict,
    check_ca_vouch,
    is_unsigned_candidate,
    vouch_problem,
    vouched_heads,
)
from edge.selling.sales import SALE_EVENT_TYPES
from edge.trust.certificates import load_cert

EVENT_COLUMNS = "origin, seq, id, time, type, body, prev_hash, hash, sig"


@dataclass
class Receipt:
    """What head office tells a node about one pushed batch."""

    acknowledged: int  # every event up to this local position is durably settled here
    stored: int = 0
    duplicates: int = 0
    conflicts: list[str] = field(default_factory=list)
    gap: dict[str, Any] | None = None  # {"origin", "expected_seq", "message"}
    # Written before signing and not (yet) vouched for: neither stored nor parked,
    # so the pull's `held` has the node send them again (its vouch comes after them).
    waiting: list[str] = field(default_factory=list)


class Intake:
    """One batch being taken in, inside its transaction."""

    def __init__(self, tx: Transaction, store: str, node: str,
                 staged: StagedUnsigned | None = None) -> None:
        self.tx, self.store, self.node = tx, store, node
        self.staged = staged if staged is not None else StagedUnsigned()
        self.heads: dict[str, ChainHead] = {}
        self.held: dict[tuple[str, int], str] = {}  # (origin, seq) -> hash, stored or in batch
        self.forked: set[str] = set()  # origins with a parked conflict
        self.now = utc_now()
        self.ca: x509.Certificate | None = None  # the store's, pinned at its first push
        self.keys: dict[str, OriginKey] = {}  # each origin's certified key
        self.new_keys: list[tuple[str, str, str, str]] = []
        self.vouches: dict[str, list[Vouch]] = {}  # of origins from before signing
        self.new_vouches: list[tuple[str, str, int, str, str]] = []
        # Each origin's origin_certified body, of those the batch's events name.
        self.certified: dict[str, dict[str, Any]] = {}

    async def take(self, batch: list[tuple[int, Event]]) -> Receipt:
        receipt = Receipt(acknowledged=batch[0][0] - 1 if batch else 0)
        await self._load(batch)
        new_rows, parked, sales = [], [], []
        for position, event in batch:
            outcome = self._judge(event)
            if outcome == "gap":
                head = self.heads[event.origin]
                receipt.gap = {
                    "origin": event.origin, "expected_seq": head.seq + 1,
                    "message": f"{event.origin}#{event.seq}: head office holds up to "
                               f"#{head.seq}; send #{head.seq + 1} first",
                }
                break
            if outcome == "duplicate":
                receipt.duplicates += 1
            elif outcome == "waiting":
                receipt.waiting.append(f"{event.origin}#{event.seq}")
            elif outcome == "unproven":
                # Below a vouched head: staged; stored once the run from what is held
                # up to a vouched (seq, hash) is all here, each named by the next.
                run = self.staged.add(event) and self.staged.proven_run(
                    event.origin, self.heads[event.origin], self.vouches.get(event.origin, ()))
                if not run:
                    receipt.waiting.append(f"{event.origin}#{event.seq}")
                else:
                    self.staged.settle(event.origin, run)
                    stored = {f"{proven.origin}#{proven.seq}" for proven in run}
                    receipt.waiting = [named for named in receipt.waiting
                                       if named not in stored]
                    for proven in run:
                        self._store(proven, new_rows, sales, receipt)
            elif outcome == "new":
                self._store(event, new_rows, sales, receipt)
                if event.type == UNSIGNED_HEADS_VOUCHED:
                    for origin, seq, digest in vouched_heads(event):
                        self.vouches.setdefault(origin, []).append(
                            Vouch(seq, digest, event.origin))
                        self.new_vouches.append((self.store, origin, seq, digest, event.origin))
            else:
                self.forked.add(event.origin)
                parked.append((self.store, event.origin, event.seq, event.hash,
                               orjson.dumps(event.as_dict()).decode(), outcome, self.node,
                               self.now))
                receipt.conflicts.append(f"{event.origin}#{event.seq}: {outcome}")
            receipt.acknowledged = position
        await self.tx.executemany(
            f"INSERT INTO events (store, {EVENT_COLUMNS}, node, received_at) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
            new_rows,
        )
        await self.tx.executemany(
            "INSERT INTO sales (store, id, origin, seq, time) VALUES ($1, $2, $3, $4, $5) "
            "ON CONFLICT DO NOTHING",
            sales,
        )
        await self.tx.executemany(
            "INSERT INTO conflicts (store, origin, seq, hash, event, reason, node, received_at) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING",
            parked,
        )
        await self.tx.executemany(
            "INSERT INTO origin_keys (store, origin, role, public_key) VALUES ($1, $2, $3, $4) "
            "ON CONFLICT DO NOTHING", self.new_keys,
        )
        await self.tx.executemany(
            "INSERT INTO unsigned_vouches (store, origin, seq, hash, voucher) "
            "VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING", self.new_vouches,
        )
        return receipt

    def _store(self, event: Event, new_rows: list[tuple[Any, ...]],
               sales: list[tuple[Any, ...]], receipt: Receipt) -> None:
        new_rows.append(self._row(event))
        if event.type in SALE_EVENT_TYPES:
            # A NUL (from a journal of before till strings were checked)
            # is the one character PostgreSQL's text cannot hold.
            sales.append((self.store, str(event.body["id"]).replace("\x00", "\ufffd"),
                          event.origin, event.seq, event.time))
        self.heads[event.origin] = ChainHead(event.seq, event.hash)
        self.held[(event.origin, event.seq)] = event.hash
        receipt.stored += 1

    async def _load(self, batch: list[tuple[int, Event]]) -> None:
        """The chain head of each origin in the batch, and the hashes of the seqs it repeats."""
        seqs: dict[str, list[int]] = {}
        for _, event in batch:
            seqs.setdefault(event.origin, []).append(event.seq)
        row = await self.tx.fetchrow("SELECT ca_pem FROM store_cas WHERE store = $1", self.store)
        self.ca = load_cert(row["ca_pem"]) if row else None
        named = sorted({str(origin) for _, event in batch if event.type == "origin_started"
                        for origin in (event.origin, *retired_by(event.body))})
        for origin in named:  # a few, in the rare batch that starts an origin
            row = await self.tx.fetchrow(
                "SELECT body FROM events WHERE store = $1 AND origin = $2 AND seq = 1 "
                "AND type = 'origin_certified'", self.store, origin)
            if row is not None:
                self.certified[origin] = orjson.loads(row["body"])
        for origin, numbers in seqs.items():
            head = await self.tx.fetchrow(
                "SELECT seq, hash FROM events WHERE store = $1 AND origin = $2 "
                "ORDER BY seq DESC LIMIT 1", self.store, origin,
            )
            self.heads[origin] = ChainHead(head["seq"], head["hash"]) if head else ChainHead()
            low = min(numbers)
            if low <= self.heads[origin].seq:
                rows = await self.tx.fetch(
                    "SELECT seq, hash FROM events WHERE store = $1 AND origin = $2 "
                    "AND seq >= $3 AND seq <= $4", self.store, origin, low, max(numbers),
                )
                self.held.update({(origin, row["seq"]): row["hash"] for row in rows})
            if await self.tx.fetchrow(
                "SELECT 1 FROM conflicts WHERE store = $1 AND origin = $2 LIMIT 1",
                self.store, origin,
            ):
                self.forked.add(origin)
            key = await self.tx.fetchrow(
                "SELECT role, public_key FROM origin_keys WHERE store = $1 AND origin = $2",
                self.store, origin)
            public = load_public_hex(key["public_key"]) if key else None
            if key is not None and public is not None:
                self.keys[origin] = OriginKey(key["role"], public)
            else:
                self.vouches[origin] = [Vouch(row["seq"], row["hash"], row["voucher"])
                                        for row in await self.tx.fetch(
                    "SELECT seq, hash, voucher FROM unsigned_vouches WHERE store = $1 "
                    "AND origin = $2", self.store, origin)]

    def _judge(self, event: Event) -> str:
        if is_headoffice_origin(event.origin):
            # Head office's own catalogue (this origin or a former one) coming back
            # from an older edge: never a store's event, nothing to keep.
            return "duplicate"
        judgement = judge(self.heads[event.origin],
                          self.held.get((event.origin, event.seq)), event)
        if judgement.verdict is Verdict.HELD:
            return "duplicate"
        if (judgement.verdict in (Verdict.NEXT, Verdict.GAP) and event.origin not in self.keys
                and is_unsigned_candidate(event)):
            # Written before signing: taken as far as a signed vouch covers it
            # (edge/journal/vouches.py). One not here yet is no conflict: the
            # node's vouch comes after these events, and `held` has them resent.
            # A covered one is taken only on a run proven from a vouched head
            # (h30): "unproven" stages it until then.
            problem = vouch_problem(event, self.vouches.get(event.origin, ()))
            if isinstance(problem, NotVouched):
                return "waiting"
            if problem is not None and (judgement.verdict is Verdict.NEXT
                                        or isinstance(problem, VouchConflict)):
                return str(problem).removeprefix(f"{event.origin}#{event.seq}: ")
            if problem is None:
                return "unproven"
        if judgement.verdict is Verdict.NEXT:
            return self._signature_problem(event) or "new"
        if judgement.verdict is Verdict.GAP:
            # Once an origin has forked, what follows the fork is parked too, not
            # mistaken for a gap (which would have the node resend it forever).
            return "follows a conflicting event" if event.origin in self.forked else "gap"
        return judgement.reason

    def _signature_problem(self, event: Event) -> str | None:
        """Why `event` is not signed by its origin's certified key (None: it is)."""
        try:
            if event.seq == 1:
                if self.ca is None:
                    return ("head office holds no CA certificate of this store to check its "
                            "events against (its pushes carry none: upgrade its edge)")
                # Head-office origins never get here: a store's event under one is skipped.
                key = certified_key(event, self.ca, self.store)
                self.keys[event.origin] = key
                self.certified[event.origin] = event.body
                self.new_keys.append((self.store, event.origin, key.role, key.hex))
                return None
            key = self.keys.get(event.origin)
            if key is None:
                return ("its origin was never certified (its first event is not "
                        "origin_certified: written before events were signed, or forged)")
            check_signed(event, key, self.ca, self.store)
            check_ca_vouch(event, self.ca)
            authorize(event, self.certified.get)
        except ChainError as refused:
            return str(refused).removeprefix(f"{event.origin}#{event.seq}: ")
        return None

    def _row(self, event: Event) -> tuple[Any, ...]:
        return (self.store, event.origin, event.seq, event.id, event.time, event.type,
                canonical_json(event.body).decode(), event.prev_hash, event.hash, event.sig,
                self.node, self.now)
