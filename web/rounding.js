// The till's copy of edge/selling/rounding.py: the two integer roundings every
// amount goes through. No float quotient ever decides a cent: products past
// 2^53 go through BigInt, and a result that is not a safe integer is an error,
// never a silently wrong amount. Kept identical by tests/vectors/pricing.json.

export const isInt = Number.isSafeInteger;

export function isPlainObject(value) {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/** `value`, or a RangeError when it is not an exactly represented integer. */
export function checkSafe(value) {
  if (!Number.isSafeInteger(value)) {
    // Never a silently wrong amount: no basket comes near 2^53 cents.
    throw new RangeError(`amount out of range: ${value}`);
  }
  return value;
}

/**
 * Integer division of two non-negative safe integers, without trusting a float
 * quotient: the remainder is exact, so the division of the difference is too.
 */
function floorDivide(numerator, divisor) {
  checkSafe(numerator);
  return (numerator - (numerator % divisor)) / divisor;
}

/**
 * floor(a * b / d) for non-negative safe integers, exact: through BigInt when
 * the product is past 2^53 (a basket's total times a percent can be).
 */
function mulDiv(a, b, d) {
  checkSafe(a);
  checkSafe(b);
  const product = a * b;
  if (Number.isSafeInteger(product)) return floorDivide(product, d);
  return checkSafe(Number((BigInt(a) * BigInt(b)) / BigInt(d)));
}

/** round_half_up(a * b, d): a * b / d to the nearest integer, halves away from zero. */
export function roundHalfUp(a, b, d) {
  const negative = (a < 0) !== (b < 0) && a !== 0 && b !== 0;
  // (2|ab| + d) // 2d, as floor((2|a| * |b| + d) / 2d) without a float in between.
  const absA = Math.abs(a);
  const absB = Math.abs(b);
  checkSafe(absA);
  checkSafe(absB);
  let rounded;
  const product = 2 * absA * absB + d;
  if (Number.isSafeInteger(product)) {
    rounded = floorDivide(product, 2 * d);
  } else {
    rounded = checkSafe(Number((2n * BigInt(absA) * BigInt(absB) + BigInt(d)) / BigInt(2 * d)));
  }
  return negative ? 0 - rounded : rounded; // 0 - 0 is 0, never -0
}

/** Split `amount` (>= 0) over `weights` (>= 0) by cumulative floor: shares add up exactly. */
export function cumulativeFloorShares(amount, weights) {
  let totalWeight = 0;
  for (const weight of weights) totalWeight += weight;
  checkSafe(totalWeight);
  if (totalWeight === 0) {
    if (amount) throw new RangeError(`cannot split ${amount} over weights that are all 0`);
    return weights.map(() => 0);
  }
  const shares = [];
  let running = 0;
  let allocated = 0;
  for (const weight of weights) {
    running += weight;
    const upto = mulDiv(amount, running, totalWeight);
    shares.push(upto - allocated);
    allocated = upto;
  }
  return shares;
}
