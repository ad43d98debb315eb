"""The docs stay true: every command, error code, setting and metric is documented."""

from __future__ import annotations

import re

import pytest
from conftest import ROOT, NodeUnderTest

from edge import messages
from edge.api.websocket_api import COMMANDS
from edge.cli import build_parser
from edge.config import PRINTER_SETTINGS, SETTINGS

PROTOCOL = (ROOT / "docs" / "protocol.md").read_text()
OPERATIONS = (ROOT / "docs" / "operations.md").read_text()


def test_every_till_command_has_its_section() -> None:
    documented = set(re.findall(r"^### `([^`]+)`", PROTOCOL, re.MULTILINE))
    assert set(COMMANDS) - documented == set()
    assert documented - set(COMMANDS) == set(), "documented commands that do not exist"


def test_every_error_code_is_documented() -> None:
    codes = {value for name, value in vars(messages).items()
             if name.isupper() and isinstance(value, str)}
    missing = {code for code in codes if f"`{code}`" not in PROTOCOL}
    assert missing == set()


def test_every_setting_is_documented() -> None:
    settings = [f"{section}.{key}" for section, keys in SETTINGS.items() for key in keys]
    settings += [f"printers.{key}" for key in PRINTER_SETTINGS]
    assert [s for s in settings if f"`{s}`" not in OPERATIONS] == []


def test_every_cli_command_and_option_is_documented() -> None:
    parser = build_parser()
    subparsers = next(a for a in parser._actions if a.dest == "command")
    for name, sub in subparsers.choices.items():
        row = next((line for line in OPERATIONS.splitlines()
                    if line.startswith(f"| `edge {name}`")), None)
        assert row, f"edge {name} is not in docs/operations.md"
        for action in sub._actions:
            for option in action.option_strings:
                if option.startswith("--") and option != "--help":
                    assert f"`{option}`" in row, f"edge {name} {option} is not documented"


@pytest.mark.parametrize("path", ["README.md", "docs/architecture.md", "docs/operations.md"])
def test_relative_links_point_at_files(path: str) -> None:
    text = (ROOT / path).read_text()
    for target in re.findall(r"\]\(([^)#:]+)\)", text):
        assert (ROOT / path).parent.joinpath(target).exists(), f"{path} links to {target}"


async def test_every_metric_is_documented(node: NodeUnderTest) -> None:
    async with node.session.get(f"{node.url}/metrics") as response:
        text = await response.text()
    names = set(re.findall(r"^# TYPE (\w+)", text, re.MULTILINE))
    assert names and {n for n in names if f"`{n}`" not in OPERATIONS} == set()
