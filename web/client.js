// The till's websocket client: one connection at a time, to one node of the
// store; `auth` first, then promise-based commands. It knows every node of the
// store (`auth` lists them) and moves to another one as soon as its node stops
// answering, so a cashier never needs to know which machine serves the till.

const TICK_MS = 250;
// A browser cannot see websocket pings, and a frozen node (power cut, no FIN)
// closes nothing: the till pings when the link is quiet, and a node silent for
// SILENCE_LIMIT_MS while we wait for an answer counts as dead.
const PING_AFTER_QUIET_MS = 1000;
const SILENCE_LIMIT_MS = 2000;
// A node that is off the network leaves the socket "connecting" for minutes.
const CONNECT_TIMEOUT_MS = 2000;
// After a whole round of nodes failed, wait this long before the next round.
const FIRST_RETRY_DELAY_MS = 500;
const MAX_RETRY_DELAY_MS = 5000;
const NODES_KEY = 'edge.nodes';
// A result as the node writes it (edge/messages.py result_message): its text after this
// head is the result's JSON, handed on unparsed by callBytes.
const RESULT_HEAD = /^\{"id":(\d+),"type":"result","success":true,"result":/;
const MAX_NODES = 16;
const utf8 = new TextDecoder();

/**
 * UUID v4 from crypto.getRandomValues: crypto.randomUUID() only exists in
 * secure contexts, and a shop's till opens http://192.168.x.x, which is not one.
 */
export function newUuid() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  bytes[6] = (bytes[6] & 0x0f) | 0x40; // version 4
  bytes[8] = (bytes[8] & 0x3f) | 0x80; // RFC 4122 variant
  const hex = Array.from(bytes, (byte) => byte.toString(16).padStart(2, '0')).join('');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** Error with the protocol's {code, message} shape, so callers handle server and local errors alike. */
export class CommandError extends Error {
  constructor(code, message, extra = {}) {
    super(message || code);
    this.code = code;
    Object.assign(this, extra);
  }
}

/**
 * "http://10.0.0.5:8080" → "ws://10.0.0.5:8080/api/ws"; null for anything the
 * till must not dial: not a well-formed URL of a node (http(s), a host, no
 * credentials, path, query or fragment), or, when the page itself came over
 * https (`pageUrl`), a node that is not https. A till on HTTPS only talks to
 * nodes whose certificate the browser checked against the store CA: never a
 * downgrade to ws://, where anyone on the shop's Wi-Fi could answer.
 */
export function socketUrlOf(nodeUrl, pageUrl = null) {
  if (typeof nodeUrl !== 'string') return null;
  let url;
  try {
    url = new URL(nodeUrl);
  } catch {
    return null;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return null;
  if (!url.hostname || url.username || url.password) return null;
  if (url.pathname !== '/' || url.search || url.hash) return null;
  if (pageIsHttps(pageUrl) && url.protocol !== 'https:') return null;
  return `${url.protocol === 'https:' ? 'wss:' : 'ws:'}//${url.host}/api/ws`;
}

function pageIsHttps(pageUrl) {
  if (!pageUrl) return false;
  try {
    return new URL(pageUrl).protocol === 'https:';
  } catch {
    return false;
  }
}

function sameUrl(a, b) {
  return socketUrlOf(a) === socketUrlOf(b);
}

/** A node entry worth keeping: a usable URL (see socketUrlOf) and a string id or none. */
function nodeEntry(node, pageUrl) {
  if (!node || typeof node !== 'object' || !socketUrlOf(node.url, pageUrl)) return null;
  return { id: typeof node.id === 'string' ? node.id : null, url: node.url };
}

function nodeEntries(nodes, pageUrl) {
  return Array.isArray(nodes) ? nodes.map((node) => nodeEntry(node, pageUrl)).filter(Boolean) : [];
}

function loadSavedNodes(pageUrl) {
  try {
    return nodeEntries(JSON.parse(localStorage.getItem(NODES_KEY) || '[]'), pageUrl);
  } catch {
    return [];
  }
}

/**
 * Events dispatched:
 *  - "authed"      (detail: the auth result) each time a connection is authenticated
 *  - "offline"     when the authenticated connection is lost
 *  - "unreachable" when a whole round of nodes failed: no node answers now
 *  - "invalid-token" when every node refuses our token (the client then stops)
 *  - "event"       (detail: the pushed message) for subscribe_events pushes
 */
export class TillClient extends EventTarget {
  /** `homeUrl`: the node that served the page (tried first, and kept as a fallback). */
  constructor(homeUrl) {
    super();
    this.homeUrl = homeUrl;
    // Saved by an earlier page: an http node saved while the till was on http stays unused on https.
    this.nodes = this.withHome(loadSavedNodes(homeUrl));
    this.nodeIndex = 0; // the home node first: it just served the page, so it is likely up
    this.node = null; // {id, url} of the node serving us, once authenticated
    this.token = null;
    this.socket = null;
    this.authed = false;
    this.running = false;
    this.nextId = 1; // never reset: ids stay increasing across reconnects too
    this.pending = new Map(); // id -> {resolve, reject, sentAt, unparsed, type}
    this.wasBusy = false; // busy, as last told to 'busy' listeners
    this.pingPending = false;
    this.lastHeardAt = 0;
    this.connectStartedAt = 0;
    this.attemptsThisRound = 0;
    this.refusedTokenBy = new Set();
    this.reachable = true; // false once a whole round of nodes failed, until one answers
    this.retryDelay = FIRST_RETRY_DELAY_MS;
    this.retryTimer = null;
    this.ticker = null;
  }

  start(token) {
    this.token = token;
    this.running = true;
    this.refusedTokenBy.clear();
    this.retryDelay = FIRST_RETRY_DELAY_MS;
    this.attemptsThisRound = 0;
    this.connect();
    this.ticker ??= setInterval(() => this.tick(), TICK_MS);
  }

  stop() {
    this.running = false;
    clearTimeout(this.retryTimer);
    clearInterval(this.ticker);
    this.ticker = null;
    const socket = this.socket;
    this.dropConnection();
    if (socket) socket.close();
  }

  /** Skip the backoff wait, e.g. when the browser says the network is back. */
  reconnectNow() {
    if (!this.running || this.socket) return;
    clearTimeout(this.retryTimer);
    this.attemptsThisRound = 0;
    this.connect();
  }

  get online() {
    return this.authed;
  }

  /** Sends a command; resolves with its result, rejects with a CommandError. */
  call(type, args = {}) {
    if (!this.authed) {
      return Promise.reject(new CommandError('disconnected', 'not connected'));
    }
    return this.send(type, args);
  }

  /**
   * As call, for a large answer handed on as it came (a catalogue page, to the
   * catalogue's worker): the node asked to answer in a binary frame (`binary: true`),
   * the result given as {buffer, start} (its JSON, UTF-8, from byte `start` to the
   * last but one), never decoded here; an older node's answer in text, as the
   * result's JSON text, not parsed.
   */
  callBytes(type, args = {}) {
    if (!this.authed) {
      return Promise.reject(new CommandError('disconnected', 'not connected'));
    }
    return this.send(type, { ...args, binary: true }, true);
  }

  /** A command waits for its answer (not a ping, not a large one: a catalogue page). */
  get busy() {
    for (const waiter of this.pending.values()) if (!waiter.unparsed && waiter.type !== 'ping') return true;
    return false;
  }

  /**
   * A 'busy' event (detail: `busy`) as soon as it changes: catalogue.js pauses its
   * copy the moment a scan is sent, not at its next look.
   */
  noteBusy() {
    const busy = this.busy;
    if (busy === this.wasBusy) return;
    this.wasBusy = busy;
    this.dispatchEvent(new CustomEvent('busy', { detail: busy }));
  }

  // --- the store's nodes ---

  /** The page's own node is always worth a try, even if the nodes forget to list it. */
  withHome(nodes) {
    const list = nodes.slice(0, MAX_NODES);
    if (socketUrlOf(this.homeUrl) && !list.some((node) => sameUrl(node.url, this.homeUrl))) {
      list.push({ id: null, url: this.homeUrl });
    }
    return list;
  }

  /** Paired again (maybe in another store): the nodes known before are forgotten, the page's own is kept. */
  forgetNodes() {
    this.nodes = this.withHome([]);
    this.nodeIndex = 0;
    localStorage.removeItem(NODES_KEY);
  }

  /**
   * Takes the node list of an `auth` reply, remembers it across reloads, and
   * finds ourselves in it. Nodes known before stay on the list, after the
   * listed ones: a node that just started may not have met all its peers yet.
   * The token (and, once logged in, the cashier's PIN) only ever goes to these:
   * nodes the store listed, and the page's own node.
   */
  learnNodes(auth, connectedUrl) {
    const listed = nodeEntries(auth.nodes, this.homeUrl);
    if (!listed.length) return;
    const isListed = (known) =>
      listed.some((node) => sameUrl(node.url, known.url) || (known.id && node.id === known.id));
    this.nodes = this.withHome([...listed, ...this.nodes.filter((known) => !isListed(known))]);
    localStorage.setItem(NODES_KEY, JSON.stringify(this.nodes));
    const myId = auth.node?.id;
    let index = this.nodes.findIndex((node) => myId && node.id === myId);
    if (index < 0) index = this.nodes.findIndex((node) => sameUrl(node.url, connectedUrl));
    if (index < 0) {
      // Reached through an address the node does not advertise: keep it, so we stay put.
      this.nodes.unshift({ id: myId ?? null, url: connectedUrl });
      index = 0;
    }
    this.nodeIndex = index;
  }

  // --- internals ---

  /** `unparsed`: a large answer, handed on as it came (callBytes). */
  send(type, args, unparsed = false) {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject, sentAt: Date.now(), unparsed, type });
      this.socket.send(JSON.stringify({ ...args, id, type }));
      this.noteBusy();
    });
  }

  connect() {
    const node = this.nodes[this.nodeIndex % this.nodes.length];
    this.attemptsThisRound++;
    const socket = new WebSocket(socketUrlOf(node.url, this.homeUrl));
    socket.binaryType = 'arraybuffer'; // callBytes' answers
    this.socket = socket;
    this.connectStartedAt = Date.now();
    socket.onopen = () => {
      this.lastHeardAt = Date.now();
      this.authenticate(socket, node);
    };
    socket.onmessage = (message) => {
      if (this.socket !== socket) return;
      this.lastHeardAt = Date.now();
      this.receive(message.data);
    };
    socket.onclose = () => {
      if (this.socket === socket) this.failOver();
    };
    // onerror is always followed by onclose, which does the work.
  }

  async authenticate(socket, node) {
    try {
      const result = await this.send('auth', { token: this.token });
      if (this.socket !== socket) return;
      this.learnNodes(result, node.url);
      this.node = { id: result.node?.id ?? node.id, url: node.url };
      this.authed = true;
      this.reachable = true;
      this.refusedTokenBy.clear();
      this.attemptsThisRound = 0;
      this.retryDelay = FIRST_RETRY_DELAY_MS;
      this.dispatchEvent(new CustomEvent('authed', { detail: result }));
    } catch (error) {
      if (this.socket !== socket) return;
      if (error.code === 'invalid_token') {
        // A node that never heard of this till may just lag behind the others
        // (pairing not replicated yet): only a refusal by every node is final.
        this.refusedTokenBy.add(socketUrlOf(node.url));
        if (this.nodes.every((known) => this.refusedTokenBy.has(socketUrlOf(known.url)))) {
          this.stop();
          this.dispatchEvent(new CustomEvent('invalid-token', { detail: error }));
          return;
        }
      }
      this.abandon(socket); // anything else: treat as a failed connection and move on
    }
  }

  receive(data) {
    if (data instanceof ArrayBuffer) {
      // A binary frame: a callBytes answer, its head (ASCII) decoded to know whose it is.
      const head = RESULT_HEAD.exec(utf8.decode(new Uint8Array(data, 0, Math.min(80, data.byteLength))));
      const asked = head && this.pending.get(Number(head[1]));
      if (!asked?.unparsed) return this.receive(utf8.decode(data));
      this.pending.delete(Number(head[1]));
      asked.resolve({ buffer: data, start: head[0].length });
      this.noteBusy();
      return;
    }
    const head = RESULT_HEAD.exec(data.slice(0, 80));
    const asked = head && this.pending.get(Number(head[1]));
    if (asked?.unparsed) {
      this.pending.delete(Number(head[1]));
      asked.resolve(data.slice(head[0].length, data.lastIndexOf('}')));
      this.noteBusy();
      return;
    }
    let message;
    try {
      message = JSON.parse(data);
    } catch {
      return; // not ours to crash on
    }
    if (message.type === 'result') {
      const waiter = this.pending.get(message.id);
      if (!waiter) return;
      this.pending.delete(message.id);
      this.noteBusy();
      if (message.success) {
        waiter.resolve(waiter.unparsed ? JSON.stringify(message.result) : message.result);
      } else {
        const error = message.error || {};
        waiter.reject(new CommandError(error.code || 'unknown', error.message, { data: error.data }));
      }
    } else if (message.type === 'event' || message.type === 'card_payment') {
      // Pushes: subscribe_events' and printer/subscribe's events, and payment/card's states.
      this.dispatchEvent(new CustomEvent('event', { detail: message }));
    }
  }

  /** Forget the socket and fail every pending command, so callers can resend after reconnecting. */
  dropConnection() {
    const wasAuthed = this.authed;
    this.socket = null;
    this.authed = false;
    this.pingPending = false;
    const pending = [...this.pending.values()];
    this.pending.clear();
    this.noteBusy();
    for (const waiter of pending) {
      waiter.reject(new CommandError('disconnected', 'connection lost'));
    }
    if (wasAuthed) this.dispatchEvent(new Event('offline'));
  }

  /**
   * Give up on a socket now rather than waiting for its onclose, which can
   * take long on a dead link (the closing handshake has to time out first).
   */
  abandon(socket) {
    if (this.socket !== socket) return;
    socket.onclose = null;
    socket.close();
    this.failOver();
  }

  /** The connection failed or died: the next node at once, until a whole round failed; then back off. */
  failOver() {
    const wasAuthed = this.authed;
    this.dropConnection();
    if (!this.running) return;
    if (wasAuthed) this.attemptsThisRound = 0; // a fresh round, starting with the next node
    this.nodeIndex = (this.nodeIndex + 1) % this.nodes.length;
    if (this.attemptsThisRound < this.nodes.length) {
      this.connect();
      return;
    }
    if (this.reachable) {
      this.reachable = false;
      this.dispatchEvent(new Event('unreachable'));
    }
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => {
      this.attemptsThisRound = 0;
      this.connect();
    }, this.retryDelay);
    this.retryDelay = Math.min(this.retryDelay * 2, MAX_RETRY_DELAY_MS);
  }

  tick() {
    const socket = this.socket;
    if (!socket) return;
    const now = Date.now();
    if (socket.readyState === WebSocket.CONNECTING) {
      if (now - this.connectStartedAt > CONNECT_TIMEOUT_MS) this.abandon(socket);
      return;
    }
    if (socket.readyState !== WebSocket.OPEN) return;
    let oldestSentAt = Infinity;
    for (const waiter of this.pending.values()) oldestSentAt = Math.min(oldestSentAt, waiter.sentAt);
    if (oldestSentAt !== Infinity && now - Math.max(oldestSentAt, this.lastHeardAt) > SILENCE_LIMIT_MS) {
      this.abandon(socket); // waiting for an answer, and the node has said nothing for too long
    } else if (now - this.lastHeardAt >= PING_AFTER_QUIET_MS && !this.pingPending) {
      this.pingPending = true;
      this.send('ping', {}).then(
        () => { this.pingPending = false; },
        () => { this.pingPending = false; },
      );
    }
  }
}
