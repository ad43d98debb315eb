"""Replication between the nodes of one store: peers found by zeroconf or
listed, links that prove the store key, and a catch-up streamed from a cursor.
"""
