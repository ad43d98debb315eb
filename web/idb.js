// IndexedDB's callbacks as promises, for the till's two databases: the sales
// outbox (offline.js, on the page) and the catalogue copy (catalogue-worker.js,
// in its worker). Nothing here knows either schema.

/** Wraps an IDBRequest in a promise. */
export function done(request) {
  return new Promise((resolve, reject) => {
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

/**
 * Resolves when the transaction is committed (with 'strict' durability: on
 * disk); rejects on its error, or with `abortMessage` when it was aborted
 * with none (transaction.abort()).
 */
export function committed(transaction, abortMessage = 'transaction aborted') {
  return new Promise((resolve, reject) => {
    transaction.oncomplete = () => resolve();
    transaction.onerror = () => reject(transaction.error);
    transaction.onabort = () => reject(transaction.error ?? new Error(abortMessage));
  });
}

/**
 * Opens database `name` at `version`; `upgrade(database, event, transaction)`
 * makes its stores when the version is newer than the one saved. A newer
 * version of the app opened in another tab closes this connection rather than
 * being blocked by it; an older tab holding it open fails the open with
 * `blockedMessage`.
 */
export function openDatabase(name, version, upgrade, blockedMessage) {
  return new Promise((resolve, reject) => {
    const request = indexedDB.open(name, version);
    request.onupgradeneeded = (event) => upgrade(request.result, event, request.transaction);
    request.onsuccess = () => {
      const database = request.result;
      database.onversionchange = () => database.close();
      resolve(database);
    };
    request.onerror = () => reject(request.error);
    request.onblocked = () => reject(new Error(blockedMessage));
  });
}
