"""edge: the in-store server for shops with several tills."""

__version__ = "0.1.0"
PROTOCOL_VERSION = 1
