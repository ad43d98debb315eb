"""Store configuration: a TOML file for real stores, built-in defaults for the demo.

`edge serve` with no config runs the demo store. Every setting is listed in
docs/operations.md (a test keeps that list complete).
"""

from __future__ import annotations

import tomllib
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
    name: str
    kind: str = "file"
    path: Path | None = None
    width: int = 48


@dataclass(frozen=True)
class Config:
    store_id: str = "demo-boulangerie"
    store_name: str = "Boulangerie du Marché"
    store_address: tuple[str, ...] = ("12 place du Marché", "75011 Paris")
    host: str = "127.0.0.1"
    port: int = 8080
    data_dir: Path = Path("edge-data")
    demo: bool = True
    advertise: bool = True
    url: str | None = None
    store_key_file: Path | None = None
    peer_urls: tuple[str, ...] = ()
    printers: tuple[PrinterConfig, ...] = field(default_factory=tuple)

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
        if host in ("0.0.0.0", ""):
            from edge.discovery import addresses_for

            host = addresses_for(host)[0]
        return f"http://{host}:{self.port}"

    def all_printers(self) -> tuple[PrinterConfig, ...]:
        """Configured printers, or one file printer in the data folder if none is."""
        if self.printers:
            return self.printers
        return (PrinterConfig(name="receipt", kind="file", path=self.data_dir / "printer"),)


# Every key a config file may hold: section -> key -> (type, Config field).
SETTINGS: dict[str, dict[str, tuple[type, str]]] = {
    "store": {"id": (str, "store_id"), "name": (str, "store_name"),
              "address": (list, "store_address"), "key_file": (str, "store_key_file"),
              "demo": (bool, "demo")},
    "server": {"host": (str, "host"), "port": (int, "port"), "data": (str, "data_dir"),
               "advertise": (bool, "advertise"), "url": (str, "url")},
    "peers": {"urls": (list, "peer_urls")},
}
TYPE_NAMES = {str: "text", int: "a whole number", bool: "true or false", list: "a list"}
PRINTER_SETTINGS: dict[str, type] = {"name": str, "kind": str, "path": str, "width": int}
PRINTER_KINDS = ("file",)


def load_config(path: Path) -> Config:
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError([f"{path}: no such file"]) from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError([f"{path}: not valid TOML: {error}"]) from None
    return parse_config(raw, str(path), base=path.parent)


def parse_config(raw: dict[str, Any], source: str, base: Path = Path(".")) -> Config:
    problems: list[str] = []
    values: dict[str, Any] = {"demo": False}
    for section, content in raw.items():
        if section == "printers":
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
    if "store_id" not in values:
        problems.append(f"{source}: store.id is required (the same on every node of the store)")
    if "data_dir" in values:
        values["data_dir"] = base / values["data_dir"]
    if "store_key_file" in values:
        values["store_key_file"] = base / values["store_key_file"]
        if not values["store_key_file"].is_file():
            problems.append(f"{source}: store.key_file {values['store_key_file']} does not exist")
    if "peer_urls" in values:
        values["peer_urls"] = tuple(str(url).rstrip("/") for url in values["peer_urls"])
        bad = [url for url in values["peer_urls"] if not url.startswith(("http://", "https://"))]
        if bad:
            problems.append(f"{source}: peers.urls must be http:// or https:// URLs: {bad}")
    if "store_address" in values:
        values["store_address"] = tuple(str(line) for line in values["store_address"])
    printers = []
    for number, printer in enumerate(raw.get("printers", []), start=1):
        where = f"{source}: printers #{number}"
        unknown = set(printer) - set(PRINTER_SETTINGS)
        if unknown:
            problems.append(f"{where}: unknown setting(s) {', '.join(sorted(unknown))}")
        if not isinstance(printer.get("name"), str):
            problems.append(f"{where}: name is required")
            continue
        kind = printer.get("kind", "file")
        if kind not in PRINTER_KINDS:
            problems.append(f"{where}: kind must be one of {', '.join(PRINTER_KINDS)}")
        width = printer.get("width", 48)
        if width not in (32, 42, 48):
            problems.append(f"{where}: width must be 48 (80 mm), 42 or 32 (58 mm)")
        path = printer.get("path")
        printers.append(
            PrinterConfig(printer["name"], kind, base / path if path else None, width)
        )
    if problems:
        raise ConfigError(problems)
    values["printers"] = tuple(printers)
    return Config(**values)
