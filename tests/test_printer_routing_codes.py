"""`printers.tills` names tills by the codes a store sees: `T01-8dfc74`, or just `T01`.

Till codes carry the node that paired them; a config written with the
number alone (as before, or as a cashier reads it aloud) still sends that
till to its printer when one paired till has that number, and `edge check`
says in words which entries name no paired till.
"""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

from conftest import EDGE, ROOT, node_of
from printing import all_done, eventually, printing_node, sell

from edge.config import PrinterConfig


def printers(tmp_path: Path, bar_tills: tuple[str, ...]) -> list[PrinterConfig]:
    return [PrinterConfig("caisse", path=tmp_path / "caisse"),
            PrinterConfig("bar", path=tmp_path / "bar", tills=bar_tills)]


async def printer_of_sale(node, sale_id: str) -> str:
    row = await node_of(node).journal.read_one(
        "SELECT printer FROM print_jobs WHERE sale_id = ?", (sale_id,))
    return row["printer"]


async def test_a_till_listed_by_its_number_alone_prints_on_that_printer(tmp_path: Path) -> None:
    async with printing_node(tmp_path / "data", printers(tmp_path, ("T01",))) as node, \
            node.till() as till:
        assert till.token  # paired: T01-<node>
        status = await till.call("printer/status")
        assert status["printer"] == "bar"
        sale = await sell(till)
        await eventually(all_done(node, 1))
        assert await printer_of_sale(node, sale["id"]) == "bar"


async def test_a_till_listed_by_its_full_code_in_any_case(tmp_path: Path) -> None:
    async with printing_node(tmp_path / "data", []) as probe:
        here = node_of(probe).node_id
    async with printing_node(tmp_path / "data", printers(tmp_path, (f"t01-{here.upper()}",))) \
            as node, node.till() as till:
        assert (await till.call("printer/status"))["printer"] == "bar"


def test_a_number_two_tills_share_names_the_one_paired_first() -> None:
    """A node that had not caught up pairs another T01: the established T01 keeps its
    printer (it is not left with none, receipts and drawer gone), and check says so."""
    from edge.devices.till_routing import AnnouncedTills, printer_for, tills_problems

    announced = [AnnouncedTills("n1", "caisse", ()), AnnouncedTills("n1", "bar", ("T01",)),
                 AnnouncedTills("n2", "terrasse", ("T02-n2",))]
    cut_apart = ["T01-n1", "T01-n2", "T02-n2"]  # in the order they were paired
    assert printer_for("T01-n1", announced, cut_apart, "n1").name == "bar"
    assert printer_for("T01-n2", announced, cut_apart, "n1").name == "caisse"
    assert printer_for("T01-n1", announced, ["T01-n1", "T02-n2"], "n1").name == "bar"
    assert printer_for("T02-n2", announced, cut_apart, "n1").name == "terrasse"
    # A till paired before codes carried their node keeps its plain code: named exactly.
    assert printer_for("T01", announced, ["T01", "T01-n2"], "n1").name == "bar"
    assert printer_for("T01-n2", announced, ["T01", "T01-n2"], "n1").name == "caisse"
    problems = tills_problems([("bar", ["T01", "T07"])], cut_apart)
    assert any("'T01'" in p and "T01-n1 and T01-n2" in p and "names T01-n1, paired first" in p
               for p in problems)
    assert any("'T07'" in p and "no paired till has that code" in p for p in problems)


async def test_check_warns_of_a_tills_entry_that_names_no_paired_till(tmp_path: Path) -> None:
    data = tmp_path / "data"
    async with printing_node(data, []) as node:
        await node.pair()
        first = f"T01-{node_of(node).node_id}"
    config = tmp_path / "edge.toml"
    config.write_text(
        '[store]\nid = "demo-boulangerie"\n[server]\ndata = "data"\n'
        f'[[printers]]\nname = "caisse"\npath = "caisse"\n'
        f'[[printers]]\nname = "bar"\npath = "bar"\ntills = ["T01", "T07"]\n'
        f'[[printers]]\nname = "terrasse"\npath = "terrasse"\ntills = ["{first}"]\n')
    checked = await asyncio.to_thread(subprocess.run, [*EDGE, "check", "--config", str(config)],
                                      capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert checked.returncode == 0, checked.stderr
    warnings = [line for line in checked.stdout.splitlines() if "Warning" in line]
    assert any("'bar' lists till 'T07'" in w and first in w for w in warnings), checked.stdout
    assert any(f"till {first} is listed by 'bar' (as T01) and 'terrasse'" in w
               for w in warnings), checked.stdout
    assert len(warnings) == 2, checked.stdout
