// The till locks itself after the store's `idle_lock_minutes` (auth
// settings; 0: never) without a touch, a key or a scan: back to the PIN of
// the cashier signed in (another may sign in instead), the basket kept. Only
// while a node answers, which is what checks a PIN: with none, a locked till
// could not be unlocked and the shop would stop selling (a till left signed
// in may sell offline, as after a reload; docs/architecture.md).
// A view with no section of its own (see app.js).

const MINUTE_MS = 60_000;
// Screens the lock leaves alone: nobody is signed in there, or a sale's change is being read.
const NOT_LOCKED_ON = new Set(['pair', 'login', 'done']);

export function idleLock(ui) {
  const { session } = ui;
  let lastTouch = Date.now();
  let timer = null;

  function limitMs() {
    const minutes = session.auth?.settings?.idle_lock_minutes;
    return Number.isInteger(minutes) && minutes > 0 ? minutes * MINUTE_MS : 0;
  }

  function touched() {
    lastTouch = Date.now();
    if (timer === null) arm();
  }

  /** One timer at a time, for what is left of the idle time; it re-arms itself after a touch. */
  function arm() {
    clearTimeout(timer);
    timer = null;
    const limit = limitMs();
    if (!limit) return;
    const left = lastTouch + limit - Date.now();
    timer = setTimeout(check, Math.max(left, 0));
  }

  function check() {
    timer = null;
    const limit = limitMs();
    if (!limit) return;
    if (Date.now() - lastTouch < limit) return arm();
    if (!lockable()) {
      lastTouch = Date.now(); // try again a whole idle time later
      return arm();
    }
    session.lock();
    ui.screens.login.askForPin();
  }

  function lockable() {
    return Boolean(session.cashier) && session.pin !== null && ui.client.online && session.ready
      && !session.paying && !NOT_LOCKED_ON.has(ui.screen) && !document.querySelector('dialog[open]');
  }

  function wire() {
    for (const type of ['pointerdown', 'keydown', 'wheel']) {
      document.addEventListener(type, touched, { capture: true, passive: true });
    }
    // The settings come with each auth answer; a login starts the idle time afresh.
    session.addEventListener('authed', arm);
    session.addEventListener('signed-in', touched);
    session.addEventListener('signed-in', arm);
  }

  return { name: 'idle-lock', wire, render() {}, touched };
}
