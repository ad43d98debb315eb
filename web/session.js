// The till's session, with no DOM: who is signed in, the basket, the basket
// commands run one at a time, the sale in flight, selling offline (the sale
// goes to the ledger's outbox), the wait for another node when one dies
// mid-sale, bringing a node that answers again up to date, and a reload.
// The screens (screen-*.js) read its state and call its methods; it tells
// them what changed through events. Its collaborators come in through the
// constructor, so tests give it fakes (tests/test_till_session.py).
//
// Events (CustomEvent, `detail` in brackets):
//  - "change"       the basket, the command queue or the connection changed
//  - "error"        ({error, loud}) something the cashier must read
//  - "sold"         ({sale}) a sale is complete (online, or offline: sale.offline)
//  - "authed"       ({auth}) a connection is authenticated
//  - "pin-needed"   a node answered a session restored after a reload: the PIN once more
//  - "signed-in"    login accepted (the node is brought up to date next)
//  - "ready"        the node is up to date: basket commands go to it again
//  - "offline"      the connection is lost
//  - "resynced"     the basket was taken up from the node (another tab, till or node changed it)
//  - "parked"       ({basket, atLogout}) the basket was set aside on the node (basket/park, or logout)
//  - "ended"        ({error}) nobody is signed in any more (logout, or the PIN refused on a reconnect)
//  - "locked"       the till was left idle: the PIN is asked again, the basket stays
//  - "succeeded"    a basket command went through (the error banner of an earlier one can go)
//  - "unknown-barcode" ({barcode}) a scan found no product: the sell screen offers search and open price

import { CommandError, newUuid } from './client.js';
import { sessionStillValid } from './ledger.js';
import { receiptNumber, reconcileBasket } from './basket.js';
import { BasketCommands, SessionGate } from './command-queue.js';
import { reconcileDiscounts } from './discounts.js';
import { mealVoucherCapOf } from './screen-pay-tenders.js';
import {
  forgetTokensNoLongerNeeded, rememberTillToken, salesWaitingElsewhere, sendEarlierTillsSales,
} from './earlier-tills.js';

export { SALE_FAILOVER_WAIT_MS } from './command-queue.js';
export const MAX_QUANTITY = 9999;
const SEARCH_LIMIT = 20;
// The signed-in cashier and the till's basket, kept for a reload (F5) of this
// tab only (sessionStorage), so a till reloaded with every node down still sells.
export const SESSION_KEY = 'edge.session';

export const systemClock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (id) => clearTimeout(id),
};

export class TillSession extends EventTarget {
  /**
   * `client`: a TillClient (call, online, running, reachable; events authed,
   * offline, unreachable). `ledger`: a TillLedger. `catalogue`: a
   * LocalCatalogue. `printing`: {showSale, onAuthed, onOffline} or null.
   * `clock`: {now, setTimeout, clearTimeout}. `storage`: sessionStorage or
   * null (no reload survival). `newId`: makes basket ids.
   */
  constructor({ client, ledger, catalogue, printing = null, clock = systemClock, storage = null, newId = newUuid }) {
    super();
    Object.assign(this, { client, ledger, catalogue, printing, clock, storage, newId });
    this.gate = new SessionGate(clock);
    this.auth = null; // last `auth` result: store, till, cashiers
    this.cashier = null; // the logged-in cashier
    // Login is per connection, so after a reconnect the same cashier must log in
    // again without being asked: the PIN stays in memory (never in storage) until logout.
    // null with a cashier: the session came back from a reload, so the PIN is typed again.
    this.pin = null;
    this.pinCheckedAt = null; // when a node last checked the PIN (ms): how long a reload may sell on without one
    this.sessionEpoch = 0; // bumped at logout, so answers for the previous session are ignored
    this.connectionEpoch = 0; // bumped at each auth and each loss, so work for an old connection stops
    this.basketId = null; // client-made id of the current basket (exists on the node after the first add)
    // The till's basket: the node's copy as last received, or as the till changed
    // it while no node answered (then the till's copy is the truth; see basket.js).
    this.basket = null;
    this.lastAddedLineId = null;
    this.addsApplied = 0; // counts adds taken into the basket: the sell screen scrolls to the new line
    this.paying = false;
    this.lastSale = null;
    // The basket being paid for, from its first sale/complete until the answer:
    // if its node died meanwhile, the next node may already know the sale.
    this.saleInFlight = null;
    this.voidedOffline = []; // baskets voided while no node answered: voided on the next node too
    // Sales waiting on this till that this till cannot send to this store's nodes (earlier-tills.js):
    // [{store, till, count, otherStore}]; the status line says where they must go.
    this.waitingElsewhere = [];
    this.commands = new BasketCommands(this); // basket commands, one at a time (command-queue.js)
    client.addEventListener('authed', (event) => this.onAuthed(event.detail));
    client.addEventListener('offline', () => this.onOffline());
    client.addEventListener('unreachable', () => this.onUnreachable());
  }

  emit(type, detail = null) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }

  showError(error, loud = false) {
    this.emit('error', { error, loud });
  }

  call(type, args) {
    return this.client.call(type, args);
  }

  // --- what the screens read ---

  /** The basket commands not done yet (the first one is running): {build, preview}. */
  get queue() {
    return this.commands.jobs;
  }

  /** Basket commands go to the node (see SessionGate). */
  get ready() {
    return this.gate.isOpen;
  }

  get lines() {
    return this.basket?.lines ?? [];
  }

  get hasLines() {
    return this.lines.length > 0;
  }

  findLine(lineId) {
    return this.lines.find((line) => line.id === lineId);
  }

  /** Scans queued and not in the basket yet: {lineId, label, quantity}. */
  pendingLines() {
    return this.queue.map((job) => job.preview).filter((preview) => preview && !this.findLine(preview.lineId));
  }

  hasPendingAdds() {
    return this.queue.some((job) => job.preview);
  }

  /** Scans still waiting for the connection would change the total: pay once they are in. */
  get canPay() {
    return !this.paying && !this.hasPendingAdds() && this.hasLines;
  }

  // --- what the cashier does ---

  /**
   * A scan or a tile tap: `barcode` or `productId`; `grams` for a product sold by the kilo
   * (typed), `price` (cents) for an open-price one, `approval` when the node asked a manager
   * for that price. With the store's `scan_merges_lines`, a product already on a plain line
   * raises that line's quantity instead (decided when its turn comes, as the node would see it).
   */
  addItem({ barcode, productId, quantity = 1, label, grams = null, price = null, approval = null }) {
    const lineId = this.newId();
    this.lastAddedLineId = lineId;
    const item = productId ? { product_id: productId } : { barcode };
    const merges = Boolean(this.auth?.settings?.scan_merges_lines) && grams === null && price === null;
    return this.commands.enqueue(
      () => {
        const merged = merges ? this.mergeableLine(item) : null;
        if (merged) {
          this.lastAddedLineId = merged.id;
          this.addsApplied++; // the sell screen brings that line into view
          const total = Math.min(merged.quantity + quantity, MAX_QUANTITY);
          return { type: 'basket/set_quantity', args: { basket_id: this.basketId, line_id: merged.id, quantity: total } };
        }
        return {
          type: 'basket/add',
          // (An id even if the connection died before login could set one up: the basket opens locally.)
          args: {
            basket_id: (this.basketId ??= this.newId()), line_id: lineId, ...item, quantity,
            ...(grams !== null ? { grams } : {}), ...(price !== null ? { price } : {}), ...(approval ? { approval } : {}),
          },
          askApproval: price !== null, // past the open-price limit: the manager prompt says it
        };
      },
      { lineId, label: label ?? barcode, quantity },
    );
  }

  /** The plain line a scan of this product adds to: pieces at the catalogue price, no discount. */
  mergeableLine({ barcode, product_id: productId }) {
    return this.lines.find((line) => (line.unit ?? 'piece') === 'piece' && !line.price_embedded && !line.discount
      && (productId ? line.product_id === productId : Boolean(barcode) && line.barcode === barcode)) ?? null;
  }

  changeQuantity(lineId, delta) {
    return this.commands.enqueue(() => {
      const line = this.findLine(lineId);
      if (!line) return null;
      const quantity = Math.min(line.quantity + delta, MAX_QUANTITY);
      if (quantity < 1) return { type: 'basket/remove_line', args: { basket_id: this.basketId, line_id: lineId } };
      return { type: 'basket/set_quantity', args: { basket_id: this.basketId, line_id: lineId, quantity } };
    });
  }

  removeLine(lineId) {
    return this.commands.enqueue(() =>
      this.findLine(lineId) ? { type: 'basket/remove_line', args: { basket_id: this.basketId, line_id: lineId } } : null,
    );
  }

  clearBasket() {
    return this.commands.enqueue(() => (this.basket ? { type: 'basket/clear', args: { basket_id: this.basketId } } : null));
  }

  /**
   * A line's discount ({kind, value, reason}, or null to remove it); the basket's below.
   * `approval` {manager, pin}: sent again after the node asked for one (approval.js);
   * `askApproval` keeps that request out of the error banner: the prompt says it.
   */
  discountLine(lineId, discount, approval = null) {
    return this.commands.enqueue(() => (this.findLine(lineId) ? {
      type: 'basket/discount_line',
      args: { basket_id: this.basketId, line_id: lineId, discount, ...(approval ? { approval } : {}) },
      askApproval: true,
    } : null));
  }

  discountBasket(discount, approval = null) {
    return this.commands.enqueue(() => (this.basket ? {
      type: 'basket/discount',
      args: { basket_id: this.basketId, discount, ...(approval ? { approval } : {}) },
      askApproval: true,
    } : null));
  }

  /**
   * A cashier cannot take a basket its till is still using; a manager who picks one from the
   * list may (that till froze, or its browser just closed): docs/protocol.md, "Who holds a basket".
   */
  takeOver(basketId) {
    const force = this.cashier?.role === 'manager';
    return this.commands.enqueue(() => ({ type: 'basket/take_over', args: { basket_id: basketId, force } }));
  }

  /**
   * Baskets to resume here: the store's parked ones (named, basket/list_parked) and those
   * left open on other tills (a till that died): {parked, open}.
   */
  async parkedBaskets() {
    const [parked, baskets] = await Promise.all([this.call('basket/list_parked'), this.call('basket/list_open')]);
    const ownTill = this.auth?.till?.code;
    const open = baskets.filter((basket) => basket.till !== ownTill && basket.items > 0);
    return { parked, open };
  }

  /**
   * Sets the basket aside on the node under `name` (blank: the cashier's), to
   * serve the next customer; any till resumes it later. Needs a node: offline
   * the queue answers `offline` and the basket stays.
   */
  park(name = '') {
    if (!this.hasLines || this.paying) return Promise.resolve({ ok: false });
    return this.commands.enqueue(() => (this.basket ? {
      type: 'basket/park', args: { basket_id: this.basketId, name: name.trim() },
    } : null));
  }

  /** A parked basket becomes this till's open basket (basket/resume), from any till of the store. */
  resume(basketId) {
    return this.commands.enqueue(() => ({ type: 'basket/resume', args: { basket_id: basketId } }));
  }

  /** The store's cap on meal vouchers in one sale (auth settings; the legal default without). */
  get mealVoucherCap() {
    return mealVoucherCapOf(this.auth?.settings);
  }

  /** The node's search when it answers (its ranking), the till's copy of the catalogue when not. */
  async searchProducts(query, limit = SEARCH_LIMIT) {
    if (this.client.online) {
      try {
        return await this.call('catalogue/search', { query, limit });
      } catch (error) {
        if (error.code !== 'disconnected') throw error;
      }
    }
    return this.catalogue.search(query, limit);
  }

  /**
   * Pays for the basket with `tenders` (checked by the pay screen): false if
   * it cannot be paid now. Queued behind any basket change still on its way,
   * and resent as-is after a reconnect. The till numbers its own receipts
   * (the number is fixed once built, so a resend reuses it). The outcome
   * comes as "sold", or "error" (then `paying` is false again).
   */
  pay(tenders, { print = false } = {}) {
    if (!this.canPay) return false;
    this.paying = true;
    this.emit('change');
    this.commands.enqueue(() => ({
      type: 'sale/complete',
      // `print`: the customer asked for a receipt (none by default: France, since 2023).
      args: { basket_id: this.basketId, receipt_no: this.ledger.nextReceiptNo, tenders, print },
    }));
    return true;
  }

  /**
   * The till left untouched too long (screen-sell-idle.js): the PIN is forgotten, so the
   * cashier (or another) types one again, as after a reload; the basket stays.
   */
  lock() {
    if (!this.cashier) return;
    this.pin = null;
    this.save();
    this.emit('locked');
  }

  /** The next customer, once the change due was read. */
  newSale() {
    this.basketId = this.newId();
    this.basket = null;
    this.lastSale = null;
    this.printing?.showSale(null);
    this.emit('change');
  }

  /**
   * Logs the cashier in on the node serving us now (the PIN is checked by a
   * node; the till keeps no PINs), then brings the node up to date.
   * Rejects with the node's error, or `login_offline` with no node.
   */
  async login(cashierId, pin) {
    const connection = this.connectionEpoch;
    let cashier;
    try {
      ({ cashier } = await this.call('login', { cashier_id: cashierId, pin }));
    } catch (error) {
      throw error.code === 'disconnected' ? new CommandError('login_offline') : error;
    }
    this.cashier = cashier;
    this.pin = pin;
    this.pinCheckedAt = this.clock.now();
    this.save();
    this.emit('signed-in');
    await this.bringNodeUpToDate(connection);
  }

  logout() {
    if (this.client.online) {
      // The node parks a basket left open with lines under the cashier's name: say so.
      const cashier = this.cashier?.name;
      this.call('logout').then((answer) => {
        if (answer?.parked) this.emit('parked', { basket: answer.parked, atLogout: true, cashier });
      }).catch(() => {});
    }
    this.endSession();
  }

  endSession(error = null) {
    this.cashier = null;
    this.pin = null;
    this.pinCheckedAt = null;
    this.sessionEpoch++;
    this.basket = null;
    this.basketId = null;
    this.lastSale = null;
    this.printing?.showSale(null);
    this.paying = false;
    this.saleInFlight = null;
    this.gate.close();
    this.commands.dropQueued();
    this.save(); // nobody signed in: a reload shows the login screen
    this.emit('ended', { error });
  }

  /** Every node refused the till's token: it is no till of this store any more. */
  forgetTill() {
    this.endSession();
    this.auth = null;
    this.waitingElsewhere = []; // its sales wait all the same: the status counts them
  }

  // --- the connection ---

  async onAuthed(auth) {
    const connection = ++this.connectionEpoch;
    this.auth = auth;
    await this.ledger.adopt(auth);
    if (connection !== this.connectionEpoch) return;
    await this.noteEarlierTills(auth);
    if (connection !== this.connectionEpoch) return;
    this.catalogue.sync((type, args) => this.call(type, args), auth.store?.id ?? null).catch(() => {
      // Lost the connection meanwhile: the next one refreshes it.
    });
    this.printing?.onAuthed(auth);
    this.emit('authed', { auth });
    if (!this.cashier) return;
    if (this.pin === null) {
      // Signed in before a reload: the PIN was not kept, so this node needs it typed once
      // more. The basket and the sales made meanwhile wait, and go to the node after login.
      this.emit('pin-needed');
      return;
    }
    // A reconnect, maybe to another node: log the same cashier back in, then bring the node up to date.
    this.gate.startSync();
    this.emit('change');
    try {
      await this.call('login', { cashier_id: this.cashier.id, pin: this.pin });
      this.pinCheckedAt = this.clock.now();
    } catch (error) {
      if (connection !== this.connectionEpoch || error.code === 'disconnected') return; // the next connection tries again
      this.endSession(error);
      return;
    }
    await this.bringNodeUpToDate(connection);
  }

  /**
   * Once a cashier is logged in on a fresh connection: the sales made offline
   * go first, in order, then any sale of the day the node lacks (its node
   * acknowledged it and died before passing it on), then the node's copy of
   * the basket is brought in line with the till's. Only then do basket
   * commands go to the node again.
   */
  async bringNodeUpToDate(connection) {
    const session = this.sessionEpoch;
    const stale = () => connection !== this.connectionEpoch || session !== this.sessionEpoch;
    if (stale()) return;
    this.gate.startSync();
    const call = (type, args) => this.call(type, args);
    try {
      const onRefused = (sale, error, madeAs = null) => {
        const till = madeAs ?? (sale.id?.includes('@') ? sale.id.slice(sale.id.lastIndexOf('@') + 1) : this.auth.till.code);
        const receipt = receiptNumber(till, sale.receipt_no);
        this.showError({ code: 'sale_not_sent', receipt, detail: error.message });
      };
      await this.ledger.flush(call, onRefused);
      // Then those this till made as the till it was before it was paired again.
      if (await sendEarlierTillsSales(this.ledger, call, this.auth, onRefused)) await this.noteEarlierTills(this.auth);
      const { basket: reconciled, outcome, dropped } = await reconcileBasket(call, {
        local: this.basket, voided: this.voidedOffline, saleInFlight: this.saleInFlight, catalogue: this.catalogue,
      });
      // Discounts given while no node answered go to it too (discounts.js); past the limit a manager approves again.
      const { basket, dropped: discountsDropped } = outcome === 'pushed'
        ? await reconcileDiscounts(call, this.basket, reconciled) : { basket: reconciled, dropped: [] };
      if (stale()) return;
      this.voidedOffline = [];
      if (outcome !== 'sold') {
        // 'sold': the node already closed this basket; the sale in flight is resent and answers.
        this.basket = basket;
        if (basket) this.basketId = basket.id;
        else if (outcome === 'closed_elsewhere' || !this.basketId) this.basketId = this.newId();
      }
      if (outcome === 'closed_elsewhere') this.showError({ code: 'basket_closed_elsewhere' });
      if (dropped.length) this.showError({ code: 'lines_dropped', names: dropped.map((line) => line.name).join(', ') });
      if (discountsDropped.length) this.showError({ code: 'discounts_dropped', names: discountsDropped.join(', ') });
    } catch (error) {
      if (stale() || error.code === 'disconnected') return; // the next node tries again
      this.showError(error); // unexpected (a bug on the node): carry on with this node rather than block the till
    }
    if (stale()) return;
    this.gate.open();
    this.emit('ready');
  }

  /**
   * After `auth`: keeps the till's token (its proof, should it be paired again while
   * sales wait), and notes the waiting sales this store's nodes will not take from it.
   */
  async noteEarlierTills(auth) {
    const store = this.ledger.store;
    try {
      await rememberTillToken(store, auth, this.client.token);
      await forgetTokensNoLongerNeeded(store, `${auth.store?.id}/${auth.till?.code}`);
      this.waitingElsewhere = await salesWaitingElsewhere(store, auth);
    } catch (error) {
      console.warn('the sales of earlier tills were not looked at', error);
    }
    this.emit('change');
  }

  onOffline() {
    this.connectionEpoch++;
    this.gate.close();
    this.printing?.onOffline();
    this.emit('offline');
  }

  onUnreachable() {
    this.gate.changed(); // a sale waiting for another node completes offline now
    this.emit('change');
  }

  // --- surviving a reload ---

  /** Keeps what a reload needs to sell on: the auth answer, the cashier (never the PIN), the basket. */
  save() {
    try {
      if (!this.storage) return;
      if (!this.cashier || !this.auth) {
        this.storage.removeItem(SESSION_KEY);
        return;
      }
      const { auth, cashier, basket, basketId, voidedOffline, pinCheckedAt } = this;
      this.storage.setItem(SESSION_KEY, JSON.stringify({ auth, cashier, basket, basketId, voidedOffline, pinCheckedAt }));
    } catch {
      // No session storage (or full): a reload shows the login screen, as it always did.
    }
  }

  /** After a reload: the cashier who was signed in sells on, with the basket; false if nobody was. */
  async restore() {
    let saved = null;
    try {
      saved = JSON.parse(this.storage?.getItem(SESSION_KEY) ?? 'null');
    } catch {
      return false;
    }
    if (!saved?.auth?.till?.code || !saved.cashier?.id) return false;
    if (!sessionStillValid(saved, new Date(this.clock.now()))) {
      // Yesterday's tab, or a PIN checked too long ago: a node must check one again.
      this.storage.removeItem(SESSION_KEY);
      return false;
    }
    this.auth = saved.auth;
    this.pinCheckedAt = saved.pinCheckedAt;
    this.cashier = saved.cashier;
    this.pin = null;
    this.basket = saved.basket?.lines ? saved.basket : null;
    this.basketId = saved.basketId ?? this.basket?.id ?? null;
    this.voidedOffline = Array.isArray(saved.voidedOffline) ? saved.voidedOffline : [];
    await this.ledger.adopt(saved.auth); // which till this is: its receipt counter and outbox
    return true;
  }
}
