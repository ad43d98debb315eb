"""The reference head office: receives every store's events, serves the catalogue.

`edge headoffice serve` runs it (docs/headoffice.md). Storage is PostgreSQL
for a real head office, or an embedded SQLite file for a demo.
"""
