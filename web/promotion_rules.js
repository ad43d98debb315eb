// The till's copy of edge/selling/promotion_rules.py: catalogue promotions
// applied to a basket's units, line by line as the node does (see the Python
// module for the rules; tests/vectors/pricing.json keeps both identical).

import {
  checkSafe, cumulativeFloorShares, isInt, isPlainObject, roundHalfUp,
} from './rounding.js';

const BASIS_POINTS = 10000;
const PROMOTION_KINDS = ['n_for_m', 'nth_percent', 'bundle'];
const MAX_GROUP = 1000; // units in one group: far beyond any shop's "n for m"

/** Why a promotion cannot be applied (null when it can). */
export function promotionProblem(promotion) {
  if (!isPlainObject(promotion)) return 'a promotion is an object';
  if (typeof promotion.id !== 'string' || !promotion.id) return "'id' must be a non-empty string";
  const { kind, products, n } = promotion;
  if (!PROMOTION_KINDS.includes(kind)) return `'kind' must be one of ${PROMOTION_KINDS.join(', ')}`;
  if (!Array.isArray(products) || !products.every((p) => typeof p === 'string')) {
    return "'products' must be a list of product ids";
  }
  if (!isInt(n) || n < 1 || n > MAX_GROUP) return `'n' must be a whole number from 1 to ${MAX_GROUP}`;
  if (kind === 'n_for_m') {
    const { m } = promotion;
    if (!isInt(m) || m < 1 || m >= n) return "'m' must be a whole number from 1 to n - 1";
  } else if (kind === 'nth_percent') {
    const { percent } = promotion;
    if (!isInt(percent) || percent < 1 || percent > BASIS_POINTS) {
      return "'percent' must be basis points from 1 to 10000";
    }
  } else {
    const { price } = promotion;
    if (!isInt(price) || price < 0) return "'price' must be a whole number of cents, 0 or more";
  }
  return null;
}

/** Pieces at the catalogue price: not weighed, not price-embedded, no manual discount. */
export function takesPromotions(line) {
  return (line.unit || 'piece') === 'piece' && line.price_embedded !== true && line.discount == null;
}

/** Python's (and SQLite's BINARY) string order: code points, not UTF-16 units, so ids
 * and names sort alike on the node and in the till. */
export function compareCodePoints(a, b) {
  const left = [...a];
  const right = [...b];
  for (let i = 0; i < Math.min(left.length, right.length); i += 1) {
    const diff = left[i].codePointAt(0) - right[i].codePointAt(0);
    if (diff) return diff;
  }
  return left.length - right.length;
}

/** The first `count` groups of `n` units as [alike, segments]; `runs` [line, price, units] are consumed. */
function* groupsOf(runs, n, count) {
  let at = 0;
  while (count) {
    const [line, price, units] = runs[at];
    if (units >= n) {
      const alike = Math.min(count, Math.floor(units / n));
      runs[at][2] -= alike * n;
      count -= alike;
      yield [alike, [[line, price, n]]];
    } else {
      const segments = [];
      let need = n;
      while (need) {
        const [segmentLine, segmentPrice, segmentUnits] = runs[at];
        const take = Math.min(need, segmentUnits);
        segments.push([segmentLine, segmentPrice, take]);
        runs[at][2] -= take;
        need -= take;
        if (runs[at][2] === 0) at += 1;
      }
      count -= 1;
      yield [1, segments];
    }
    if (at < runs.length && runs[at][2] === 0) at += 1;
  }
}

/** What each segment of one group gets off (the sum over its units). */
function groupDiscounts(promotion, segments) {
  if (promotion.kind === 'n_for_m') {
    const firstFree = promotion.m;
    const discounts = [];
    let start = 0;
    for (const [, price, units] of segments) {
      const free = Math.max(0, start + units - Math.max(start, firstFree));
      discounts.push(free * price);
      start += units;
    }
    return discounts;
  }
  if (promotion.kind === 'nth_percent') {
    const discounts = segments.map(() => 0);
    const lastPrice = segments[segments.length - 1][1];
    discounts[discounts.length - 1] = roundHalfUp(lastPrice, promotion.percent, BASIS_POINTS);
    return discounts;
  }
  const weights = segments.map(([, price, units]) => price * units);
  let sum = 0;
  for (const weight of weights) sum += weight;
  return cumulativeFloorShares(Math.max(0, sum - promotion.price), weights);
}

/** Per line, in line order: [cents off by promotions, ids of the promotions that took units]. */
export function promotionDiscounts(lines, promotions) {
  const discounts = lines.map(() => 0);
  const ids = lines.map(() => []);
  const taken = lines.map(() => 0);
  const usable = [...promotions].filter((p) => promotionProblem(p) === null);
  usable.sort((a, b) => compareCodePoints(a.id, b.id)); // stable, as Python's sorted()
  for (const promotion of usable) {
    const products = new Set(promotion.products);
    const runs = [];
    lines.forEach((line, index) => {
      if (takesPromotions(line) && products.has(line.product_id) && line.quantity > taken[index]) {
        runs.push([index, line.unit_price, line.quantity - taken[index]]);
      }
    });
    runs.sort((a, b) => b[1] - a[1]); // stable: line order among equal prices
    let units = 0;
    for (const run of runs) units += run[2];
    const count = Math.floor(units / promotion.n);
    for (const [alike, segments] of groupsOf(runs, promotion.n, count)) {
      const off = groupDiscounts(promotion, segments);
      segments.forEach(([line, , segmentUnits], i) => {
        taken[line] += alike * segmentUnits;
        discounts[line] += alike * off[i];
        if (!ids[line].includes(promotion.id)) ids[line].push(promotion.id);
      });
    }
  }
  return discounts.map((discount, i) => [checkSafe(discount), ids[i]]);
}
