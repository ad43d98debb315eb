"""A till reloaded (F5) with every node down opens, sells, and its sales arrive once.

Issue 9's acceptance 4. The till's service worker (web/sw.js, served by the
node as /sw.js with the app shell it keeps: edge/api/till_shell.py) needs a
secure context: HTTPS with the store CA trusted, as in a shop (the node made
its CA with `edge tls init`; chromium trusts it through its NSS database and
refuses the node without it); a page from loopback would do too, but is not
what a shop's till opens. Real chromium, real `edge serve`: the store's one
node is stopped (SIGTERM), the page reloaded, two sales made, the node
started again on the same data.
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from conftest import EDGE, ROOT, EdgeProcess, free_port
from playwright.async_api import Browser, Page, async_playwright, expect
from playwright.async_api import Error as PlaywrightError
from test_pricing_vectors import served_web_page
from test_till_offline import BACK_ONLINE_MS, BAGUETTE, ESPRESSO, ShopNode, log_in, pay_cash, scan

from edge import __version__
from edge.api import till_shell

WEB_DIR = Path(__file__).resolve().parents[1] / "web"
# The node's name: `edge tls init --name` puts edge-<name>.local in its certificate,
# and chromium resolves it to 127.0.0.1 (--host-resolver-rules), as mDNS would in a shop.
NODE_NAME = "till-test"
TILL_HOST = f"edge-{NODE_NAME}.local"
BROWSER_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]

# Registering and installing the worker takes well under a second; the rest is margin.
WORKER_WAIT_S = 20

# Resolves once the page is controlled by an activated service worker: its scope and script.
CONTROLLED = """() => new Promise((resolve) => {
  const answer = () => navigator.serviceWorker.ready.then((registration) => resolve({
    scope: registration.scope, script: registration.active.scriptURL,
    controlled: Boolean(navigator.serviceWorker.controller),
  }));
  if (navigator.serviceWorker.controller) answer();
  else navigator.serviceWorker.addEventListener('controllerchange', answer, { once: true });
})"""

# Asks the node for /sw.js now, and resolves once the worker it gives is the active one.
UPDATED = """async () => {
  const registration = await navigator.serviceWorker.getRegistration();
  await registration.update();
  const worker = registration.installing ?? registration.waiting ?? registration.active;
  if (worker.state !== 'activated') {
    await new Promise((resolve) => worker.addEventListener('statechange', () => {
      if (worker.state === 'activated') resolve();
    }));
  }
  return worker.scriptURL;
}"""

# The worker's caches and, for each, the paths it holds.
CACHES = """async () => {
  const found = {};
  for (const name of await caches.keys()) {
    const cache = await caches.open(name);
    found[name] = (await cache.keys()).map((request) => new URL(request.url).pathname).sort();
  }
  return found;
}"""


async def controlling_worker(page: Page) -> dict[str, Any]:
    async with asyncio.timeout(WORKER_WAIT_S):
        return await page.evaluate(CONTROLLED)


async def launch_chromium(playwright: Any, home: Path, resolver_rules: str) -> Browser:
    # HOME holds chromium's NSS database: the store CA is trusted there or nowhere.
    return await playwright.chromium.launch(
        executable_path="/usr/bin/chromium",
        args=[*BROWSER_ARGS, f"--host-resolver-rules={resolver_rules}"],
        env={"HOME": str(home), "PATH": "/usr/bin:/bin"},
    )


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """chromium's HOME: its profile and NSS database (empty: no CA trusted)."""
    (tmp_path / "home").mkdir()
    return tmp_path / "home"


@pytest.fixture
def untrusting_home(tmp_path: Path) -> Path:
    """Another browser's HOME, that trusts no store CA."""
    (tmp_path / "untrusting").mkdir()
    return tmp_path / "untrusting"


async def reload_with_every_node_down_then_sell_and_deliver(
    node: ShopNode, page: Page
) -> None:
    """The acceptance, from a till paired and logged in on `page`, its worker controlling it."""
    status = page.locator("#status")
    # A basket open on the node when it goes.
    await scan(page, BAGUETTE)
    await expect(page.locator(".basket-line")).to_have_count(1)
    await expect(status).to_have_attribute("data-state", "online")

    node.stop()
    await expect(status).to_have_attribute("data-state", "offline")
    await page.reload()
    # The page opens from the worker, says it is offline, and the cashier is still signed in
    # with her basket: the PIN was never kept, and no node could check one.
    await expect(page.locator("#screen-sell")).to_be_visible()
    await expect(status).to_have_attribute("data-state", "offline")
    await expect(status).to_have_text("Hors ligne — reconnexion…")
    await expect(page.locator("#store-name")).to_have_text("Boulangerie du Marché")
    await expect(page.locator("#cashier-name")).to_have_text("Alice")
    await expect(page.locator(".basket-line")).to_have_count(1)

    # Two sales, from the till's own catalogue copy, numbered by the till.
    await pay_cash(page, "2")
    await expect(page.locator("#receipt-number")).to_have_text(f"{node.first_till}-000001")
    await expect(page.locator("#done-offline")).to_be_visible()
    await page.click("#new-sale")
    await scan(page, ESPRESSO)
    await scan(page, BAGUETTE)
    await expect(page.locator(".basket-line")).to_have_count(2)
    await pay_cash(page, "5")
    await expect(page.locator("#receipt-number")).to_have_text(f"{node.first_till}-000002")
    await expect(status).to_have_attribute("data-waiting-sales", "2")
    await page.click("#new-sale")

    # Reloaded again, still offline: the sales wait on the till.
    await page.reload()
    await expect(page.locator("#screen-sell")).to_be_visible()
    await expect(status).to_have_attribute("data-waiting-sales", "2")
    await expect(status).to_have_text("Hors ligne — 2 ventes en attente")

    # The node is back: it asks the cashier's PIN (never kept), then takes the sales.
    node.start()
    await expect(status).to_have_attribute("data-state", "online", timeout=BACK_ONLINE_MS)
    await expect(page.locator("#screen-login")).to_be_visible()
    await expect(page.locator("#login-who")).to_have_text("Bonjour Alice, votre code :")
    await expect(status).to_have_attribute("data-waiting-sales", "2")
    await page.keyboard.type("1234")
    await page.keyboard.press("Enter")
    await expect(page.locator("#screen-sell")).to_be_visible()
    await expect(status).to_have_attribute("data-waiting-sales", "0")
    await expect(page.locator(".basket-line")).to_have_count(0)

    # Once each: reloaded online, logged in again, the till checks and resends nothing twice.
    await page.reload()
    await expect(page.locator("#screen-login")).to_be_visible()
    await page.keyboard.type("1234")
    await page.keyboard.press("Enter")
    await expect(page.locator("#screen-sell")).to_be_visible()
    await expect(status).to_have_attribute("data-kept-sales", "2")
    await expect(status).to_have_attribute("data-waiting-sales", "0")
    sales = node.sales()
    assert [(sale["receipt_no"], sale["offline"], sale["totals"]["total"]) for sale in sales] == [
        (1, True, 120), (2, True, 270)]
    # Sold by the cashier signed in before the reload, the one who logged in after: no flag.
    assert [(sale["cashier"], sale["flags"]) for sale in sales] == [("alice", [])] * 2
    assert len({sale["id"] for sale in sales}) == 2
    assert len(node.sale_events()) == 2


async def open_till(node: ShopNode, browser: Browser, link: str) -> Page:
    """Pairs a new till from `link`, logs Alice in, and waits for the worker to control the page."""
    page = await browser.new_page(locale="fr-FR")
    await page.goto(link)
    assert await page.evaluate("window.isSecureContext") is True
    await log_in(page)
    status = page.locator("#status")
    await expect(status).to_have_attribute("data-state", "online")
    await expect(status).to_have_attribute("data-catalogue", re.compile(r"^[1-9]\d\d+$"))
    worker = await controlling_worker(page)
    origin = link.split("/#")[0]
    assert worker == {"scope": f"{origin}/", "script": f"{origin}/sw.js", "controlled": True}
    return page


class HttpsShopNode(ShopNode):
    """`edge serve --tls on` on 127.0.0.1, with the store CA made by `edge tls init`."""

    def __init__(self, folder: Path) -> None:
        super().__init__(None, folder, ["--tls", "on"], address="127.0.0.1")  # type: ignore[arg-type]
        self.https = True
        self.url = f"https://{self.host}:{self.port}"

    def tls_init(self) -> None:
        subprocess.run([*EDGE, "tls", "init", "--data", str(self.data), "--name", NODE_NAME],
                       check=True, capture_output=True, timeout=60, cwd=ROOT)

    async def till_link(self) -> str:
        """The demo's pairing link, by the node's name on the shop network (its certificate's)."""
        code = (await self.pairing_link()).rsplit("#pair=", 1)[1]
        return f"https://{TILL_HOST}:{self.port}/#pair={code}"


def trust_in_nss(home: Path, ca_file: Path) -> None:
    """What store IT does on a Linux till: the store CA into chromium's NSS database."""
    nssdb = home / ".pki" / "nssdb"
    nssdb.mkdir(parents=True)
    trust = ["-A", "-t", "C,,", "-n", "store-ca", "-i", str(ca_file)]
    for args in (["-N", "--empty-password"], trust):
        subprocess.run(["certutil", "-d", f"sql:{nssdb}", *args], check=True, capture_output=True,
                       timeout=30)


@pytest.fixture
async def https_till(tmp_path: Path, home: Path) -> AsyncIterator[tuple[HttpsShopNode, Any]]:
    """A node serving HTTPS (its certificate for TILL_HOST), and playwright to launch chromium."""
    node = HttpsShopNode(tmp_path / "node")
    node.tls_init()
    node.start()
    try:
        async with async_playwright() as playwright:
            yield node, playwright
    finally:
        node.stop()


async def test_a_till_trusting_the_store_ca_reloaded_with_every_node_down_sells_and_delivers_once(
    https_till: tuple[HttpsShopNode, Any], home: Path, untrusting_home: Path,
) -> None:
    node, playwright = https_till
    link = await node.till_link()
    resolver = f"MAP {TILL_HOST} 127.0.0.1, MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"

    # Without the store CA, the till's browser refuses the node: the trust below is real.
    stranger = await launch_chromium(playwright, untrusting_home, resolver)
    try:
        with pytest.raises(PlaywrightError, match="ERR_CERT_AUTHORITY_INVALID"):
            await (await stranger.new_page()).goto(link)
    finally:
        await stranger.close()

    trust_in_nss(home, node.data / "tls" / "store-ca.pem")
    browser = await launch_chromium(playwright, home, resolver)
    try:
        page = await open_till(node, browser, link)
        # The whole shell is in one cache, named after its version; nothing of the API.
        [(name, paths)] = (await page.evaluate(CACHES)).items()
        assert name.startswith("edge-till-")
        assert paths == sorted(till_shell.shell_files(WEB_DIR))
        await reload_with_every_node_down_then_sell_and_deliver(node, page)
    finally:
        await browser.close()


# The shell and its versions, without a node: a plain aiohttp server of a copy of web/.


def test_the_shell_holds_every_file_the_page_loads() -> None:
    """Every module the page or a module imports, and every style sheet, is precached."""
    shell = set(till_shell.shell_files(WEB_DIR))
    index = (WEB_DIR / "index.html").read_text()
    loaded = {f"/{name}" for name in re.findall(r'(?:src|href)="([\w./-]+\.(?:js|css))"', index)}
    for module in WEB_DIR.glob("*.js"):
        if module.name.startswith("status") or module.name == "sw.js":
            continue
        loaded |= {f"/{name}" for name in re.findall(
            r"""(?:import|from)\s*\(?\s*['"]\./([\w.-]+\.js)['"]""", module.read_text())}
    assert loaded and loaded <= shell
    assert "/" in shell and "/sw.js" not in shell and "/status.js" not in shell


@pytest.fixture
async def web_copy(tmp_path: Path) -> AsyncIterator[tuple[Path, str]]:
    """A copy of web/ served on 127.0.0.1 as a node serves it (the page, /sw.js, static files)."""
    folder = tmp_path / "web"
    folder.mkdir()
    for path in WEB_DIR.iterdir():
        if path.is_file():
            (folder / path.name).write_bytes(path.read_bytes())

    async def page(request: web.Request) -> web.FileResponse:
        return web.FileResponse(folder / "index.html")

    @web.middleware
    async def no_cache(request: web.Request, handler):  # type: ignore[no-untyped-def]
        response = await handler(request)
        response.headers.setdefault("Cache-Control", "no-cache")
        return response

    app = web.Application(middlewares=[no_cache])
    app.router.add_get("/", page)
    app.router.add_get("/sw.js", till_shell.service_worker_handler(folder))
    app.router.add_static("/", folder)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield folder, f"http://127.0.0.1:{port}"
    finally:
        till_shell.service_worker_script.cache_clear()
        await runner.cleanup()


async def test_an_upgraded_node_replaces_the_whole_shell_and_drops_the_old_cache(
    home: Path, web_copy: tuple[Path, str],
) -> None:
    folder, url = web_copy
    async with async_playwright() as playwright:
        browser = await launch_chromium(
            playwright, home, "MAP * ~NOTFOUND , EXCLUDE 127.0.0.1")
        try:
            page = await browser.new_page()
            await page.goto(url)  # no till token: the pairing screen
            await expect(page.locator("#screen-pair")).to_be_visible()
            await controlling_worker(page)
            [old] = await page.evaluate(CACHES)

            # The node is upgraded: one style sheet changes, so /sw.js (its version) does too.
            with (folder / "style.css").open("a") as sheet:
                sheet.write("\n/* upgraded */\n")
            till_shell.service_worker_script.cache_clear()
            async with asyncio.timeout(WORKER_WAIT_S):
                new = await page.evaluate(UPDATED)
            assert new == f"{url}/sw.js"
            caches = await page.evaluate(CACHES)
            [current] = caches
            assert current != old and current.startswith("edge-till-")
            assert caches[current] == sorted(till_shell.shell_files(folder))
            # The next load is the new version, whole, from the worker.
            await page.reload()
            sheet = await page.evaluate("async () => (await fetch('/style.css')).text()")
            assert sheet.endswith("/* upgraded */\n")
        finally:
            await browser.close()


async def test_the_node_serves_its_worker_uncached_as_javascript_with_its_shell(
    edge_process: EdgeProcess,
) -> None:
    edge_process.start()
    url = f"{edge_process.url}/sw.js"
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        assert response.status == 200
        assert response.headers["Content-Type"] == "text/javascript; charset=utf-8"
        assert response.headers["Cache-Control"] == "no-cache"
        first, rest = (await response.text()).split("\n", 1)
    shell = json.loads(first.removeprefix("const SHELL = ").removesuffix(";"))
    assert shell["files"] == till_shell.shell_files(WEB_DIR)
    assert re.fullmatch(rf"{re.escape(__version__)}-[0-9a-f]{{16}}", shell["version"])
    assert rest == (WEB_DIR / "sw.js").read_text()


SESSION_CHECKS = """async () => {
  const { sessionStillValid, SESSION_HOURS } = await import('/ledger.js');
  const at = (text) => new Date(text);
  const saved = (text) => ({ pinCheckedAt: at(text).getTime() });
  return {
    hours: SESSION_HOURS,
    sameMorning: sessionStillValid(saved('2026-11-30T08:00:00'), at('2026-11-30T11:30:00')),
    lateInTheShift: sessionStillValid(saved('2026-11-30T07:00:00'), at('2026-11-30T18:59:00')),
    tooLong: sessionStillValid(saved('2026-11-30T06:00:00'), at('2026-11-30T18:01:00')),
    nextMorning: sessionStillValid(saved('2026-11-30T20:00:00'), at('2026-12-01T07:00:00')),
    fromTheFuture: sessionStillValid(saved('2026-11-30T12:00:00'), at('2026-11-30T11:00:00')),
    neverChecked: sessionStillValid({}, at('2026-11-30T11:00:00')),
    junk: sessionStillValid({ pinCheckedAt: 'yesterday' }, at('2026-11-30T11:00:00')),
  };
}"""


async def test_a_session_is_taken_up_after_a_reload_only_the_day_and_shift_its_pin_was_checked(
) -> None:
    """A browser restoring yesterday's tabs (sessionStorage comes back with them) does not
    sell as yesterday's cashier with no PIN: the reload rule is the day the PIN was checked,
    within SESSION_HOURS of it."""
    async with served_web_page() as page:
        seen = await page.evaluate(SESSION_CHECKS)
    assert seen == {"hours": 12, "sameMorning": True, "lateInTheShift": True,
                    "tooLong": False, "nextMorning": False, "fromTheFuture": False,
                    "neverChecked": False, "junk": False}
