"""Chromium driven over the DevTools protocol through a pipe, with no Network domain.

Playwright turns on chromium's Network domain for every page and worker, so every
websocket frame the page receives is copied, base64'd, through the browser process
to Playwright's driver and on to Python: a million-product copy's 0.2 MB pages ten
times a second. On a till of one core that traffic, and the driver's garbage
collections it brings, stood in the cashier's scans' way (docs/benchmarks.md, "A
till's start"): no till in a shop has a debugger reading its socket. This driver
asks only what the bench's hands need: a tab, its scripts, its keys and clicks.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

MESSAGE_LIMIT = 64 * 1024 * 1024
POLL_S = 0.02
WAIT_S = 60.0
KEYS = {"Enter": ("Enter", 13, "\r")}  # key -> (code, virtual key code, text)


class DevToolsError(RuntimeError):
    """Chromium answered a command with an error, or a script threw."""


class Chromium:
    """A headless chromium and the pipe its DevTools protocol speaks on."""

    def __init__(self, process: asyncio.subprocess.Process, reader: asyncio.StreamReader,
                 writer: asyncio.WriteTransport) -> None:
        self.process = process
        self._reader = reader
        self._writer = writer
        self._next_id = 0
        self._waiting: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._gone: BaseException | None = None
        self._reading = asyncio.ensure_future(self._read())
        self.version = ""
        self.user_agent = ""

    @classmethod
    @contextlib.asynccontextmanager
    async def launched(cls, executable: Path, args: list[str],
                       profiles: str | None = None) -> AsyncIterator[Chromium]:
        """Chromium started with `args`, its profile in `profiles` (None: the temporary
        folder), closed on the way out."""
        with tempfile.TemporaryDirectory(dir=profiles, prefix="chromium-") as profile:
            to_browser, from_us = os.pipe()
            to_us, from_browser = os.pipe()

            def pipe_on_3_and_4() -> None:
                # Chromium reads commands on fd 3 and writes on fd 4; moved out of the way
                # first, so that one dup2 never closes the other's descriptor.
                reading = fcntl.fcntl(to_browser, fcntl.F_DUPFD, 10)
                writing = fcntl.fcntl(from_browser, fcntl.F_DUPFD, 10)
                os.dup2(reading, 3)
                os.dup2(writing, 4)

            try:
                process = await asyncio.create_subprocess_exec(
                    str(executable), *args, "--remote-debugging-pipe",
                    f"--user-data-dir={profile}", "about:blank",
                    stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
                    stderr=asyncio.subprocess.DEVNULL, preexec_fn=pipe_on_3_and_4,
                    pass_fds=(3, 4))
            except BaseException:
                for descriptor in (to_us, from_us):
                    os.close(descriptor)
                raise
            finally:
                os.close(to_browser)
                os.close(from_browser)
            loop = asyncio.get_running_loop()
            reader = asyncio.StreamReader(limit=MESSAGE_LIMIT)
            await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader),
                                         os.fdopen(to_us, "rb", buffering=0))
            writer, _ = await loop.connect_write_pipe(asyncio.Protocol,
                                                      os.fdopen(from_us, "wb", buffering=0))
            browser = cls(process, reader, writer)
            try:
                version = await browser.send("Browser.getVersion")
                browser.version, browser.user_agent = version["product"], version["userAgent"]
                yield browser
            finally:
                await browser.close()

    async def send(self, method: str, params: dict[str, Any] | None = None,
                   session: str | None = None) -> dict[str, Any]:
        if self._reading.done():
            raise DevToolsError(f"chromium went away: {self._gone}")
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        answer: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[self._next_id] = answer
        self._writer.write(json.dumps(message).encode() + b"\0")
        return await answer

    async def _read(self) -> None:
        """Answers to their commands, until chromium closes the pipe (or sends what is not
        the protocol): every command waiting then, or sent later, fails."""
        try:
            while True:
                message = json.loads((await self._reader.readuntil(b"\0"))[:-1])
                waiting = self._waiting.pop(message.get("id", -1), None)
                if waiting is None or waiting.done():
                    continue  # an event: none asked for
                if "error" in message:
                    waiting.set_exception(DevToolsError(str(message["error"])))
                else:
                    waiting.set_result(message.get("result", {}))
        except Exception as error:  # the pipe closed, or garbled: the end either way
            self._gone = error
        finally:
            for waiting in self._waiting.values():
                if not waiting.done():
                    waiting.set_exception(DevToolsError(f"chromium went away: {self._gone}"))
            self._waiting.clear()

    async def new_tab(self, width: int, height: int, locale: str) -> Tab:
        """A tab in a browser context of its own (nothing saved before it)."""
        context = (await self.send("Target.createBrowserContext"))["browserContextId"]
        target = (await self.send("Target.createTarget",
                                  {"url": "about:blank", "browserContextId": context}))["targetId"]
        session = (await self.send("Target.attachToTarget",
                                   {"targetId": target, "flatten": True}))["sessionId"]
        tab = Tab(self, context, session)
        await tab.send("Page.enable")
        await tab.send("Emulation.setDeviceMetricsOverride",
                       {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})
        # The page's language (navigator.language, Accept-Language) and its Intl formats.
        await tab.send("Emulation.setUserAgentOverride",
                       {"userAgent": self.user_agent, "acceptLanguage": locale})
        await tab.send("Emulation.setLocaleOverride", {"locale": locale})
        return tab

    async def close(self) -> None:
        """Asked to close, then killed if it has not within 10 s."""
        try:
            if not self._reading.done():
                with contextlib.suppress(DevToolsError, TimeoutError):
                    await asyncio.wait_for(self.send("Browser.close"), 10)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.process.wait(), 10)
        finally:
            if self.process.returncode is None:
                self.process.kill()
                await self.process.wait()
            self._reading.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reading
            self._writer.close()


class Tab:
    """One page, as the bench's hands see it: scripts, keys, clicks."""

    def __init__(self, browser: Chromium, context: str, session: str) -> None:
        self.browser = browser
        self.context = context
        self.session = session

    async def send(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        return await self.browser.send(method, params, self.session)

    async def evaluate(self, function: str, arg: Any = None) -> Any:
        """`function` (JavaScript) called with `arg`, awaited, its value as JSON; with no
        `arg`, `function` is a plain expression instead (`"() => 5"` is then the function
        itself, not 5)."""
        expression = function if arg is None else f"({function})({json.dumps(arg)})"
        answer = await self.send("Runtime.evaluate", {
            "expression": expression, "awaitPromise": True, "returnByValue": True})
        if "exceptionDetails" in answer:
            details = answer["exceptionDetails"]
            raise DevToolsError(details.get("exception", {}).get("description") or details["text"])
        return answer["result"].get("value")

    async def add_init_script(self, source: str) -> None:
        await self.send("Page.addScriptToEvaluateOnNewDocument", {"source": source})

    async def goto(self, url: str) -> None:
        navigated = await self.send("Page.navigate", {"url": url})
        if navigated.get("errorText"):
            raise DevToolsError(f"{url}: {navigated['errorText']}")
        await self._loaded()

    async def reload(self) -> None:
        await self.send("Page.reload")
        await self._loaded()

    async def _loaded(self) -> None:
        # The new document, not the one the navigation leaves (its state may say complete).
        await asyncio.sleep(POLL_S)
        await self.until("document.readyState !== 'loading'", None, "the page loaded")

    async def wait_visible(self, selector: str) -> None:
        """Until an element `selector` shows (`selector` may list several: any of them)."""
        await self.until("""(selector) => [...document.querySelectorAll(selector)]
            .some((element) => element.checkVisibility() && element.getClientRects().length > 0)""",
                         selector, f"{selector} shown")

    async def until(self, function: str, arg: Any, what: str) -> None:
        """Until `function` (as `evaluate` takes it) is true, for WAIT_S at most."""
        for _ in range(int(WAIT_S / POLL_S)):
            if await self.evaluate(function, arg):
                return
            await asyncio.sleep(POLL_S)
        raise DevToolsError(f"waited {WAIT_S:.0f} s for {what}")

    async def click(self, selector: str) -> None:
        """A real click (the mouse pressed and released) in the middle of `selector`."""
        await self.wait_visible(selector)
        x, y = await self.evaluate("""(selector) => {
            const box = document.querySelector(selector).getBoundingClientRect();
            return [box.x + box.width / 2, box.y + box.height / 2];
        }""", selector)
        for kind in ("mousePressed", "mouseReleased"):
            await self.send("Input.dispatchMouseEvent",
                            {"type": kind, "x": x, "y": y, "button": "left", "clickCount": 1})

    async def press(self, key: str) -> None:
        """A key through the browser's input, as a keyboard or a scanner sends it: a digit
        or letter, or a named key of KEYS."""
        if key in KEYS:
            code, virtual, text = KEYS[key]
        else:
            code = f"Digit{key}" if key.isdigit() else f"Key{key.upper()}"
            virtual, text = ord(key.upper()), key
        down = {"type": "keyDown", "key": key, "code": code, "text": text,
                "unmodifiedText": text, "windowsVirtualKeyCode": virtual,
                "nativeVirtualKeyCode": virtual}
        await self.send("Input.dispatchKeyEvent", down)
        await self.send("Input.dispatchKeyEvent",
                        {"type": "keyUp", "key": key, "code": code,
                         "windowsVirtualKeyCode": virtual, "nativeVirtualKeyCode": virtual})

    async def type(self, text: str) -> None:
        for key in text:
            await self.press(key)

    async def attribute(self, selector: str, name: str) -> str | None:
        return await self.evaluate(
            "([selector, name]) => document.querySelector(selector)?.getAttribute(name) ?? null",
            [selector, name])

    async def close(self) -> None:
        await self.browser.send("Target.disposeBrowserContext", {"browserContextId": self.context})
