"""/healthz, open to anyone on the shop Wi-Fi, tells nothing about each till.

Each till's name, code (with the node that paired it), when it was paired,
last seen, whether it is connected now and whether it was revoked: a map of
which till to steal a token from (an idle one, not missed) and when to
strike, for anyone who can reach the node. It also costs a scan of every
sale head office has not acknowledged (json_extract over the backlog), run
for each anonymous request. Store IT's list belongs behind the admin token
(`edge tills list` has it already); /healthz can keep counts.
"""

from __future__ import annotations

from conftest import NodeUnderTest


async def test_healthz_tells_an_anonymous_client_nothing_about_each_till(
    node: NodeUnderTest,
) -> None:
    await node.pair("Caisse de Marie")
    async with node.session.get(f"{node.url}/healthz") as response:
        assert response.status == 200
        text = await response.text()
    assert "Caisse de Marie" not in text
    assert "last_seen" not in text
