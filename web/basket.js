// The basket as the till holds it, shaped like the node's (docs/protocol.md):
// {id, lines: [{id, product_id, barcode, name, unit_price, vat_rate, quantity, total}], totals}.
// While no node answers, the till changes it here with the node's own rules
// (pricing.js); when one answers again, reconcileBasket() brings the node in line.

import { basketTotals, changeDue } from './pricing.js';

export function emptyBasket(id) {
  return { id, lines: [], totals: basketTotals([]) };
}

function withLines(basket, lines) {
  return { ...basket, lines, totals: basketTotals(lines) };
}

export function addLine(basket, { lineId, product, quantity }) {
  const line = {
    id: lineId,
    product_id: product.id,
    barcode: product.barcode,
    name: product.name,
    unit_price: product.price,
    vat_rate: product.vat_rate,
    quantity,
    total: product.price * quantity,
  };
  return withLines(basket, [...basket.lines, line]);
}

export function setLineQuantity(basket, lineId, quantity) {
  return withLines(
    basket,
    basket.lines.map((line) => (line.id === lineId ? { ...line, quantity, total: line.unit_price * quantity } : line)),
  );
}

export function removeLine(basket, lineId) {
  return withLines(basket, basket.lines.filter((line) => line.id !== lineId));
}

export function receiptNumber(tillCode, receiptNo) {
  return `${tillCode}-${String(receiptNo).padStart(6, '0')}`;
}

/**
 * A sale's id: its basket's, qualified by the till that sold it, as the node
 * makes it (edge/selling/sales.py `sale_id_for`). A sale that reached a node
 * just before it died is recognised when the till sends it again; another
 * till that sold the same basket makes another sale, never this one.
 */
export function saleIdFor(tillCode, basketId) {
  return `${basketId}@${tillCode}`;
}

/**
 * The sale as `sale/record` takes it, with the id the node would have given
 * it online. Throws a PricingError when the tenders do not settle the total
 * (same codes as the node).
 */
export function offlineSale({ basket, tillCode, receiptNo, cashierId, tenders, time }) {
  const lines = basket.lines.map(({ id, product_id, barcode, name, unit_price, vat_rate, quantity }) => ({
    id, product_id, barcode, name, unit_price, vat_rate, quantity,
  }));
  const totals = basketTotals(lines);
  const change = changeDue(totals.total, tenders);
  return {
    id: saleIdFor(tillCode, basket.id), basket_id: basket.id,
    receipt_no: receiptNo, cashier: cashierId, time, lines, tenders, totals, change,
  };
}

/**
 * A sale as `sale/complete` returned it, in the shape `sale/record` takes, so
 * the till can give it to a node that lacks it (its node acknowledged it,
 * then died before passing it on). The node's own fields (receipt_number,
 * hash, print, line totals...) stay out: the receiving node works them out.
 */
export function recordedSale(sale) {
  const lines = sale.lines.map(({ id, product_id, barcode, name, unit_price, vat_rate, quantity }) => ({
    id, product_id, barcode, name, unit_price, vat_rate, quantity,
  }));
  const tenders = sale.tenders.map(({ method, amount, reference }) =>
    (method === 'card' ? { method, amount, reference } : { method, amount }));
  const { total, items, vat } = sale.totals;
  const recorded = {
    id: sale.id, receipt_no: sale.receipt_no, cashier: sale.cashier, time: sale.time,
    lines, tenders, totals: { total, items, vat }, change: sale.change ?? 0,
  };
  // A sale from a node of before sale ids has none: its id is its basket's.
  if (sale.basket_id) recorded.basket_id = sale.basket_id;
  return recorded;
}

/**
 * Brings the node's copy of this till's basket in line with the till's, which
 * is the truth (the cashier may have changed it while no node answered, or
 * the node may never have heard of it). Every command reuses the till's ids,
 * so a node that already has a line changes nothing.
 *
 * `local`: the till's basket (or null); `voided`: basket ids the till voided
 * while offline; `saleInFlight`: the id of a basket whose sale/complete may
 * have reached a node that died before answering.
 *
 * Returns {basket, outcome, dropped}: the basket to show now, the lines the
 * node refused (product delisted meanwhile), and an outcome among
 *  - "adopted": the till had nothing, the node's open basket (or null) is taken up
 *  - "pushed": the node now holds the till's basket
 *  - "sold": the node has already closed this basket: its sale is on its way
 *  - "closed_elsewhere": the node closed the basket without this till, or another
 *    till holds it (taken over): the till's copy is dropped
 */
export async function reconcileBasket(call, { local, voided = [], saleInFlight = null }) {
  for (const basketId of voided) await call('basket/clear', { basket_id: basketId });
  let remote = await call('basket/get');
  if (!local || !local.lines.length) {
    return { basket: remote, outcome: 'adopted', dropped: [] };
  }
  if (remote && remote.id !== local.id) {
    // An older basket of this till, left open on this node: the till moved on.
    await call('basket/clear', { basket_id: remote.id });
    remote = null;
  }
  const dropped = [];
  for (const line of local.lines) {
    const remoteLine = remote?.lines.find((candidate) => candidate.id === line.id);
    try {
      if (!remoteLine) {
        remote = await call('basket/add', {
          basket_id: local.id, line_id: line.id, product_id: line.product_id, quantity: line.quantity,
        });
      } else if (remoteLine.quantity !== line.quantity) {
        remote = await call('basket/set_quantity', { basket_id: local.id, line_id: line.id, quantity: line.quantity });
      }
    } catch (error) {
      if (error.code === 'unknown_product') {
        dropped.push(line); // delisted while the till was offline: the node will not sell it
        continue;
      }
      if (!['basket_mismatch', 'no_open_basket', 'basket_held'].includes(error.code)) throw error;
      // The node knows this basket and it is no longer open here, or another till holds it.
      if (saleInFlight === local.id) return { basket: local, outcome: 'sold', dropped };
      return { basket: null, outcome: 'closed_elsewhere', dropped };
    }
  }
  for (const remoteLine of remote?.lines ?? []) {
    if (!local.lines.some((line) => line.id === remoteLine.id)) {
      remote = await call('basket/remove_line', { basket_id: local.id, line_id: remoteLine.id });
    }
  }
  return { basket: remote, outcome: 'pushed', dropped };
}
