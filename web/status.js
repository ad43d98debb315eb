// The store IT page: this node's /healthz in plain words, refreshed every 5 s.
// It needs no login: /healthz is the node's public health check.

import { getLang, hasTranslation, setLang, t as tillText } from './i18n.js';

const TEXT = {
  fr: {
    title: 'État du magasin', lang: 'EN', node: 'Ce serveur', store: 'Magasin',
    nodeId: 'Nœud', version: 'Version', uptime: 'Démarré depuis', tills: 'Caisses connectées',
    events: 'Événements écrits', peers: 'Autres serveurs du magasin', noPeers: 'aucun (serveur seul)',
    connected: 'connecté', notConnected: 'NON CONNECTÉ', lastContact: 'dernier contact',
    lags: 'événements à recevoir', never: 'jamais', printers: 'Imprimantes',
    headoffice: 'Siège (synchronisation)', disabled: 'non configurée', backlog: 'à envoyer',
    oldest: 'plus ancien non envoyé', lastSuccess: 'dernier envoi réussi',
    lastError: 'dernière erreur', state: 'état',
    task: 'Tâche de fond', taskDown: 'arrêtée sur une erreur, relancée automatiquement',
    ok: 'Tout fonctionne.', warning: 'Le magasin vend, mais quelque chose demande attention :',
    down: 'Ce serveur ne répond pas. Les caisses passent sur un autre serveur ou vendent hors ligne.',
    updated: 'Mis à jour à', seconds: 's',
    diskFull: 'DISQUE PLEIN depuis {since} : ce serveur refuse les ventes. Libérez de la place '
      + '(df -h /var/lib/edge) : il revend tout seul, rien de ce qui a été validé n’est perdu.',
    stopped: 'Ce serveur a cessé d’écrire et redémarre (voir journalctl -u edge).',
    writeBackFailed: 'À REDÉMARRER : le disque a refusé d’écrire la base du journal. Ce serveur '
      + 'vend toujours et garde tout dans son journal d’écriture, qui grossit : redémarrez-le '
      + '(systemctl restart edge) et faites vérifier le disque.',
    seeLog: 'détail : journalctl -u edge', days: 'j', hours: 'h', minutes: 'min',
    'office.ok': 'à jour', 'office.failing': 'en échec, nouvel essai automatique',
    'office.waiting': 'pas encore essayé', 'office.never run': 'jamais lancée',
    tillList: 'Caisses appairées', noTills: 'aucune (edge pair)', pairedCount: 'En service',
    revokedCount: 'Révoquées', tillDetails: 'Détail (sur le serveur)',
    terminals: 'Terminaux de paiement (Caisse-AP)', terminalTills: 'caisses', allTills: 'toutes celles qu’aucun autre terminal ne liste',
    terminalBusy: 'paiement en cours', terminalIdle: 'libre', lastPayment: 'dernier paiement :',
    noPayment: 'aucun paiement encore', terminalDetails: 'Adresses et caisses (sur le serveur)', terminalUnreachable: 'injoignable au dernier paiement',
    'payment.approved': 'accepté', 'payment.declined': 'refusé', 'payment.unreachable': 'terminal injoignable',
    'payment.unknown': 'résultat inconnu (lire le ticket du terminal)', 'payment.requested': 'demandé',
    'payment.started': 'en cours',
  },
  en: {
    title: 'Store status', lang: 'FR', node: 'This server', store: 'Store',
    nodeId: 'Node', version: 'Version', uptime: 'Up for', tills: 'Tills connected',
    events: 'Events written', peers: "The store's other servers", noPeers: 'none (single server)',
    connected: 'connected', notConnected: 'NOT CONNECTED', lastContact: 'last contact',
    lags: 'events to receive', never: 'never', printers: 'Printers',
    headoffice: 'Head office (sync)', disabled: 'not configured', backlog: 'to send',
    oldest: 'oldest unsent', lastSuccess: 'last successful send',
    lastError: 'last error', state: 'state',
    task: 'Background task', taskDown: 'stopped on an error, being restarted',
    ok: 'Everything works.', warning: 'The store is selling, but something needs attention:',
    down: 'This server does not answer. Tills move to another server or sell offline.',
    updated: 'Updated at', seconds: 's',
    diskFull: 'DISK FULL since {since}: this server refuses sales. Free some space '
      + '(df -h /var/lib/edge): it sells again by itself, nothing confirmed is lost.',
    stopped: 'This server stopped writing and restarts (see journalctl -u edge).',
    writeBackFailed: 'NEEDS A RESTART: the disk refused to write the journal’s database. This '
      + 'server still sells and keeps everything in its write-ahead log, which grows: restart it '
      + '(systemctl restart edge) and have the disk checked.',
    seeLog: 'details: journalctl -u edge', days: 'd', hours: 'h', minutes: 'min',
    'office.ok': 'up to date', 'office.failing': 'failing, tried again automatically',
    'office.waiting': 'not tried yet', 'office.never run': 'never run',
    tillList: 'Paired tills', noTills: 'none (edge pair)', pairedCount: 'In service',
    revokedCount: 'Revoked', tillDetails: 'Details (on the server)',
    terminals: 'Payment terminals (Caisse-AP)', terminalTills: 'tills', allTills: 'every till no other terminal lists',
    terminalBusy: 'payment in progress', terminalIdle: 'idle', lastPayment: 'last payment:',
    noPayment: 'no payment yet', terminalDetails: 'Addresses and tills (on the server)', terminalUnreachable: 'unreachable at the last payment',
    'payment.approved': 'approved', 'payment.declined': 'declined', 'payment.unreachable': 'terminal unreachable',
    'payment.unknown': 'outcome unknown (read the terminal’s slip)', 'payment.requested': 'requested',
    'payment.started': 'in progress',
  },
};

let last = null;
const t = (key, values = {}) => (TEXT[getLang()][key] ?? key)
  .replace(/\{(\w+)\}/g, (_, name) => values[name] ?? '');

const locale = () => (getLang() === 'fr' ? 'fr-FR' : 'en-GB');

/** A time the node gives in UTC (ISO 8601), in this browser's local time and language. */
function localTime(iso) {
  if (!iso) return null;
  const when = new Date(iso);
  if (Number.isNaN(when.getTime())) return null;
  return when.toLocaleString(locale(), { dateStyle: 'short', timeStyle: 'medium' });
}

/** A duration in seconds as people say it: "3 h 12 min", "2 j 4 h". */
function duration(seconds) {
  const minutes = Math.floor(seconds / 60);
  const hours = Math.floor(minutes / 60);
  const days = Math.floor(hours / 24);
  if (days) return `${days} ${t('days')} ${hours % 24} ${t('hours')}`;
  if (hours) return `${hours} ${t('hours')} ${minutes % 60} ${t('minutes')}`;
  if (minutes) return `${minutes} ${t('minutes')}`;
  return `${Math.round(seconds)} ${t('seconds')}`;
}

/** The node's own words (English) only on the English page; elsewhere, a tooltip. */
const nodeWords = (text) => (getLang() === 'en' && text ? text : null);

/** A printer's state as the tills word it ("Imprimante : plus de papier"). */
function printerState(printer) {
  const key = `printer.state.${printer.state}`;
  return hasTranslation(key) ? tillText(key) : tillText('printer.state.other', printer);
}

/**
 * A payment terminal of this node (/healthz `terminals`, docs/devices.md): whether a payment is
 * on it, and how the last one ended (`last_payment`: {status, requested_at}, null before the
 * first). Never its address nor its tills: /healthz answers anyone on the shop's network, and a
 * terminal obeys whoever reaches its port; `edge devices` shows those on the node itself.
 */
function terminalRow(terminal) {
  const where = terminal.host ? `${terminal.name} (${terminal.host}:${terminal.port ?? 8888})` : terminal.name;
  const tills = terminal.tills ? [`${t('terminalTills')} ${terminal.tills.length ? terminal.tills.join(', ') : t('allTills')}`] : [];
  const last = terminal.last_payment ?? null;
  const at = localTime(last?.requested_at);
  const lastText = last?.status
    ? `${t('lastPayment')} ${t(`payment.${last.status}`)}${last.code ? ` (${last.code})` : ''}${at ? `, ${at}` : ''}`
    : t('noPayment');
  return [where, [...tills, terminal.busy ? t('terminalBusy') : t('terminalIdle'), lastText].join(' · '),
    last?.status === 'unreachable' || last?.status === 'unknown'];
}

const terminalsOf = (health) => (Array.isArray(health.terminals) ? health.terminals : []);

function section(title, rows) {
  const box = document.createElement('section');
  const heading = document.createElement('h2');
  heading.textContent = title;
  box.append(heading);
  for (const [label, value, bad, tooltip] of rows) {
    const row = document.createElement('div');
    row.className = 'row';
    const name = document.createElement('span');
    name.textContent = label;
    const shown = document.createElement('span');
    shown.textContent = value ?? '—';
    if (tooltip) shown.title = tooltip;
    if (bad !== undefined) shown.className = bad ? 'bad' : 'good';
    row.append(name, shown);
    box.append(row);
  }
  return box;
}

/** What needs store IT's attention, in plain words (empty: all is well). */
function problems(health) {
  const found = [];
  const since = health.journal?.disk_full_since;
  if (since) found.push(t('diskFull', { since: localTime(since) ?? '?' }));
  if (health.journal?.write_back_failed) found.push(t('writeBackFailed'));
  for (const peer of health.peers || []) {
    if (!peer.connected) found.push(`${t('nodeId')} ${peer.node_id}: ${t('notConnected')}`);
  }
  for (const printer of health.printers || []) {
    if (printer.state !== 'ready') {
      const detail = nodeWords(printer.detail);
      found.push(`${printer.name}: ${printerState(printer)}${detail ? ` (${detail})` : ''}`);
    }
  }
  for (const terminal of terminalsOf(health)) {
    if (terminal.last_payment?.status === 'unreachable') found.push(`${terminal.name}: ${t('terminalUnreachable')}`);
  }
  const office = health.headoffice || {};
  if (office.state === 'failing') {
    const detail = nodeWords(office.last_error);
    found.push(`${t('headoffice')}: ${t('office.failing')}${detail ? ` (${detail})` : ''}`);
  }
  for (const task of health.tasks || []) {
    // Never the Python exception itself: store IT reads the log for that.
    if (task.state === 'restarting') found.push(`${t('task')} ${task.name}: ${t('taskDown')} (${t('seeLog')})`);
  }
  return found;
}

function render() {
  document.documentElement.lang = getLang();
  document.title = `edge — ${t('title')}`;
  document.getElementById('title').textContent = t('title');
  document.getElementById('lang').textContent = t('lang');
  const summary = document.getElementById('summary');
  const sections = document.getElementById('sections');
  sections.replaceChildren();
  if (!last) {
    summary.dataset.state = 'down';
    summary.textContent = t('down');
    return;
  }
  const found = problems(last);
  const notSelling = Boolean(last.journal?.disk_full_since);
  summary.dataset.state = notSelling ? 'down' : found.length ? 'warning' : 'ok';
  summary.textContent = notSelling ? found.join(' · ')
    : found.length ? `${t('warning')} ${found.join(' · ')}` : t('ok');

  sections.append(section(t('node'), [
    [t('store'), last.store_id], [t('nodeId'), last.node_id], [t('version'), last.version],
    [t('uptime'), duration(last.uptime_s)],
    [t('tills'), String(last.tills_connected)], [t('events'), String(last.journal.seq)],
  ]));
  const peers = last.peers || [];
  sections.append(section(t('peers'), peers.length ? peers.map((peer) => [
    `${peer.node_id} (${peer.url || '?'})`,
    peer.connected
      ? `${t('connected')}, ${t('lastContact')} ${peer.last_contact_s_ago ?? t('never')} ${t('seconds')}`
        + (peer.lag_events ? `, ${peer.lag_events} ${t('lags')}` : '')
      : t('notConnected'),
    !peer.connected,
  ]) : [[t('noPeers'), '']]));
  sections.append(section(t('printers'), (last.printers || []).map((printer) => [
    printer.name,
    nodeWords(printer.detail) ? `${printerState(printer)} — ${printer.detail}` : printerState(printer),
    printer.state !== 'ready', printer.detail,
  ])));
  if (terminalsOf(last).length) {
    sections.append(section(t('terminals'), [...terminalsOf(last).map(terminalRow), [t('terminalDetails'), 'edge devices']]));
  }
  // Counts only (anyone may read /healthz): the list is `edge tills list`'s.
  const tills = last.tills || { paired: 0, revoked: 0 };
  sections.append(section(t('tillList'), tills.paired ? [
    [t('pairedCount'), String(tills.paired - tills.revoked)],
    ...(tills.revoked ? [[t('revokedCount'), String(tills.revoked), true]] : []),
    [t('tillDetails'), 'edge tills list'],
  ] : [[t('noTills'), '']]));
  const office = last.headoffice || {};
  sections.append(section(t('headoffice'), office.state === 'disabled'
    ? [[t('state'), t('disabled')]]
    : [[t('state'), t(`office.${office.state}`), office.state === 'failing'],
       [t('backlog'), String(office.backlog_events ?? '—')],
       [t('oldest'), localTime(office.oldest_unsent)],
       [t('lastSuccess'), localTime(office.last_success)],
       [t('lastError'), office.last_error
         ? `${localTime(office.last_error_at) ?? ''} ${nodeWords(office.last_error) ?? t('seeLog')}`.trim()
         : null, undefined, office.last_error]]));
}

async function refresh() {
  try {
    const reply = await fetch('/healthz', { cache: 'no-store' });
    last = reply.ok ? await reply.json() : null;
  } catch {
    last = null;
  }
  render();
  document.getElementById('updated').textContent = `${t('updated')} ${new Date().toLocaleTimeString(locale())}`;
}

document.getElementById('lang').addEventListener('click', () => {
  setLang(getLang() === 'fr' ? 'en' : 'fr');
  render();
});
refresh();
setInterval(refresh, 5000);
