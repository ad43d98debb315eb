"""Refunds across nodes: a refund resent through another node is one refund; two nodes cut
apart that each refund a receipt's last unit both keep theirs (the money went out), and once
they meet every node shows the excess: `edge status` in words, the manager's till in a list."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
from pathlib import Path

from conftest import EDGE, ROOT, EdgeProcess, free_port, start_all, store_node_config
from test_peers import BARCODES, Partition, converged, pair, wait_for_till

from edge.till_client import TillClient


def refund_rows(node: EdgeProcess) -> list[tuple]:
    db = sqlite3.connect(f"file:{node.data_dir / 'edge.sqlite3'}?mode=ro", uri=True)
    try:
        return db.execute("SELECT * FROM refund_lines ORDER BY refund_id, position").fetchall()
    finally:
        db.close()


async def test_a_double_refund_made_on_nodes_cut_apart_shows_once_they_meet(
    tmp_path: Path,
) -> None:
    ports = [free_port(), free_port()]
    async with Partition(ports[1]) as to_b, Partition(ports[0]) as to_a:
        nodes, configs = [], []
        for number, (port, proxy) in enumerate(zip(ports, (to_b, to_a), strict=True)):
            configs.append(store_node_config(tmp_path / f"n{number}", [proxy.url]))
            nodes.append(EdgeProcess(tmp_path / f"n{number}" / "data", port,
                                     ["--config", str(configs[-1])]))
        start_all(*nodes)
        try:
            a, b = nodes
            token_left, token_right = await pair(a, "gauche"), await pair(a, "droite")
            await wait_for_till(b, token_right)
            async with TillClient([a.url], token_left, "alice", "1234") as left, \
                    TillClient([b.url], token_right, "chloe", "2468") as right:
                await left.add(BARCODES[0], quantity=2)
                sale = await left.pay([{"method": "cash", "amount": 300}])
                line = sale["lines"][0]["id"]
                first = await left.call("sale/refund", refund_id="r1", sale_id=sale["id"],
                                        lines=[{"line_id": line, "quantity": 1}],
                                        reason="rassis")
                await converged(nodes)
                # The till never heard back from A and sends it again through B: one refund.
                async with TillClient([b.url], token_left, "alice", "1234") as moved:
                    again = await moved.call("sale/refund", refund_id="r1", sale_id=sale["id"],
                                             lines=[{"line_id": line, "quantity": 1}],
                                             reason="rassis")
                    kept = {key: first[key] for key in ("receipt_no", "cashier", "time",
                                                         "reason", "tenders", "totals")}
                    resent = await moved.call("sale/record_refund", offline=False, refund={
                        **kept, "id": "r1", "sale_id": sale["id"],
                        "lines": [{k: v for k, v in ln.items() if k != "total"}
                                  for ln in first["lines"]]})
                assert (again["id"], again["hash"]) == (first["id"], first["hash"])
                assert resent == again
                assert len(refund_rows(b)) == 1

                to_a.cut()
                to_b.cut()
                # Cut apart, each side refunds the one baguette left of the receipt.
                await left.call("sale/refund", refund_id="r2", sale_id=sale["id"],
                                lines=[{"line_id": line, "quantity": 1}], reason="rassis")
                found = await right.call("sale/find_for_refund",
                                         receipt_number=sale["receipt_number"])
                assert found["sale"]["lines"][0]["refundable"] == 1
                await right.call("sale/refund", refund_id="r3", sale_id=sale["id"],
                                 lines=[{"line_id": line, "quantity": 1}], reason="rassis")
                to_a.heal()
                to_b.heal()
                await converged(nodes)
            assert refund_rows(a) == refund_rows(b) and len(refund_rows(a)) == 3
            for node in nodes:
                async with TillClient([node.url], token_left, "bruno", "567890") as manager:
                    (conflict,) = (await manager.call("refunds/conflicts"))["conflicts"]
                    refunded = await manager.call("sale/find_for_refund",
                                                  receipt_number=sale["receipt_number"])
                assert (conflict["sold"], conflict["refunded"], conflict["excess"]) == (2, 3, 1)
                tills = [refund["till"] for refund in conflict["refunds"]]
                assert tills.count(sale["till"]) == 2 and len(set(tills)) == 2  # and right's
                assert refunded["sale"]["lines"][0]["refundable"] == 0
                status = await asyncio.to_thread(
                    subprocess.run, [*EDGE, "status", "--data", str(node.data_dir)],
                    capture_output=True, text=True, timeout=60, cwd=ROOT)
                assert f"receipt {sale['receipt_number']}  refunded beyond what it sold: " \
                    "Baguette tradition sold 2, refunded 3" in status.stdout, status.stdout
        finally:
            for node in nodes:
                node.stop()

