"""Head-office sync, the node's side: outbound only, resumable, idempotent.
"""
