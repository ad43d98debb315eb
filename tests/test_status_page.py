"""The store IT page says how the node stands, in plain words, in French and English."""

from __future__ import annotations

from conftest import NodeUnderTest, node_of
from playwright.async_api import async_playwright, expect

CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
]


async def test_the_status_page_shows_the_node_in_plain_words(node: NodeUnderTest) -> None:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path="/usr/bin/chromium",
                                                   args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page(locale="fr-FR")
            await page.goto(f"{node.url}/status")
            await expect(page.locator("#summary")).to_have_text("Tout fonctionne.")
            await expect(page.locator("#sections")).to_contain_text(node_of(node).node_id)
            await expect(page.locator("#sections")).to_contain_text("aucun (serveur seul)")
            await expect(page.locator("#sections")).to_contain_text("Imprimante prête")
            await page.click("#lang")
            await expect(page.locator("#summary")).to_have_text("Everything works.")
            await expect(page.locator("#sections")).to_contain_text("Head office (sync)")
            await expect(page.locator("#sections")).to_contain_text("Printer ready")
        finally:
            await browser.close()
