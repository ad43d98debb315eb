// The till app: screens, basket, payment. Talks to a node through client.js,
// sells on its own (offline.js, catalogue.js, basket.js) when none answers,
// keeps every sale of the day (ledger.js) for the nodes that lack one, and
// shows its printer (printing.js).
import {
  t, getLang, setLang, formatMoney, formatRate, formatAmountForInput, errorText, translatePage,
} from './i18n.js';
import { TillClient, CommandError, newUuid } from './client.js';
import { TillStore } from './offline.js';
import { LocalCatalogue } from './catalogue.js';
import { TillLedger, sessionStillValid } from './ledger.js';
import {
  emptyBasket, addLine, setLineQuantity, removeLine as removeLocalLine, offlineSale, receiptNumber,
  reconcileBasket, recordedSale,
} from './basket.js';
import { $, el } from './dom.js';
import { TillPrinting } from './printing.js';

const TOKEN_KEY = 'edge.till_token';
// The signed-in cashier and the till's basket, kept for a reload (F5) of this
// tab only (sessionStorage), so a till reloaded with every node down still sells.
const SESSION_KEY = 'edge.session';
const DEFAULT_TILL_NAME = 'Caisse';
const SEARCH_DEBOUNCE_MS = 150;
const SEARCH_LIMIT = 20;
const ERROR_HIDE_MS = 4000;
const LOUD_ERROR_HIDE_MS = 8000;
const CLEAR_CONFIRM_MS = 4000;
const MAX_QUANTITY = 9999;
// A sale under way when the node dies waits this long for another node (which
// prints the receipt) before the till completes it offline.
const SALE_FAILOVER_WAIT_MS = 5000;

const state = {
  screen: null,
  auth: null, // last `auth` result: store, till, cashiers
  selectedCashierId: null,
  cashier: null, // the logged-in cashier
  // Login is per connection, so after a reconnect the same cashier must log in
  // again without being asked: the PIN stays in memory (never in storage) until logout.
  // null with a cashier: the session came back from a reload, so the PIN is typed again.
  pin: null,
  pinCheckedAt: null, // when a node last checked the PIN (ms): how long a reload may sell on without one
  pinWanted: false, // a node answered after a reload: ask the PIN once the change due is read
  sessionEpoch: 0, // bumped at logout, so answers for the previous session are ignored
  connectionEpoch: 0, // bumped at each auth and each loss, so work for an old connection stops
  basketId: null, // client-made id of the current basket (exists on the node after the first add)
  // The till's basket: the node's copy as last received, or as the till changed
  // it while no node answered (then the till's copy is the truth; see basket.js).
  basket: null,
  lastAddedLineId: null,
  scrollToLastAdded: false, // only right after an add, not when the cashier scrolled up to fix a line
  payMode: 'cash',
  paying: false,
  lastSale: null,
  clearArmedUntil: 0,
  // The basket being paid for, from its first sale/complete until the answer:
  // if its node died meanwhile, the next node may already know the sale.
  saleInFlight: null,
  // Baskets voided while no node answered: voided on the next node too.
  voidedOffline: [],
};

const ledger = new TillLedger(); // receipt numbering, the outbox of offline sales, the day's sales
const catalogue = new LocalCatalogue(null); // the till's copy, to sell offline

const search = {
  timer: null,
  sequence: 0, // to drop answers to older queries
  query: '', // query the results belong to
  results: [],
  selected: 0,
};

const client = new TillClient(location.origin);

const printing = new TillPrinting({
  client,
  // Reprints and drawer openings need the cashier logged in on the node serving us now.
  session: () => ({ cashier: state.cashier, ready: sessionReady.isOpen && Boolean(state.cashier) }),
  showError: (error) => showError(error),
  onDialogClosed: () => refocusScan(),
});

// --- session gate -----------------------------------------------------------

/**
 * Open when the connection is authenticated, the cashier logged in, the
 * outbox flushed and the basket reconciled: basket commands then go to the
 * node. While it is closed they are applied locally, except while `syncing`
 * (a node just answered and is being brought up to date), when they wait.
 */
const sessionReady = {
  isOpen: false,
  syncing: false,
  waiters: [],
  /** Resolves at the next change of the connection (or after `ms`). */
  nextChange(ms) {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.waiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  },
  changed() {
    for (const resolve of this.waiters.splice(0)) resolve();
  },
  startSync() {
    this.syncing = true;
    this.changed();
  },
  open() {
    this.isOpen = true;
    this.syncing = false;
    this.changed();
  },
  close() {
    this.isOpen = false;
    this.syncing = false;
    this.changed();
  },
};

// --- basket command queue ---------------------------------------------------
//
// Basket commands run one at a time, in the order the cashier made them.
// Each job's build() makes its command when its turn comes, from the basket as
// it is then (so "+" tapped twice quickly gives +2). Once built, a command is
// resent unchanged (same basket_id / line_id) after a reconnect: the node
// treats the repeat as a no-op and gives the same answer.

const basketQueue = []; // {build, preview, resolve}
let basketQueueRunning = false;

function queueBasketCommand(build, preview = null) {
  return new Promise((resolve) => {
    basketQueue.push({ build, preview, resolve });
    renderBasket();
    renderStatus();
    runBasketQueue();
  });
}

async function runBasketQueue() {
  if (basketQueueRunning) return;
  basketQueueRunning = true;
  while (basketQueue.length) {
    const job = basketQueue[0];
    const outcome = await runBasketJob(job);
    basketQueue.shift();
    job.resolve(outcome);
    renderBasket();
    renderStatus();
    renderPay();
  }
  basketQueueRunning = false;
}

async function runBasketJob(job) {
  const epoch = state.sessionEpoch;
  const cancelled = { ok: false, cancelled: true };
  let command = null;
  let resyncedOnce = false;
  let renumbered = 0;
  let waitingSince = null;
  for (;;) {
    if (epoch !== state.sessionEpoch) return cancelled;
    command ??= job.build();
    if (!command) return { ok: true, result: null };
    if (command.type === 'sale/complete') state.saleInFlight = command.args.basket_id;
    if (!sessionReady.isOpen) {
      waitingSince ??= Date.now();
      if (shouldWaitForNode(command, waitingSince)) {
        await sessionReady.nextChange(250);
        continue;
      }
      return runLocally(command);
    }
    try {
      const result = await client.call(command.type, command.args);
      if (epoch !== state.sessionEpoch) return cancelled;
      await applyBasketResult(command, result);
      return { ok: true, result };
    } catch (error) {
      if (epoch !== state.sessionEpoch) return cancelled;
      if (error.code === 'disconnected') continue; // to the next node, or locally
      if (error.code === 'receipt_number_used' && renumbered < 3 && (await ledger.adoptNextFree(error))) {
        // Another tab of this till (or a stale counter) used the number: same basket, next free number.
        renumbered++;
        command = null;
        continue;
      }
      // Another till took this basket over (docs/protocol.md, "Who holds a basket"): it is gone from here.
      const basketTaken = error.code === 'basket_held' && command.type !== 'basket/take_over';
      if (basketTaken) showError(error);
      if (basketTaken && command.type === 'sale/complete') state.paying = false;
      if (error.code === 'basket_mismatch' || error.code === 'no_open_basket' || basketTaken) {
        // Another basket is open on this till (another tab, another node): take it up.
        await resyncBasket().catch(() => {});
        if (command.type === 'basket/add' && !resyncedOnce) {
          resyncedOnce = true;
          command = null; // rebuild with the basket id we now hold; the cashier's scan is not lost
          continue;
        }
      }
      handleBasketError(command, error);
      return { ok: false, error };
    }
  }
}

/**
 * With no session, basket changes are made locally at once: the cashier never
 * waits on the network. They wait only while a node that just answered is
 * brought up to date; a sale also waits (a few seconds at most) while the
 * client tries the other nodes, because a node prints the receipt.
 */
function shouldWaitForNode(command, waitingSince) {
  if (sessionReady.syncing) return true;
  if (command.type !== 'sale/complete') return false;
  const failingOver = client.running && client.reachable;
  return failingOver && Date.now() - waitingSince < SALE_FAILOVER_WAIT_MS;
}

/** A basket command carried out by the till itself, with the node's rules, while no node answers. */
async function runLocally(command) {
  try {
    const { args } = command;
    switch (command.type) {
      case 'basket/add': {
        const product = args.product_id ? catalogue.find(args.product_id) : catalogue.lookup(args.barcode);
        if (!product) {
          throw args.product_id
            ? new CommandError('unknown_product', 'not in the offline catalogue')
            : new CommandError('unknown_barcode', 'not in the offline catalogue');
        }
        const basket = state.basket ?? emptyBasket(args.basket_id);
        state.basket = addLine(basket, { lineId: args.line_id, product, quantity: args.quantity });
        state.basketId = state.basket.id;
        state.scrollToLastAdded = true;
        break;
      }
      case 'basket/set_quantity':
        if (!findLine(args.line_id)) throw new CommandError('unknown_line');
        state.basket = setLineQuantity(state.basket, args.line_id, args.quantity);
        break;
      case 'basket/remove_line':
        if (state.basket) state.basket = removeLocalLine(state.basket, args.line_id);
        break;
      case 'basket/clear':
        // The node may hold this basket from before the outage: void it there too, later.
        state.voidedOffline.push(args.basket_id);
        state.basket = null;
        state.basketId = newUuid();
        break;
      case 'sale/complete':
        await completeSaleOffline(args);
        break;
      default:
        throw new CommandError('offline');
    }
    return { ok: true, result: state.basket };
  } catch (error) {
    handleBasketError(command, error);
    return { ok: false, error };
  }
}

/**
 * The sale goes into the outbox, on disk, before the cashier is told "done";
 * it reaches a node (sale/record) as soon as one answers.
 */
async function completeSaleOffline({ basket_id: basketId, receipt_no: receiptNo, tenders }) {
  if (!state.basket?.lines.length || state.basket.id !== basketId) throw new CommandError('empty_basket');
  const sale = offlineSale({
    basket: state.basket, tillCode: state.auth.till.code, receiptNo, cashierId: state.cashier.id, tenders,
    time: new Date().toISOString(),
  });
  await ledger.keepOfflineSale(sale);
  state.saleInFlight = null;
  state.lastSale = { ...sale, receipt_number: receiptNumber(state.auth.till.code, receiptNo), offline: true };
  printing.showSale(state.lastSale);
  state.basket = null;
  state.basketId = null;
  state.paying = false;
  showScreen('done');
}

async function applyBasketResult(command, result) {
  switch (command.type) {
    case 'sale/complete':
      // Kept before "done": if this node dies before passing the sale on, the next one gets it from us.
      await ledger.keepSale(recordedSale(result));
      state.saleInFlight = null;
      state.lastSale = result;
      printing.showSale(result);
      state.basket = null;
      state.basketId = null;
      state.paying = false;
      showScreen('done');
      break;
    case 'basket/clear':
      state.basket = null;
      state.basketId = newUuid();
      break;
    case 'basket/add':
      state.scrollToLastAdded = true;
      adoptBasket(result);
      break;
    default:
      adoptBasket(result);
  }
}

function adoptBasket(basket) {
  state.basket = basket;
  if (basket) state.basketId = basket.id;
}

function handleBasketError(command, error) {
  if (error.code === 'unknown_barcode') {
    // The cashier is looking at the customer: make it loud.
    showError({ code: 'unknown_barcode', barcode: command.args.barcode }, { loud: true });
  } else {
    showError(error);
  }
  if (command.type === 'sale/complete') {
    state.saleInFlight = null;
    state.paying = false;
    renderPay();
  }
}

/** Takes the node's open basket as the truth (when the node says ours is not open). */
async function resyncBasket() {
  const basket = await client.call('basket/get');
  if (basket) {
    adoptBasket(basket);
  } else if (state.basket) {
    // We thought a basket was open, the node has none (sold or voided elsewhere): start afresh.
    state.basket = null;
    state.basketId = newUuid();
  }
  state.basketId ??= newUuid();
  renderBasket();
  if (state.screen === 'pay' && !state.paying && !basketHasLines()) showScreen('sell');
}

// --- basket actions -----------------------------------------------------------

function basketLines() {
  return state.basket?.lines ?? [];
}

function basketHasLines() {
  return basketLines().length > 0;
}

function findLine(lineId) {
  return basketLines().find((line) => line.id === lineId);
}

function addItem({ barcode, productId, quantity = 1, label }) {
  hideError(); // the cashier has moved on to the next item
  closeParked();
  const lineId = newUuid();
  state.lastAddedLineId = lineId;
  const item = productId ? { product_id: productId } : { barcode };
  queueBasketCommand(
    () => ({
      type: 'basket/add',
      // (An id even if the connection died before login could set one up: the basket opens locally.)
      args: { basket_id: (state.basketId ??= newUuid()), line_id: lineId, ...item, quantity },
    }),
    { lineId, label: label ?? barcode, quantity },
  );
}

function changeQuantity(lineId, delta) {
  queueBasketCommand(() => {
    const line = findLine(lineId);
    if (!line) return null;
    const quantity = Math.min(line.quantity + delta, MAX_QUANTITY);
    if (quantity < 1) {
      return { type: 'basket/remove_line', args: { basket_id: state.basketId, line_id: lineId } };
    }
    return { type: 'basket/set_quantity', args: { basket_id: state.basketId, line_id: lineId, quantity } };
  });
}

function removeLine(lineId) {
  queueBasketCommand(() =>
    findLine(lineId) ? { type: 'basket/remove_line', args: { basket_id: state.basketId, line_id: lineId } } : null,
  );
}

/** First press arms the button, a second press within a few seconds voids the basket. */
function onClearBasketPressed() {
  if (!canClearBasket()) return;
  if (Date.now() < state.clearArmedUntil) {
    disarmClear();
    queueBasketCommand(() =>
      state.basket ? { type: 'basket/clear', args: { basket_id: state.basketId } } : null,
    );
  } else {
    state.clearArmedUntil = Date.now() + CLEAR_CONFIRM_MS;
    setTimeout(renderBasketButtons, CLEAR_CONFIRM_MS + 50);
    renderBasketButtons();
  }
}

function disarmClear() {
  state.clearArmedUntil = 0;
  renderBasketButtons();
}

function hasPendingAdds() {
  return basketQueue.some((job) => job.preview);
}

function canClearBasket() {
  return basketHasLines() || hasPendingAdds();
}

// --- parked baskets: resume a basket left open on another till ------------------------

const parked = { open: false, loading: false, baskets: [] };

async function openParkedBaskets() {
  if (!client.online || basketHasLines()) return;
  Object.assign(parked, { open: true, loading: true, baskets: [] });
  renderParked();
  try {
    const baskets = await client.call('basket/list_open');
    const ownTill = state.auth?.till?.code;
    parked.baskets = baskets.filter((basket) => basket.till !== ownTill && basket.items > 0);
  } catch (error) {
    closeParked();
    showError(error);
    return;
  } finally {
    parked.loading = false;
  }
  renderParked();
}

function closeParked() {
  parked.open = false;
  renderParked();
}

function takeOverBasket(basketId) {
  closeParked();
  // A cashier cannot take a basket its till is still using; a manager who picks one from the
  // list may (that till froze, or its browser just closed): docs/protocol.md, "Who holds a basket".
  const force = state.cashier?.role === 'manager';
  queueBasketCommand(() => ({ type: 'basket/take_over', args: { basket_id: basketId, force } }));
}

// --- scan and search ------------------------------------------------------------

/** Scanner (or hand) input: "3017620422003", or "6*3017620422003" for six of them. */
function onScanKeydown(event) {
  if (event.key !== 'Enter') return;
  event.preventDefault();
  const scan = $('#scan');
  const text = scan.value.trim();
  scan.value = '';
  if (!text) return;
  const match = /^(\d{1,4})\s*[*xX]\s*(\S+)$/.exec(text);
  if (match && Number(match[1]) >= 1) {
    addItem({ barcode: match[2], quantity: Math.min(Number(match[1]), MAX_QUANTITY) });
  } else {
    addItem({ barcode: text });
  }
}

/** Someone typing a product name into the scan box: move them to the search field. */
function onScanInput() {
  const scan = $('#scan');
  if (/^\p{L}/u.test(scan.value)) {
    const searchInput = $('#search');
    searchInput.value = scan.value;
    scan.value = '';
    searchInput.focus();
    onSearchInput();
  }
}

function onSearchInput() {
  clearTimeout(search.timer);
  const query = $('#search').value.trim();
  if (!query) {
    clearSearchResults();
    return;
  }
  search.timer = setTimeout(() => runSearch(query).catch(showError), SEARCH_DEBOUNCE_MS);
}

async function runSearch(query) {
  const sequence = ++search.sequence;
  const results = await searchProducts(query);
  if (sequence !== search.sequence) return; // a newer query was typed meanwhile
  search.query = query;
  search.results = results;
  search.selected = 0;
  renderSearchResults();
}

/** The node's search when it answers (its ranking), the till's copy of the catalogue when not. */
async function searchProducts(query) {
  if (client.online) {
    try {
      return await client.call('catalogue/search', { query, limit: SEARCH_LIMIT });
    } catch (error) {
      if (error.code !== 'disconnected') throw error;
    }
  }
  return catalogue.search(query, SEARCH_LIMIT);
}

async function onSearchKeydown(event) {
  switch (event.key) {
    case 'ArrowDown':
    case 'ArrowUp': {
      event.preventDefault();
      if (!search.results.length) return;
      const step = event.key === 'ArrowDown' ? 1 : -1;
      search.selected = (search.selected + step + search.results.length) % search.results.length;
      renderSearchResults();
      break;
    }
    case 'Enter': {
      event.preventDefault();
      const query = $('#search').value.trim();
      if (!query) return;
      const looksLikeBarcode = /\d/.test(query) && !/\s/.test(query);
      try {
        // Enter can come before the debounced search ran: search now.
        if (search.query !== query) {
          clearTimeout(search.timer);
          await runSearch(query);
        }
      } catch (error) {
        if (!looksLikeBarcode) {
          showError(error);
          return;
        }
      }
      const product = search.query === query ? search.results[search.selected] : null;
      if (product) {
        addProduct(product);
      } else if (looksLikeBarcode) {
        // A barcode typed by hand (names never match digits-only codes).
        addItem({ barcode: query });
        closeSearch();
      }
      break;
    }
    case 'Escape':
      event.preventDefault();
      closeSearch();
      break;
  }
}

function addProduct(product) {
  addItem({ productId: product.id, label: product.name });
  closeSearch();
}

function clearSearchResults() {
  clearTimeout(search.timer);
  search.sequence++;
  search.query = '';
  search.results = [];
  search.selected = 0;
  renderSearchResults();
}

function closeSearch() {
  $('#search').value = '';
  clearSearchResults();
  if (state.screen === 'sell') $('#scan').focus({ preventScroll: true });
}

/** The scanner types into whatever has focus: give it back to #scan unless a field is in use. */
function refocusScan() {
  if (state.screen !== 'sell') return;
  const active = document.activeElement;
  if (active && active !== $('#scan') && active.matches('input, textarea, select')) return;
  $('#scan').focus({ preventScroll: true });
}

// --- payment ---------------------------------------------------------------------

function openPayment(mode) {
  if (!basketHasLines()) return;
  disarmClear();
  state.payMode = mode;
  state.paying = false;
  $('#cash-given').value = '';
  $('#card-reference').value = '';
  $('#card-amount').value = ''; // empty means the whole total, which may still grow if scans are pending
  showScreen('pay');
}

function switchPayMode(mode) {
  if (state.paying) return;
  state.payMode = mode;
  renderPay();
  focusScreen();
}

/** "5", "5,00", "5.00", "5 €" → 500 cents; null when it is not an amount. */
function parseAmount(text) {
  const cleaned = String(text).replace(/[\s€]/g, '').replace(',', '.');
  const match = /^(\d{1,7})(?:\.(\d{0,2}))?$/.exec(cleaned);
  if (!match) return null;
  return Number(match[1]) * 100 + Number((match[2] ?? '').padEnd(2, '0'));
}

/** What the form currently says: amounts in cents, null where a field is not an amount. */
function readPaymentForm() {
  const total = state.basket?.totals.total ?? 0;
  const byCard = state.payMode === 'card';
  const cardText = $('#card-amount').value.trim();
  const cardAmount = !byCard ? 0 : cardText === '' ? total : parseAmount(cardText);
  const cashDue = Math.max(total - (cardAmount ?? 0), 0);
  const needsCash = !byCard || (cardAmount !== null && cardAmount < total);
  // An empty "amount tendered" means the exact amount.
  const cashText = $('#cash-given').value.trim();
  const cashGiven = !needsCash ? 0 : cashText === '' ? cashDue : parseAmount(cashText);
  return {
    total, byCard, cardAmount, cashDue, needsCash, cashGiven,
    reference: $('#card-reference').value.trim(),
  };
}

function confirmPayment() {
  if (state.paying || hasPendingAdds() || !basketHasLines()) return;
  const form = readPaymentForm();
  const tenders = [];
  if (form.byCard) {
    if (form.cardAmount === null || form.cardAmount <= 0) {
      return rejectPayment('invalid_amount', '#card-amount');
    }
    if (form.cardAmount > form.total) return rejectPayment('card_overpay', '#card-amount');
    if (!form.reference) return rejectPayment('missing_reference', '#card-reference');
    tenders.push({ method: 'card', amount: form.cardAmount, reference: form.reference });
  }
  if (form.needsCash) {
    if (form.cashGiven === null) return rejectPayment('invalid_amount', '#cash-given');
    if (form.cashGiven < form.cashDue) return rejectPayment('payment_short', '#cash-given');
    tenders.push({ method: 'cash', amount: form.cashGiven });
  }
  state.paying = true;
  renderPay();
  // Queued behind any basket change still on its way, and resent as-is after a reconnect.
  // The till numbers its own receipts (the number is fixed once built, so a resend reuses it).
  queueBasketCommand(() => ({
    type: 'sale/complete',
    args: { basket_id: state.basketId, receipt_no: ledger.nextReceiptNo, tenders },
  }));
}

function rejectPayment(code, fieldSelector) {
  showError({ code });
  $(fieldSelector).focus();
  $(fieldSelector).select();
}

function onQuickCash(value) {
  const { cashDue } = readPaymentForm();
  const amount = value === 'exact' ? cashDue : Number(value);
  $('#cash-given').value = formatAmountForInput(amount);
  renderPay();
  $('#confirm-payment').focus(); // Enter now confirms
}

function leavePayment() {
  if (state.paying) return;
  showScreen('sell');
  if (state.pinWanted && client.online) askForPin(); // the sale failed: the PIN now
}

function newSale() {
  if (state.screen !== 'done') return;
  state.basketId = newUuid();
  state.basket = null;
  state.lastSale = null;
  printing.showSale(null);
  showScreen('sell');
  if (state.pinWanted && client.online) askForPin();
}

// --- pairing, connection, login ------------------------------------------------------

/** A `#pair=CODE` link pairs this till straight away; the code leaves the URL at once. */
function takePairCodeFromUrl() {
  const match = /[#&]pair=([^&]*)/.exec(location.hash);
  if (!match) return null;
  history.replaceState(null, '', location.pathname + location.search);
  return decodeURIComponent(match[1]);
}

async function pairTill(code, name) {
  const button = $('#pair-submit');
  button.disabled = true;
  try {
    let response;
    try {
      response = await fetch('/api/pair', {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ code, name }),
      });
    } catch {
      throw new CommandError('network', 'server unreachable');
    }
    const body = await response.json().catch(() => null);
    if (!response.ok) throw pairingError(response.status, body);
    localStorage.setItem(TOKEN_KEY, body.token);
    $('#pair-code').value = '';
    hideError();
    startConnection();
  } catch (error) {
    showScreen('pair');
    showError(error);
  } finally {
    button.disabled = false;
  }
}

/** protocol.md gives the statuses of /api/pair errors, not their body: accept the likely shapes. */
function pairingError(status, body) {
  const fallbackCode = { 400: 'invalid_request', 403: 'invalid_pairing_code', 429: 'too_many_attempts' }[status];
  const error = body?.error;
  if (error && typeof error === 'object') return new CommandError(error.code ?? fallbackCode, error.message);
  if (typeof error === 'string') return new CommandError(error, body.message);
  return new CommandError(body?.code ?? fallbackCode ?? 'network', body?.message ?? `HTTP ${status}`);
}

function startConnection() {
  // A cashier still signed in after a reload sells at once; a node that answers asks the PIN.
  showScreen(state.cashier ? 'sell' : 'login');
  client.start(localStorage.getItem(TOKEN_KEY));
  renderStatus();
}

async function onAuthed(auth) {
  const connection = ++state.connectionEpoch;
  state.auth = auth;
  await ledger.adopt(auth);
  if (connection !== state.connectionEpoch) return;
  renderHeader();
  renderLogin();
  renderStatus();
  refreshCatalogue();
  printing.onAuthed(auth);
  checkForAppUpdate();
  if (!state.cashier) {
    if (state.screen !== 'login') showScreen('login');
    return;
  }
  if (state.pin === null) {
    // Signed in before a reload: the PIN was not kept, so this node needs it typed once
    // more. The basket and the sales made meanwhile wait, and go to the node after login.
    askForPin();
    return;
  }
  // A reconnect, maybe to another node: log the same cashier back in, then bring the node up to date.
  sessionReady.startSync();
  renderStatus();
  try {
    await client.call('login', { cashier_id: state.cashier.id, pin: state.pin });
    state.pinCheckedAt = Date.now();
  } catch (error) {
    if (connection !== state.connectionEpoch || error.code === 'disconnected') return; // the next connection tries again
    endSession();
    showScreen('login');
    showError(error);
    return;
  }
  await bringNodeUpToDate(connection);
}

/**
 * Once a cashier is logged in on a fresh connection: the sales made offline
 * go first, in order, then any sale of the day the node lacks (its node
 * acknowledged it and died before passing it on), then the node's copy of
 * the basket is brought in line with the till's. Only then do basket
 * commands go to the node again.
 */
async function bringNodeUpToDate(connection) {
  const session = state.sessionEpoch;
  const stale = () => connection !== state.connectionEpoch || session !== state.sessionEpoch;
  if (stale()) return;
  sessionReady.startSync();
  try {
    await ledger.flush((type, args) => client.call(type, args), (sale, error) => {
      const receipt = receiptNumber(state.auth.till.code, sale.receipt_no);
      showError({ code: 'sale_not_sent', receipt, detail: error.message });
    });
    const { basket, outcome, dropped } = await reconcileBasket((type, args) => client.call(type, args), {
      local: state.basket, voided: state.voidedOffline, saleInFlight: state.saleInFlight,
    });
    if (stale()) return;
    state.voidedOffline = [];
    if (outcome !== 'sold') {
      // 'sold': the node already closed this basket; the sale in flight is resent and answers.
      state.basket = basket;
      if (basket) state.basketId = basket.id;
      else if (outcome === 'closed_elsewhere' || !state.basketId) state.basketId = newUuid();
    }
    if (outcome === 'closed_elsewhere') showError({ code: 'basket_closed_elsewhere' });
    if (dropped.length) showError({ code: 'lines_dropped', names: dropped.map((line) => line.name).join(', ') });
  } catch (error) {
    if (stale() || error.code === 'disconnected') return; // the next node tries again
    showError(error); // unexpected (a bug on the node): carry on with this node rather than block the till
  }
  if (stale()) return;
  sessionReady.open();
  if (state.screen === 'login') showScreen('sell');
  if (state.screen === 'pay' && !state.paying && !basketHasLines()) showScreen('sell');
  renderAll();
}

function refreshCatalogue() {
  catalogue.sync((type, args) => client.call(type, args)).catch(() => {
    // Lost the connection meanwhile: the next one refreshes it.
  });
}

function onOffline() {
  state.connectionEpoch++;
  sessionReady.close();
  printing.onOffline();
  // Asked for the PIN after a reload, and the node left before it was typed: sell on offline.
  if (state.cashier && state.pin === null && state.screen === 'login') showScreen('sell');
  renderStatus();
  renderBasket();
}

function onUnreachable() {
  sessionReady.changed(); // a sale waiting for another node completes offline now
  renderStatus();
}

function onInvalidToken() {
  localStorage.removeItem(TOKEN_KEY);
  endSession();
  state.auth = null;
  renderHeader();
  renderStatus();
  showScreen('pair');
  showError({ code: 'invalid_token' });
}

function selectCashier(cashierId) {
  state.selectedCashierId = cashierId;
  $('#pin').value = '';
  renderLogin();
}

async function submitLogin() {
  const cashierId = state.selectedCashierId;
  const pin = $('#pin').value;
  if (!cashierId) return showError({ code: 'choose_cashier' });
  // The PIN is checked by a node; the till keeps no PINs. A cashier already logged in stays so offline.
  if (!client.online) return showError({ code: 'login_offline' });
  const button = $('#login-submit');
  button.disabled = true;
  const connection = state.connectionEpoch;
  try {
    const { cashier } = await client.call('login', { cashier_id: cashierId, pin });
    state.cashier = cashier;
    state.pin = pin;
    state.pinCheckedAt = Date.now();
    state.pinWanted = false;
    saveSession();
    $('#pin').value = '';
    hideError();
  } catch (error) {
    $('#pin').value = '';
    showError(error.code === 'disconnected' ? { code: 'login_offline' } : error);
    return;
  } finally {
    button.disabled = false;
  }
  await bringNodeUpToDate(connection);
  showScreen('sell');
}

function logout() {
  if (client.online) client.call('logout').catch(() => {});
  state.selectedCashierId = null; // the next cashier picks their own tile
  endSession();
  showScreen('login');
}

function endSession() {
  state.cashier = null;
  state.pin = null;
  state.pinCheckedAt = null;
  state.pinWanted = false;
  state.sessionEpoch++;
  state.basket = null;
  state.basketId = null;
  state.lastSale = null;
  printing.showSale(null);
  state.paying = false;
  state.saleInFlight = null;
  sessionReady.close();
  // Queued commands of the old session are dropped (the running one sees the new epoch).
  for (const job of basketQueue.splice(1)) job.resolve({ ok: false, cancelled: true });
  closeSearch();
  saveSession(); // nobody signed in: a reload shows the login screen
  renderStatus();
}

/** Asks the signed-in cashier's PIN again (after a reload); not over the change due of a sale. */
function askForPin() {
  if (state.screen === 'done' || state.paying) {
    state.pinWanted = true; // newSale() or leavePayment() asks
    return;
  }
  state.pinWanted = false;
  state.selectedCashierId = state.cashier.id;
  $('#pin').value = '';
  showScreen('login');
}

// --- surviving a reload ------------------------------------------------------------

/** Keeps what a reload needs to sell on: the auth answer, the cashier (never the PIN), the basket. */
function saveSession() {
  try {
    if (!state.cashier || !state.auth) {
      sessionStorage.removeItem(SESSION_KEY);
      return;
    }
    const { auth, cashier, basket, basketId, voidedOffline, pinCheckedAt } = state;
    sessionStorage.setItem(SESSION_KEY, JSON.stringify({ auth, cashier, basket, basketId, voidedOffline, pinCheckedAt }));
  } catch {
    // No session storage (or full): a reload shows the login screen, as it always did.
  }
}

/** After a reload: the cashier who was signed in sells on, with the basket; false if nobody was. */
async function restoreSession() {
  let saved = null;
  try {
    saved = JSON.parse(sessionStorage.getItem(SESSION_KEY) ?? 'null');
  } catch {
    return false;
  }
  if (!saved?.auth?.till?.code || !saved.cashier?.id) return false;
  if (!sessionStillValid(saved)) {
    // Yesterday's tab, or a PIN checked too long ago: a node must check one again.
    sessionStorage.removeItem(SESSION_KEY);
    return false;
  }
  state.auth = saved.auth;
  state.pinCheckedAt = saved.pinCheckedAt;
  state.cashier = saved.cashier;
  state.pin = null;
  state.selectedCashierId = saved.cashier.id;
  state.basket = saved.basket?.lines ? saved.basket : null;
  state.basketId = saved.basketId ?? state.basket?.id ?? null;
  state.voidedOffline = Array.isArray(saved.voidedOffline) ? saved.voidedOffline : [];
  await ledger.adopt(saved.auth); // which till this is: its receipt counter and outbox
  return true;
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

function onPinKey(key) {
  const pin = $('#pin');
  if (key === 'clear') pin.value = '';
  else if (key === 'back') pin.value = pin.value.slice(0, -1);
  else if (pin.value.length < pin.maxLength) pin.value += key;
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

// --- rendering ---------------------------------------------------------------------------

function showScreen(name) {
  state.screen = name;
  for (const section of document.querySelectorAll('main > section')) {
    section.hidden = section.id !== `screen-${name}`;
  }
  if (name !== 'sell') disarmClear();
  // A field of the screen just hidden keeps the focus until the browser's next layout: drop it now.
  document.activeElement?.blur();
  renderAll();
  focusScreen();
}

/** Where the keyboard (and the scanner) should type on each screen. */
function focusScreen() {
  switch (state.screen) {
    case 'pair':
      ($('#pair-code').value ? $('#pair-name') : $('#pair-code')).focus();
      break;
    case 'sell':
      refocusScan();
      break;
    case 'pay':
      (state.payMode === 'card' ? $('#card-reference') : $('#cash-given')).focus();
      break;
    case 'done':
      $('#new-sale').focus();
      break;
    // login: no focus on #pin, so a tablet keeps its on-screen keyboard closed; keys are routed there anyway.
  }
}

function renderAll() {
  renderStatus();
  renderHeader();
  renderLogin();
  renderBasket();
  renderSearchResults();
  renderParked();
  renderPay();
  renderDone();
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
  status.dataset.node = online ? client.node?.id ?? '' : '';
  let text;
  if (!paired) text = t('status.unpaired');
  else if (online) text = count ? `${t('status.online')} · ${t('status.salesToSend', { count })}` : t('status.online');
  else text = count ? t('status.offlineWaiting', { count }) : t('status.offline');
  const waiting = basketQueue.length;
  if (waiting && !sessionReady.isOpen) text += ` · ${t('status.pending', { count: waiting })}`;
  status.textContent = text;
  // Which node serves the till: out of the cashier's way, there for store IT.
  const node = online ? client.node : null;
  status.title = node ? t('status.servedBy', { node: node.id ?? '?', url: node.url }) : '';
  $('#node-name').textContent = node ? t('status.node', { node: node.id ?? node.url }) : '';
  $('#lang').textContent = t('lang.toggle');
  $('#lang').title = t('lang.toggleTitle');
}

function renderHeader() {
  $('#store-name').textContent = state.auth?.store?.name ?? '';
  const till = state.auth?.till;
  $('#till-name').textContent = till ? `${till.name} (${till.code})` : '';
  $('#cashier-name').textContent = state.cashier?.name ?? '';
}

function renderLogin() {
  const cashiers = state.auth?.cashiers ?? [];
  // One cashier only: nothing to choose.
  if (cashiers.length === 1 && !state.selectedCashierId) state.selectedCashierId = cashiers[0].id;
  $('#login-connecting').hidden = Boolean(state.auth) && client.online;
  $('#cashier-list').replaceChildren(
    ...cashiers.map((cashier) =>
      el(
        'button',
        {
          type: 'button',
          class: 'cashier-tile',
          dataset: { cashierId: cashier.id },
          'aria-pressed': String(cashier.id === state.selectedCashierId),
        },
        el('span', { class: 'avatar' }, (cashier.name || '?').slice(0, 1).toUpperCase()),
        el('span', { class: 'cashier-tile-name' }, cashier.name),
      ),
    ),
  );
  const selected = cashiers.find((cashier) => cashier.id === state.selectedCashierId);
  $('#login-who').textContent = selected ? t('login.who', { name: selected.name }) : t('login.chooseCashier');
}

function renderBasket() {
  const lines = basketLines();
  const list = $('#basket');
  const rows = lines.map((line) =>
    el(
      'div',
      { class: line.id === state.lastAddedLineId ? 'basket-line last' : 'basket-line', dataset: { lineId: line.id } },
      el(
        'div',
        { class: 'line-name' },
        el('strong', {}, line.name),
        el('small', {}, t('sell.each', { price: formatMoney(line.unit_price) })),
      ),
      el(
        'div',
        { class: 'line-quantity' },
        el('button', { type: 'button', class: 'qty', dataset: { action: 'decrease' }, title: t('sell.decrease') }, '−'),
        el('span', { class: 'qty-value' }, String(line.quantity)),
        el('button', { type: 'button', class: 'qty', dataset: { action: 'increase' }, title: t('sell.increase') }, '+'),
      ),
      el('div', { class: 'line-total money' }, formatMoney(line.total)),
      el('button', { type: 'button', class: 'line-remove', dataset: { action: 'remove' }, title: t('sell.remove') }, '×'),
    ),
  );
  // While offline, show what was scanned so the cashier knows it was not lost.
  if (!sessionReady.isOpen) {
    for (const job of basketQueue) {
      if (!job.preview || findLine(job.preview.lineId)) continue;
      rows.push(
        el(
          'div',
          { class: 'pending-line' },
          el('div', { class: 'line-name' }, el('strong', {}, job.preview.label), el('small', {}, t('sell.pendingLine'))),
          el('div', { class: 'line-quantity' }, el('span', { class: 'qty-value' }, `× ${job.preview.quantity}`)),
        ),
      );
    }
  }
  if (!rows.length) {
    rows.push(el('p', { class: 'basket-empty' }, t('sell.empty')));
    // An empty till can resume a basket left open on another one (a till that died, a queue moved).
    if (client.online && sessionReady.isOpen && !basketQueue.length) {
      rows.push(el('div', { class: 'parked-entry' },
        el('button', { type: 'button', id: 'parked-open', class: 'ghost' }, t('parked.open'))));
    }
  }
  list.replaceChildren(...rows);
  if (state.scrollToLastAdded) {
    state.scrollToLastAdded = false;
    list.querySelector('.basket-line.last')?.scrollIntoView({ block: 'nearest' });
  }

  const totals = state.basket?.totals;
  $('#total').textContent = formatMoney(totals?.total ?? 0);
  $('#item-count').textContent = t('sell.items', { count: totals?.items ?? 0 });
  $('#vat-rows').replaceChildren(
    ...(totals?.vat ?? []).map((row) =>
      el(
        'tr',
        {},
        el('td', {}, formatRate(row.rate)),
        el('td', { class: 'money' }, formatMoney(row.base)),
        el('td', { class: 'money' }, formatMoney(row.vat)),
        el('td', { class: 'money' }, formatMoney(row.total)),
      ),
    ),
  );
  renderBasketButtons();
}

function renderBasketButtons() {
  const hasLines = basketHasLines();
  $('#pay-cash').disabled = !hasLines;
  $('#pay-card').disabled = !hasLines;
  const clearButton = $('#clear-basket');
  const armed = Date.now() < state.clearArmedUntil;
  clearButton.disabled = !canClearBasket();
  clearButton.classList.toggle('armed', armed);
  $('#clear-basket-label').textContent = armed ? t('sell.clearConfirm') : t('sell.clear');
}

function renderSearchResults() {
  const container = $('#search-results');
  const query = $('#search').value.trim();
  if (!query || search.query !== query) {
    container.hidden = true;
    container.replaceChildren();
    return;
  }
  container.hidden = false;
  if (!search.results.length) {
    container.replaceChildren(el('p', { class: 'no-results' }, t('sell.noResults')));
    return;
  }
  container.replaceChildren(
    ...search.results.map((product, index) =>
      el(
        'button',
        {
          type: 'button',
          class: 'search-result',
          role: 'option',
          'aria-selected': String(index === search.selected),
          dataset: { index: String(index) },
        },
        el('span', { class: 'result-name' }, el('strong', {}, product.name), el('small', {}, product.category ?? '')),
        el('span', { class: 'money' }, formatMoney(product.price)),
      ),
    ),
  );
  container.querySelector('[aria-selected="true"]')?.scrollIntoView({ block: 'nearest' });
}

function renderPay() {
  if (state.screen !== 'pay') return;
  const form = readPaymentForm();
  $('#pay-title').textContent = form.byCard ? t('pay.titleCard') : t('pay.titleCash');
  $('#pay-due').textContent = formatMoney(form.total);
  $('#card-section').hidden = !form.byCard;
  $('#cash-section').hidden = !form.needsCash;
  $('#cash-given-label').textContent = form.byCard
    ? t('pay.cashRest', { amount: formatMoney(form.cashDue) })
    : t('pay.cashGiven');
  $('#cash-given').placeholder = formatAmountForInput(form.cashDue);
  $('#card-amount').placeholder = formatAmountForInput(form.total);
  for (const button of document.querySelectorAll('[data-cash-quick]')) {
    const value = button.dataset.cashQuick;
    if (value === 'exact') continue;
    button.textContent = formatMoney(Number(value));
    button.disabled = Number(value) < form.cashDue;
  }
  const change = $('#pay-change');
  if (form.cardAmount === null || form.cashGiven === null) {
    change.textContent = t('pay.invalidAmount');
    change.dataset.kind = 'short';
  } else if (!form.needsCash) {
    change.textContent = '';
  } else if (form.cashGiven >= form.cashDue) {
    change.textContent = t('pay.change', { amount: formatMoney(form.cashGiven - form.cashDue) });
    change.dataset.kind = 'change';
  } else {
    change.textContent = t('pay.short', { amount: formatMoney(form.cashDue - form.cashGiven) });
    change.dataset.kind = 'short';
  }
  // Scans still waiting for the connection would change the total: pay once they are in.
  $('#confirm-payment').disabled = state.paying || hasPendingAdds();
  $('#pay-back').disabled = state.paying;
  $('#confirm-payment-label').textContent = state.paying ? t('pay.saving') : t('pay.confirm');
}

function renderDone() {
  const sale = state.lastSale;
  if (!sale) return;
  $('#receipt-number').textContent = sale.receipt_number;
  $('#done-total').textContent = formatMoney(sale.totals.total);
  $('#change-due').textContent = formatMoney(sale.change ?? 0);
  $('#done-offline').hidden = !sale.offline;
}

function renderParked() {
  const panel = $('#parked');
  panel.hidden = !parked.open || state.screen !== 'sell' || basketHasLines();
  if (panel.hidden) return;
  const cashierName = (id) => state.auth?.cashiers?.find((cashier) => cashier.id === id)?.name ?? id;
  const time = (iso) => {
    const date = new Date(iso);
    return Number.isNaN(date.getTime()) ? '' : date.toLocaleTimeString(getLang(), { hour: '2-digit', minute: '2-digit' });
  };
  let rows;
  if (parked.loading) rows = [el('p', { class: 'no-results' }, t('parked.loading'))];
  else if (!parked.baskets.length) rows = [el('p', { class: 'no-results' }, t('parked.none'))];
  else {
    rows = parked.baskets.map((basket) =>
      el(
        'button',
        { type: 'button', class: 'parked-basket', dataset: { basketId: basket.id } },
        el(
          'span',
          { class: 'result-name' },
          el('strong', {}, t('parked.from', { till: basket.till, cashier: cashierName(basket.cashier) })),
          el('small', {}, `${t('sell.items', { count: basket.items })} · ${time(basket.opened_at)}`),
        ),
        el('span', { class: 'money' }, formatMoney(basket.total)),
      ),
    );
  }
  $('#parked-list').replaceChildren(...rows);
}

// --- keyboard ---------------------------------------------------------------------------

function isPrintableKey(event) {
  return event.key.length === 1 && !event.ctrlKey && !event.metaKey && !event.altKey;
}

function onKeydown(event) {
  if (printing.dialogOpen) return; // the manager is typing a reason: no shortcut, no scan
  switch (state.screen) {
    case 'login':
      return onLoginKey(event);
    case 'sell':
      return onSellKey(event);
    case 'pay':
      return onPayKey(event);
    case 'done':
      return onDoneKey(event);
  }
}

function onLoginKey(event) {
  if (event.target === $('#pin')) {
    if (event.key === 'Escape') $('#pin').value = '';
    return; // the form's submit handles Enter
  }
  if (/^\d$/.test(event.key)) onPinKey(event.key);
  else if (event.key === 'Backspace') onPinKey('back');
  else if (event.key === 'Escape') onPinKey('clear');
  // Enter on a focused cashier tile selects it; anywhere else (even on a PIN-pad key just tapped) it signs in.
  else if (event.key === 'Enter' && !event.target.closest('[data-cashier-id]')) submitLogin();
  else return;
  event.preventDefault();
}

function onSellKey(event) {
  switch (event.key) {
    case 'F2':
      $('#search').focus();
      $('#search').select();
      break;
    case 'F4':
      onClearBasketPressed();
      break;
    case 'F8':
      openPayment('cash');
      break;
    case 'F9':
      openPayment('card');
      break;
    case 'Escape':
      disarmClear();
      closeSearch();
      closeParked();
      break;
    default:
      // A key typed while a button has focus belongs to the scanner: send it to #scan.
      if (isPrintableKey(event) && !event.target.matches('input, textarea, select')) $('#scan').focus();
      return;
  }
  event.preventDefault();
}

function onPayKey(event) {
  if (event.key === 'Escape') leavePayment();
  else if (event.key === 'F8') switchPayMode('cash');
  else if (event.key === 'F9') switchPayMode('card');
  else return;
  event.preventDefault();
}

function onDoneKey(event) {
  if (event.key === 'Enter') {
    event.preventDefault(); // not also a click on the focused button
    newSale();
  } else if (/^\d$/.test(event.key)) {
    // The next customer's first scan: start the new sale, the digit lands in #scan.
    newSale();
  }
}

// --- wiring ---------------------------------------------------------------------------------

function wireEvents() {
  document.addEventListener('keydown', onKeydown);

  $('#lang').addEventListener('click', () => {
    setLang(getLang() === 'fr' ? 'en' : 'fr');
    translatePage();
    renderAll();
    refocusScan();
  });
  $('#error').addEventListener('click', hideError);

  $('#pair-form').addEventListener('submit', (event) => {
    event.preventDefault();
    const code = $('#pair-code').value.trim();
    if (!code) return $('#pair-code').focus();
    pairTill(code, $('#pair-name').value.trim() || DEFAULT_TILL_NAME);
  });

  $('#cashier-list').addEventListener('click', (event) => {
    const tile = event.target.closest('[data-cashier-id]');
    if (tile) selectCashier(tile.dataset.cashierId);
  });
  $('#pinpad').addEventListener('click', (event) => {
    const key = event.target.closest('[data-pin-key]');
    if (key) onPinKey(key.dataset.pinKey);
  });
  $('#login-form').addEventListener('submit', (event) => {
    event.preventDefault();
    submitLogin();
  });

  $('#scan').addEventListener('keydown', onScanKeydown);
  $('#scan').addEventListener('input', onScanInput);
  $('#scan').addEventListener('blur', () => setTimeout(refocusScan, 0));
  $('#search').addEventListener('input', onSearchInput);
  $('#search').addEventListener('keydown', onSearchKeydown);
  $('#search-results').addEventListener('click', (event) => {
    const result = event.target.closest('.search-result');
    if (result) addProduct(search.results[Number(result.dataset.index)]);
  });
  $('#basket').addEventListener('click', (event) => {
    if (event.target.closest('#parked-open')) return openParkedBaskets();
    const button = event.target.closest('[data-action]');
    const line = event.target.closest('.basket-line');
    if (!button || !line) return;
    const lineId = line.dataset.lineId;
    if (button.dataset.action === 'increase') changeQuantity(lineId, +1);
    else if (button.dataset.action === 'decrease') changeQuantity(lineId, -1);
    else if (button.dataset.action === 'remove') removeLine(lineId);
  });
  $('#parked-list').addEventListener('click', (event) => {
    const row = event.target.closest('[data-basket-id]');
    if (row) takeOverBasket(row.dataset.basketId);
  });
  $('#parked-close').addEventListener('click', closeParked);
  $('#pay-cash').addEventListener('click', () => openPayment('cash'));
  $('#pay-card').addEventListener('click', () => openPayment('card'));
  $('#clear-basket').addEventListener('click', onClearBasketPressed);
  $('#logout').addEventListener('click', logout);
  // Any tap outside the search closes it, and the scan box gets the focus back.
  $('#screen-sell').addEventListener('click', (event) => {
    if (!event.target.closest('#search, #search-results') && $('#search').value) closeSearch();
    refocusScan();
  });

  $('#pay-form').addEventListener('submit', (event) => {
    event.preventDefault();
    confirmPayment();
  });
  $('#pay-form').addEventListener('input', renderPay);
  $('#pay-back').addEventListener('click', leavePayment);
  for (const button of document.querySelectorAll('[data-cash-quick]')) {
    button.addEventListener('click', () => onQuickCash(button.dataset.cashQuick));
  }

  $('#new-sale').addEventListener('click', newSale);
  printing.wire();

  client.addEventListener('authed', (event) => onAuthed(event.detail));
  client.addEventListener('offline', onOffline);
  client.addEventListener('unreachable', onUnreachable);
  client.addEventListener('event', (event) => {
    catalogue.onEvent(event.detail.event);
    printing.onEvent(event.detail);
  });
  ledger.addEventListener('change', renderStatus);
  catalogue.addEventListener('change', renderStatus);
  client.addEventListener('invalid-token', onInvalidToken);
  // The browser noticed the network is back: do not wait for the backoff timer.
  window.addEventListener('online', () => client.reconnectNow());
  window.addEventListener('pagehide', saveSession); // a reload (F5) keeps the session and basket
}

/** The browser's own storage: outbox, receipt counter, catalogue copy. Selling online works without it. */
async function openTillStorage() {
  try {
    const store = await TillStore.open();
    ledger.attach(store);
    await ledger.dropOlderDays().catch(() => {}); // a till left on overnight: yesterday is the nodes' business
    catalogue.store = store;
    await catalogue.loadSaved();
  } catch (error) {
    console.warn('no offline storage on this till', error);
  }
}

async function start() {
  registerServiceWorker();
  translatePage();
  wireEvents();
  await openTillStorage();
  const pairCode = takePairCodeFromUrl();
  if (pairCode) {
    $('#pair-code').value = pairCode;
    showScreen('pair');
    pairTill(pairCode, DEFAULT_TILL_NAME);
  } else if (localStorage.getItem(TOKEN_KEY)) {
    await restoreSession();
    startConnection();
  } else {
    showScreen('pair');
  }
}

start();
