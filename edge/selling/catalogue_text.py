"""Text in a catalogue's CSV files that a till, a receipt or a spreadsheet would show
otherwise than it is held: pure, no I/O.

Shared by the node's import and head office's (edge/selling/catalogue_import.py,
edge/headoffice/catalogue_staging.py: a line holding a hidden character is refused,
naming it) and by `edge catalogue export` (edge/selling/catalogue_admin.py: a cell a
spreadsheet would run as a formula goes out behind a single quote, which the import
takes off again). The journal's events are not checked here: an event already
signed still applies as it is.
"""

from __future__ import annotations

import re
import unicodedata

# Text a receipt, a till's screen or a spreadsheet could show otherwise than it is held.
# C0 and C1 controls and DEL; bidirectional marks, embeddings, overrides and isolates
# (a name "Pain " + U+202E + "05,1" is shown "Pain 1,50"); the invisible ones (zero
# width space, word joiner, invisible operators, byte order mark, line and paragraph
# separators) that make two ids look alike, and as invisible: the soft hyphen, the
# combining grapheme joiner, the Mongolian vowel separator, the Hangul fillers and the
# tag characters (h68). ZWNJ and ZWJ (U+200C, U+200D) stay: emoji and several scripts
# need them. Written as escapes: this file holds none of them.
HIDDEN_CHARACTERS = re.compile("[\x00-\x1f\x7f-\x9f\xad\u034f\u061c\u115f\u1160"
                               "\u180e\u200b\u200e\u200f\u2028-\u202e\u2060-\u2064"
                               "\u2066-\u206f\u3164\ufeff\uffa0\ufff9-\ufffb"
                               "\U000e0000-\U000e007f]")


def hidden_character(value: str) -> str | None:
    """The first hidden character of `value`, as a problem (None: there is none)."""
    found = HIDDEN_CHARACTERS.search(value)
    if found is None:
        return None
    character = found.group()
    name = unicodedata.name(character, "a control character")
    return (f"holds U+{ord(character):04X} ({name}) at character {found.start() + 1}: an "
            "invisible character that changes how a receipt or a till shows the text; "
            "remove it")


# A cell a spreadsheet would run as a formula (OWASP "CSV injection"): the export puts
# a single quote before it, the import takes that quote off again (so an export imports
# as it was). A cell already starting with quotes before such a character gets one
# more, so a text held as "'=x" goes out as "''=x" and comes back as it was.
FORMULA_START = re.compile("'*[=+\\-@\t\r\n\x00\uff1d\uff0b\uff0d\uff20]")


def spreadsheet_safe(value: str) -> str:
    """A text cell as exported: a formula's first character made plain text."""
    return "'" + value if FORMULA_START.match(value) else value


def from_spreadsheet_safe(value: str) -> str:
    """A text cell as imported: the quote `spreadsheet_safe` added taken off."""
    return value[1:] if value[:1] == "'" and FORMULA_START.match(value, 1) else value
