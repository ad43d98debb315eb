"""Events written before signing, vouched for by the store CA when the CA node upgraded.

An event written by an edge from before signing carries no signature and its
origin's first event certifies no key: nothing in it says who wrote it. What
does is the store CA: the node holding the CA key (`edge tls init`'s node),
at its first start after the upgrade, writes `unsigned_heads_vouched`, body
`{"heads": [{"origin", "seq", "hash"}, ...], "ca_sig"}`: the last event it
held of every origin written before signing (its own predecessor included),
and the store CA's ECDSA signature over `b"edge unsigned heads v1:" +
canonical_json(heads)`. A hash chain ends there, so the vouch covers each of
those origins up to that seq, exactly. A vouch without a valid CA signature
is refused at every intake like any forged event: a node's own certificate
is no word on history it did not write (h28: any certified node could
otherwise vouch a 1-cent head-office catalogue into every peer). Other nodes
vouch for nothing: what only they held (a node stopped before its last
sales reached the CA node) stays on them, said in words (`edge status`).

The rules every intake follows (a node's journal, head office, `edge
verify`, `edge restore`): an unsigned event is only of a type that existed
before signing (`LEGACY_TYPES`) and that its origin's role may write (head
office for a `headoffice-` origin, a node otherwise); it is taken only when a
CA vouch held here covers its origin at that seq or beyond, with the usual
chain check; at a vouched seq its hash must be the vouched one, and two
vouches naming different hashes at one seq are a fork (only the CA could
sign both): refused. An event no vouch covers (yet) is not refused: the
CA node's vouch may come later, so it is a gap, asked for again
(`NotVouched`). Nothing read from the journal's own tables decides it (a file
can be changed): only CA-signed vouches.

Below a vouched seq an unsigned event proves nothing by itself (h30: a
certified node handed a node lacking that origin a forged #1..#4 below a
vouched #5, and the real history was then refused for good). So such events
are staged (`StagedUnsigned`: in memory, bounded, never projected) and taken
only as a run proven from the vouched head downwards: the event at a vouched
seq with the vouched hash, each one below it named by its successor's
prev_hash, down to what is held here (or the origin's start), applied in
order in one transaction. Candidates not on that run are dropped as forged.
"""

from __future__ import annotations

import logging
import sqlite3
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from edge.journal.chain import ChainError, ChainGap, ChainHead, Event, canonical_json
from edge.journal.event_types import event_type, registry
from edge.journal.signing import (
    HEADOFFICE,
    NODE,
    ORIGIN_CERTIFIED,
    SignatureRefused,
    is_headoffice_origin,
)

log = logging.getLogger(__name__)

UNSIGNED_HEADS_VOUCHED = "unsigned_heads_vouched"

# Staged candidates below a vouched head: a few per seq (a forgery and the real
# one can both wait there), and a cap in all (a legacy history is a store's few
# origins; beyond the cap nothing more is staged: a gap, asked for again).
MAX_CANDIDATES_PER_SEQ = 4
MAX_STAGED = 200_000

# A vouch names every origin its node held from before signing: a store has few.
MAX_VOUCHED_HEADS = 10_000

# What the store CA signs: the heads, domain-separated from anything else it signs.
CA_VOUCH_PREFIX = b"edge unsigned heads v1:"

# The event types an edge from before signing wrote (the registry at schema 18).
# An unsigned event of any other type (origin_certified, headoffice_key_trusted,
# unsigned_heads_vouched, anything added since) was never written unsigned: forged.
LEGACY_TYPES = frozenset({
    "basket_line_added", "basket_line_removed", "basket_quantity_set", "basket_taken_over",
    "basket_voided", "cashier_added", "cashier_logged_in", "drawer_opened", "drawer_unknown",
    "login_failed", "login_locked", "origin_started", "print_job_cancelled",
    "print_job_cutting", "print_job_done", "print_job_interrupted", "print_job_started",
    "print_job_waiting", "print_requested", "printers_announced", "product_delisted",
    "product_upserted", "sale_completed", "till_paired", "till_revoked",
})


class NotVouched(ChainGap):
    """An unsigned event no vouch held here covers: held back and asked for again, not refused.

    A node that held it when it was upgraded vouches for it; that vouch may
    simply not be here yet (its node is off, or its events come later).
    """


class Unproven(ChainGap):
    """An unsigned event below a vouched head whose chain does not reach it yet: staged,
    not taken; asked for again (the rest of the run comes later)."""


class VouchConflict(ChainError):
    """An unsigned event whose hash is not the one vouched at its seq, or vouches that
    disagree: a fork of history from before signing, refused."""


@dataclass(frozen=True, slots=True)
class Vouch:
    seq: int
    hash: str
    voucher: str  # the origin whose signed event vouched


@dataclass(slots=True)
class VouchedHead:
    origin: str = field(metadata={"max_length": 200, "min": 1})
    seq: int = field(metadata={"min": 1})
    hash: str = field(metadata={"max_length": 64, "min": 64})


@dataclass(slots=True)
class UnsignedHeadsVouched:
    heads: list[VouchedHead] = field(metadata={"max_length": MAX_VOUCHED_HEADS, "min": 1})
    # The store CA's signature (hex DER ECDSA) of the heads: checked at intake
    # (`check_ca_vouch`); "" (a node's word alone) is refused there, by name.
    ca_sig: str = field(default="", metadata={"max_length": 300})


def ca_vouch_message(heads: Any) -> bytes:
    return CA_VOUCH_PREFIX + canonical_json(heads)


def ca_vouch_body(heads: list[dict[str, Any]], ca_key: ec.EllipticCurvePrivateKey
                  ) -> dict[str, Any]:
    """A vouch's body: `heads`, signed by the store CA's key."""
    signature = ca_key.sign(ca_vouch_message(heads), ec.ECDSA(hashes.SHA256()))
    return {"heads": heads, "ca_sig": signature.hex()}


def ca_vouch_valid(body: Any, ca_cert: x509.Certificate | None) -> bool:
    """Does the store CA (`ca_cert`) sign this vouch body's heads?"""
    if ca_cert is None or not isinstance(body, dict):
        return False
    public = ca_cert.public_key()
    signature = body.get("ca_sig")
    if not isinstance(public, ec.EllipticCurvePublicKey) or not isinstance(signature, str):
        return False
    try:
        public.verify(bytes.fromhex(signature), ca_vouch_message(body.get("heads")),
                      ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, ValueError):
        return False
    return True


def check_ca_vouch(event: Event, ca_cert: x509.Certificate | None) -> None:
    """SignatureRefused unless `event` (a vouch) carries the store CA's signature.

    Every intake calls it on a vouch after its origin's signature checked: a
    node's key says who relays the vouch, only the CA's says it is true.
    """
    if event.type == UNSIGNED_HEADS_VOUCHED and not ca_vouch_valid(event.body, ca_cert):
        raise SignatureRefused(f"{event.origin}#{event.seq}: a vouch for history from before "
                               "signing not signed by the store CA (only the node holding the "
                               "CA key vouches): forged, refused")


def unsigned_role(origin: str) -> str:
    return HEADOFFICE if is_headoffice_origin(origin) else NODE


def unsigned_type_problem(event: Event) -> SignatureRefused | None:
    """Why an unsigned `event` cannot be one from before signing (None: it can be)."""
    where = f"{event.origin}#{event.seq}"
    if event.type not in LEGACY_TYPES:
        return SignatureRefused(f"{where}: an unsigned {event.type} event: no edge from before "
                                "signing wrote that type: forged")
    kind = registry().get(event.type)
    role = unsigned_role(event.origin)
    if kind is not None and role not in kind.written_by:
        return SignatureRefused(f"{where}: a {role} may not write {event.type} events "
                                "(unsigned, from before signing)")
    return None


def is_unsigned_candidate(event: Event) -> bool:
    """Could this event be one written before signing? (unsigned, not a certificate)"""
    return not event.sig and event.type != ORIGIN_CERTIFIED


def vouched_heads(event: Event) -> list[tuple[str, int, str]]:
    """(origin, seq, hash) of each head a vouch event names."""
    return [(str(head["origin"]), int(head["seq"]), str(head["hash"]))
            for head in event.body.get("heads", [])]


def vouch_problem(event: Event, vouches: Iterable[Vouch]) -> ChainError | None:
    """Why the unsigned `event` may not be taken with these vouches of its origin (None: it may).

    SignatureRefused if no edge from before signing could have written it
    (`unsigned_type_problem`); NotVouched (a gap) if none covers its seq;
    VouchConflict (refused) if one at its seq names another hash, or two at
    its seq disagree.
    """
    where = f"{event.origin}#{event.seq}"
    refused = unsigned_type_problem(event)
    if refused is not None:
        return refused
    vouches = list(vouches)
    at_seq = {vouch.hash: vouch.voucher for vouch in vouches if vouch.seq == event.seq}
    if len(at_seq) > 1:
        named = ", ".join(f"{voucher} vouched {digest[:12]}…" for digest, voucher in at_seq.items())
        return VouchConflict(f"{where}: written before signing, and vouched for with different "
                             f"hashes at this seq ({named}): history from before signing forked")
    if at_seq and event.hash not in at_seq:
        voucher = next(iter(at_seq.values()))
        return VouchConflict(f"{where}: written before signing, but not the event {voucher} "
                             f"vouched for at this seq (hash {next(iter(at_seq))[:12]}…): a fork "
                             "or a forgery")
    if not any(vouch.seq >= event.seq for vouch in vouches):
        reach = max((vouch.seq for vouch in vouches), default=0)
        beyond = f" (vouched up to #{reach} only)" if reach else ""
        return NotVouched(f"{where}: written before signing and not vouched for by the store "
                          f"CA{beyond}: held back, asked for again later (the CA node's vouch "
                          "may not be here yet)")
    return None


# The journal's side: the projection and the questions it asks.

@event_type(UNSIGNED_HEADS_VOUCHED, schema=UnsignedHeadsVouched,
            merge="a set of (origin, seq, hash, node that relayed it): a vouch the store CA "
                  "signed covers an origin written before signing up to its seq")
def _unsigned_heads_vouched(db: sqlite3.Connection, event: Event) -> None:
    db.executemany("INSERT OR IGNORE INTO unsigned_vouches (origin, seq, hash, voucher) "
                   "VALUES (?, ?, ?, ?)",
                   [(origin, seq, digest, event.origin)
                    for origin, seq, digest in vouched_heads(event)])


def held_vouches(db: sqlite3.Connection, origin: str) -> list[Vouch]:
    return [Vouch(seq, digest, voucher) for seq, digest, voucher in db.execute(
        "SELECT seq, hash, voucher FROM unsigned_vouches WHERE origin = ?", (origin,))]


def check_vouched(db: sqlite3.Connection, event: Event) -> None:
    """NotVouched or VouchConflict unless a vouch held in `db` covers the unsigned `event`."""
    problem = vouch_problem(event, held_vouches(db, event.origin))
    if problem is not None:
        raise problem


def unsigned_origins_held(db: sqlite3.Connection) -> list[tuple[str, int]]:
    """(origin, last seq held) of each origin held here from its start that certifies no
    key: written before signing. One row per origin, so a few dozen at most."""
    held = []
    for origin, last_seq in db.execute(
            "SELECT origins.origin, origins.last_seq FROM origins "
            "LEFT JOIN origin_keys ON origin_keys.origin = origins.origin "
            "WHERE origin_keys.origin IS NULL ORDER BY origins.origin").fetchall():
        first = db.execute("SELECT type FROM events WHERE origin = ? AND seq = 1",
                           (origin,)).fetchone()
        if first is not None and first[0] != ORIGIN_CERTIFIED:
            held.append((origin, last_seq))  # (not a gap at its start, nor certified)
    return held


def unvouched_heads(db: sqlite3.Connection) -> dict[str, Any] | None:
    """The body of the vouch this journal owes, or None if it owes none.

    Every origin held here whose first event certifies no key was written
    before signing; the CA node vouches for the last event it holds of each,
    unless a vouch held here already covers that far. Only it: see
    `store_ca_key`.
    """
    heads = []
    for origin, last_seq in unsigned_origins_held(db):
        covered = db.execute("SELECT 1 FROM unsigned_vouches WHERE origin = ? AND seq >= ? "
                             "LIMIT 1", (origin, last_seq)).fetchone()
        if covered:
            continue
        row = db.execute("SELECT hash FROM events WHERE origin = ? AND seq = ?",
                         (origin, last_seq)).fetchone()
        if row is not None:
            heads.append({"origin": origin, "seq": last_seq, "hash": row[0]})
    return {"heads": heads} if heads else None


def store_ca_key(identity: Any) -> ec.EllipticCurvePrivateKey | None:
    """The store CA's key if this node holds it (the one node that vouches), else None.

    A node's trust (`edge.trust.folder.NodeTrust`) reads it from its `tls/`
    folder; a test identity may carry it as `ca_key`.
    """
    key = getattr(identity, "ca_key", None)
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return key
    folder = getattr(identity, "folder", None)
    if folder is None or not getattr(identity, "holds_ca_key", False):
        return None
    from edge.trust.folder import TrustFolder

    return TrustFolder(folder.parent).ca_key()


def unvouched_here(db: sqlite3.Connection) -> list[str]:
    """In words, each origin from before signing held here beyond what a CA vouch covers.

    Those events stay on this node: no CA vouch names them (the CA node did
    not hold them when it was upgraded), so no peer and not head office takes
    them. Empty when everything held is vouched for.
    """
    said = []
    for origin, last_seq in unsigned_origins_held(db):
        (reach,) = db.execute("SELECT COALESCE(MAX(seq), 0) FROM unsigned_vouches "
                              "WHERE origin = ?", (origin,)).fetchone()
        if last_seq > reach:
            since = f"#{reach + 1}" if reach else "#1"
            said.append(f"{origin} {since} to #{last_seq}: written before signing, held on this "
                        "node only (the store CA node did not hold them when it was upgraded "
                        "and vouched): no other node nor head office takes them")
    return said


class StagedUnsigned:
    """Unsigned events of vouched origins waiting for their run to reach a vouched head.

    Keyed by (origin, seq, hash), several per seq; only seqs at or below the
    highest seq vouched for their origin (the caller checks it with
    `vouch_problem`), so a peer cannot make it grow beyond the vouched history.
    Never projected: an event here is not held, and nothing reads it but
    `proven_run`.
    """

    def __init__(self, per_seq: int = MAX_CANDIDATES_PER_SEQ, limit: int = MAX_STAGED) -> None:
        self._events: dict[tuple[str, int], OrderedDict[str, Event]] = {}
        self._count = 0
        self._per_seq = per_seq
        self._limit = limit

    def __len__(self) -> int:
        return self._count

    def add(self, event: Event) -> bool:
        """Stage `event`; False if it cannot be (full: it is asked for again later)."""
        slot = self._events.setdefault((event.origin, event.seq), OrderedDict())
        if event.hash in slot:
            return True
        if len(slot) >= self._per_seq:
            # The oldest goes: a peer flooding one seq delays the real event, never
            # replaces it for good (the honest peer sends it again).
            slot.popitem(last=False)
            self._count -= 1
        elif self._count >= self._limit:
            if not slot:
                del self._events[(event.origin, event.seq)]
            return False
        slot[event.hash] = event
        self._count += 1
        return True

    def proven_run(self, origin: str, head: ChainHead, vouches: Iterable[Vouch]
                   ) -> list[Event] | None:
        """The staged events from `head` (held here) up to a vouched head, in seq order.

        Walks down from the staged event at a vouched (seq, hash), each step the
        candidate whose hash its successor's prev_hash names, until the one
        whose prev_hash is `head`'s. None if no vouched head staged here reaches.
        """
        for vouch in sorted(vouches, key=lambda vouch: -vouch.seq):
            if vouch.seq <= head.seq:
                continue
            top = self._events.get((origin, vouch.seq), {}).get(vouch.hash)
            run = [top] if top is not None else []
            while run and run[-1].seq > head.seq + 1:
                below = self._events.get((origin, run[-1].seq - 1), {}).get(run[-1].prev_hash)
                if below is None:
                    run = []
                else:
                    run.append(below)
            if run and run[-1].prev_hash == head.hash:
                return run[::-1]
        return None

    def settle(self, origin: str, run: list[Event]) -> list[Event]:
        """Forget `origin`'s candidates at or below the run's top; the ones not on it (forged)."""
        taken = {event.hash for event in run}
        forged = []
        for key in [key for key in self._events if key[0] == origin and key[1] <= run[-1].seq]:
            slot = self._events.pop(key)
            self._count -= len(slot)
            forged += [event for digest, event in slot.items() if digest not in taken]
        for event in forged:
            log.error("%s#%d (%s…): written before signing, said a peer, but not on the chain "
                      "the store CA vouched for: forged, dropped", event.origin, event.seq,
                      event.hash[:12])
        return forged
