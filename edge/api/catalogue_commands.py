"""The till's catalogue commands for selling without a barcode: the product grid.

`catalogue/grid` gives the categories and their tiles (edge/selling/catalogue_grid.py);
`catalogue/export`'s first page also carries what a till needs to do the same
offline (`till_catalogue_settings`): the store's grid settings, the promotions
not ended, and the in-store barcode layouts. docs/protocol.md documents both.
"""

from __future__ import annotations

from typing import Any

from edge.api.websocket_api import Connection, NoArgs, command
from edge.config import Config
from edge.journal.store import Journal
from edge.selling.catalogue_grid import GridSettings, grid
from edge.selling.promotions import promotions_for_tills

# Pushed to tills with the products (their offline copy keeps the promotions).
PROMOTION_EVENT_TYPES = frozenset({"promotion_upserted", "promotion_ended"})


def grid_settings(config: Config) -> GridSettings:
    return GridSettings(categories=config.grid_categories, favourites=config.grid_favourites,
                        tiles=config.grid_tiles)


@command("catalogue/grid", NoArgs, access="till")
async def catalogue_grid(conn: Connection, args: NoArgs) -> dict[str, Any]:
    return await grid(conn.node.journal, grid_settings(conn.node.config))


async def till_catalogue_settings(journal: Journal, config: Config) -> dict[str, Any]:
    """What `catalogue/export`'s first page adds to the products."""
    return {"grid": grid_settings(config).as_json(),
            "promotions": await promotions_for_tills(journal),
            "embedded_barcodes": [dict(layout) for layout in config.embedded_barcodes]}
