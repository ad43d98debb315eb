"""Joining a node to the store: one-time join codes, and the certificates they buy.

`edge tls join-code` on the CA node makes a code: `<first 20 hex of the CA's
SHA-256 fingerprint>-<secret>`. The secret is kept hashed, used once, for 15
minutes (`<data>/tls/join-codes.json`). `edge tls join URL CODE` on the new node:
1. fetches the CA certificate from URL (`GET /api/tls/ca`), trusting nothing yet,
   and checks its fingerprint against the code's (a machine in the middle
   cannot hand it another CA without the fingerprint giving it away);
2. makes its own keys (they never leave it) and sends the public halves with
   the secret (`POST /api/tls/join`) over HTTPS verified with that CA;
3. installs the TLS and signing certificates the CA node issued for them.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import os
import re
import secrets
import ssl
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from edge.trust.certificates import (
    cert_pem,
    fingerprint,
    load_cert,
    public_key_pem,
    stores_named,
)
from edge.trust.folder import TrustFolder, TrustProblem, _write, issue_node

CODES_FILE = "join-codes.json"
ISSUED_FILE = "issued.json"
CODE_MINUTES = 15
FINGERPRINT_HEX = 20
MAX_CODES = 32  # codes not yet used kept at once; the oldest goes first
MAX_NAMES = 16  # DNS names, and addresses, a joiner may ask for
MAX_JOIN_BYTES = 16 * 1024
LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?$")
DNS_NAME = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.?)+$")
CODE = re.compile(r"^([0-9a-f]{20})-([0-9a-f]{32})$")


class JoinRefused(Exception):
    """A join request that cannot be honoured: nothing was issued (the reason, in words)."""


def _hash(secret: str) -> str:
    return hashlib.sha256(b"edge join code:" + secret.encode()).hexdigest()


def parse_code(code: str) -> tuple[str, str]:
    """(CA fingerprint prefix, secret) of a join code; ValueError if it is not one."""
    match = CODE.match(code.strip().lower())
    if not match:
        raise ValueError("a join code looks like 20 hex digits, a dash, and 32 hex digits "
                         "(as `edge tls join-code` printed it)")
    return match.group(1), match.group(2)


class JoinCodes:
    """The CA node's join codes not yet used, hashed, in `<data>/tls/join-codes.json`.

    Only one process writes it: the node while it runs (its admin API and the
    join endpoint, on its event loop, with no await between reading and
    writing), or `edge tls join-code` holding the folder lock.
    """

    def __init__(self, folder: TrustFolder) -> None:
        self.folder = folder
        self.path = folder.path / CODES_FILE

    def _load(self, now: float) -> list[dict[str, Any]]:
        try:
            codes = json.loads(self.path.read_text())
        except FileNotFoundError:
            return []
        except (OSError, ValueError):
            return []  # unreadable: no code is valid, a new one can be made
        return [code for code in codes if isinstance(code, dict)
                and isinstance(code.get("expires"), int | float) and code["expires"] > now]

    def _save(self, codes: list[dict[str, Any]]) -> None:
        _write(self.path, json.dumps(codes).encode(), secret=True)

    def make(self, minutes: int = CODE_MINUTES, now: float | None = None,
             name: str | None = None) -> str:
        """A new one-time code; TrustProblem if this node does not hold the CA key.

        `name`: the code is for that node name only, even one issued before (a node
        rebuilt, re-joining); without it, only a name never issued may use it.
        """
        if not self.folder.holds_ca_key():
            raise TrustProblem(
                f"this node does not hold the store CA key ({self.folder.path}): make join "
                "codes on the store's first node, where `edge tls init` was run")
        now = time.time() if now is None else now
        ca_cert = self.folder.ca_cert()
        secret = secrets.token_hex(16)
        codes = self._load(now)[-(MAX_CODES - 1):]
        codes.append({"hash": _hash(secret), "expires": now + minutes * 60, "name": name})
        self._save(codes)
        return f"{fingerprint(ca_cert)[:FINGERPRINT_HEX]}-{secret}"

    def find(self, secret: str, now: float | None = None) -> dict[str, Any] | None:
        """The valid code with that secret (not spent by this), or None."""
        now = time.time() if now is None else now
        wanted = _hash(secret)
        return next((code for code in self._load(now)
                     if hmac.compare_digest(str(code.get("hash")), wanted)), None)

    def use(self, secret: str, now: float | None = None) -> bool:
        """Spend a code: True once for a valid one, False for a wrong, used or expired one."""
        now = time.time() if now is None else now
        wanted = _hash(secret)
        codes = self._load(now)
        kept = [code for code in codes if not hmac.compare_digest(str(code.get("hash")), wanted)]
        if len(kept) == len(codes):
            return False
        self._save(kept)
        return True


# Names and addresses every node of the store shares (each reaches itself there).
SHARED = {"localhost", "127.0.0.1", "::1"}


class IssuedNames:
    """Which node each name and address was issued to (`<data>/tls/issued.json`, CA node).

    A join code in the wrong hands must not get a certificate for another node's name
    or address: tills and peers would take its holder for that node.
    """

    def __init__(self, folder: TrustFolder) -> None:
        self.path = folder.path / ISSUED_FILE

    def _load(self) -> list[dict[str, Any]]:
        try:
            issued = json.loads(self.path.read_text())
        except FileNotFoundError:
            return []
        return [entry for entry in issued if isinstance(entry, dict)]

    def clash(self, name: str, dns: list[str], addresses: list[str],
              renewing: str | None = None) -> str | None:
        """Why these cannot be issued to `name` (None: they can). `renewing`: the name a
        join code was made for, whose earlier names and addresses it may take again."""
        if name != renewing and any(entry.get("name") == name for entry in self._load()):
            return (f"a node named {name!r} already joined: give this one another name, or "
                    f"make the code for it with `edge tls join-code --name {name}` (a node "
                    "rebuilt)")
        wanted = {canonical(n) for n in [*dns, *addresses]} - SHARED
        for entry in self._load():
            if entry.get("name") in (name, renewing):
                continue
            taken = wanted & {canonical(str(n)) for n in [*entry.get("dns", []),
                                                          *entry.get("addresses", [])]}
            if taken:
                return (f"{', '.join(sorted(taken))} already belong to node "
                        f"{entry.get('name')!r}")
        return None

    def record(self, name: str, dns: list[str], addresses: list[str]) -> None:
        kept = [entry for entry in self._load() if entry.get("name") != name]
        kept.append({"name": name, "dns": dns, "addresses": addresses, "time": time.time()})
        _write(self.path, json.dumps(kept).encode(), secret=False)


def node_names(name: str, host: str, url: str | None, dns: list[str],
               addresses: list[str]) -> tuple[list[str], list[str]]:
    """The DNS names and addresses a node's TLS certificate covers: `edge-<name>.local`,
    localhost, its `server.url` host, where it listens (every address of the machine for
    0.0.0.0), loopback, and what store IT adds."""
    from urllib.parse import urlsplit

    from edge.replication.discovery import addresses_for

    names = [f"edge-{name}.local", "localhost", *dns]
    ips = ["127.0.0.1", "::1", *addresses]
    hosts = [host] if host not in ("0.0.0.0", "", "::") else addresses_for(host)
    if url:
        hosts.append(urlsplit(url).hostname or "")
    for candidate in hosts:
        if not candidate:
            continue
        if _is_ip(candidate):
            ips.append(candidate)
        else:
            names.append(candidate)
    return list(dict.fromkeys(n.lower().rstrip(".") for n in names)), list(dict.fromkeys(ips))


def canonical(name_or_address: str) -> str:
    """One spelling per name or address: `2001:db8:0::7` is `2001:db8::7`,
    `::ffff:192.0.2.7` is `192.0.2.7`, `Pos.Shop.` is `pos.shop`."""
    try:
        address = ipaddress.ip_address(name_or_address)
    except ValueError:
        return name_or_address.lower().rstrip(".")
    mapped = getattr(address, "ipv4_mapped", None)
    return str(mapped or address)


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def check_name(name: str) -> str:
    """A node name as it goes in `edge-<name>.local`; ValueError in words if it cannot."""
    name = name.strip().lower()
    if not LABEL.match(name):
        raise ValueError(f"node name {name!r}: use 1 to 40 letters, digits and dashes "
                         "(it becomes edge-<name>.local)")
    return name


# The CA node's side


@dataclass(frozen=True)
class JoinRequest:
    secret: str
    name: str
    dns: list[str]
    addresses: list[str]
    tls_public_key: ec.EllipticCurvePublicKey
    signing_public_key: ed25519.Ed25519PublicKey


def parse_join_request(body: Any) -> JoinRequest:
    """A joiner's request, checked field by field; JoinRefused (in words) if malformed."""
    if not isinstance(body, dict):
        raise JoinRefused("send a JSON object")
    secret = body.get("secret")
    if not isinstance(secret, str) or not re.fullmatch(r"[0-9a-f]{32}", secret):
        raise JoinRefused("'secret' must be the 32 hex digits after the dash of the join code")
    try:
        name = check_name(body.get("name") if isinstance(body.get("name"), str) else "")
    except ValueError as error:
        raise JoinRefused(str(error)) from None
    dns, addresses = body.get("dns"), body.get("addresses")
    if not isinstance(dns, list) or len(dns) > MAX_NAMES or not all(
            isinstance(n, str) and DNS_NAME.match(n) and not _is_ip(n) for n in dns):
        raise JoinRefused(f"'dns' must be a list of at most {MAX_NAMES} host names "
                          "(addresses go in 'addresses')")
    if not isinstance(addresses, list) or len(addresses) > MAX_NAMES or not all(
            isinstance(a, str) and _is_ip(a) for a in addresses):
        raise JoinRefused(f"'addresses' must be a list of at most {MAX_NAMES} IP addresses")
    try:
        tls_key = serialization.load_pem_public_key(str(body.get("tls_public_key")).encode())
        signing_key = serialization.load_pem_public_key(
            str(body.get("signing_public_key")).encode())
    except ValueError:
        raise JoinRefused("'tls_public_key' and 'signing_public_key' must be PEM public "
                          "keys") from None
    if not isinstance(tls_key, ec.EllipticCurvePublicKey) or \
            not isinstance(tls_key.curve, ec.SECP256R1):
        raise JoinRefused("'tls_public_key' must be an ECDSA P-256 key")
    if not isinstance(signing_key, ed25519.Ed25519PublicKey):
        raise JoinRefused("'signing_public_key' must be an Ed25519 key")
    dns = list(dict.fromkeys(canonical(n) for n in dns))
    addresses = list(dict.fromkeys(canonical(a) for a in addresses))
    # `edge-<name>.local` is how tills and peers find a node by name: the joiner's own only.
    others = [n for n in dns if n.startswith("edge-") and n.endswith(".local")
              and n != f"edge-{name}.local"]
    if others:
        raise JoinRefused(f"{', '.join(others)}: a node's mDNS name is edge-<its own "
                          "name>.local only")
    return JoinRequest(secret, name, dns, addresses, tls_key, signing_key)


def answer_join(folder: TrustFolder, store_id: str, request: JoinRequest) -> dict[str, str]:
    """Issue the joiner's certificates, the code being spent already (JoinCodes.use)."""
    ca_cert = folder.ca_cert()
    tls_pem, signing_pem = issue_node(
        folder.ca_key(), ca_cert, store_id, request.name, request.tls_public_key,
        request.signing_public_key, request.dns, request.addresses)
    return {"ca": cert_pem(ca_cert), "tls_cert": tls_pem, "signing_cert": signing_pem}


# The joining node's side


def _get(url: str, context: ssl.SSLContext, data: bytes | None = None) -> bytes:
    request = urllib.request.Request(
        url, data=data, method="POST" if data is not None else "GET",
        headers={"Content-Type": "application/json"} if data is not None else {})
    try:
        with urllib.request.urlopen(request, timeout=15, context=context) as response:
            return response.read(MAX_JOIN_BYTES * 4)
    except urllib.error.HTTPError as error:
        try:
            message = json.loads(error.read(MAX_JOIN_BYTES))["error"]["message"]
        except (ValueError, KeyError, TypeError):
            message = f"HTTP {error.code}"
        raise JoinRefused(f"the CA node refused: {message}") from None
    except ssl.SSLCertVerificationError as error:
        raise JoinRefused(f"{url}: its certificate is not one of this store's CA "
                          f"({error.verify_message}): is that the CA node's address, and "
                          "does its certificate cover it?") from None
    except OSError as error:
        raise JoinRefused(f"cannot reach {url}: {getattr(error, 'reason', error)}") from None


def join_store(folder: TrustFolder, store_id: str, url: str, code: str, name: str,
               dns: list[str], addresses: list[str]) -> str:
    """Join this node to the store through its CA node at `url`; the CA's fingerprint."""
    try:
        expected, secret = parse_code(code)
    except ValueError as error:
        raise JoinRefused(str(error)) from None
    url = url.rstrip("/")
    if not url.startswith("https://"):
        raise JoinRefused(f"{url}: give the CA node's https:// address (it serves HTTPS once "
                          "`edge tls init` was run and it was restarted)")
    unverified = ssl.create_default_context()
    unverified.check_hostname = False
    unverified.verify_mode = ssl.CERT_NONE  # nothing is trusted yet: the code's fingerprint is
    try:
        ca_cert = load_cert(_get(f"{url}/api/tls/ca", unverified))
    except ValueError:
        raise JoinRefused(f"{url}/api/tls/ca did not answer with a certificate: is that an "
                          "edge node?") from None
    got = fingerprint(ca_cert)
    if not hmac.compare_digest(got[:FINGERPRINT_HEX], expected):
        raise JoinRefused(
            f"the CA certificate {url} gave (fingerprint {got[:FINGERPRINT_HEX]}...) is not "
            f"the one of the join code ({expected}...): nothing was installed. Check the "
            "address; someone on the network may be posing as the CA node")
    if store_id not in stores_named(ca_cert):
        raise JoinRefused(f"{url} is the CA of another store than {store_id!r} (store.id in "
                          "the config must be the same on every node)")
    ca_pem = cert_pem(ca_cert)
    verified = ssl.create_default_context(cadata=ca_pem)
    tls_key, signing_key = folder.make_keys()
    body = json.dumps({
        "secret": secret, "name": name, "dns": dns, "addresses": addresses,
        "tls_public_key": public_key_pem(tls_key.public_key()),
        "signing_public_key": public_key_pem(signing_key.public_key()),
    }).encode()
    try:
        answer = json.loads(_get(f"{url}/api/tls/join", verified, body))
        if answer.get("ca") != ca_pem:
            raise JoinRefused("the CA node answered with another CA certificate")
        folder.install(ca_pem, str(answer["tls_cert"]), str(answer["signing_cert"]))
        folder.load(store_id)
    except (ValueError, KeyError, TypeError, TrustProblem, JoinRefused) as error:
        _forget(folder.path)
        if isinstance(error, JoinRefused):
            raise
        raise JoinRefused(f"the CA node's answer could not be installed: {error}") from None
    except BaseException:
        _forget(folder.path)
        raise
    return got


def _forget(path: Path) -> None:
    """A join that failed leaves no half-made folder: `edge tls join` can be run again."""
    for entry in path.iterdir() if path.is_dir() else []:
        entry.unlink(missing_ok=True)
    if path.is_dir():
        os.rmdir(path)
