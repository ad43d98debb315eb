"""edge: the in-store server for shops with several tills."""

__version__ = "0.1.0"
# The till websocket's version, in `auth`: 2 since `sale/record_refund` takes `till` (a node
# of version 1 reads past an argument it does not know, so a till asks first).
PROTOCOL_VERSION = 2
