// The sales a browser made as a till it no longer is. The outbox (offline.js)
// files each sale made with no node answering under "<store id>/<till code>";
// a till paired again (its token revoked while it sold offline, or store IT
// pairing it anew) gets a new code, and a node takes a sale only from the till
// whose code its id names. So the till keeps the token of each till it was,
// shows those tokens when it pairs again in the same store (the node then
// lets it send those tills' sales: `auth`'s `till.takes_over`), sends them
// after its own, and says plainly which sales wait for another store's node.
// No DOM here: session.js and screen-pair.js call it (docs/protocol.md, "Paired again").

// A node takes at most 8 earlier tokens with a pairing.
const MAX_PREVIOUS_TOKENS = 8;
// `auth`'s protocol from which `sale/record_refund` takes `till`: an older node would read
// past it and record an earlier till's refund as this till's.
const REFUNDS_NAME_THEIR_TILL = 2;

const keyOf = (storeId, code) => `${storeId}/${code}`;

function splitKey(key) {
  const slash = key.indexOf('/');
  return { store: key.slice(0, slash), code: key.slice(slash + 1) };
}

const usable = (store, method) => Boolean(store) && typeof store[method] === 'function';

/** After each `auth`: the token is the proof of this till, should it be paired again. */
export async function rememberTillToken(store, auth, token) {
  if (!usable(store, 'saveTillToken') || !token || !auth?.store?.id || !auth?.till?.code) return;
  await store.saveTillToken(keyOf(auth.store.id, auth.till.code), token);
}

/** The tills ("<store>/<code>") whose waiting sales this till, as `auth` says it is, may send. */
export function sendableTills(auth) {
  const storeId = auth?.store?.id;
  if (!storeId || !auth?.till?.code) return new Set();
  return new Set([auth.till.code, ...(auth.till.takes_over ?? [])].map((code) => keyOf(storeId, code)));
}

/**
 * Sales waiting on this till that no node of this store will take from it:
 * [{store, till, count, otherStore}], the other store's sales first. Those of another
 * store go to a node of that store; those of an earlier till of this store whose
 * token the node never saw, to a pairing again that shows it.
 */
export async function salesWaitingElsewhere(store, auth) {
  if (!usable(store, 'waitingTills') || !auth?.store?.id) return [];
  const sendable = sendableTills(auth);
  const waiting = await store.waitingTills();
  return Object.entries(waiting)
    .filter(([key]) => !sendable.has(key))
    .map(([key, count]) => {
      const { store: storeId, code } = splitKey(key);
      return { store: storeId, till: code, count, otherStore: storeId !== auth.store.id };
    })
    .sort((a, b) => Number(b.otherStore) - Number(a.otherStore) || a.till.localeCompare(b.till));
}

/**
 * Sends the waiting sales of the earlier tills this till took over (after its own,
 * oldest first), each with `sale/record` under its own id, a refund with
 * `sale/record_refund` naming that till (its id does not; a node of an older protocol
 * would not read it, so those refunds wait): the node records it as that till's, once.
 * A sale leaves the outbox only once recorded. Throws when the connection is lost.
 */
export async function sendEarlierTillsSales(ledger, call, auth, onRefused) {
  const store = ledger.store;
  if (!usable(store, 'waitingSales') || !auth?.store?.id) return 0;
  let sent = 0;
  const refundsToo = auth.protocol >= REFUNDS_NAME_THEIR_TILL;
  for (const code of auth.till?.takes_over ?? []) {
    for (const { seq, sale } of await store.waitingSales(keyOf(auth.store.id, code))) {
      if (sale.kind === 'refund' && !refundsToo) continue; // kept, counted and shown
      if (!(await ledger.record(call, sale, { offline: true, till: code }, onRefused))) continue;
      await store.removeSale(seq);
      sent++;
    }
  }
  if (sent) {
    ledger.waitingSales = await store.countWaitingSales(ledger.key);
    ledger.changed();
  }
  return sent;
}

/**
 * The tokens to show when pairing with the node of `storeId`: those of the tills
 * of that store whose sales wait here (never another store's: a token is a secret
 * of its store). `currentToken`: the token this browser holds now, shown too when
 * it is that store's (saved as one of its tills', or, never saved by an older
 * version, while only that store's sales wait here).
 */
export async function proofForPairing(store, storeId, currentToken = null) {
  if (!storeId || !usable(store, 'waitingTills')) return [];
  const everyWaiting = Object.keys(await store.waitingTills());
  const waiting = everyWaiting.filter((key) => splitKey(key).store === storeId);
  if (!waiting.length) return [];
  const tokens = usable(store, 'tillTokens') ? await store.tillTokens() : {};
  const proof = waiting.map((key) => tokens[key]).filter(Boolean);
  // The till's current token too when it is this store's: saved as one of its tills', or
  // never saved (an older version) while only this store's sales wait here. Never another
  // store's token, even for the node to hash (h68).
  const currentKey = Object.keys(tokens).find((key) => tokens[key] === currentToken);
  const ours = currentKey ? splitKey(currentKey).store === storeId
    : everyWaiting.every((key) => splitKey(key).store === storeId);
  if (currentToken && ours && !proof.includes(currentToken)) proof.push(currentToken);
  return [...new Set(proof)].slice(0, MAX_PREVIOUS_TOKENS);
}

/**
 * Keeps only the tokens of tills whose sales still wait here, and the till's own
 * (`current`, "<store>/<code>"): it is the proof of the sales it may make offline next.
 */
export async function forgetTokensNoLongerNeeded(store, current = null) {
  if (!usable(store, 'forgetTillTokensBut') || !usable(store, 'waitingTills')) return;
  const keep = new Set(Object.keys(await store.waitingTills()));
  if (current) keep.add(current);
  await store.forgetTillTokensBut(keep);
}
