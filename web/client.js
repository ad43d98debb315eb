// The till's websocket client: one connection to /api/ws, `auth` first,
// promise-based commands, automatic reconnection with backoff.

const FIRST_RETRY_DELAY_MS = 500;
const MAX_RETRY_DELAY_MS = 5000;
// The protocol has no ping command, and a browser cannot see the server's
// websocket pings: a command left unanswered this long means a dead link.
const COMMAND_TIMEOUT_MS = 15000;

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
 * Events dispatched:
 *  - "authed"  (detail: the auth result) each time a connection is authenticated
 *  - "offline" each time a connection is lost (or could not be made)
 *  - "invalid-token" when the server no longer knows our token (the client then stops)
 *  - "event"   (detail: the pushed message) for subscribe_events pushes
 */
export class TillClient extends EventTarget {
  constructor(url) {
    super();
    this.url = url;
    this.token = null;
    this.socket = null;
    this.authed = false;
    this.running = false;
    this.nextId = 1; // never reset: ids stay increasing across reconnects too
    this.pending = new Map(); // id -> {resolve, reject, sentAt}
    this.retryDelay = FIRST_RETRY_DELAY_MS;
    this.retryTimer = null;
    this.watchdog = null;
  }

  start(token) {
    this.token = token;
    this.running = true;
    this.retryDelay = FIRST_RETRY_DELAY_MS;
    this.connect();
    // Look for stuck commands once a second (see COMMAND_TIMEOUT_MS).
    this.watchdog ??= setInterval(() => this.checkStuckCommands(), 1000);
  }

  stop() {
    this.running = false;
    clearTimeout(this.retryTimer);
    clearInterval(this.watchdog);
    this.watchdog = null;
    const socket = this.socket;
    this.dropConnection();
    if (socket) socket.close();
  }

  /** Skip the backoff wait, e.g. when the browser says the network is back. */
  reconnectNow() {
    if (!this.running || this.socket) return;
    clearTimeout(this.retryTimer);
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

  // --- internals ---

  send(type, args) {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject, sentAt: Date.now() });
      this.socket.send(JSON.stringify({ ...args, id, type }));
    });
  }

  connect() {
    const socket = new WebSocket(this.url);
    this.socket = socket;
    socket.onopen = () => this.authenticate(socket);
    socket.onmessage = (message) => this.receive(message.data);
    socket.onclose = () => {
      if (this.socket !== socket) return;
      this.dropConnection();
      this.scheduleReconnect();
    };
    // onerror is always followed by onclose, which does the work.
  }

  async authenticate(socket) {
    try {
      const result = await this.send('auth', { token: this.token });
      if (this.socket !== socket) return;
      this.authed = true;
      this.retryDelay = FIRST_RETRY_DELAY_MS;
      this.dispatchEvent(new CustomEvent('authed', { detail: result }));
    } catch (error) {
      if (error.code === 'invalid_token') {
        this.stop();
        this.dispatchEvent(new CustomEvent('invalid-token', { detail: error }));
      } else if (this.socket === socket) {
        this.abandon(socket); // anything else: treat as a failed connection and retry
      }
    }
  }

  receive(data) {
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
      if (message.success) {
        waiter.resolve(message.result);
      } else {
        const error = message.error || {};
        waiter.reject(new CommandError(error.code || 'unknown', error.message));
      }
    } else if (message.type === 'event') {
      this.dispatchEvent(new CustomEvent('event', { detail: message }));
    }
  }

  /** Forget the socket and fail every pending command, so callers can resend after reconnecting. */
  dropConnection() {
    const wasAuthed = this.authed;
    this.socket = null;
    this.authed = false;
    const pending = [...this.pending.values()];
    this.pending.clear();
    for (const waiter of pending) {
      waiter.reject(new CommandError('disconnected', 'connection lost'));
    }
    if (wasAuthed || pending.length) this.dispatchEvent(new Event('offline'));
  }

  /**
   * Give up on a socket now rather than waiting for its onclose, which can
   * take long on a dead link (the closing handshake has to time out first).
   */
  abandon(socket) {
    this.dropConnection();
    socket.close();
    this.scheduleReconnect();
  }

  scheduleReconnect() {
    if (!this.running) return;
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => this.connect(), this.retryDelay);
    this.retryDelay = Math.min(this.retryDelay * 2, MAX_RETRY_DELAY_MS);
  }

  checkStuckCommands() {
    if (!this.socket) return;
    const now = Date.now();
    for (const waiter of this.pending.values()) {
      if (now - waiter.sentAt > COMMAND_TIMEOUT_MS) {
        this.abandon(this.socket);
        return;
      }
    }
  }
}
