"""The README.md and LISEZMOI.md put in every archive: its format and how to check it
by hand, in English and in French (the same text, docs/fiscal.md says more)."""

from __future__ import annotations

README_EN = """\
# edge archive: {store}, period {period}

Written by edge {version} on node {node} at {exported_at} (UTC).
Period: {start} (included) to {end} (excluded), event times in UTC.

Check it with edge: `edge verify THIS-FILE.zip` (exit code 0: untouched; 1:
broken, each break named). Or by hand, as below.

## Files
- `events.jsonl`: every event of the store's journal (all origins: each node,
  head office) from each origin's first event up to its last one recorded
  before the end of the period, sorted by origin then sequence number. One
  event per line in canonical JSON (keys sorted, no spaces, UTF-8):
  `origin, seq, id, time, type, body, prev_hash, hash, sig`.
- `sales.csv`: one row per sale or refund the period counts (`;`-separated,
  amounts in euro cents, VAT per rate, tenders with cash net of the change
  given back, which is shown apart; a sale recorded by two nodes counts once, the copy
  with the smaller event hash; its period is that of its first recording;
  training sales never count).
- `totals.json`: the period's totals (sales and refunds apart, by VAT rate and
  by tender, cash net of change; `grand_total` and `grand_total_abs`: what the
  period adds to the perpetual grand totals).
- `closures.json`: the period's closures (Z, month, year; superseded ones
  marked), each the body of a `closure_made` event of `events.jsonl` with its
  origin, seq and hash, and the previous closure each builds on (`context`).
  A day's `totals` count each sale once that its `covers` (each origin's last
  seq and hash) hold, recorded before its end and not counted by its previous
  closure; `grand_total` = the previous closure's + this `totals.grand_total`.
- `keys/store-ca.pem`: the store's certificate authority (CA). Its SHA-256
  fingerprint is `{fingerprint}`: compare it with the one printed on the
  store's Z reports and kept in its records. A forger with a CA of their own
  can make an archive that checks; they cannot make this fingerprint.
- `keys/exporter.pem`: the certificate of the node that wrote this archive
  (written by head office: the store CA's certificate for head office's key);
  `keys/origins/`: each origin's certificate (head office: its public key),
  as its first event (`origin_certified`) carries it; `keys/headoffice/`:
  the store CA's certificates for head office's keys.
- `manifest.json`: the SHA-256 and size of every file; `manifest.sig`: the
  Ed25519 signature (64 bytes) of `manifest.json` by the exporting node.

## Checking by hand
1. Every file is the one the manifest names: `sha256sum events.jsonl` (and
   each file) gives the `sha256` in `manifest.json`.
2. The manifest is signed by a node of the store (or by head office, its key
   certified by the store CA):

       openssl verify -partial_chain -CAfile keys/store-ca.pem keys/exporter.pem
       openssl x509 -in keys/exporter.pem -pubkey -noout > exporter-key.pem
       openssl pkeyutl -verify -pubin -inkey exporter-key.pem -rawin \\
           -in manifest.json -sigfile manifest.sig

3. The CA is the store's: `openssl x509 -in keys/store-ca.pem -outform DER |
   sha256sum` gives the fingerprint above.
4. Each event's hash is the SHA-256 of the canonical JSON of
   `[origin, seq, id, time, type, body, prev_hash]`; each `prev_hash` is the
   hash of the origin's event before it (64 zeros for seq 1); each `sig` is
   the Ed25519 signature of the bytes `edge event v1:` followed by the hash
   (hex, ASCII), by the key in its origin's certificate. In Python 3:

       import hashlib, json
       last = {{}}
       for line in open("events.jsonl", encoding="utf-8"):
           e = json.loads(line)
           content = [e[k] for k in ("origin", "seq", "id", "time", "type", "body",
                                     "prev_hash")]
           payload = json.dumps(content, sort_keys=True, separators=(",", ":"),
                                ensure_ascii=False).encode()
           assert hashlib.sha256(payload).hexdigest() == e["hash"], e["seq"]
           assert e["prev_hash"] == last.get(e["origin"], "0" * 64), e["seq"]
           last[e["origin"]] = e["hash"]

5. `totals.json` is the sum of `sales.csv`'s rows; each row is an event of
   type `sale_completed` or `sale_refunded` in `events.jsonl` (by `sale_id`).
"""

LISEZMOI_FR = """\
# Archive edge : {store}, période {period}

Écrite par edge {version} sur le nœud {node} le {exported_at} (UTC).
Période : du {start} (inclus) au {end} (exclu), heures des événements en UTC.

La vérifier avec edge : `edge verify CE-FICHIER.zip` (code de sortie 0 :
intacte ; 1 : altérée, chaque rupture nommée). Ou à la main, comme suit.

## Fichiers
- `events.jsonl` : tous les événements du journal du magasin (toutes les
  origines : chaque nœud, le siège), depuis le premier de chaque origine
  jusqu'au dernier enregistré avant la fin de la période, triés par origine
  puis numéro de séquence. Un événement par ligne, en JSON canonique (clés
  triées, sans espaces, UTF-8) : `origin, seq, id, time, type, body,
  prev_hash, hash, sig`.
- `sales.csv` : une ligne par vente ou remboursement compté dans la période
  (séparateur `;`, montants en centimes d'euro, TVA par taux, paiements avec
  les espèces nettes du rendu, montré à part ; une vente enregistrée par deux
  nœuds compte une fois, la copie au plus petit hash ; sa période est celle
  de son premier enregistrement ; les ventes en mode école ne comptent jamais).
- `totals.json` : les totaux de la période (ventes et remboursements à part,
  par taux de TVA et par moyen de paiement, espèces nettes du rendu ;
  `grand_total` et `grand_total_abs` : ce que la période ajoute aux grands
  totaux perpétuels).
- `closures.json` : les clôtures de la période (Z, mois, année ; les
  remplacées marquées), chacune le corps d'un événement `closure_made`
  d'`events.jsonl` avec son origine, son numéro et son hash, et la clôture
  précédente sur laquelle chacune s'appuie (`context`). Les `totals` d'une
  journée comptent une fois chaque vente que ses `covers` (dernier numéro et
  hash de chaque origine) contiennent, enregistrée avant sa fin et non
  comptée par la clôture précédente ; `grand_total` = celui de la précédente
  + `totals.grand_total`.
- `keys/store-ca.pem` : l'autorité de certification (AC) du magasin. Son
  empreinte SHA-256 est `{fingerprint}` : comparez-la à celle imprimée sur
  les tickets Z du magasin et conservée dans ses registres. Un faussaire muni
  de sa propre AC peut fabriquer une archive cohérente ; il ne peut pas
  fabriquer cette empreinte.
- `keys/exporter.pem` : le certificat du nœud qui a écrit l'archive (écrite
  par le siège : le certificat de l'AC du magasin pour la clé du siège) ;
  `keys/origins/` : le certificat de chaque origine (le siège : sa clé
  publique), tel que son premier événement (`origin_certified`) le porte ;
  `keys/headoffice/` : les certificats de l'AC pour les clés du siège.
- `manifest.json` : le SHA-256 et la taille de chaque fichier ;
  `manifest.sig` : la signature Ed25519 (64 octets) de `manifest.json` par
  le nœud exportateur.

## Vérifier à la main
1. Chaque fichier est celui que nomme le manifeste : `sha256sum events.jsonl`
   (et chaque fichier) donne le `sha256` de `manifest.json`.
2. Le manifeste est signé par un nœud du magasin (ou par le siège, sa clé
   certifiée par l'AC du magasin) :

       openssl verify -partial_chain -CAfile keys/store-ca.pem keys/exporter.pem
       openssl x509 -in keys/exporter.pem -pubkey -noout > exporter-key.pem
       openssl pkeyutl -verify -pubin -inkey exporter-key.pem -rawin \\
           -in manifest.json -sigfile manifest.sig

3. L'AC est celle du magasin : `openssl x509 -in keys/store-ca.pem -outform
   DER | sha256sum` donne l'empreinte ci-dessus.
4. Le hash de chaque événement est le SHA-256 du JSON canonique de
   `[origin, seq, id, time, type, body, prev_hash]` ; chaque `prev_hash` est
   le hash de l'événement précédent de la même origine (64 zéros pour la
   séquence 1) ; chaque `sig` est la signature Ed25519 des octets
   `edge event v1:` suivis du hash (hexadécimal, ASCII), par la clé du
   certificat de son origine. Le programme Python 3 du README.md le vérifie.
5. `totals.json` est la somme des lignes de `sales.csv` ; chaque ligne est un
   événement `sale_completed` ou `sale_refunded` de `events.jsonl` (par
   `sale_id`).
"""


def readmes(**facts: str) -> dict[str, bytes]:
    """{file name: text} of the two READMEs, filled with the archive's facts."""
    return {"README.md": README_EN.format(**facts).encode(),
            "LISEZMOI.md": LISEZMOI_FR.format(**facts).encode()}
