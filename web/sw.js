// The till's service worker: a till reloaded (F5) while every node is down
// still opens, and sells offline from IndexedDB (offline.js, ledger.js).
// Browsers only run it in a secure context (HTTPS with the store CA, or
// loopback); on plain http the till works as before, without reloads offline.
//
// The node serves this file with one line in front (edge/api/till_shell.py):
// `const SHELL = {version, files}`, `files` being the app shell (the page as
// "/", every module, the style sheet) and `version` a hash of their bytes.
// - install: the whole shell into a cache named after the version, fetched
//   from the node (never the HTTP cache); one file missing and the install
//   fails, so the worker already running keeps serving the old one whole.
// - activate: takes over at once and deletes the other versions' caches.
//   A page already open keeps the modules it loaded; the next load is the new
//   version, whole: a till never mixes two versions.
// - fetch: shell files and navigations to "/" come from the cache, the node
//   not asked (it may be down). Anything else (/api/*, /healthz, /status,
//   the websocket) is not touched: the network, never cached. Updates come by
//   the browser's update check of /sw.js (at each load, and when the app asks
//   after a node answers): a node with other files serves another /sw.js.
/* global SHELL */

const CACHE_PREFIX = 'edge-till-';
const CACHE_NAME = `${CACHE_PREFIX}${SHELL.version}`;
const SHELL_PATHS = new Set(SHELL.files);
const PAGE = '/';

self.addEventListener('install', (event) => {
  event.waitUntil(
    (async () => {
      const cache = await caches.open(CACHE_NAME);
      await cache.addAll(SHELL.files.map((path) => new Request(path, { cache: 'reload' })));
      await self.skipWaiting();
    })(),
  );
});

self.addEventListener('activate', (event) => {
  event.waitUntil(
    (async () => {
      for (const name of await caches.keys()) {
        if (name.startsWith(CACHE_PREFIX) && name !== CACHE_NAME) await caches.delete(name);
      }
      await self.clients.claim();
    })(),
  );
});

/** The cache key of a request this worker answers, or null to leave it to the network. */
function shellKey(request) {
  if (request.method !== 'GET') return null;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin) return null;
  if (request.mode === 'navigate') {
    // The till page, whatever its query or #pair= fragment; other pages (/status) need a node.
    return url.pathname === PAGE || url.pathname === '/index.html' ? PAGE : null;
  }
  return SHELL_PATHS.has(url.pathname) && url.pathname !== PAGE ? url.pathname : null;
}

self.addEventListener('fetch', (event) => {
  const key = shellKey(event.request);
  if (!key) return;
  event.respondWith(
    (async () => {
      const cached = await (await caches.open(CACHE_NAME)).match(key);
      // Not there (the browser evicted it): the node, as without a worker.
      return cached ?? fetch(event.request);
    })(),
  );
});
