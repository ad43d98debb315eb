"""Which printer prints a till's receipts: `printers.tills` read as store IT writes it (pure).

Till codes are `T03-8dfc74`: the till's number, then the node that paired it
(edge/selling/tills.py). In a printer's `tills`, store IT writes either a
till's full code, or only the number the till shows before the dash (`T03`),
which names the paired till with that number. Numbers are the store's unless
nodes paired tills while cut apart from each other: then two tills share a
number, and a bare `T03` names the one paired first (an established till
keeps its printer when a node that had not caught up pairs another T03), and
`edge check` says which full codes to write.
A till paired before codes carried their node keeps its plain code (`T01`):
an entry naming it exactly is that till. Case does not matter.

The rule is the same on every node, given the same paired tills and
announced printers (every node holds both, replicated).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class AnnouncedTills:
    """A printer of the store as routing sees it: its node, its name, its `tills` entries."""

    node: str
    name: str
    tills: tuple[str, ...]


def tills_named(entry: str, codes: Iterable[str]) -> list[str]:
    """The paired tills (their `codes`, in the order they were paired) that one `tills`
    entry could mean.

    Its exact code if a till has it; else, for a bare number (no dash), every
    till with that number. More than one: the entry names the first.
    """
    wanted = entry.strip().casefold()
    codes = list(codes)
    exact = [code for code in codes if code.casefold() == wanted]
    if exact or "-" in wanted:
        return exact
    return [code for code in codes if code.casefold().startswith(wanted + "-")]


def names_till(entry: str, till: str, codes: Iterable[str]) -> bool:
    """Does this `tills` entry send `till` to its printer?"""
    if entry.strip().casefold() == till.casefold():
        return True
    named = tills_named(entry, codes)
    return bool(named) and named[0].casefold() == till.casefold()


def printer_for(till: str, printers: Sequence[AnnouncedTills], codes: Iterable[str],
                here: str) -> AnnouncedTills | None:
    """The printer of `till`: one whose `tills` names it; else one listing no tills.

    Among several, this node's first, then by node and position (`printers`
    in the order of their node, then of their position in its config).
    """
    codes = list(codes)
    listing = [p for p in printers if any(names_till(e, till, codes) for e in p.tills)]
    candidates = listing or [p for p in printers if not p.tills]
    if not candidates:
        return None
    order = {id(printer): position for position, printer in enumerate(printers)}
    return min(candidates, key=lambda p: (p.node != here, order[id(p)]))


def tills_problems(printers: Sequence[tuple[str, Sequence[str]]],
                   codes: Iterable[str]) -> list[str]:
    """What is wrong with the printers' `tills` against the paired tills, in plain words.

    `printers`: (name, tills entries) as in the config.
    """
    codes = list(codes)
    paired = (f"the paired tills are {', '.join(sorted(codes))}" if codes
              else "no till is paired yet")
    problems: list[str] = []
    named_by: dict[str, list[tuple[str, str]]] = {}
    for name, entries in printers:
        for entry in entries:
            named = tills_named(entry, codes)
            if not named:
                problems.append(
                    f"printer {name!r} lists till {entry!r}, but no paired till has that code "
                    f"({paired}): that till's receipts go to the printer listing no tills. "
                    "Write the code the till shows, like T03-8dfc74 (or just T03)")
            else:
                if len(named) > 1:
                    problems.append(
                        f"printer {name!r} lists till {entry!r}: {' and '.join(named)} have "
                        f"that number; it names {named[0]}, paired first. Write the full code")
                named_by.setdefault(named[0], []).append((name, entry))
    for code, listed in sorted(named_by.items()):
        if len({name for name, _ in listed}) > 1:
            where = " and ".join(f"{name!r} (as {entry})" for name, entry in listed)
            problems.append(f"till {code} is listed by {where}: list it on one printer")
    return problems
