// The till session's basket commands (session.js), one at a time, in the
// order the cashier made them. Each job's build() makes its command when its
// turn comes, from the basket as it is then (so "+" tapped twice quickly gives
// +2). Once built, a command is resent unchanged (same basket_id / line_id)
// after a reconnect: the node treats the repeat as a no-op and gives the same
// answer. While no node answers, the command is carried out here with the
// node's rules (basket.js, the till's catalogue), and a sale goes to the
// ledger's outbox; a sale first waits a few seconds for another node, which
// would print its receipt.

import { CommandError } from './client.js';
import {
  emptyBasket, addLine, setLineQuantity, removeLine, receiptNumber, recordedSale, lineFields,
} from './basket.js';
import { readEmbedded } from './barcodes.js';
import { APPROVAL_ERRORS } from './approval.js';
import {
  mealVoucherCapOf, offlineSaleRecord, settlement as settlementOf, tendersForRecord,
} from './screen-pay-tenders.js';
import {
  approvedOffline, basketDiscounted, lineDiscounted, withBasketDiscount, withLineDiscount,
} from './discounts.js';

// A sale under way when the node dies waits this long for another node (which
// prints the receipt) before the till completes it offline.
export const SALE_FAILOVER_WAIT_MS = 5000;
// What the sell screen asks the cashier for when basket/add answers it (a weight, a price).
const PROMPTED_ERRORS = new Set(['weight_required', 'price_required']);
const WAIT_TICK_MS = 250;

/**
 * Open when the connection is authenticated, the cashier logged in, the
 * outbox flushed and the basket reconciled: basket commands then go to the
 * node. While it is closed they are applied locally, except while `syncing`
 * (a node just answered and is being brought up to date), when they wait.
 */
export class SessionGate {
  constructor(clock) {
    this.clock = clock;
    this.isOpen = false;
    this.syncing = false;
    this.waiters = [];
  }

  /** Resolves at the next change of the connection (or after `ms`). */
  nextChange(ms) {
    return new Promise((resolve) => {
      const timer = this.clock.setTimeout(resolve, ms);
      this.waiters.push(() => {
        this.clock.clearTimeout(timer);
        resolve();
      });
    });
  }

  changed() {
    for (const resolve of this.waiters.splice(0)) resolve();
  }

  startSync() {
    this.syncing = true;
    this.changed();
  }

  open() {
    this.isOpen = true;
    this.syncing = false;
    this.changed();
  }

  close() {
    this.isOpen = false;
    this.syncing = false;
    this.changed();
  }
}

/** The queue of a TillSession, whose state (basket, basketId, saleInFlight...) its commands change. */
export class BasketCommands {
  constructor(session) {
    this.session = session;
    this.jobs = []; // {build, preview, resolve}; the first is running
    this.running = false;
  }

  /** Queued jobs after the running one are dropped (at logout: the running one sees the new epoch). */
  dropQueued() {
    for (const job of this.jobs.splice(1)) job.resolve({ ok: false, cancelled: true });
  }

  /**
   * Resolves with the job's outcome: {ok, result} or {ok: false, error} or {ok: false, cancelled}.
   * The command goes to the node first, then the screen shows it pending: the node answers
   * while the page draws (a basket's first line took 6-16 ms to draw before its scan was sent).
   */
  enqueue(build, preview = null) {
    const s = this.session;
    return new Promise((resolve) => {
      this.jobs.push({ build, preview, resolve });
      this.run();
      s.emit('change');
    });
  }

  async run() {
    const s = this.session;
    if (this.running) return;
    this.running = true;
    while (this.jobs.length) {
      const job = this.jobs[0];
      const outcome = await this.runJob(job);
      this.jobs.shift();
      job.resolve(outcome);
      if (outcome.ok) s.emit('succeeded');
      s.emit('change');
    }
    this.running = false;
  }

  async runJob(job) {
    const s = this.session;
    const epoch = s.sessionEpoch;
    const cancelled = { ok: false, cancelled: true };
    let command = null;
    let resyncedOnce = false;
    let renumbered = 0;
    let waitingSince = null;
    for (;;) {
      if (epoch !== s.sessionEpoch) return cancelled;
      command ??= job.build();
      if (!command) return { ok: true, result: null };
      if (command.type === 'sale/complete') s.saleInFlight = command.args.basket_id;
      if (!s.gate.isOpen) {
        waitingSince ??= s.clock.now();
        if (this.shouldWaitForNode(command, waitingSince)) {
          await s.gate.nextChange(WAIT_TICK_MS);
          continue;
        }
        return this.runLocally(command);
      }
      try {
        const result = await s.call(command.type, command.args);
        if (epoch !== s.sessionEpoch) return cancelled;
        await this.applyResult(command, result);
        return { ok: true, result };
      } catch (error) {
        if (epoch !== s.sessionEpoch) return cancelled;
        if (error.code === 'disconnected') continue; // to the next node, or locally
        if (error.code === 'receipt_number_used' && renumbered < 3 && (await s.ledger.adoptNextFree(error))) {
          // Another tab of this till (or a stale counter) used the number: same basket, next free number.
          renumbered++;
          command = null;
          continue;
        }
        // Another till took this basket over (docs/protocol.md, "Who holds a basket"): it is gone from here.
        const basketTaken = error.code === 'basket_held'
          && command.type !== 'basket/take_over' && command.type !== 'basket/resume'; // (those: another till's basket)
        if (basketTaken) s.showError(error);
        if (basketTaken && command.type === 'sale/complete') s.paying = false;
        // The card terminal took money for this basket: the node kept it as it was, so does the till.
        const cardTaken = error.code === 'card_payment_taken';
        if (error.code === 'basket_mismatch' || error.code === 'no_open_basket' || basketTaken || cardTaken) {
          // Another basket is open on this till (another tab, another node): take it up.
          await this.resyncBasket().catch(() => {});
          if (command.type === 'basket/add' && !resyncedOnce) {
            resyncedOnce = true;
            command = null; // rebuild with the basket id we now hold; the cashier's scan is not lost
            continue;
          }
        }
        this.commandFailed(command, error);
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
  shouldWaitForNode(command, waitingSince) {
    const s = this.session;
    if (s.gate.syncing) return true;
    if (command.type !== 'sale/complete') return false;
    const failingOver = s.client.running && s.client.reachable;
    return failingOver && s.clock.now() - waitingSince < SALE_FAILOVER_WAIT_MS;
  }

  /** A basket command carried out by the till itself, with the node's rules, while no node answers. */
  async runLocally(command) {
    const s = this.session;
    try {
      const { args } = command;
      switch (command.type) {
        case 'basket/add':
          await this.addLocally(args);
          break;
        case 'basket/set_quantity':
          if (!s.findLine(args.line_id)) throw new CommandError('unknown_line');
          s.basket = setLineQuantity(s.basket, args.line_id, args.quantity, this.promotions());
          break;
        case 'basket/remove_line':
          if (s.basket) s.basket = removeLine(s.basket, args.line_id, this.promotions());
          break;
        case 'basket/clear':
          // The node may hold this basket from before the outage: void it there too, later.
          s.voidedOffline.push(args.basket_id);
          s.basket = null;
          s.basketId = s.newId();
          break;
        case 'sale/complete':
          // A training sale is numbered by a node in its own series: never made offline.
          if (s.training) throw new CommandError('training_offline');
          await this.completeSaleOffline(args);
          break;
        case 'basket/discount_line':
        case 'basket/discount':
          this.discountLocally(command);
          break;
        default:
          throw new CommandError('offline');
      }
      return { ok: true, result: s.basket };
    } catch (error) {
      this.commandFailed(command, error);
      return { ok: false, error };
    }
  }

  /** The promotions running today, from the till's copy of the catalogue. */
  promotions() {
    return this.session.catalogue.activePromotions?.() ?? [];
  }

  /**
   * basket/add with the node's rules, from the till's catalogue: a weight or
   * price label read with the store's layouts (the export's), a typed weight
   * or price; past the store's open-price limit a manager is named (no node
   * checks a PIN offline: the manager picked, or the one logged in).
   */
  async addLocally(args) {
    const s = this.session;
    if (s.basket?.lines.some((line) => line.id === args.line_id)) return; // sent again: done already
    let product;
    let embedded = null;
    // The copy answers from IndexedDB (catalogue.js): the layouts and promotions are in once it has.
    await s.catalogue.loaded;
    if (args.product_id) {
      product = await s.catalogue.find(args.product_id);
      if (!product) throw new CommandError('unknown_product', 'not in the offline catalogue');
    } else {
      embedded = readEmbedded(args.barcode, s.catalogue.embeddedBarcodes ?? []);
      product = await s.catalogue.lookup(embedded ? embedded.lookup : args.barcode);
      if (!product) throw new CommandError('unknown_barcode', 'not in the offline catalogue');
    }
    const fields = lineFields(product, args.quantity, { embedded, grams: args.grams ?? null, price: args.price ?? null });
    const limit = s.auth?.settings?.open_price_limit;
    if (args.price != null && Number.isInteger(limit) && args.price > limit
        && !args.approval?.manager && s.cashier?.role !== 'manager') {
      throw new CommandError('manager_required', 'a typed price past the store\'s limit', { data: { approval: 'required' } });
    }
    const basket = s.basket ?? emptyBasket(args.basket_id, this.promotions());
    s.basket = addLine(basket, {
      lineId: args.line_id, product, quantity: args.quantity, fields, label: embedded ? args.barcode : null,
    }, this.promotions());
    s.basketId = s.basket.id;
    s.addsApplied++;
  }

  /**
   * The sale goes into the outbox, on disk, before the cashier is told "done";
   * it reaches a node (sale/record) as soon as one answers.
   */
  async completeSaleOffline({ basket_id: basketId, receipt_no: receiptNo, tenders, print = true }) {
    const s = this.session;
    if (!s.basket?.lines.length || s.basket.id !== basketId) throw new CommandError('empty_basket');
    const tillCode = s.auth.till.code;
    // Any tenders, by the node's rule (settle) with the store's meal voucher cap; the receipt choice goes too.
    const cap = mealVoucherCapOf(s.auth?.settings);
    const sale = offlineSaleRecord({
      basket: s.basket, tillCode, receiptNo, cashierId: s.cashier.id, tenders, cap, print,
      time: new Date(s.clock.now()).toISOString(),
    });
    await s.ledger.keepOfflineSale(sale);
    const { voucherExcess } = settlementOf(sale.totals.total, tenders, cap);
    this.sold({
      ...sale, receipt_number: receiptNumber(tillCode, receiptNo), offline: true,
      voucher_excess: voucherExcess, receipt: print ? 'printed' : 'not_printed',
    });
  }

  async applyResult(command, result) {
    const s = this.session;
    switch (command.type) {
      case 'sale/complete':
        // A training sale is the node's alone: never kept to be resent as a real one.
        if (result.training) {
          this.sold(result);
          break;
        }
        // Kept before "done": if this node dies before passing the sale on, the next one gets it from us.
        await s.ledger.keepSale({
          ...recordedSale(result),
          tenders: tendersForRecord(result.tenders), // a meal voucher keeps its kind
          ...(result.receipt === 'not_printed' ? { print: false } : {}),
        });
        this.sold(result);
        break;
      case 'basket/park':
        // Set aside on the node: this till serves the next customer with a new basket.
        s.basket = null;
        s.basketId = s.newId();
        s.emit('parked', { basket: result });
        break;
      case 'basket/clear':
        s.basket = null;
        s.basketId = s.newId();
        break;
      case 'basket/add':
        s.addsApplied++;
        this.adoptBasket(result);
        break;
      default:
        this.adoptBasket(result);
    }
  }

  sold(sale) {
    const s = this.session;
    s.saleInFlight = null;
    s.lastSale = sale;
    s.printing?.showSale(sale);
    s.basket = null;
    s.basketId = null;
    s.paying = false;
    s.emit('sold', { sale });
  }

  adoptBasket(basket) {
    const s = this.session;
    s.basket = basket;
    if (basket) s.basketId = basket.id;
  }

  /** A discount while no node answers (discounts.js): the store's limit, a manager named past it. */
  discountLocally({ type, args }) {
    const s = this.session;
    const line = type === 'basket/discount_line' ? s.findLine(args.line_id) : null;
    if (type === 'basket/discount_line' && !line) throw new CommandError('unknown_line');
    if (!s.basket) throw new CommandError('no_open_basket');
    const discount = approvedOffline(args.discount ?? null, line ? lineDiscounted(line) : basketDiscounted(s.basket), {
      limit: s.auth?.settings?.discount_limit, approval: args.approval, cashier: s.cashier,
    });
    const promotions = s.catalogue.activePromotions?.() ?? [];
    s.basket = line
      ? withLineDiscount(s.basket, line.id, discount, promotions)
      : withBasketDiscount(s.basket, discount, promotions);
  }

  commandFailed(command, error) {
    const s = this.session;
    // A manager's approval asked for (approval.js): the prompt says it, not the banner.
    if (command.askApproval && APPROVAL_ERRORS.has(error.code)) return;
    // A product sold by the kilo or at a typed price: the sell screen asks for it, no banner.
    if (command.type === 'basket/add' && PROMPTED_ERRORS.has(error.code)) return;
    if (error.code === 'unknown_barcode') {
      // Said, and the sell screen offers search and an open price, beside the basket (not over it).
      s.showError({ code: 'unknown_barcode', barcode: command.args.barcode });
      s.emit('unknown-barcode', { barcode: command.args.barcode });
    } else {
      s.showError(error);
    }
    if (command.type === 'sale/complete') {
      s.saleInFlight = null;
      s.paying = false;
      s.emit('change');
    }
  }

  /** Takes the node's open basket as the truth (when the node says ours is not open). */
  async resyncBasket() {
    const s = this.session;
    const basket = await s.call('basket/get');
    if (basket) {
      this.adoptBasket(basket);
    } else if (s.basket) {
      // We thought a basket was open, the node has none (sold or voided elsewhere): start afresh.
      s.basket = null;
      s.basketId = s.newId();
    }
    s.basketId ??= s.newId();
    s.emit('resynced');
  }
}
