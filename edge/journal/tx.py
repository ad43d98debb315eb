"""One write in progress: the events a node appends, and those it takes from elsewhere.

A `Tx` lives in the journal's writer thread, inside the open transaction
(edge/journal/store.py owns the thread, the batching and the commit). It is
the one place where an event enters a chain here: `append` writes this
node's own, signed; `apply` judges one from a peer or head office against
the chain held (gap, fork, forgery, signature, what its origin may write)
and, if it fits, inserts it and runs its projection, all or nothing.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import orjson

from edge.journal.chain import (
    HASH_MISMATCH,
    ChainError,
    ChainGap,
    ChainHead,
    Event,
    Verdict,
    canonical_json,
    judge,
)
from edge.journal.event_types import authorize, checked
from edge.journal.signing import (
    ORIGIN_CERTIFIED,
    SignatureRefused,
    certified_key,
    check_signed,
    headoffice_key_trusted,
    node_certified_body,
    sign,
    signature_valid,
)
from edge.journal.vouches import (
    NotVouched,
    Unproven,
    check_ca_vouch,
    check_vouched,
    held_vouches,
    is_unsigned_candidate,
    vouch_problem,
)

if TYPE_CHECKING:
    from edge.journal.store import Journal

EVENT_COLUMNS = "origin, seq, id, time, type, body, prev_hash, hash, sig"


Params = Iterable[Any] | Mapping[str, Any]


def bind_params(params: Params) -> tuple[Any, ...] | Mapping[str, Any]:
    """Positional (`?`) or named (`:name`) parameters, as sqlite3 takes them."""
    return params if isinstance(params, Mapping) else tuple(params)


class OriginClash(Exception):
    """Someone else wrote under this node's own origin: never acknowledge, stop writing it.

    Fatal for the origin: the journal refuses every write from then on, and
    the next start continues under a new origin (see edge/datafolder.py).
    """


class OwnOriginSeen(ChainError):
    """A peer sent an event of our own origin that we did not write: refused.

    Signed with this node's own key, so a copy of this data folder runs
    elsewhere (or an old copy of it was put back in place and wrote on); a
    forgery (not signed with that key) is merely refused. Never applied; this
    node stops writing that origin at once (what committed before stays
    acknowledged) and takes a new one when it starts again.
    """


class Tx:
    """A write in progress, in the writer thread: the open transaction and the chain head."""

    def __init__(self, journal: Journal, db: sqlite3.Connection) -> None:
        self._journal = journal
        self.db = db
        self.events: list[Event] = []

    @property
    def origin(self) -> str:
        """This node: the origin of what `append` writes."""
        return self._journal.origin

    def append(self, type_: str, body: dict[str, Any]) -> Event:
        """Write a new event of this node's origin, signed, and apply its projections.

        An origin's first event certifies its key (`origin_certified`): written
        here before whatever else comes first.
        """
        journal = self._journal
        identity = journal.identity
        if journal.head.seq == 0 and type_ != ORIGIN_CERTIFIED:
            self.append("origin_certified", node_certified_body(identity))
        event = sign(journal.head.next(journal.origin, type_, body), identity.signing_key)
        self._insert(event)
        journal.head = ChainHead(event.seq, event.hash)
        return event

    def apply(self, event: Event) -> bool:
        """Apply an event from elsewhere (a peer, head office) after checking its chain.

        False if it is already here (never checked again); ChainError if it
        does not follow what is here (a gap, a fork, a forgery), is not signed
        by its origin's certified key or is of a type its origin may not write
        (`SignatureRefused`), or is unfit (`UnfitEvent`: a type this node does
        not know, a body that does not fit its schema): then nothing of it is
        applied.
        """
        head_row = self.fetchone(
            "SELECT seq, hash FROM events WHERE origin = ? ORDER BY seq DESC LIMIT 1",
            (event.origin,),
        )
        head = ChainHead(head_row["seq"], head_row["hash"]) if head_row else ChainHead()
        held = None
        if event.seq <= head.seq:
            row = self.fetchone(
                "SELECT hash FROM events WHERE origin = ? AND seq = ?", (event.origin, event.seq))
            held = row["hash"] if row else None
        judgement = judge(head, held, event)
        where = f"{event.origin}#{event.seq}"
        if judgement.verdict is Verdict.HELD:
            return False
        if event.origin == self.origin and judgement.reason != HASH_MISMATCH:
            # We write every event of our origin and never lose one we sent: one
            # signed with our key means a copy of this folder writes it elsewhere.
            if not signature_valid(event, self._journal.identity.signing_key.public_key()):
                raise SignatureRefused(f"{where}: an event of this node's own origin that it "
                                       "never wrote, not signed with its key: forged")
            raise OwnOriginSeen(f"{where}: {judgement.reason or 'never written here'}")
        if judgement.verdict is not Verdict.CONFLICT and self._from_before_signing(event):
            return self._take_unsigned(event, head)
        if judgement.verdict is Verdict.GAP:
            raise ChainGap(f"{where}: {judgement.reason}")
        if judgement.verdict is Verdict.CONFLICT:
            raise ChainError(f"{where}: {judgement.reason}")
        self._check_signed(event)
        self._insert(event)
        return True

    def _from_before_signing(self, event: Event) -> bool:
        """Unsigned, of an origin no key certified here (or its first event)."""
        return is_unsigned_candidate(event) and (
            event.seq == 1 or self._journal.keys.get(self.db, event.origin) is None)

    def _take_unsigned(self, event: Event, head: ChainHead) -> bool:
        """Take an event written before signing only on a run proven from a vouched head.

        Of a type from then, covered by a vouch the store CA signed (else
        NotVouched, a gap, or refused: edge/journal/vouches.py). Below a
        vouched seq it proves nothing alone (h30): staged, and the run from
        what is held here up to the vouched (seq, hash), each event named by
        its successor's prev_hash, is applied whole once it is all here. False
        while staged; Unproven (a gap: asked for again) when the vouched head
        came and the run below it did not (yet).
        """
        journal = self._journal
        vouches = held_vouches(self.db, event.origin)
        problem = vouch_problem(event, vouches)
        if isinstance(problem, NotVouched):
            journal.note_not_vouched(event.origin, str(problem))
        if problem is not None:
            raise problem
        where = f"{event.origin}#{event.seq}"
        if not journal.staged.add(event):
            raise Unproven(f"{where}: too many events from before signing waiting for their "
                           "chain to reach the vouched head: asked for again later")
        run = journal.staged.proven_run(event.origin, head, vouches)
        if run is None:
            if any(vouch.seq == event.seq for vouch in vouches):
                raise Unproven(f"{where}: the vouched head from before signing, but the events "
                               f"after #{head.seq} leading to it are not all here: held back")
            return False
        for proven in run:
            self._insert(proven)
        journal.staged.settle(event.origin, run)
        return True

    def _check_signed(self, event: Event) -> None:
        """SignatureRefused (or HeadOfficeKeyUnknown) unless its origin's key signed it."""
        journal = self._journal
        key = None if event.seq == 1 else journal.keys.get(self.db, event.origin)
        if key is None and is_unsigned_candidate(event):
            # Written before signing: of a type from then, taken as far as a vouch
            # the store CA signed covers it (edge/journal/vouches.py); a gap
            # (NotVouched) until one does.
            try:
                check_vouched(self.db, event)
            except NotVouched as waiting:
                journal.note_not_vouched(event.origin, str(waiting))
                raise
            return
        if event.seq == 1:
            identity = journal.identity
            certified_key(event, identity.ca_cert, identity.store_id,
                          lambda key: headoffice_key_trusted(self.db, key))
            return
        if key is None:
            raise SignatureRefused(f"{event.origin}#{event.seq}: signed, but its origin was "
                                   "written before signing (no key certified it): forged")
        check_signed(event, key, journal.identity.ca_cert, journal.identity.store_id)
        check_ca_vouch(event, journal.identity.ca_cert)
        authorize(event, self._certified_body)

    def _certified_body(self, origin: str) -> dict[str, Any] | None:
        """The body of `origin`'s `origin_certified` held here (checked when it came in)."""
        row = self.fetchone("SELECT body FROM events WHERE origin = ? AND seq = 1 "
                            "AND type = 'origin_certified'", (origin,))
        return orjson.loads(row["body"]) if row else None

    def _insert(self, event: Event) -> None:
        # Refused whole if its type is unknown or its body does not fit: from a
        # peer, a ChainError like a fork; from us, a bug caught before anyone
        # else holds it.
        kind = checked(event)
        # Plain INSERT: an event that is already there means two writers for one
        # origin (ours) or a bug, never something to skip quietly.
        try:
            self.db.execute(
                f"INSERT INTO events ({EVENT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    event.origin,
                    event.seq,
                    event.id,
                    event.time,
                    event.type,
                    canonical_json(event.body).decode(),
                    event.prev_hash,
                    event.hash,
                    event.sig,
                ),
            )
        except sqlite3.IntegrityError as error:
            if event.origin == self.origin:
                raise OriginClash(f"{event.origin}#{event.seq} is already in the journal: "
                                  "another process writes this origin") from error
            raise
        kind.project(self.db, event)
        self.events.append(event)

    def fetchone(self, sql: str, params: Params = ()) -> sqlite3.Row | None:
        return self.db.execute(sql, bind_params(params)).fetchone()

    def fetchall(self, sql: str, params: Params = ()) -> list[sqlite3.Row]:
        return self.db.execute(sql, bind_params(params)).fetchall()
