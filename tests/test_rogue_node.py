"""The rogue-node attack (issue 9, point 1 and acceptance 1): an impostor gets nothing.

Anyone on the shop's Wi-Fi can announce `_edge-pos._tcp` with the store id.
Before, the real node dialled such an impostor, failed the key handshake, and
still listed it to every till in `auth.nodes`; when the real node died, the
till sent the impostor its token, then the cashier's PIN.

Here, on a real (virtual) LAN: three network namespaces on one switch (a
bridge), real multicast between them:
  - the store's node (`edge tls init` with its address, HTTPS, zeroconf),
  - an impostor (tests/impostor.py) announcing the same store id and serving
    HTTPS with a certificate that names the store, issued by a CA of its own,
  - a till: real chromium, the store CA trusted in its NSS database (as store
    IT installs it), paired over HTTPS, a cashier logged in, selling.
The node finds the impostor and dials it (its certificate is refused); the
till is never told about it, never dials it when the node dies (it sells
offline), and when the impostor's URL is put first in the till's saved node
list by hand, chromium refuses its certificate: not one byte of a token or a
PIN reaches it. A control at the end shows the impostor would record them.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from conftest import EDGE, ROOT, free_port, store_node_config
from netns import in_namespace, switched_hosts
from playwright.async_api import Browser, Page, WebSocket, async_playwright, expect
from test_pricing_vectors import served_web_page
from test_till_offline import BACK_ONLINE_MS, BAGUETTE, ESPRESSO, ShopNode, log_in, pay_cash, scan
from test_till_service_worker import trust_in_nss

STORE_ID = "demo-boulangerie"
NODE_NAME = "caisse-centrale"
# The node, the impostor, the till: three machines on the shop's LAN.
PREFIX = "10.231.7"
NODE_ADDRESS, IMPOSTOR_ADDRESS, TILL_ADDRESS = (f"{PREFIX}.{n}" for n in (1, 2, 3))
PIN = "1234"  # the demo store's Alice
WAIT_S = 30  # bound on each wait for something to happen on the LAN


# --- the till's node list (web/client.js), in chromium, no network -----------------------

CLIENT_CHECKS = """async () => {
  const { socketUrlOf, TillClient } = await import('/client.js');
  const https = 'https://10.0.0.1:8443';
  const http = 'http://10.0.0.1:8080';
  const candidates = [
    'https://10.0.0.2:8443', 'https://edge-caisse-2.local:8443/', 'http://10.0.0.2:8080',
    'ws://10.0.0.2:8080', 'javascript:alert(1)', 'https://user:secret@10.0.0.2:8443',
    'https://10.0.0.2:8443/elsewhere', 'https://10.0.0.2:8443/?x=1', 'https://10.0.0.2:8443/#x',
    'not a url', '', null, 42, {},
  ];
  const onHttps = candidates.map((url) => [String(url), socketUrlOf(url, https)]);
  const onHttp = candidates.map((url) => [String(url), socketUrlOf(url, http)]);

  localStorage.setItem('edge.nodes', JSON.stringify([
    { id: 'a', url: 'http://10.0.0.9:8080' }, { id: 'b', url: 'https://10.0.0.2:8443' },
    'junk', { id: 7, url: 'https://10.0.0.3:8443' }, { id: 'c', url: 'https://10.0.0.4:8443/x' },
  ]));
  const saved = localStorage.getItem('edge.nodes');
  const tillOnHttps = new TillClient(https);
  const loadedOnHttps = tillOnHttps.nodes;
  tillOnHttps.learnNodes({ node: { id: 'h' }, nodes: [
    { id: 'h', url: https }, { id: 'p', url: 'http://10.0.0.5:8080' },
    { id: 'q', url: 'https://10.0.0.6:8443' }, { id: 'r', url: 'https://u:p@10.0.0.7' },
  ] }, https);
  const learnedOnHttps = tillOnHttps.nodes;
  const savedOnHttps = JSON.parse(localStorage.getItem('edge.nodes'));

  localStorage.setItem('edge.nodes', saved);
  const loadedOnHttp = new TillClient(http).nodes;
  return { onHttps, onHttp, loadedOnHttps, learnedOnHttps, savedOnHttps, loadedOnHttp };
}"""


async def test_an_https_till_dials_only_well_formed_https_nodes() -> None:
    async with served_web_page() as page:
        seen = await page.evaluate(CLIENT_CHECKS)
    wss = "wss://10.0.0.2:8443/api/ws"
    assert dict(seen["onHttps"]) == {
        "https://10.0.0.2:8443": wss,
        "https://edge-caisse-2.local:8443/": "wss://edge-caisse-2.local:8443/api/ws",
        # Never a downgrade to ws:// from an https page, nor anything not a node's URL.
        "http://10.0.0.2:8080": None, "ws://10.0.0.2:8080": None, "javascript:alert(1)": None,
        "https://user:secret@10.0.0.2:8443": None, "https://10.0.0.2:8443/elsewhere": None,
        "https://10.0.0.2:8443/?x=1": None, "https://10.0.0.2:8443/#x": None,
        "not a url": None, "": None, "null": None, "42": None, "[object Object]": None,
    }
    # A till on plain http (loopback, the demo) may use both.
    on_http = dict(seen["onHttp"])
    assert on_http["http://10.0.0.2:8080"] == "ws://10.0.0.2:8080/api/ws"
    assert on_http["https://10.0.0.2:8443"] == wss

    home = {"id": None, "url": "https://10.0.0.1:8443"}
    assert seen["loadedOnHttps"] == [{"id": "b", "url": "https://10.0.0.2:8443"},
                                     {"id": None, "url": "https://10.0.0.3:8443"}, home]
    learned = [{"id": "h", "url": "https://10.0.0.1:8443"},
               {"id": "q", "url": "https://10.0.0.6:8443"},
               {"id": "b", "url": "https://10.0.0.2:8443"},
               {"id": None, "url": "https://10.0.0.3:8443"}]
    assert seen["learnedOnHttps"] == learned
    assert seen["savedOnHttps"] == learned  # the saved list drops anything not https
    assert {"id": "a", "url": "http://10.0.0.9:8080"} in seen["loadedOnHttp"]


# --- the attack, on a LAN of three machines ----------------------------------------------


class StoreNode(ShopNode):
    """The store's node: HTTPS with `edge tls init` certificates, announced with zeroconf."""

    def __init__(self, ns: str, folder: Path) -> None:
        self.config = store_node_config(folder, [], advertise=True)
        super().__init__(ns, folder, address=NODE_ADDRESS)
        # Not ShopNode's options (plain HTTP, not announced): HTTPS, announced.
        self.extra = ["--config", str(self.config), "--tls", "on"]
        self.https = True
        self.url = f"https://{NODE_ADDRESS}:{self.port}"

    def make_certificates(self) -> None:
        made = subprocess.run(
            [*EDGE, "tls", "init", "--config", str(self.config), "--data", str(self.data),
             "--name", NODE_NAME, "--address", NODE_ADDRESS],
            capture_output=True, text=True, timeout=60, cwd=ROOT)
        assert made.returncode == 0, made.stdout + made.stderr


class Impostor:
    """tests/impostor.py in its own namespace; `record()` is everything it was sent."""

    def __init__(self, ns: str, folder: Path) -> None:
        self.ns = ns
        self.port = free_port()
        self.url = f"https://{IMPOSTOR_ADDRESS}:{self.port}"
        self.record_file = folder / "impostor.jsonl"
        self.log = folder / "impostor.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def launch(self) -> None:
        folder = self.record_file.parent
        folder.mkdir(parents=True, exist_ok=True)
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(
                in_namespace(self.ns, [sys.executable, str(ROOT / "tests" / "impostor.py"),
                                       "--host", IMPOSTOR_ADDRESS, "--port", str(self.port),
                                       "--store", STORE_ID, "--record", str(self.record_file)]),
                stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)

    async def start(self) -> None:
        self.launch()
        await until(lambda: b"impostor ready" in self.log.read_bytes(), "the impostor to start",
                    lambda: self.log.read_text())

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)

    def record(self) -> list[dict[str, Any]]:
        if not self.record_file.exists():
            return []
        lines = self.record_file.read_text(encoding="utf-8").splitlines()
        return [json.loads(line) for line in lines if line.endswith("}")]

    def connections_from(self, address: str) -> list[dict[str, Any]]:
        return [e for e in self.record() if e["kind"] == "connection" and e["remote"] == address]

    def decrypted(self) -> list[dict[str, Any]]:
        """What reached it past TLS: requests, till and peer messages."""
        return [e for e in self.record() if e["kind"] not in ("connection", "received")]

    def received_from(self, address: str) -> list[dict[str, Any]]:
        """Each closed connection from `address`, with every byte it sent (base64)."""
        return [e for e in self.record() if e["kind"] == "received" and e["remote"] == address]

    def raw_bytes_from(self, address: str) -> bytes:
        return b"".join(base64.b64decode(e["bytes"]) for e in self.received_from(address))


@dataclass
class TillSockets:
    """Every websocket the till's page opened, and every frame on each (Playwright sees them
    all, even one whose TLS handshake fails)."""

    urls: list[str] = field(default_factory=list)
    sent: list[tuple[str, str]] = field(default_factory=list)
    received: list[tuple[str, str]] = field(default_factory=list)

    def watch(self, page: Page) -> None:
        def opened(socket: WebSocket) -> None:
            url = socket.url
            self.urls.append(url)
            socket.on("framesent", lambda payload: self.sent.append((url, str(payload))))
            socket.on("framereceived", lambda payload: self.received.append((url, str(payload))))

        page.on("websocket", opened)

    def nodes_listed(self) -> list[list[str]]:
        """The `auth.nodes` of every auth answer the till got: the URLs listed."""
        listed = []
        for _, payload in self.received:
            try:
                message = json.loads(payload)
            except ValueError:
                continue
            result = message.get("result") if isinstance(message, dict) else None
            if isinstance(result, dict) and isinstance(result.get("nodes"), list):
                listed.append([node.get("url") for node in result["nodes"]])
        return listed


async def until(check: Callable[[], Any], what: str,
                explain: Callable[[], Any] = lambda: "") -> None:
    for _ in range(WAIT_S * 20):
        if check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"waited {WAIT_S} s for {what}: {explain()}")


async def launch_till_browser(playwright: Any, ns: str, home: Path, folder: Path) -> Browser:
    # Playwright drives chromium over a pipe, so the browser can live on the till's host.
    chromium = folder / "chromium-on-till"
    chromium.write_text(f'#!/bin/sh\nexec {shutil.which("ip")} netns exec {ns} '
                        '/usr/bin/chromium "$@"\n')
    chromium.chmod(0o755)
    # Without the resolver rules chromium sends DNS queries off the machine.
    resolver = ", ".join(["MAP * ~NOTFOUND", "EXCLUDE 127.0.0.1", *(
        f"EXCLUDE {address}" for address in (NODE_ADDRESS, IMPOSTOR_ADDRESS, TILL_ADDRESS))])
    return await playwright.chromium.launch(
        executable_path=str(chromium),
        args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
              "--no-first-run", "--disable-background-networking",
              "--disable-component-update", "--disable-sync",
              f"--host-resolver-rules={resolver}"],
        env={"HOME": str(home), "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"},
    )


@dataclass
class ShopLan:
    node: StoreNode
    impostor: Impostor
    browser: Browser
    till_ns: str


@pytest.fixture
async def shop_lan(tmp_path: Path) -> AsyncIterator[ShopLan]:
    with switched_hosts(3, PREFIX) as [(node_ns, _), (impostor_ns, _), (till_ns, _)]:
        impostor = Impostor(impostor_ns, tmp_path / "impostor")
        node = StoreNode(node_ns, tmp_path / "node")
        try:
            node.make_certificates()
            await impostor.start()
            node.start()
            home = tmp_path / "till-home"
            trust_in_nss(home, node.ca_file)  # as store IT installs the store CA on a till
            async with async_playwright() as playwright:
                browser = await launch_till_browser(playwright, till_ns, home, tmp_path)
                yield ShopLan(node, impostor, browser, till_ns)
                await browser.close()
        finally:
            node.stop()
            impostor.stop()


def no_secret_in(data: bytes, token: str) -> bool:
    return token.encode() not in data and b'"pin"' not in data


async def test_an_impostor_announcing_the_store_gets_no_token_no_pin_and_is_never_listed(
    shop_lan: ShopLan,
) -> None:
    lan = shop_lan
    node, impostor = lan.node, lan.impostor

    # The node finds the impostor by zeroconf and dials it: the impostor sees the node's
    # TLS handshake, and the node refuses its certificate (not one of this store's).
    await until(lambda: any(c["tls"] for c in impostor.connections_from(NODE_ADDRESS)),
                "the node to dial the impostor it discovered", impostor.record)
    await until(lambda: f"peer {impostor.url} refused" in node.log.read_text(),
                "the node to log that it refused the impostor", node.log.read_text)
    assert impostor.decrypted() == []  # not one request, not one peer message

    # A till paired over HTTPS, the store CA trusted: a secure context, a cashier selling.
    page = await lan.browser.new_page(locale="fr-FR")
    sockets = TillSockets()
    sockets.watch(page)
    link = await node.pairing_link()
    assert link.startswith(f"{node.url}/"), link
    await page.goto(link)
    assert await page.evaluate("window.isSecureContext") is True
    await log_in(page, "alice", PIN)
    status = page.locator("#status")
    await expect(status).to_have_attribute("data-state", "online")
    await expect(status).to_have_attribute("data-catalogue", re.compile(r"^[1-9]\d\d+$"))
    token = await page.evaluate("localStorage.getItem('edge.till_token')")
    assert token
    await scan(page, BAGUETTE)
    await expect(page.locator(".basket-line")).to_have_count(1)
    await pay_cash(page, "2")
    await expect(page.locator("#receipt-number")).to_have_text(f"{node.first_till}-000001")
    await expect(page.locator("#done-offline")).to_be_hidden()
    await page.click("#new-sale")

    # The node was dialling the impostor all along; the till is told of the node alone.
    assert sockets.nodes_listed(), sockets.received
    assert all(urls == [node.url] for urls in sockets.nodes_listed()), \
        sockets.nodes_listed()
    saved = json.loads(await page.evaluate("localStorage.getItem('edge.nodes')"))
    assert [each["url"] for each in saved] == [node.url]

    # The node dies: the till goes round its nodes again and again, never to the impostor,
    # and sells offline.
    node.kill()
    dialled_before_kill = len(sockets.urls)
    await expect(status).to_have_attribute("data-state", "offline")
    await scan(page, ESPRESSO)
    await expect(page.locator(".basket-line")).to_have_count(1)
    await pay_cash(page, "2")
    await expect(page.locator("#receipt-number")).to_have_text(f"{node.first_till}-000002")
    await expect(page.locator("#done-offline")).to_be_visible()
    await page.click("#new-sale")
    # Every round of the till's list tries each node it knows: three rounds at least.
    await until(lambda: len(sockets.urls) - dialled_before_kill >= 3,
                "the till to try its nodes three times", lambda: sockets.urls)
    node_socket = f"wss://{NODE_ADDRESS}:{node.port}/api/ws"
    assert set(sockets.urls) == {node_socket}, sockets.urls
    assert impostor.connections_from(TILL_ADDRESS) == []
    assert impostor.decrypted() == []
    assert no_secret_in(impostor.raw_bytes_from(NODE_ADDRESS), token)

    # The node is back: the till finds it, the cashier goes on, the offline sale arrives.
    node.start()
    await expect(status).to_have_attribute("data-state", "online", timeout=BACK_ONLINE_MS)
    await expect(status).to_have_attribute("data-waiting-sales", "0", timeout=BACK_ONLINE_MS)
    assert [sale["receipt_number"] for sale in node.sales()] == [
        f"{node.first_till}-000001", f"{node.first_till}-000002"]

    # Now the impostor's URL is put first in the till's saved nodes, by hand, and the page
    # reloaded: chromium tries it, refuses its certificate, and goes on to the real node.
    await page.evaluate("""(url) => {
      const nodes = JSON.parse(localStorage.getItem('edge.nodes') || '[]');
      localStorage.setItem('edge.nodes', JSON.stringify([{ id: 'n0', url }, ...nodes]));
    }""", impostor.url)
    dialled_before_reload = len(sockets.urls)
    await page.reload()
    await expect(status).to_have_attribute("data-state", "online", timeout=BACK_ONLINE_MS)
    impostor_socket = f"wss://{IMPOSTOR_ADDRESS}:{impostor.port}/api/ws"
    assert sockets.urls[dialled_before_reload:][:1] == [impostor_socket], sockets.urls
    await until(lambda: impostor.connections_from(TILL_ADDRESS),
                "the impostor to see the till's TLS handshake", impostor.record)
    # The cashier types her PIN again (a reload forgets it): it goes to the real node.
    await expect(page.locator("#screen-login")).to_be_visible()
    alice = page.locator('[data-cashier-id="alice"]')
    if await alice.is_visible():
        await alice.click()
    await page.keyboard.type(PIN)
    await page.keyboard.press("Enter")
    await expect(page.locator("#screen-sell")).to_be_visible()
    await scan(page, BAGUETTE)
    await expect(page.locator(".basket-line")).to_have_count(1)
    await pay_cash(page, "2")
    await expect(page.locator("#receipt-number")).to_have_text(f"{node.first_till}-000003")
    await expect(page.locator("#done-offline")).to_be_hidden()

    # Not one byte past TLS reached the impostor; nothing it got holds the token or a PIN.
    await until(lambda: len(impostor.received_from(TILL_ADDRESS))
                == len(impostor.connections_from(TILL_ADDRESS)),
                "the till's connections to the impostor to close", impostor.record)
    assert [url for url, _ in sockets.sent if url == impostor_socket] == []
    assert all(urls == [node.url] for urls in sockets.nodes_listed()), \
        sockets.nodes_listed()
    assert impostor.decrypted() == []
    assert all(c["tls"] for c in impostor.connections_from(TILL_ADDRESS))
    for address in (NODE_ADDRESS, TILL_ADDRESS):
        assert no_secret_in(impostor.raw_bytes_from(address), token)

    # The control: a client that skips the certificate check does hand the impostor its
    # token, and the impostor records it: an empty record above means nothing was sent.
    fooled = f"""
import asyncio, aiohttp
async def main():
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect("{impostor.url}/api/ws", ssl=False) as ws:
            await ws.send_json({{"id": 1, "type": "auth", "token": "control-token"}})
            await ws.receive_json(timeout=10)
asyncio.run(main())
"""
    ran = await asyncio.create_subprocess_exec(
        *in_namespace(lan.till_ns, [sys.executable, "-c", fooled]),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, cwd=ROOT)
    output, _ = await asyncio.wait_for(ran.communicate(), WAIT_S)
    assert ran.returncode == 0, output.decode()
    assert [json.loads(e["data"])["token"] for e in impostor.decrypted()
            if e["kind"] == "till_message"] == ["control-token"]
