"""The journal: the append-only event log, its hash chains and event types, and
who may write it (one process per data folder, a new origin after a restore or a copy).

It knows nothing of selling, devices, replication or the API; only the names
of the modules that declare event types, which `event_types` loads so that a
journal knows every type whoever opened it. The node wires the rest.
"""
