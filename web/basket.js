// The basket as the till holds it, shaped like the node's (docs/protocol.md,
// "A basket"): {id, discount, lines: [{id, product_id, barcode, name,
// unit_price, vat_rate, quantity, unit, price_embedded, discount, gross,
// promotion, promotion_ids, discount_amount, basket_share, total}], totals}.
// While no node answers, the till changes it here with the node's own rules:
// what a scan or a tap puts on a line (edge/selling/line_items.py, lineFields
// below), and the one pricing function with the promotions running today
// (pricing.js priceBasket, through discounts.js repriced). When a node answers
// again, reconcileBasket() brings it in line.

import { CommandError } from './client.js';
import { repriced } from './discounts.js';

export const MAX_GRAMS = 100000; // one weighed line: 100 kg, as the node takes it

export function emptyBasket(id, promotions = []) {
  return repriced({ id, discount: null, lines: [] }, promotions);
}

function withLines(basket, lines, promotions) {
  return repriced({ ...basket, lines }, promotions);
}

/**
 * `unit_price`, `quantity`, `unit` and `price_embedded` of a new line of
 * `product` (edge/selling/line_items.py, the same refusals with the same
 * codes): a weight label or typed `grams` for a product sold by the kilo, a
 * price label (`embedded`: barcodes.js readEmbedded's answer), a typed
 * `price` for an open-price product ("Divers").
 */
export function lineFields(product, quantity, { embedded = null, grams = null, price = null } = {}) {
  const byWeight = product.unit === 'kg';
  let weight = grams;
  if (embedded?.kind === 'weight') {
    if (!byWeight) throw new CommandError('invalid_barcode', `${product.name} is not sold by weight: this label is not for it`);
    weight = embedded.value;
  }
  if (weight != null && !byWeight) {
    throw new CommandError('invalid_field', `${product.name} is sold by the piece, not by weight`, { data: { field: 'grams' } });
  }
  if (price != null && !product.open_price) {
    throw new CommandError('invalid_field', `${product.name} has a set price`, { data: { field: 'price' } });
  }
  if (embedded?.kind === 'price') {
    return { unit_price: embedded.value, quantity, unit: 'piece', price_embedded: true };
  }
  if (byWeight) {
    if (!weight) {
      throw new CommandError('weight_required', `${product.name} is sold by the kilo: weigh it`, { data: { product_id: product.id } });
    }
    return { unit_price: product.price, quantity: weight, unit: 'g', price_embedded: false };
  }
  if (product.open_price) {
    if (price == null) {
      throw new CommandError('price_required', `${product.name} has no set price: type it`, { data: { product_id: product.id } });
    }
    return { unit_price: price, quantity, unit: 'piece', price_embedded: false };
  }
  return { unit_price: product.price, quantity, unit: 'piece', price_embedded: false };
}

/**
 * A line of `product` added; `label`: the barcode as scanned when it carried a
 * weight or a price (the line keeps it, as the node does). `fields`: lineFields'.
 */
export function addLine(basket, { lineId, product, quantity, fields = null, label = null }, promotions = []) {
  const made = fields ?? lineFields(product, quantity);
  const line = {
    id: lineId,
    product_id: product.id,
    barcode: label ?? product.barcode ?? null,
    name: product.name,
    vat_rate: product.vat_rate,
    ...made,
    discount: null,
  };
  return withLines(basket, [...basket.lines, line], promotions);
}

export function setLineQuantity(basket, lineId, quantity, promotions = []) {
  return withLines(basket, basket.lines.map((line) => (line.id === lineId ? { ...line, quantity } : line)), promotions);
}

export function removeLine(basket, lineId, promotions = []) {
  return withLines(basket, basket.lines.filter((line) => line.id !== lineId), promotions);
}

/** The basket priced again (promotions that started or ended, a copy from an older till). */
export function repricedBasket(basket, promotions = []) {
  return withLines(basket, basket.lines, promotions);
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
 * A sale as `sale/complete` returned it, in the shape `sale/record` takes, so
 * the till can give it to a node that lacks it (its node acknowledged it,
 * then died before passing it on). The node's own fields (receipt_number,
 * hash, print, line totals...) stay out: the receiving node works them out.
 */
export function recordedSale(sale) {
  const lines = sale.lines.map(soldLine);
  const tenders = sale.tenders.map(({ method, amount, reference }) =>
    (method === 'card' ? { method, amount, reference } : { method, amount }));
  const { total, items, vat } = sale.totals;
  const recorded = {
    id: sale.id, receipt_no: sale.receipt_no, cashier: sale.cashier, time: sale.time,
    lines, tenders, totals: { total, items, vat }, change: sale.change ?? 0,
  };
  // A sale from a node of before sale ids has none: its id is its basket's.
  if (sale.basket_id) recorded.basket_id = sale.basket_id;
  if (sale.discount?.kind) recorded.discount = sale.discount;
  return recorded;
}

/** A sold line as sale/record takes it: a weighed, price-label or discounted line stays so. */
function soldLine(line) {
  const { id, product_id, barcode, name, unit_price, vat_rate, quantity } = line;
  const sold = { id, product_id, barcode, name, unit_price, vat_rate, quantity };
  if (line.unit === 'g') sold.unit = 'g';
  if (line.price_embedded) sold.price_embedded = true;
  if (line.discount?.kind) sold.discount = line.discount;
  return sold;
}

/**
 * basket/add's arguments that make `line` again on a node (same id): a
 * weighed line by its grams, a price label by the label, a typed price
 * (`product` from the till's catalogue is open-price) by the price.
 */
export function addArgsFor(basketId, line, product = null) {
  const args = { basket_id: basketId, line_id: line.id };
  if (line.price_embedded) return { ...args, barcode: line.barcode, quantity: line.quantity };
  if (line.unit === 'g') return { ...args, product_id: line.product_id, grams: line.quantity };
  if (product?.open_price) return { ...args, product_id: line.product_id, price: line.unit_price, quantity: line.quantity };
  return { ...args, product_id: line.product_id, quantity: line.quantity };
}

/**
 * Brings the node's copy of this till's basket in line with the till's, which
 * is the truth (the cashier may have changed it while no node answered, or
 * the node may never have heard of it). Every command reuses the till's ids,
 * so a node that already has a line changes nothing.
 *
 * `local`: the till's basket (or null); `voided`: basket ids the till voided
 * while offline; `saleInFlight`: the id of a basket whose sale/complete may
 * have reached a node that died before answering; `catalogue`: the till's
 * copy (which products take a typed price).
 *
 * Returns {basket, outcome, dropped}: the basket to show now, the lines the
 * node refused (product delisted meanwhile), and an outcome among
 *  - "adopted": the till had nothing, the node's open basket (or null) is taken up
 *  - "pushed": the node now holds the till's basket
 *  - "sold": the node has already closed this basket: its sale is on its way
 *  - "closed_elsewhere": the node closed the basket without this till, or another
 *    till holds it (taken over): the till's copy is dropped
 */
export async function reconcileBasket(call, { local, voided = [], saleInFlight = null, catalogue = null }) {
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
        remote = await call('basket/add', addArgsFor(local.id, line, await catalogue?.find(line.product_id)));
      } else if (remoteLine.quantity !== line.quantity) {
        remote = await call('basket/set_quantity', { basket_id: local.id, line_id: line.id, quantity: line.quantity });
      }
    } catch (error) {
      // Delisted while the till was offline (the node will not sell it), or a typed
      // price past the limit the node wants a manager for (no PIN is kept): told, not sold.
      if (['unknown_product', 'unknown_barcode', 'manager_required', 'weight_required', 'price_required'].includes(error.code)) {
        dropped.push(line);
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
