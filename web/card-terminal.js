// Card payments on the store's payment terminal (Caisse-AP over IP), with no
// DOM. A browser cannot open a raw TCP socket, so the till asks its node
// (`payment/card`), the node that has the terminal dials it, and the result
// comes back pushed on the same command and by `payment/card_status`
// (docs/protocol.md, "Card payments"). The cashier never types the amount
// twice, and a payment whose outcome nobody knows is settled from the
// terminal's own slip, never tried again by the till.
//
// A payment whose outcome the till has not acted on yet (waiting, or unknown)
// or that became a tender of a sale not recorded yet is kept in the browser's
// localStorage, so a reload, a reconnect or a move to another node asks its
// state again (`payment/card_status`) instead of forgetting a card that may
// have been charged.
//
// Whether the till has a terminal is learned by asking: a node answering
// `no_terminal` (no terminal serves this till) means the card tender is
// today's standalone slip entry, remembered until the next connection.
//
// Events: "change" (detail: the payment record) each time a payment's state changes.

import { newUuid } from './client.js';

export const CARD_PAYMENTS_KEY = 'edge.cardPayments';
// While a payment is under way the node pushes each change; asking this often
// as well covers a push lost with a connection, or a till served by another node.
export const CARD_STATUS_POLL_MS = 2000;
// How long `payment/card_status` may say "no such payment" (a node that has
// not received it yet) before the till stops waiting and asks the slip.
export const NOT_FOUND_GRACE_MS = 30000;

const WAITING = new Set(['requested', 'started']);
// Outcomes that are a reading, not the terminal's word: the till's own give-up on a payment
// no node here knew (`not_found`), a node's "not taken within 30 s" (`not_taken`). The
// payment may still be started and approved later: the till keeps asking, and a later
// state from the node replaces them, even back to waiting.
const PROVISIONAL = new Set(['not_found', 'not_taken']);

/** The outcome shown is a reading the node's later word replaces (never once settled). */
export function provisional(payment) {
  return Boolean(payment && PROVISIONAL.has(payment.code) && !payment.settled);
}

/**
 * What the cashier is told of a payment: 'waiting' (the terminal has it, or
 * the till is finding out), 'approved', 'declined', 'unreachable' (nothing
 * was charged: the standalone slip entry), 'unknown' (read the terminal's
 * slip). A settled unknown is what the cashier said of the slip.
 */
export function phaseOf(record) {
  const payment = record?.state;
  if (!payment) return 'waiting';
  if (WAITING.has(payment.status)) return 'waiting';
  if (payment.status === 'unknown') {
    if (payment.settled === 'approved') return 'approved';
    if (payment.settled === 'declined') return 'declined';
    return 'unknown';
  }
  return ['approved', 'declined', 'unreachable'].includes(payment.status) ? payment.status : 'unknown';
}

/** The amount a payment took: what the terminal authorised (maybe less than asked), or what the slip says. */
export function takenAmount(record) {
  const payment = record.state ?? {};
  if (payment.settled === 'approved' && Number.isInteger(payment.settled_amount) && payment.settled_amount > 0) {
    return payment.settled_amount;
  }
  return Number.isInteger(payment.authorised) && payment.authorised > 0 ? payment.authorised : record.amount;
}

/**
 * The tender an approved payment pays: sale/complete takes `payment_id`
 * (the node checks it and copies the authorisation and masked card into the
 * sale); the other fields are for the screen. A refund's is negative.
 */
export function cardTender(record) {
  const payment = record.state ?? {};
  const amount = takenAmount(record);
  if (payment.local) {
    // Settled from the slip of a payment no node knows: today's slip entry, its reference.
    return { method: 'card', amount: record.refund ? -amount : amount, reference: payment.settled_reference };
  }
  const tender = { method: 'card', amount: record.refund ? -amount : amount, payment_id: record.payment_id };
  for (const field of ['authorisation', 'last4', 'application', 'read_mode']) {
    if (payment[field]) tender[field] = payment[field];
  }
  if (payment.settled === 'approved' && payment.settled_reference) tender.reference = payment.settled_reference;
  return tender;
}

export class CardTerminal extends EventTarget {
  /**
   * `call(type, args)`: a node command (rejects with a CommandError,
   * `disconnected` with no node). `storage`: localStorage or null.
   * `clock`: {now, setTimeout, clearTimeout}. `newId`: payment ids.
   */
  constructor({ call, storage = null, clock, newId = newUuid }) {
    super();
    Object.assign(this, { call, storage, clock, newId });
    this.terminal = null; // null: not known yet; false: none serves this till (slip entry)
    this.payments = new Map(); // payment_id -> {payment_id, basketId, refundId, amount, refund, state, taken, asked, missingSince}
    this.online = false;
    this.pollTimer = null;
    this.load();
  }

  emit(record) {
    this.dispatchEvent(new CustomEvent('change', { detail: record }));
  }

  get(paymentId) {
    return this.payments.get(paymentId) ?? null;
  }

  /** The payments of a basket (or refund), oldest first. */
  of({ basketId = null, refundId = null }) {
    return [...this.payments.values()].filter((record) =>
      (basketId && record.basketId === basketId) || (refundId && record.refundId === refundId));
  }

  /** A payment of this basket the cashier must see: taken, under way, or unknown (after a reload). */
  hasOpenFor(basketId) {
    return this.of({ basketId }).some((record) => record.taken || ['waiting', 'unknown', 'approved'].includes(phaseOf(record)));
  }

  /**
   * Sends `amount` to the terminal for a basket (or, `refund`, for a
   * refund of the sale `saleId`): resolves with the record, whose state comes as "change" events,
   * or with {fallback: 'no_terminal'} when no terminal serves this till.
   * Rejects with the node's error when nothing was asked of the terminal
   * (terminal_busy, invalid amount...).
   */
  async start({ basketId = null, refundId = null, saleId = null, amount, refund = false }) {
    const record = {
      payment_id: this.newId(), basketId, refundId, saleId, amount, refund, state: null, taken: false,
      asked: this.clock.now(), missingSince: null,
    };
    this.payments.set(record.payment_id, record);
    this.save();
    const outcome = await this.send(record);
    if (outcome.error) throw outcome.error;
    return outcome.fallback ? outcome : record;
  }

  /**
   * `payment/card` for `record`; `resend`: again (same id) when no answer came, the node
   * answering a resend with the payment's state (it never dials one twice).
   * {record} | {fallback: 'no_terminal'} | {error} (nothing asked of the terminal).
   */
  async send(record, { resend = false } = {}) {
    const args = { payment_id: record.payment_id, amount: record.amount };
    if (record.refund) {
      args.refund_id = record.refundId;
      if (record.saleId) args.sale_id = record.saleId; // what the sale took by card bounds it
    } else {
      args.basket_id = record.basketId;
    }
    try {
      const answer = await this.call('payment/card', args);
      this.terminal = true;
      this.update(answer?.payment ?? answer);
    } catch (error) {
      if (error.code === 'disconnected') {
        // Asked or not, the node may have journaled it: sent again once a node answers.
        return { record };
      }
      if (resend) {
        // Refused now, but the first send may have reached a node that is gone: only the slip knows.
        record.state = { payment_id: record.payment_id, status: 'unknown', code: 'not_found' };
        this.save();
        this.emit(record);
        return { record };
      }
      if (error.code === 'terminal_unreachable') {
        // The terminal's node does not answer: nothing was journaled, nothing charged.
        this.terminal = true;
        record.state = { payment_id: record.payment_id, status: 'unreachable', code: 'terminal_unreachable' };
        this.save();
        this.emit(record);
        return { record };
      }
      this.payments.delete(record.payment_id);
      this.save();
      if (error.code === 'no_terminal') {
        this.terminal = false;
        return { fallback: 'no_terminal' };
      }
      return { error };
    }
    this.schedulePoll();
    return { record };
  }

  /** A payment's state as the node gives it (reply, push or status). */
  update(payment) {
    const record = payment?.payment_id ? this.payments.get(payment.payment_id) : null;
    if (!record) return;
    // An answer overtaken by a push (a poll in flight): a payment never goes back to waiting,
    // but from a reading (not_found, not_taken): the terminal's node started it after all.
    if (record.state && !WAITING.has(record.state.status) && WAITING.has(payment.status)
      && !provisional(record.state)) return;
    if (record.state?.local) return; // settled here from the slip: the sale has it as a slip
    if (!record.amount && Number.isInteger(payment.amount)) record.amount = payment.amount;
    const before = JSON.stringify(record.state);
    record.state = payment;
    record.missingSince = null;
    this.save();
    if (JSON.stringify(payment) !== before) this.emit(record);
    this.schedulePoll();
  }

  /** A pushed message of `payment/card`, as an event or on its own. */
  onPush(message) {
    const payment = message?.event?.type === 'card_payment' ? message.event.payment
      : message?.type === 'card_payment' ? message.payment : null;
    if (payment) this.update(payment);
  }

  /** The cashier read the terminal's slip of an unknown payment: approved (with its reference) or not. */
  async settle(paymentId, approved, reference = '') {
    const record = this.payments.get(paymentId);
    if (!record) return null;
    const args = { payment_id: paymentId, approved };
    if (reference) args.reference = reference;
    let answer;
    try {
      answer = await this.call('payment/card_settle', args);
    } catch (error) {
      if (error.code === 'payment_not_unknown') {
        // The node knows how it ended now (a late answer): that, not the slip, decides.
        await this.refresh(paymentId);
        return record;
      }
      if (error.code === 'unknown_payment' && record.state?.code === 'not_found') {
        // No node here ever had it: the cashier's reading of the slip is all there is.
        // Approved, it is today's slip entry (the sale could not name a payment nobody knows).
        this.updateLocally(record, { settled: approved ? 'approved' : 'declined', settled_reference: reference, local: true });
        return record;
      }
      throw error;
    }
    const payment = answer?.payment ?? answer;
    if (payment?.payment_id) this.update(payment);
    else {
      // An answer without the state: what the cashier said is what the node recorded.
      this.update({ ...record.state, settled: approved ? 'approved' : 'declined', settled_reference: reference });
    }
    return record;
  }

  updateLocally(record, change) {
    record.state = { ...record.state, ...change };
    this.save();
    this.emit(record);
  }

  /**
   * A payment of `basketId` this till no longer follows (a lost dialog, another tab) that the
   * node names when it refuses a sale without it (card_payment_taken / card_payment_pending):
   * followed again, so its approved amount becomes a tender and a waiting one its dialog.
   */
  async adopt(paymentId, basketId) {
    if (!paymentId || !basketId) return null;
    if (!this.payments.has(paymentId)) {
      this.payments.set(paymentId, {
        payment_id: paymentId, basketId, refundId: null, saleId: null, amount: 0, refund: false,
        state: { payment_id: paymentId, status: 'requested' }, taken: false, asked: this.clock.now(), missingSince: null,
      });
      this.save();
    }
    await this.refresh(paymentId);
    this.schedulePoll();
    return this.payments.get(paymentId) ?? null;
  }

  /** The payment became a tender on the pay screen: kept until the sale is recorded. */
  take(paymentId) {
    const record = this.payments.get(paymentId);
    if (!record) return;
    record.taken = true;
    this.save();
  }

  /** Nothing more to do with it (declined and read, unreachable, or its sale recorded). */
  forget(paymentId) {
    if (this.payments.delete(paymentId)) this.save();
  }

  /** The basket (or refund) was recorded: its payments are the sale's now. */
  forgetFor(ids) {
    for (const record of this.of(ids)) this.payments.delete(record.payment_id);
    this.save();
  }

  // --- the connection ---

  /** A node answers (maybe another one): which terminal serves us is learned afresh, states asked again. */
  onAuthed() {
    this.online = true;
    this.terminal = null;
    this.refreshAll();
  }

  onOffline() {
    this.online = false;
    this.clock.clearTimeout(this.pollTimer);
    this.pollTimer = null;
  }

  /** Asks the state of every payment still open (after a reconnect, a failover or a reload). */
  async refreshAll() {
    const open = [...this.payments.values()].filter((record) => record.taken || ['waiting', 'unknown'].includes(phaseOf(record))
      || provisional(record.state));
    await Promise.all(open.map((record) => this.refresh(record.payment_id)));
    this.schedulePoll();
  }

  async refresh(paymentId) {
    const record = this.payments.get(paymentId);
    if (!record || !this.online) return;
    if (!record.state) {
      // No node ever answered for it (the connection went as it was sent): send it again.
      await this.send(record, { resend: true });
      return;
    }
    try {
      const answer = await this.call('payment/card_status', { payment_id: paymentId });
      this.update(answer?.payment ?? answer);
    } catch (error) {
      if (error.code === 'disconnected') return;
      // A payment this till saw acknowledged, unknown to the node serving it now: that node
      // has not received it yet. Past the grace nobody here can know: the slip says.
      record.missingSince ??= this.clock.now();
      if (phaseOf(record) === 'waiting' && this.clock.now() - record.missingSince >= NOT_FOUND_GRACE_MS) {
        record.state = { ...record.state, status: 'unknown', code: 'not_found' };
        this.save();
        this.emit(record);
      }
    }
  }

  schedulePoll() {
    if (this.pollTimer !== null || !this.online) return;
    // Waiting, or a reading the node may still overturn (a late start, a late answer).
    const followed = (record) => phaseOf(record) === 'waiting' || provisional(record.state);
    if (![...this.payments.values()].some(followed)) return;
    this.pollTimer = this.clock.setTimeout(async () => {
      this.pollTimer = null;
      const open = [...this.payments.values()].filter(followed);
      await Promise.all(open.map((record) => this.refresh(record.payment_id)));
      this.schedulePoll();
    }, CARD_STATUS_POLL_MS);
  }

  // --- surviving a reload ---

  save() {
    try {
      if (!this.storage) return;
      if (!this.payments.size) this.storage.removeItem(CARD_PAYMENTS_KEY);
      else this.storage.setItem(CARD_PAYMENTS_KEY, JSON.stringify([...this.payments.values()]));
    } catch {
      // Full or refused: the node still has every payment; only a reload would forget it here.
    }
  }

  load() {
    try {
      const saved = JSON.parse(this.storage?.getItem(CARD_PAYMENTS_KEY) ?? '[]');
      for (const record of Array.isArray(saved) ? saved : []) {
        if (record?.payment_id) this.payments.set(record.payment_id, record);
      }
    } catch {
      // Unreadable: start empty.
    }
  }
}
