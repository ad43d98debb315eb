"""`edge tls`: store IT makes the store CA, joins nodes to it, and sees what a node holds.

    edge tls init [--name N] [--address IP ...] [--dns NAME ...]   the first node
    edge tls join-code                                            on that node
    edge tls join URL CODE [--name N] [--address IP ...] [--dns NAME ...]   the others
    edge tls show

`init` and `join` write the node's `<data>/tls/` under the data folder's lock
(the node must not run: it loads its certificates at start). `join-code` asks
the running node if there is one (it owns the folder), else writes it here.
docs/tls.md is the guide.
"""

from __future__ import annotations

import argparse
import datetime
import sys
from pathlib import Path

from cryptography import x509

from edge.config import Config
from edge.trust.certificates import fingerprint, load_cert
from edge.trust.folder import TLS_CERT, TrustFolder, TrustProblem, default_node_name
from edge.trust.join import IssuedNames


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    tls = sub.add_parser("tls", help="the store's certificates: init (first node), join-code, "
                                     "join (other nodes), show")
    actions = tls.add_subparsers(dest="tls_action", metavar="ACTION", required=True)

    def with_store_options(p: argparse.ArgumentParser) -> None:
        p.add_argument("--config", type=Path, help="store config file (TOML); none = demo store")
        p.add_argument("--data", type=Path, help="data folder (default ./edge-data)")

    def with_names(p: argparse.ArgumentParser) -> None:
        p.add_argument("--name", help="this node's name: edge-<name>.local (default: the "
                                      "machine's host name)")
        p.add_argument("--address", action="append", default=[],
                       help="one more IP address the certificate covers (repeatable)")
        p.add_argument("--dns", action="append", default=[],
                       help="one more host name the certificate covers (repeatable)")

    init = actions.add_parser("init", help="make the store CA and this node's certificates "
                                           "(the store's first node; the node stopped)")
    with_store_options(init)
    with_names(init)
    code = actions.add_parser("join-code", help="a one-time code for another node to join "
                                                "(on the CA node), valid 15 minutes")
    with_store_options(code)
    code.add_argument("--name", help="the code is for this node name only, which may have "
                                     "joined before (a node rebuilt); without it, only a "
                                     "new name may use it")
    join = actions.add_parser("join", help="get this node's certificates from the CA node "
                                           "with a join code (the node stopped)")
    with_store_options(join)
    join.add_argument("url", help="the CA node's address, e.g. https://10.0.0.5:8080")
    join.add_argument("code", help="the code `edge tls join-code` printed on the CA node")
    with_names(join)
    show = actions.add_parser("show", help="this node's certificates: names, addresses, "
                                           "expiry, the CA's fingerprint")
    with_store_options(show)


def run_tls(config: Config, args: argparse.Namespace) -> int:
    try:
        if args.tls_action == "init":
            return _init(config, args)
        if args.tls_action == "join-code":
            return _join_code(config, args.name)
        if args.tls_action == "join":
            return _join(config, args)
        return _show(config)
    except TrustProblem as problem:
        print(problem, file=sys.stderr)
        return 1


def _names(config: Config, args: argparse.Namespace) -> tuple[str, list[str], list[str]]:
    from edge.trust.join import _is_ip, check_name, node_names

    name = check_name(args.name or default_node_name())
    bad = [address for address in args.address if not _is_ip(address)]
    if bad:
        raise ValueError(f"--address {bad[0]!r} is not an IP address")
    dns, ips = node_names(name, config.host, config.url, args.dns, args.address)
    return name, dns, ips


def _locked(config: Config, what: str):  # type: ignore[no-untyped-def]
    """The data folder's lock, or None with the reason printed (a node runs there)."""
    from edge.journal.datafolder import FolderInUse, FolderLock

    lock = FolderLock(config.data_dir)
    try:
        lock.acquire(what)
    except FolderInUse as error:
        print(f"{error}. Stop the node first (systemctl stop edge): it loads its "
              "certificates when it starts.", file=sys.stderr)
        return None
    return lock


def _init(config: Config, args: argparse.Namespace) -> int:
    try:
        name, dns, ips = _names(config, args)
    except ValueError as error:
        print(error, file=sys.stderr)
        return 2
    folder = TrustFolder(config.data_dir)
    if folder.path.joinpath("store-ca.pem").exists():
        print(f"{folder.path} already holds the store's certificates (made by `edge tls "
              "init` or `edge tls join`): nothing was changed. `edge tls show` says what "
              "they are.", file=sys.stderr)
        return 1
    lock = _locked(config, "edge tls init")
    if lock is None:
        return 1
    try:
        trust = folder.init_store(config.store_id, name, dns, ips)
        IssuedNames(folder).record(name, dns, ips)  # no joining node may take them
    finally:
        lock.release()
    print(f"Store CA made for store {config.store_id}; this node is {trust.node_name}.")
    print(f"CA fingerprint (SHA-256): {_spaced(fingerprint(trust.ca_cert))}")
    print(f"CA certificate, to install on every till: {trust.ca_file}")
    print(f"This node's certificate covers: {', '.join(dns + ips)}")
    print("Keep this node's data folder safe: it alone holds the CA key "
          f"({folder.path / 'store-ca.key'}). Other nodes join with `edge tls join-code` here "
          "and `edge tls join` there; start (or restart) the node to serve HTTPS.")
    return 0


def _join_code(config: Config, name: str | None) -> int:
    from edge.admin import NodeRefused, ask_node
    from edge.journal.datafolder import FolderInUse, FolderLock
    from edge.trust.join import CODE_MINUTES, JoinCodes, check_name

    try:
        name = check_name(name) if name else None
    except ValueError as error:
        print(error, file=sys.stderr)
        return 2
    folder = TrustFolder(config.data_dir)
    if not folder.exists():
        print(f"{folder.path} holds no store certificates: run `edge tls init` on the "
              "store's first node.", file=sys.stderr)
        return 1
    lock = FolderLock(config.data_dir)
    try:
        lock.acquire("edge tls join-code")
    except FolderInUse:
        try:
            code = ask_node(config, "/api/admin/tls/join-code", {"name": name})["code"]
        except NodeRefused as refused:
            print(refused, file=sys.stderr)
            return 1
    else:
        try:
            code = JoinCodes(folder).make(name=name)
        finally:
            lock.release()
    url = _own_url(config)
    print(f"Join code: {code}")
    print(f"Valid {CODE_MINUTES} minutes, once. On the new node (stopped), run:")
    print(f"  edge tls join {url} {code}")
    return 0


def _own_url(config: Config) -> str:
    """This node's address as the new node should dial it (what the running node wrote)."""
    url_file = config.data_dir / "till-url"
    try:
        url = url_file.read_text().strip().rstrip("/")
    except OSError:
        url = ""
    return url if url.startswith("https://") else "https://<this node's address>:<port>"


def _join(config: Config, args: argparse.Namespace) -> int:
    from edge.trust.join import JoinRefused, join_store

    try:
        name, dns, ips = _names(config, args)
    except ValueError as error:
        print(error, file=sys.stderr)
        return 2
    folder = TrustFolder(config.data_dir)
    if folder.path.joinpath("store-ca.pem").exists():
        print(f"{folder.path} already holds store certificates: nothing was changed. To join "
              f"again, move {folder.path} away first (this node then signs under a new key).",
              file=sys.stderr)
        return 1
    lock = _locked(config, "edge tls join")
    if lock is None:
        return 1
    try:
        got = join_store(folder, config.store_id, args.url, args.code, name, dns, ips)
    except JoinRefused as refused:
        print(f"Join refused, nothing installed: {refused}", file=sys.stderr)
        return 1
    finally:
        lock.release()
    print(f"Joined store {config.store_id} as {name}.")
    print(f"CA fingerprint (SHA-256): {_spaced(got)}")
    print(f"This node's certificate covers: {', '.join(dns + ips)}")
    print("Start (or restart) the node: it serves HTTPS and links to its peers over mutual TLS.")
    return 0


def _show(config: Config) -> int:
    folder = TrustFolder(config.data_dir)
    if not folder.exists():
        print(f"{folder.path} holds no store certificates: run `edge tls init` on the store's "
              "first node, `edge tls join` on the others (the demo store makes its own at "
              "start).", file=sys.stderr)
        return 1
    trust = folder.load(config.store_id)
    tls = load_cert((folder.path / TLS_CERT).read_bytes())
    san = tls.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    names = san.get_values_for_type(x509.DNSName)
    addresses = [str(ip) for ip in san.get_values_for_type(x509.IPAddress)]
    print(f"store: {trust.store_id}")
    print(f"node name: {trust.node_name} (edge-{trust.node_name}.local)")
    print(f"CA: {trust.ca_file}")
    print(f"CA fingerprint (SHA-256): {_spaced(fingerprint(trust.ca_cert))}")
    print(f"CA expires: {_date(trust.ca_cert)}")
    print(f"holds the CA key: {'yes (join codes are made here)' if trust.holds_ca_key else 'no'}")
    print(f"TLS certificate: {trust.tls_cert_file}")
    print(f"  names: {', '.join(names) or '-'}")
    print(f"  addresses: {', '.join(addresses) or '-'}")
    print(f"  expires: {_date(tls)}{_soon(tls)}")
    print(f"signing certificate: {folder.path / 'signing.pem'} ({trust.signer.role} "
          f"{trust.signer.name})")
    serving = "HTTPS" if config.serves_tls else "plain HTTP (loopback or demo only)"
    print(f"server.tls: {config.tls} -> {serving} on {config.host}:{config.port}")
    return 0


def _spaced(hex_digest: str) -> str:
    """As tills show it (Android, iPadOS, Windows): pairs of hex digits, upper case."""
    return " ".join(hex_digest[i:i + 2] for i in range(0, len(hex_digest), 2)).upper()


def _date(cert: x509.Certificate) -> str:
    return cert.not_valid_after_utc.strftime("%Y-%m-%d")


def _soon(cert: x509.Certificate) -> str:
    left = cert.not_valid_after_utc - datetime.datetime.now(datetime.UTC)
    if left < datetime.timedelta(days=60):
        return f" (in {left.days} days: join this node again with a new code)"
    return ""
