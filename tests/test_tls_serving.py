"""`edge tls init` makes the store CA; the node then serves HTTPS/WSS with its certificate.

A client trusting the store CA connects (as a till with the CA installed); one
without it is refused by its own TLS check. Plain HTTP is refused where it
would be readable on the shop network.
"""

from __future__ import annotations

import asyncio
import re
import ssl
import subprocess
from pathlib import Path

import aiohttp
import pytest
from conftest import EDGE, ROOT, EdgeProcess, Till, free_port, store_node_config
from cryptography.hazmat.primitives.asymmetric import ec

from edge.trust.certificates import (
    cert_pem,
    fingerprint,
    issue_tls_certificate,
    key_pem,
    load_cert,
    make_store_ca,
)


async def edge(*args: str) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(subprocess.run, [*EDGE, *args], capture_output=True,
                                   text=True, timeout=60, cwd=ROOT)


async def test_init_then_the_node_serves_https_that_only_the_store_ca_opens(
        tmp_path: Path) -> None:
    port = free_port()
    config = store_node_config(tmp_path / "shop", [], port=port)
    data = tmp_path / "shop" / "data"
    where = ["--config", str(config), "--data", str(data)]
    made = await edge("tls", "init", *where, "--name", "caisse1",
                      "--dns", "pos.example.test", "--address", "192.0.2.7")
    assert made.returncode == 0, made.stderr
    ca_file = data / "tls" / "store-ca.pem"
    digest = fingerprint(load_cert(ca_file.read_bytes()))
    assert str(ca_file) in made.stdout
    shown = re.search(r"CA fingerprint \(SHA-256\): ([0-9A-F ]+)", made.stdout)
    assert shown and shown.group(1).replace(" ", "").lower() == digest

    again = await edge("tls", "init", *where)
    assert again.returncode == 1 and "already holds" in again.stderr
    assert fingerprint(load_cert(ca_file.read_bytes())) == digest  # nothing changed

    show = await edge("tls", "show", *where)
    assert show.returncode == 0, show.stderr
    assert "edge-caisse1.local" in show.stdout and "pos.example.test" in show.stdout
    assert "192.0.2.7" in show.stdout and "127.0.0.1" in show.stdout
    assert "holds the CA key: yes" in show.stdout
    assert digest[:4].upper() in show.stdout.replace(" ", "")

    node = EdgeProcess(data, port, ["--config", str(config)], https=True)
    node.start()
    try:
        assert node.url.startswith("https://")
        async with node.session() as session:
            async with session.get(f"{node.url}/healthz") as response:
                assert response.status == 200
                assert (await response.json())["store_id"] == "demo-boulangerie"
            # The till websocket is WSS, and `auth` lists this node by its https URL.
            token = await pair(node, session)
            async with session.ws_connect(f"{node.url}/api/ws") as ws:
                auth = await Till(ws, token).call("auth", token=token)
            assert auth["nodes"] == [{"id": node.node_id, "url": node.url, "name": "caisse1"}]
        async with aiohttp.ClientSession() as stranger:
            with pytest.raises(aiohttp.ClientConnectorCertificateError):
                await stranger.get(f"{node.url}/healthz")
        # Store IT's commands reach the running node over HTTPS, by its CA.
        pairing = await edge("pair", *where)
        assert pairing.returncode == 0, pairing.stderr
        assert "made by the running node" in pairing.stdout
        status = await edge("status", *where)
        assert status.returncode == 0, status.stderr
        assert "link state" not in status.stdout  # the node answered
        busy = await edge("tls", "join", "https://127.0.0.1:1", "0" * 20 + "-" + "0" * 32,
                          *where)
        assert busy.returncode == 1 and "already holds" in busy.stderr
    finally:
        node.stop()


async def pair(node: EdgeProcess, session: aiohttp.ClientSession) -> str:
    from edge.selling.tills import create_pairing_code

    code = create_pairing_code(node.data_dir / "edge.sqlite3")
    async with session.post(f"{node.url}/api/pair", json={"code": code, "name": "T"}) as reply:
        assert reply.status == 200, await reply.text()
        return (await reply.json())["token"]


async def test_plain_http_is_refused_on_the_shop_network(tmp_path: Path) -> None:
    folder = tmp_path / "shop"
    folder.mkdir()
    config = folder / "edge.toml"
    config.write_text('[store]\nid = "s1"\ndemo = false\n[server]\nhost = "0.0.0.0"\n'
                      'tls = "off"\ndata = "data"\n')
    check = await edge("check", "--config", str(config))
    assert check.returncode == 2
    assert "server.tls is off but the node listens on 0.0.0.0" in check.stderr
    config.write_text('[store]\nid = "s1"\ndemo = false\n[server]\ndata = "data"\n')
    # --host and --tls on the command line: refused before anything listens.
    serve = await edge("serve", "--config", str(config), "--host", "192.0.2.1", "--tls", "off",
                       "--no-advertise")
    assert serve.returncode == 1
    assert "Plain HTTP is only for loopback" in serve.stderr
    assert not (folder / "data" / "edge.sqlite3").exists()
    # On loopback, `auto` is plain HTTP; a node without certificates says what to run.
    serve = await edge("serve", "--config", str(config), "--tls", "on", "--no-advertise",
                       "--port", str(free_port()))
    assert serve.returncode == 1
    assert "edge tls init" in serve.stderr



def test_an_admin_command_on_a_folder_without_certificates_says_what_to_do(
        edge_process: EdgeProcess) -> None:
    """A journal whose `tls/` is gone (or never made): words, not a traceback."""
    edge_process.start()
    edge_process.stop()
    for path in (edge_process.data_dir / "tls").iterdir():
        path.unlink()
    for command in (["staff", "list"], ["tills", "list"]):
        done = subprocess.run([*EDGE, *command, "--data", str(edge_process.data_dir)],
                              capture_output=True, text=True, timeout=60, cwd=ROOT)
        assert done.returncode == 1, done
        assert "Traceback" not in done.stderr, done.stderr
        assert "run `edge tls init` / `edge tls join`" in done.stderr


async def test_a_public_certificate_is_shown_for_the_shops_own_name_only(
        tmp_path: Path) -> None:
    """A shop with its own domain: tills opening that name need nothing installed; peers
    and everyone else still get the store's certificate."""
    public_ca_key, public_ca = make_store_ca("a public CA")  # stands in for Let's Encrypt
    key = ec.generate_private_key(ec.SECP256R1())
    cert = issue_tls_certificate(public_ca_key, public_ca, "a public CA", "caisse1",
                                 key.public_key(), ["caisse1.shop.example"], [])
    folder = tmp_path / "node"
    folder.mkdir()
    (folder / "public.pem").write_text(cert_pem(cert))
    (folder / "public.key").write_bytes(key_pem(key))
    (folder / "public.key").chmod(0o600)
    port = free_port()
    config = store_node_config(folder, [], port=port)
    text = config.read_text().replace(
        "[server]\n", '[server]\ntls = "on"\npublic_cert_file = "public.pem"\n'
                      'public_key_file = "public.key"\n')
    config.write_text(text)
    node = EdgeProcess(folder / "data", port, ["--config", str(config)], https=True)
    node.start()
    try:
        trusts_public_ca = ssl.create_default_context(cadata=cert_pem(public_ca))
        async with aiohttp.ClientSession() as session:
            # By the shop's name: the public certificate, which the till already trusts.
            async with session.get(f"{node.url}/healthz", ssl=trusts_public_ca,
                                   server_hostname="caisse1.shop.example") as reply:
                assert reply.status == 200
            # By address (as peers dial): the store's certificate, not the public one.
            async with session.get(f"{node.url}/healthz", ssl=node.tls_context()) as reply:
                assert reply.status == 200
            with pytest.raises(aiohttp.ClientConnectorCertificateError):
                async with session.get(f"{node.url}/healthz", ssl=trusts_public_ca):
                    pass
    finally:
        node.stop()
