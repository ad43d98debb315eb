// The till app: the wiring. It makes the till's parts, gives them to one
// another, and turns the DOM's and the session's events into screen changes.
//  - session.js: the till session, no DOM (signed-in cashier, basket, sale in
//    flight, offline selling, reconcile after a reconnect); unit-tested alone.
//  - client.js (nodes), ledger.js (receipts, outbox), catalogue.js, printing.js.
//  - screen-*.js: one module per screen, drawing it and handling its keys and taps.
//
// Adding a screen (say "refund"):
//  1. index.html: a `<section id="screen-refund" class="screen" hidden>` in <main>.
//  2. web/screen-refund.js: `export function refundScreen(ui)` returning
//     {name: 'refund', wire(), render(), and optionally onKey(event), focus(),
//     onLeave()}; the screen's own state lives in that closure, the till's in
//     `ui.session`. Other screens reach it as `ui.screens.refund`.
//  3. Below: import it and add it to `views`. ui.show('refund') shows it,
//     renderAll() draws it, keys go to its onKey while it is shown, and
//     onLeave() runs when another screen is shown.
// A panel inside a screen (screen-parked.js) is a view with no section of its own.
// Logic that needs no DOM (what a command does, what goes to the node, what
// happens offline) goes in session.js, with a test in tests/test_till_session.py.
import { t, getLang, setLang, translatePage, errorText } from './i18n.js';
import { TillClient } from './client.js';
import { TillStore } from './offline.js';
import { LocalCatalogue, tillCopy } from './catalogue.js';
import { TillLedger } from './ledger.js';
import { TillSession, systemClock } from './session.js';
import { TillPrinting } from './printing.js';
import { $, setText } from './dom.js';
import { pairScreen, TOKEN_KEY } from './screen-pair.js';
import { loginScreen } from './screen-login.js';
import { sellScreen } from './screen-sell.js';
import { parkedPanel } from './screen-parked.js';
import { payScreen } from './screen-pay.js';
import { doneScreen } from './screen-done.js';
import { ManagerApproval } from './approval.js';
import { discountPanel } from './screen-discount.js';
import { refundScreen } from './screen-refund.js';
import { salesScreen } from './screen-sales.js';
import { shiftScreen } from './screen-shift.js';
import { gridPanel } from './screen-grid.js';
import { idleLock } from './screen-sell-idle.js';
import { CardTerminal } from './card-terminal.js';
import { cardDialog } from './screen-pay-card.js';

const ERROR_HIDE_MS = 4000;
const LOUD_ERROR_HIDE_MS = 8000;

const client = new TillClient(location.origin);
const ledger = new TillLedger(); // receipt numbering, the outbox of offline sales, the day's sales
// The till's copy of the catalogue, to sell offline: in IndexedDB, by its worker (nothing waits for it).
const catalogue = new LocalCatalogue(tillCopy());
catalogue.useClient(client); // catalogue pages to its worker unparsed, never while a scan waits

const printing = new TillPrinting({
  client,
  // Reprints and drawer openings need the cashier logged in on the node serving us now.
  session: () => ({ cashier: session.cashier, ready: session.ready && Boolean(session.cashier) }),
  showError: (error) => showError(error),
  onDialogClosed: () => screens.sell.refocusScan(),
});

const session = new TillSession({ client, ledger, catalogue, printing, storage: pageSessionStorage() });
// Card payments on the payment terminal, through the node (card-terminal.js): kept in
// localStorage, so a payment under way outlives a reload or a closed tab.
const cards = new CardTerminal({ call: (type, args) => client.call(type, args), storage: window.localStorage, clock: systemClock });

/** What every screen is given: the session, and the app's shared means. */
const ui = {
  screen: null, // the screen shown
  session,
  client,
  printing,
  screens: {}, // by name: ui.screens.pay.open('cash')
  show: showScreen,
  showError,
  hideError,
  logout,
  startConnection,
  cards,
};
// The terminal's dialog, over any screen (the pay screen's cards, and refunds paid back by card).
ui.cardDialog = cardDialog(ui, cards);

// Every view, in drawing order, each reached by its name: ui.screens.sell.
const views = [pairScreen(ui), loginScreen(ui), sellScreen(ui), parkedPanel(ui), payScreen(ui), doneScreen(ui)];
// A manager's PIN on the spot (discounts, open prices, refunds): ui.approval.run(send, why).
ui.approval = new ManagerApproval(ui);
views.push(discountPanel(ui), refundScreen(ui));
// Today's sales, to print or reprint any of them (screen-sales.js).
views.push(salesScreen(ui));
// The drawer's shift, the X report, training mode and the manager's day (screen-shift.js).
views.push(shiftScreen(ui));
// The product grid beside the scan field; the lock after the store's idle time.
views.push(gridPanel(ui), idleLock(ui));
// The error banner goes as soon as the cashier's next basket command works.
session.addEventListener('succeeded', () => hideError());
// A code scanned on another screen than the sell one (the pay screen): the sell logic takes it.
ui.scan = (code) => (screens.sell.scan ? screens.sell.scan(code) : session.addItem({ barcode: code }));
const screens = ui.screens;
for (const view of views) screens[view.name] = view;

function pageSessionStorage() {
  try {
    return window.sessionStorage;
  } catch {
    return null; // no session storage: a reload shows the login screen
  }
}

// --- screens ------------------------------------------------------------------------------

function showScreen(name) {
  ui.screen = name;
  for (const section of document.querySelectorAll('main > section')) {
    section.hidden = section.id !== `screen-${name}`;
  }
  for (const view of views) if (view.name !== name) view.onLeave?.();
  // A field of the screen just hidden keeps the focus until the browser's next layout: drop it now.
  document.activeElement?.blur();
  renderAll();
  screens[name]?.focus?.(); // where the keyboard (and the scanner) should type
}

function renderAll() {
  renderStatus();
  renderHeader();
  for (const view of views) view.render();
  printing.render();
}

function renderStatus() {
  const status = $('#status');
  const paired = Boolean(localStorage.getItem(TOKEN_KEY));
  const online = client.online;
  const count = ledger.waitingSales;
  status.dataset.state = online ? 'online' : 'offline';
  // For store IT and tests: what the till holds for itself.
  status.dataset.waitingSales = String(count);
  status.dataset.keptSales = String(ledger.keptSales);
  status.dataset.catalogue = String(catalogue.size);
  status.dataset.catalogueVersion = catalogue.version ? JSON.stringify(catalogue.version) : '';
  status.dataset.node = online ? client.node?.id ?? '' : '';
  let text;
  if (!paired) text = count ? `${t('status.unpaired')} · ${t('status.salesToSend', { count })}` : t('status.unpaired');
  else if (online) text = count ? `${t('status.online')} · ${t('status.salesToSend', { count })}` : t('status.online');
  else text = count ? t('status.offlineWaiting', { count }) : t('status.offline');
  const waiting = session.queue.length;
  if (waiting && !session.ready) text += ` · ${t('status.pending', { count: waiting })}`;
  // Sales this store's nodes will not take from this till (made as a till it no longer is).
  const elsewhere = session.waitingElsewhere ?? [];
  status.dataset.waitingElsewhere = String(elsewhere.reduce((sum, row) => sum + row.count, 0));
  for (const row of elsewhere) text += ` · ${t(row.otherStore ? 'status.otherStoreSales' : 'status.earlierTillSales', row)}`;
  setText(status, text);
  // Which node serves the till: out of the cashier's way, there for store IT.
  const node = online ? client.node : null;
  status.title = node ? t('status.servedBy', { node: node.id ?? '?', url: node.url }) : '';
  setText($('#node-name'), node ? t('status.node', { node: node.id ?? node.url }) : '');
  setText($('#lang'), t('lang.toggle'));
  $('#lang').title = t('lang.toggleTitle');
}

function renderHeader() {
  $('#store-name').textContent = session.auth?.store?.name ?? '';
  const till = session.auth?.till;
  $('#till-name').textContent = till ? `${till.name} (${till.code})` : '';
  $('#cashier-name').textContent = session.cashier?.name ?? '';
}

/** After the basket changed under the pay screen (sold or voided elsewhere): back to selling. */
function leavePayIfNothingToPay() {
  if (ui.screen === 'pay' && !session.paying && !session.hasLines) showScreen('sell');
}

// --- errors and sound -----------------------------------------------------------------

let errorTimer = null;

function showError(error, { loud = false } = {}) {
  const banner = $('#error');
  banner.textContent = errorText(error);
  banner.classList.toggle('loud', loud);
  banner.hidden = false;
  clearTimeout(errorTimer);
  errorTimer = setTimeout(hideError, loud ? LOUD_ERROR_HIDE_MS : ERROR_HIDE_MS);
  if (loud) beep();
}

function hideError() {
  clearTimeout(errorTimer);
  $('#error').hidden = true;
}

let audioContext = null;

/** Three short low beeps. Browsers allow sound after a user gesture; a scanner's keystrokes count. */
function beep() {
  try {
    audioContext ??= new AudioContext();
    const start = audioContext.currentTime + 0.01;
    for (let i = 0; i < 3; i++) {
      const oscillator = audioContext.createOscillator();
      const gain = audioContext.createGain();
      oscillator.type = 'square';
      oscillator.frequency.value = 440;
      gain.gain.value = 0.15;
      oscillator.connect(gain).connect(audioContext.destination);
      oscillator.start(start + i * 0.18);
      oscillator.stop(start + i * 0.18 + 0.12);
    }
  } catch {
    // No audio: the banner is still there.
  }
}

// --- the session and the connection ---------------------------------------------------

function wireSession() {
  const on = (type, handler) => session.addEventListener(type, (event) => handler(event.detail));
  on('change', () => {
    renderStatus();
    screens.sell.renderBasket();
    screens.pay.render();
  });
  on('error', ({ error, loud }) => showError(error, { loud }));
  on('sold', ({ sale }) => {
    // Its card payments are the sale's now: nothing left to ask the node after a reload.
    cards.forgetFor({ basketId: sale?.basket_id ?? session.basketId });
    showScreen('done');
  });
  on('authed', () => {
    renderHeader();
    screens.login.render();
    renderStatus();
    checkForAppUpdate();
    if (!session.cashier && ui.screen !== 'login') showScreen('login');
  });
  on('pin-needed', () => screens.login.askForPin());
  on('signed-in', () => screens.login.signedIn());
  on('ready', () => {
    if (ui.screen === 'login') showScreen('sell');
    leavePayIfNothingToPay();
    renderAll();
    // Card payments under way or unknown (a reload, a reconnect, another node): their state again,
    // and the pay screen with its dialog, once the login screen has shown the sell one (next turn).
    cards.onAuthed();
    setTimeout(() => {
      if (ui.screen === 'sell' && session.hasLines && cards.hasOpenFor(session.basketId)) screens.pay.open('card');
    }, 0);
  });
  on('offline', () => {
    cards.onOffline();
    // Asked for the PIN after a reload, and the node left before it was typed: sell on offline.
    if (session.cashier && session.pin === null && ui.screen === 'login') showScreen('sell');
    renderStatus();
    screens.sell.renderBasket();
  });
  on('resynced', () => {
    screens.sell.renderBasket();
    leavePayIfNothingToPay();
  });
  on('ended', ({ error }) => {
    screens.login.pinWanted = false;
    screens.sell.closeSearch();
    renderStatus();
    if (error) {
      // The PIN was refused on a reconnect (changed meanwhile): a cashier logs in afresh.
      showScreen('login');
      showError(error);
    }
  });
}

function startConnection() {
  // A cashier still signed in after a reload sells at once; a node that answers asks the PIN.
  showScreen(session.cashier ? 'sell' : 'login');
  client.start(localStorage.getItem(TOKEN_KEY));
  renderStatus();
}

function onInvalidToken() {
  localStorage.removeItem(TOKEN_KEY);
  session.forgetTill();
  renderHeader();
  renderStatus();
  showScreen('pair');
  showError({ code: 'invalid_token' });
}

function logout() {
  screens.login.selectedCashierId = null; // the next cashier picks their own tile
  session.logout();
  showScreen('login');
}

/**
 * The service worker keeps the app so a reload opens with every node down.
 * Browsers allow it in secure contexts only (HTTPS with the store CA, or
 * loopback); without one, or if it fails, the till works as it always did.
 */
function registerServiceWorker() {
  try {
    if (!window.isSecureContext || !navigator.serviceWorker) return;
    navigator.serviceWorker.register('/sw.js', { scope: '/', updateViaCache: 'none' }).catch((error) => {
      console.warn('no service worker: a reload needs a node', error);
    });
  } catch (error) {
    console.warn('no service worker: a reload needs a node', error);
  }
}

/** A node answered, maybe upgraded: fetch its /sw.js now, so the next reload is its version. */
function checkForAppUpdate() {
  try {
    if (!window.isSecureContext || !navigator.serviceWorker) return;
    navigator.serviceWorker.getRegistration().then((registration) => registration?.update()).catch(() => {});
  } catch {
    // No worker: nothing to update.
  }
}

// --- wiring ---------------------------------------------------------------------------------

function onKeydown(event) {
  if (printing.dialogOpen) return; // the manager is typing a reason: no shortcut, no scan
  screens[ui.screen]?.onKey?.(event);
}

function wireEvents() {
  document.addEventListener('keydown', onKeydown);
  $('#lang').addEventListener('click', () => {
    setLang(getLang() === 'fr' ? 'en' : 'fr');
    translatePage();
    renderAll();
    screens.sell.refocusScan();
  });
  $('#error').addEventListener('click', hideError);
  for (const view of views) view.wire();
  printing.wire();
  wireSession();

  client.addEventListener('event', (event) => {
    catalogue.onEvent(event.detail.event);
    printing.onEvent(event.detail);
    cards.onPush(event.detail);
  });
  ledger.addEventListener('change', renderStatus);
  catalogue.addEventListener('change', renderStatus);
  client.addEventListener('invalid-token', onInvalidToken);
  // The browser noticed the network is back: do not wait for the backoff timer.
  window.addEventListener('online', () => client.reconnectNow());
  window.addEventListener('pagehide', () => session.save()); // a reload (F5) keeps the session and basket
}

/**
 * The browser's own storage: outbox, receipt counter (the catalogue copy has
 * its own database, opened by its worker). Selling online works without it.
 */
async function openTillStorage() {
  try {
    const store = await TillStore.open();
    ledger.attach(store);
    await ledger.dropOlderDays().catch(() => {}); // a till left on overnight: yesterday is the nodes' business
  } catch (error) {
    console.warn('no offline storage on this till', error);
  }
}

async function start() {
  registerServiceWorker();
  translatePage();
  wireEvents();
  await openTillStorage();
  if (screens.pair.pairFromLink()) return;
  if (localStorage.getItem(TOKEN_KEY)) {
    if (await session.restore()) screens.login.selectedCashierId = session.cashier.id;
    startConnection();
  } else {
    showScreen('pair');
  }
}

start();
