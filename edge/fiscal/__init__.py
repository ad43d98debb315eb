"""The books: what a period's sales add up to, the archive of a period, and its verifier.

French law (CGI art. 286-I-3° bis) wants a cash system's records unalterable,
secured, kept and archived, with closures carrying perpetual grand totals,
and an archive the tax administration can check without the software
(docs/fiscal.md). This package owns:
- `periods.py`: a day, a month or a year as event times bound it (pure);
- `totals.py`: a period's totals from its sale and refund events, each sale
  counted once (pure);
- `period_sales.py`: the sales a period counts, read from any table of events
  (the journal's, or an archive's in a scratch database);
- `archive.py`, `archive_files.py` and `archive_readme.py`: `edge archive`,
  the signed zip of a period, what is in it and its README;
- `exports.py`: `archive_exported`, the journal's record that one was made;
- `verify_archive.py`: `edge verify ARCHIVE`, which needs nothing but the zip;
- `archive_admin.py`: the command, through the running node or alone.
- `shifts.py`: cash sessions (float, cash moves, counted close) and the X
  report; `sale_marks`, what a sale carries of its shift and training mode;
- `training.py`: a till's training mode ("MODE ÉCOLE");
- `jet.py`: the technical journal's own records (node start and stop, logout,
  a till's offline periods, clock jumps).

It reads the journal (edge/journal/) and nothing above it.
"""
