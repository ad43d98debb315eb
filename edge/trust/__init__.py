"""Store trust: who belongs to the store, and how they prove it.

A store has one certificate authority (`edge tls init` makes it on the first
node; its key never leaves that node). Every node holds, in `<data>/tls/`:
- the store CA's certificate, which every peer and till certificate chains to;
- a TLS certificate for its names and addresses (HTTPS/WSS for tills, mutual
  TLS between peers);
- an Ed25519 signing key with a certificate from the store CA: every event
  the node writes is signed with it (edge/journal/signing.py), so an event
  relayed, forged or re-hashed without that key is refused everywhere.

`certificates.py` is pure (no files, no sockets); `folder.py` keeps them on
disk; nodes that join get theirs through a one-time join code.
"""
