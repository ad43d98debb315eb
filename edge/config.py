"""Store configuration: a TOML file for real stores, built-in defaults for the demo.

`edge serve` with no config runs the demo store. Every setting is listed in
docs/operations.md (a test keeps that list complete).
"""

from __future__ import annotations

import os
import re
import stat
import tomllib
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class ConfigError(Exception):
    """A config file that can't be used, with every problem in plain words."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class PrinterConfig:
    """One receipt printer (and the drawer behind it); docs/operations.md and docs/devices.md."""

    name: str
    kind: str = "file"  # file, usb or network
    path: Path | None = None  # file printer: its folder
    width: int = 48  # characters per line
    paper: str = "80mm"
    usb: str | None = None  # "vendor:product" in hex; none = the first USB printer found
    serial: str | None = None  # tells apart two USB printers of the same model
    host: str | None = None  # network printer
    port: int = 9100
    code_page: str = "pc858"
    drawer_pin: int = 2
    tills: tuple[str, ...] = ()  # till codes printing here; none = every till not listed

    @property
    def usb_vendor(self) -> int | None:
        return int(self.usb.split(":")[0], 16) if self.usb else None

    @property
    def usb_product(self) -> int | None:
        return int(self.usb.split(":")[1], 16) if self.usb else None


@dataclass(frozen=True)
class TerminalConfig:
    """A card payment terminal speaking Caisse-AP over IP (docs/operations.md, docs/devices.md)."""

    name: str
    host: str
    port: int = 8888
    tills: tuple[str, ...] = ()  # till codes paying here; none = every till not listed
    connect_timeout: float = 5.0  # seconds to open the connection (nothing sent before)
    timeout: float = 180.0  # seconds for the whole payment (PIN, contactless retries)


@dataclass(frozen=True)
class Config:
    store_id: str = "demo-boulangerie"
    store_name: str = "Boulangerie du Marché"
    store_address: tuple[str, ...] = ("12 place du Marché", "75011 Paris")
    # The store's legal identity, printed on every receipt (edge/devices/receipt.py):
    # the company's name, its SIRET (14 digits, checked by its Luhn key) and its
    # intra-EU VAT number (FR + 11 characters). The demo's; a store's config none.
    store_legal_name: str = "SARL Boulangerie du Marché"
    store_siret: str = "83214785400018"
    store_vat_number: str = "FR67832147854"
    host: str = "127.0.0.1"
    port: int = 8080
    data_dir: Path = Path("edge-data")
    demo: bool = True
    advertise: bool = True
    url: str | None = None
    store_key_file: Path | None = None
    peer_urls: tuple[str, ...] = ()
    printers: tuple[PrinterConfig, ...] = field(default_factory=tuple)
    # Card payment terminals this node dials (edge/devices/terminals.py): none by default.
    terminals: tuple[TerminalConfig, ...] = field(default_factory=tuple)
    # Head-office sync (edge/sync.py): off without a URL.
    headoffice_url: str | None = None
    headoffice_token: str | None = None
    headoffice_token_file: Path | None = None
    headoffice_ca_file: Path | None = None
    headoffice_enabled: bool = True
    headoffice_continuous: bool = True
    headoffice_nightly_window: str = "02:00-05:00"
    headoffice_batch_events: int = 500
    headoffice_batch_bytes: int = 1024 * 1024
    headoffice_timeout_seconds: int = 30
    headoffice_retry_max_seconds: int = 300
    headoffice_pull_interval_seconds: int = 60
    # `edge serve --accept-clock`: start although the clock is behind the journal.
    accept_clock: bool = False
    # HTTPS/WSS with the store's certificates (docs/tls.md): auto, on or off.
    tls: str = "auto"
    # A public CA's certificate for the shop's own domain, shown to tills that open
    # one of its names (docs/tls.md); peers always use the store's.
    public_cert_file: Path | None = None
    public_key_file: Path | None = None
    # The till's product grid (edge/selling/catalogue_grid.py): the categories' order,
    # favourite product ids shown first, most tiles per category. The demo's order
    # here; a store's config starts from none.
    grid_categories: tuple[str, ...] = ("Pain", "Viennoiserie", "Pâtisserie", "Snacking",
                                        "Boissons chaudes", "Boissons fraîches")
    grid_favourites: tuple[str, ...] = ()
    grid_tiles: int = 48
    # In-store barcodes carrying a price or a weight (edge/selling/barcodes.py): one
    # layout per prefix, {prefix, layout, value}. The demo's two; a store's config none.
    embedded_barcodes: tuple[dict[str, str], ...] = field(default=(
        {"prefix": "21", "layout": "PPIIIIIVVVVVC", "value": "weight"},
        {"prefix": "22", "layout": "PPIIIIIVVVVVC", "value": "price"},
    ), hash=False)
    # Most paid in meal vouchers (titres-restaurant, paper and card) in one sale, cents.
    meal_voucher_cap: int = 2500
    # The till (told at `auth`): a product scanned again raises its line's quantity
    # rather than adding a line; minutes without a touch before the till locks (0: never).
    scan_merges_lines: bool = True
    idle_lock_minutes: int = 5
    # Past these a manager approves on the till (edge/api/approvals.py): a discount of
    # more than `discount_limit` basis points of what it is taken off; a typed price
    # ("Divers") of more than `open_price_limit` cents.
    discount_limit: int = 1000
    open_price_limit: int = 5000
    # The books (docs/fiscal.md): a business day runs from `fiscal_day_cutoff` o'clock
    # (store local time, 0 to 12) to the same hour the next day; the fiscal year starts
    # on `fiscal_year_start` ("MM-01"). `fiscal_shifts`: a till sells only within an
    # open shift (cash session, edge/fiscal/shifts.py); off, a store sells as before.
    fiscal_day_cutoff: int = 4
    fiscal_year_start: str = "01-01"
    fiscal_shifts: bool = False

    @property
    def database(self) -> Path:
        return self.data_dir / "edge.sqlite3"

    def with_overrides(self, **overrides: Any) -> Config:
        changes = {key: value for key, value in overrides.items() if value is not None}
        return Config(**{**self.__dict__, **changes})

    def store_key(self) -> bytes | None:
        """The secret every node of the store shares (peers prove they hold it)."""
        if self.store_key_file is None:
            return None
        return self.store_key_file.read_bytes().strip() or None

    def public_url(self) -> str:
        """Where tills and peers reach this node."""
        if self.url:
            return self.url.rstrip("/")
        host = self.host
        if host in ("0.0.0.0", "", "::"):
            from edge.replication.discovery import addresses_for

            host = addresses_for(host)[0]
        if ":" in host:
            host = f"[{host}]"
        return f"{self.scheme}://{host}:{self.port}"

    @property
    def listens_on_loopback_only(self) -> bool:
        return is_loopback_host(self.host)

    @property
    def serves_tls(self) -> bool:
        """HTTPS/WSS: always with `on`, never with `off`, and with `auto` unless the node
        listens on loopback only (nothing but this machine can reach it then)."""
        if self.tls == "auto":
            return not self.listens_on_loopback_only
        return self.tls == "on"

    @property
    def scheme(self) -> str:
        return "https" if self.serves_tls else "http"

    def plain_http_refusal(self) -> str | None:
        """Why this node may not serve plain HTTP where it listens, if it may not."""
        if self.serves_tls or self.listens_on_loopback_only or self.demo:
            return None
        return (f"server.tls is off but the node listens on {self.host}: anyone on the shop "
                "network could read and change what tills and peers send. Plain HTTP is only "
                "for loopback (127.0.0.1) and the demo store: set server.tls to \"auto\" "
                "(after `edge tls init` or `edge tls join`, see docs/tls.md), or listen on "
                "127.0.0.1")

    def named_files(self) -> list[tuple[str, Path, str]]:
        """Every file or folder this config names: (setting, path, kind), kind being
        "secret" (a key: readable by the node's user only), "file" or "folder"."""
        files = [("server.data", self.data_dir, "folder")]
        for setting, target in SECRET_FILES.items():
            path = getattr(self, target)
            if path is not None:
                files.append((setting, path, "secret"))
        if self.headoffice_ca_file is not None:
            files.append(("headoffice.ca_file", self.headoffice_ca_file, "file"))
        if self.public_cert_file is not None:
            files.append(("server.public_cert_file", self.public_cert_file, "file"))
        files += [(f"printer {printer.name!r} path", printer.path, "folder")
                  for printer in self.printers if printer.kind == "file" and printer.path]
        return files

    def all_printers(self) -> tuple[PrinterConfig, ...]:
        """Configured printers, or one file printer in the data folder if none is."""
        if self.printers:
            return self.printers
        return (PrinterConfig(name="receipt", kind="file", path=self.data_dir / "printer"),)


# Every key a config file may hold: section -> key -> (type, Config field).
SETTINGS: dict[str, dict[str, tuple[type, str]]] = {
    "store": {"id": (str, "store_id"), "name": (str, "store_name"),
              "address": (list, "store_address"), "key_file": (str, "store_key_file"),
              "demo": (bool, "demo"), "legal_name": (str, "store_legal_name"),
              "siret": (str, "store_siret"), "vat_number": (str, "store_vat_number")},
    "server": {"host": (str, "host"), "port": (int, "port"), "data": (str, "data_dir"),
               "advertise": (bool, "advertise"), "url": (str, "url"), "tls": (str, "tls"),
               "public_cert_file": (str, "public_cert_file"),
               "public_key_file": (str, "public_key_file")},
    "peers": {"urls": (list, "peer_urls")},
    "headoffice": {
        "url": (str, "headoffice_url"), "token": (str, "headoffice_token"),
        "token_file": (str, "headoffice_token_file"), "ca_file": (str, "headoffice_ca_file"),
        "enabled": (bool, "headoffice_enabled"), "continuous": (bool, "headoffice_continuous"),
        "nightly_window": (str, "headoffice_nightly_window"),
        "batch_events": (int, "headoffice_batch_events"),
        "batch_bytes": (int, "headoffice_batch_bytes"),
        "timeout_seconds": (int, "headoffice_timeout_seconds"),
        "retry_max_seconds": (int, "headoffice_retry_max_seconds"),
        "pull_interval_seconds": (int, "headoffice_pull_interval_seconds"),
    },
    "grid": {"categories": (list, "grid_categories"), "favourites": (list, "grid_favourites"),
             "tiles": (int, "grid_tiles")},
    "barcodes": {"embedded": (list, "embedded_barcodes")},
    "tenders": {"meal_voucher_cap": (int, "meal_voucher_cap")},
    "till": {"scan_merges_lines": (bool, "scan_merges_lines"),
             "idle_lock_minutes": (int, "idle_lock_minutes")},
    "selling": {"discount_limit": (int, "discount_limit"),
                "open_price_limit": (int, "open_price_limit")},
    "fiscal": {"day_cutoff": (int, "fiscal_day_cutoff"), "year_start": (str, "fiscal_year_start"),
               "shifts": (bool, "fiscal_shifts")},
}
IDLE_LOCK_MAX_MINUTES = 240
GRID_MAX_TILES = 200  # edge/selling/catalogue_grid.py MAX_TILES
TLS_MODES = ("auto", "on", "off")
TYPE_NAMES = {str: "text", int: "a whole number", bool: "true or false", list: "a list"}
PRINTER_SETTINGS: dict[str, type] = {
    "name": str, "kind": str, "path": str, "width": int, "paper": str, "usb": str,
    "serial": str, "host": str, "port": int, "code_page": str, "drawer_pin": int, "tills": list,
}
PRINTER_KINDS = ("file", "usb", "network")
TERMINAL_SETTINGS: dict[str, type | tuple[type, ...]] = {
    "name": str, "host": str, "port": int, "tills": list, "connect_timeout": (int, float),
    "timeout": (int, float),
}
TERMINAL_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,31}")
CONNECT_TIMEOUT_RANGE = (1, 60)  # seconds
PAYMENT_TIMEOUT_RANGE = (10, 900)  # seconds: a payment may take 3 minutes

# Secret files: setting -> Config field. Under systemd, the unit passes each
# with `LoadCredential=<credential id>:<path>` (systemd/edge.service): systemd
# reads the root-only file and hands the node a private copy in
# $CREDENTIALS_DIRECTORY, so the file itself never needs opening up to the
# node's user. The credential id is the setting's section and name, minus
# "_file": `store.key_file` -> `store.key`.
SECRET_FILES: dict[str, str] = {
    "store.key_file": "store_key_file",
    "headoffice.token_file": "headoffice_token_file",
    "server.public_key_file": "public_key_file",
}


def credential_id(setting: str) -> str:
    return setting.removesuffix("_file")


def credential(setting: str) -> Path | None:
    """The copy of a secret systemd handed this process (LoadCredential=), if any."""
    directory = os.environ.get("CREDENTIALS_DIRECTORY")
    if not directory:
        return None
    path = Path(directory) / credential_id(setting)
    return path if path.is_file() else None
PAPER_WIDTHS = {"80mm": 48, "58mm": 32}


def load_config(path: Path) -> Config:
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError([f"{path}: no such file"]) from None
    except OSError as error:
        raise ConfigError([f"{path}: cannot be read by user {user_name(os.geteuid())}: "
                           f"{error.strerror}"]) from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError([f"{path}: not valid TOML: {error}"]) from None
    return parse_config(raw, str(path), base=path.parent)


def parse_config(raw: dict[str, Any], source: str, base: Path = Path(".")) -> Config:
    problems: list[str] = []
    values: dict[str, Any] = {"demo": False}
    for section, content in raw.items():
        if section in ("printers", "terminals"):
            continue
        if section not in SETTINGS:
            problems.append(f"{source}: unknown section [{section}]")
            continue
        for key, value in content.items():
            if key not in SETTINGS[section]:
                problems.append(f"{source}: unknown setting {section}.{key}")
                continue
            kind, target = SETTINGS[section][key]
            if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
                problems.append(f"{source}: {section}.{key} must be {TYPE_NAMES[kind]}")
                continue
            values[target] = value
    if "port" in values and not 1 <= values["port"] <= 65535:
        problems.append(f"{source}: server.port must be between 1 and 65535")
    if values.get("tls", "auto") not in TLS_MODES:
        problems.append(f"{source}: server.tls must be one of {', '.join(TLS_MODES)}")
    if "store_id" not in values:
        problems.append(f"{source}: store.id is required (the same on every node of the store)")
    if "data_dir" in values:
        values["data_dir"] = base / values["data_dir"]
    for key in ("store_key_file", "public_cert_file", "public_key_file"):
        if key in values:
            values[key] = base / values[key]
    _use_credentials(values)
    problems += _public_certificate_problems(values, source)
    if "store_key_file" in values and not values["store_key_file"].is_file():
        problems.append(f"{source}: store.key_file {values['store_key_file']} does not exist")
    if "peer_urls" in values:
        values["peer_urls"] = tuple(str(url).rstrip("/") for url in values["peer_urls"])
        bad = [url for url in values["peer_urls"] if not url.startswith(("http://", "https://"))]
        if bad:
            problems.append(f"{source}: peers.urls must be http:// or https:// URLs: {bad}")
    if "store_address" in values:
        values["store_address"] = tuple(str(line) for line in values["store_address"])
    problems += _headoffice_problems(values, source, base)
    problems += _selling_problems(values, source)
    problems += _fiscal_problems(values, source)
    if not 0 <= values.get("idle_lock_minutes", 0) <= IDLE_LOCK_MAX_MINUTES:
        problems.append(f"{source}: till.idle_lock_minutes must be between 0 (never lock) "
                        f"and {IDLE_LOCK_MAX_MINUTES}")
    printers, printer_problems = parse_printers(raw.get("printers", []), source, base)
    problems += printer_problems
    terminals, terminal_problems = parse_terminals(raw.get("terminals", []), source,
                                                   {printer.name for printer in printers})
    problems += terminal_problems
    if problems:
        raise ConfigError(problems)
    values["printers"] = tuple(printers)
    values["terminals"] = tuple(terminals)
    config = Config(**values)
    refusal = config.plain_http_refusal()
    if refusal:
        raise ConfigError([f"{source}: {refusal}"])
    return config


def _selling_problems(values: dict[str, Any], source: str) -> list[str]:
    """Check [grid], [[barcodes.embedded]] and [tenders]; a store starts from no demo values."""
    from edge.selling.barcodes import layout_problem

    problems = []
    for key in ("grid_categories", "grid_favourites"):
        names = values.setdefault(key, ())
        if not all(isinstance(name, str) and 0 < len(name) <= 64 for name in names):
            problems.append(f"{source}: grid.{key.removeprefix('grid_')} must be a list of "
                            "names (1 to 64 characters each)")
        values[key] = tuple(str(name) for name in names)
    if not 1 <= values.get("grid_tiles", 48) <= GRID_MAX_TILES:
        problems.append(f"{source}: grid.tiles must be between 1 and {GRID_MAX_TILES}")
    layouts = values.setdefault("embedded_barcodes", ())
    for number, layout in enumerate(layouts, start=1):
        unknown = set(layout) - {"prefix", "layout", "value"} if isinstance(layout, dict) else ()
        problem = (f"unknown setting(s) {', '.join(sorted(unknown))}" if unknown
                   else layout_problem(layout))
        if problem:
            problems.append(f"{source}: barcodes.embedded #{number}: {problem}")
    prefixes = [layout.get("prefix") for layout in layouts if isinstance(layout, dict)]
    problems += [f"{source}: barcodes.embedded: two layouts for prefix {prefix}"
                 for prefix in sorted({p for p in prefixes if prefixes.count(p) > 1})]
    values["embedded_barcodes"] = tuple(dict(layout) for layout in layouts
                                        if isinstance(layout, dict))
    if values.get("meal_voucher_cap", 0) < 0:
        problems.append(f"{source}: tenders.meal_voucher_cap must be 0 or more (cents)")
    if not 0 <= values.get("discount_limit", 0) <= 10_000:
        problems.append(f"{source}: selling.discount_limit must be between 0 (a manager "
                        "approves every discount) and 10000 basis points (100 %)")
    if values.get("open_price_limit", 0) < 0:
        problems.append(f"{source}: selling.open_price_limit must be 0 or more (cents)")
    return problems


def _fiscal_problems(values: dict[str, Any], source: str) -> list[str]:
    """Check the store's legal identity and [fiscal]; a store starts from no identity (a
    demo store from the demo's)."""
    problems = []
    for key in ("store_legal_name", "store_siret", "store_vat_number"):
        given = values.get(key, getattr(Config, key) if values.get("demo") else "")
        values[key] = given.strip()
    siret, vat = values["store_siret"], values["store_vat_number"].replace(" ", "").upper()
    values["store_siret"] = siret = siret.replace(" ", "")
    values["store_vat_number"] = vat
    if siret and not siret_is_valid(siret):
        problems.append(f"{source}: store.siret must be the 14 digits of the store's SIRET, "
                        "its last one the Luhn key (as on the Kbis or avis de situation INSEE)")
    problem = vat_number_problem(vat, siret)
    if problem:
        problems.append(f"{source}: store.vat_number {problem}")
    if not 0 <= values.get("fiscal_day_cutoff", 4) <= 12:
        problems.append(f"{source}: fiscal.day_cutoff must be an hour between 0 (midnight) "
                        "and 12: sales before it count in the day before")
    if not _is_month_start(values.get("fiscal_year_start", "01-01")):
        problems.append(f"{source}: fiscal.year_start must be the first day of a month, "
                        "\"MM-01\", like \"01-01\" or \"07-01\"")
    return problems


def luhn_is_valid(digits: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char) * (2 if position % 2 else 1)
        total += value - 9 if value > 9 else value
    return total % 10 == 0


def siret_is_valid(siret: str) -> bool:
    """14 digits with their Luhn key (La Poste's establishments: the digits' sum by 5)."""
    if len(siret) != 14 or not siret.isascii() or not siret.isdigit():
        return False
    if siret.startswith("356000000"):
        return sum(int(char) for char in siret) % 5 == 0
    return luhn_is_valid(siret)


def vat_number_problem(vat: str, siret: str) -> str | None:
    """What is wrong with a French VAT number: FR, a 2-character key, the 9-digit SIREN."""
    if not vat:
        return None
    if not re.fullmatch(r"FR[0-9A-HJ-NP-Z]{2}[0-9]{9}", vat):
        return "must be FR followed by 11 characters: a 2-character key and the SIREN, " \
               "like FR67832147854"
    key, siren = vat[2:4], vat[4:]
    if key.isdigit() and int(key) != (12 + 3 * (int(siren) % 97)) % 97:
        expected = (12 + 3 * (int(siren) % 97)) % 97
        return f"has the key {key}, but the SIREN {siren} gives {expected:02d}"
    if siret and siret[:9] != siren:
        return f"names the SIREN {siren}, but store.siret starts with {siret[:9]}"
    return None


def _is_month_start(text: Any) -> bool:
    """"MM-01": a fiscal year starts on the first day of a month (its months sum to it)."""
    match = re.fullmatch(r"(\d{2})-01", text) if isinstance(text, str) else None
    return match is not None and 1 <= int(match[1]) <= 12


def _public_certificate_problems(values: dict[str, Any], source: str) -> list[str]:
    """A public certificate comes with its key, both readable, and only over HTTPS."""
    given = [key for key in ("public_cert_file", "public_key_file") if key in values]
    if not given:
        return []
    if len(given) == 1:
        return [f"{source}: server.public_cert_file and server.public_key_file go together"]
    problems = [f"{source}: server.{key} {values[key]} does not exist"
                for key in given if not values[key].is_file()]
    if values.get("tls") == "off":
        problems.append(f"{source}: server.public_cert_file is for HTTPS, but server.tls "
                        "is off")
    return problems


def _use_credentials(values: dict[str, Any]) -> None:
    """Under systemd, a secret it handed us (LoadCredential=) replaces the configured file."""
    for setting, target in SECRET_FILES.items():
        copy = credential(setting)
        if copy is not None:
            values[target] = copy


def _headoffice_problems(values: dict[str, Any], source: str, base: Path) -> list[str]:
    """Check the [headoffice] settings; resolve its files against the config's folder."""
    from edge.sync.schedule import parse_window, url_problem

    problems = []
    for key in ("headoffice_token_file", "headoffice_ca_file"):
        if key in values:
            if not (key == "headoffice_token_file" and credential("headoffice.token_file")):
                values[key] = base / values[key]
            if not values[key].is_file():
                problems.append(f"{source}: {key.replace('_', '.', 1)} {values[key]} "
                                "does not exist")
    url = values.get("headoffice_url")
    if url is not None:
        values["headoffice_url"] = url = url.rstrip("/")
        problem = url_problem(url)
        if problem:
            problems.append(f"{source}: headoffice.url {problem}")
        if "headoffice_token" not in values and "headoffice_token_file" not in values:
            problems.append(f"{source}: headoffice.token_file is required with headoffice.url")
    try:
        parse_window(values.get("headoffice_nightly_window", "02:00-05:00"))
    except ValueError as error:
        problems.append(f"{source}: headoffice.nightly_window: {error}")
    for key, low in (("batch_events", 1), ("batch_bytes", 1024), ("timeout_seconds", 1),
                     ("retry_max_seconds", 1), ("pull_interval_seconds", 1)):
        if values.get(f"headoffice_{key}", low) < low:
            problems.append(f"{source}: headoffice.{key} must be at least {low}")
    return problems


def parse_printers(
    raw: Any, source: str, base: Path
) -> tuple[list[PrinterConfig], list[str]]:
    """The [[printers]] tables, and what is wrong with them in plain words."""
    from edge.devices.escpos import CODE_PAGES

    if not isinstance(raw, list):
        return [], [f"{source}: printers must be [[printers]] tables"]
    printers: list[PrinterConfig] = []
    problems: list[str] = []
    for number, printer in enumerate(raw, start=1):
        where = f"{source}: printers #{number}"
        unknown = set(printer) - set(PRINTER_SETTINGS)
        if unknown:
            problems.append(f"{where}: unknown setting(s) {', '.join(sorted(unknown))}")
        if not isinstance(printer.get("name"), str):
            problems.append(f"{where}: name is required")
            continue
        where = f"{source}: printer {printer['name']!r}"
        wrong_types = [
            f"{where}: {key} must be {TYPE_NAMES[kind]}"
            for key, kind in PRINTER_SETTINGS.items()
            if key in printer and (not isinstance(printer[key], kind)
                                   or isinstance(printer[key], bool))
        ]
        if wrong_types:
            problems += wrong_types
            continue
        kind = printer.get("kind", "file")
        if kind not in PRINTER_KINDS:
            problems.append(f"{where}: kind must be one of {', '.join(PRINTER_KINDS)}")
        paper = printer.get("paper", "80mm")
        if paper not in PAPER_WIDTHS:
            problems.append(f"{where}: paper must be 80mm or 58mm")
        width = printer.get("width", PAPER_WIDTHS.get(paper, 48))
        if width not in (32, 42, 48):
            problems.append(f"{where}: width must be 48 (80 mm), 42 or 32 (58 mm)")
        usb = printer.get("usb")
        if usb is not None and not _is_usb_id(usb):
            problems.append(f"{where}: usb must be vendor:product in hex, like \"04b8:0202\" "
                            "(`edge devices` lists them)")
        if kind == "network" and not printer.get("host"):
            problems.append(f"{where}: a network printer needs host (its address)")
        if not 1 <= printer.get("port", 9100) <= 65535:
            problems.append(f"{where}: port must be between 1 and 65535")
        code_page = printer.get("code_page", "pc858")
        if code_page not in CODE_PAGES:
            problems.append(f"{where}: code_page must be one of {', '.join(CODE_PAGES)}")
        if printer.get("drawer_pin", 2) not in (2, 5):
            problems.append(f"{where}: drawer_pin must be 2 or 5")
        path = printer.get("path")
        printers.append(PrinterConfig(
            printer["name"], kind, base / path if isinstance(path, str) else None, width,
            paper, usb.lower() if isinstance(usb, str) else None, printer.get("serial"),
            printer.get("host"), printer.get("port", 9100), code_page,
            printer.get("drawer_pin", 2), tuple(str(till) for till in printer.get("tills", [])),
        ))
    names = [printer.name for printer in printers]
    problems += [f"{source}: two printers are named {name!r}"
                 for name in sorted({n for n in names if names.count(n) > 1})]
    tills = [till for printer in printers for till in printer.tills]
    problems += [f"{source}: till {till} is listed by two printers"
                 for till in sorted({t for t in tills if tills.count(t) > 1})]
    return printers, problems


def parse_terminals(
    raw: Any, source: str, printer_names: Collection[str] = ()
) -> tuple[list[TerminalConfig], list[str]]:
    """The [[terminals]] tables, and what is wrong with them in plain words."""
    if not isinstance(raw, list):
        return [], [f"{source}: terminals must be [[terminals]] tables"]
    terminals: list[TerminalConfig] = []
    problems: list[str] = []
    for number, terminal in enumerate(raw, start=1):
        where = f"{source}: terminals #{number}"
        if not isinstance(terminal, dict):
            problems.append(f"{where} must be a [[terminals]] table")
            continue
        unknown = set(terminal) - set(TERMINAL_SETTINGS)
        if unknown:
            problems.append(f"{where}: unknown setting(s) {', '.join(sorted(unknown))}")
        name = terminal.get("name")
        if not isinstance(name, str) or not TERMINAL_NAME.fullmatch(name):
            given = f"name {name!r} is not usable" if isinstance(name, str) else "name is required"
            problems.append(f"{where}: {given}: 1 to 32 lower-case letters, digits and dashes, "
                            "like \"tpe-1\"")
            continue
        where = f"{source}: terminal {name!r}"
        wrong_types = [
            f"{where}: {key} must be "
            f"{'a number of seconds' if isinstance(kind, tuple) else TYPE_NAMES[kind]}"
            for key, kind in TERMINAL_SETTINGS.items()
            if key in terminal and (not isinstance(terminal[key], kind)
                                    or isinstance(terminal[key], bool))
        ]
        if wrong_types:
            problems += wrong_types
            continue
        host = terminal.get("host", "").strip().strip("[]")
        if not host or any(c.isspace() or c in "/@" for c in host):
            problems.append(f"{where}: host is required: the terminal's address on the shop "
                            "network, like \"192.168.1.60\" (its IP settings show it)")
        if not 1 <= terminal.get("port", 8888) <= 65535:
            problems.append(f"{where}: port must be between 1 and 65535 (Caisse-AP's is 8888)")
        low, high = CONNECT_TIMEOUT_RANGE
        connect = terminal.get("connect_timeout", 5)
        if not low <= connect <= high:
            problems.append(f"{where}: connect_timeout must be between {low} and {high} seconds")
        low, high = PAYMENT_TIMEOUT_RANGE
        overall = terminal.get("timeout", 180)
        if not low <= overall <= high:
            problems.append(f"{where}: timeout must be between {low} and {high} seconds "
                            "(a payment with a PIN can take 3 minutes)")
        tills = terminal.get("tills", [])
        if not all(isinstance(till, str) and till.strip() for till in tills):
            problems.append(f"{where}: tills must be a list of till codes, like [\"T01\"]")
        if name in printer_names:
            problems.append(f"{where}: a printer has that name too: give the terminal "
                            "another (`edge devices test NAME` names one device)")
        terminals.append(TerminalConfig(
            name, host, terminal.get("port", 8888),
            tuple(str(till) for till in tills), float(connect), float(overall)))
    names = [terminal.name for terminal in terminals]
    problems += [f"{source}: two terminals are named {name!r}"
                 for name in sorted({n for n in names if names.count(n) > 1})]
    tills = [till.casefold() for terminal in terminals for till in terminal.tills]
    problems += [f"{source}: till {till} is listed by two terminals"
                 for till in sorted({t for t in tills if tills.count(t) > 1})]
    return terminals, problems


def _is_usb_id(text: str) -> bool:
    parts = text.split(":")
    return len(parts) == 2 and all(
        len(part) == 4 and all(c in "0123456789abcdefABCDEF" for c in part) for part in parts
    )


def file_problems(setting: str, path: Path, kind: str) -> tuple[list[str], list[str]]:
    """What is wrong with a file the config names, for the user running this: (errors,
    warnings), each naming the file, the real error and what to do.

    A secret must be readable by this user and by nobody else but its owner
    (group or world access is an error for `edge check`, a warning for `edge
    serve`, as tests and old installs have such files).
    """
    user = user_name(os.geteuid())
    try:
        info = path.stat()
    except FileNotFoundError:
        if kind == "folder":
            return [], []  # made at start (the unit's StateDirectory= makes /var/lib/edge)
        return [f"{setting} {path} does not exist"], []
    except OSError as error:
        return [f"{setting} {path}: {error.strerror} (user {user})"], []
    mode = stat.S_IMODE(info.st_mode)
    owner = f"owner {user_name(info.st_uid)}, mode {mode:04o}"
    if kind == "folder":
        if not stat.S_ISDIR(info.st_mode):
            return [f"{setting} {path} is not a folder"], []
        if not os.access(path, os.R_OK | os.W_OK | os.X_OK):
            return [f"{setting} {path} is not writable by user {user} ({owner}): "
                    f"chown it to the user the node runs as"], []
        return [], []
    if not stat.S_ISREG(info.st_mode):
        return [f"{setting} {path} is not a file"], []
    try:
        with path.open("rb") as file:
            file.read(1)
    except OSError as error:
        hint = (f"; under systemd, pass it with LoadCredential={credential_id(setting)}:{path}"
                if kind == "secret" else "")
        return [f"{setting} {path} cannot be read by user {user} ({owner}): "
                f"{error.strerror}{hint}"], []
    if kind == "secret" and mode & 0o077:
        return [], [f"{setting} {path} is readable by others than its owner ({owner}): "
                    f"chmod 600 {path}"]
    return [], []


def is_loopback_host(host: str) -> bool:
    """Is `host` (a listening address or name) reachable from this machine only?"""
    import ipaddress

    if host in ("localhost", "ip6-localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def user_name(uid: int) -> str:
    import pwd

    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)
