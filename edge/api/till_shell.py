"""The till's service worker, `/sw.js`: web/sw.js with the app shell it keeps.

A till reloaded while every node is down opens from its service worker's
cache (secure contexts only: HTTPS with the store CA, or loopback). The
worker must know which files make the app and which version they are, so
the node serves web/sw.js with one line in front:
`const SHELL = {"version": ..., "files": [...]};`. The version is a hash of
those files' bytes: a node upgraded with different files serves a different
`/sw.js`, the browser installs it (a new cache, filled whole) and the worker
drops the old cache when it takes over, so a till never mixes two versions.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Awaitable, Callable
from pathlib import Path

import orjson
from aiohttp import web

from edge import __version__

# Not part of the till app: the store IT page needs a node anyway, and the
# worker itself is checked by the browser, never cached by it.
NOT_IN_SHELL = ("status.html", "status.js", "status.css", "sw.js")


def shell_files(web_dir: Path) -> list[str]:
    """The app shell's URLs: the page (as `/`), and every module and style sheet it loads."""
    names = sorted(
        path.name for path in web_dir.iterdir()
        if path.suffix in (".js", ".css") and path.name not in NOT_IN_SHELL
    )
    return ["/", *(f"/{name}" for name in names)]


@functools.cache
def service_worker_script(web_dir: Path) -> bytes:
    """web/sw.js with its shell in front, read once: files change with an upgrade (a restart)."""
    files = shell_files(web_dir)
    digest = hashlib.sha256()
    for url in files:
        content = (web_dir / ("index.html" if url == "/" else url[1:])).read_bytes()
        digest.update(f"{url}\0{len(content)}\0".encode())
        digest.update(content)
    version = f"{__version__}-{digest.hexdigest()[:16]}"
    shell = orjson.dumps({"version": version, "files": files}).decode()
    return f"const SHELL = {shell};\n".encode() + (web_dir / "sw.js").read_bytes()


def service_worker_handler(web_dir: Path) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def service_worker(request: web.Request) -> web.Response:
        # no-cache: the browser asks the node at each update check, so an upgrade is seen.
        return web.Response(
            body=service_worker_script(web_dir), content_type="text/javascript", charset="utf-8",
            headers={"Cache-Control": "no-cache"},
        )
    return service_worker
