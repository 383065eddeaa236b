"""The bot's own protocol layer (info client, WS session, parsers) talks to the simulator.

A cross-check in the other direction from the SDK tests: what the sim emits must parse with the
client code the bot runs against the real exchange.
"""

from __future__ import annotations

from decimal import Decimal

import trio

from hip3.hyperliquid.events import ActionOk, Bbo, Filled, Resting, UserFills
from hip3.hyperliquid.info import open_info_client
from hip3.hyperliquid.signing import address_of, sign_l1_action
from hip3.hyperliquid.wire import order_action, order_wire
from hip3.hyperliquid.ws import open_ws_session
from hip3.sim.accounts import create_throwaway_account
from hip3.sim.server import Sim

from .helpers import TSLA


def _signed(sim: Sim, key: str, action: dict, nonce: int) -> dict:
    return {
        "action": action,
        "nonce": nonce,
        "signature": sign_l1_action(key, action, nonce, is_mainnet=False),
    }


async def test_info_client_against_sim(sim: Sim) -> None:
    account = create_throwaway_account(sim.engine)
    assert address_of(account.agent_key) == account.agent
    async with open_info_client(sim.info_url, exchange_url=sim.exchange_url, timeout=5) as info:
        specs = await info.discover_markets("xyz", ["*"])
        assert set(specs) == {"TSLA", "NVDA", "GOLD", "SILVER", "PLATINUM", "HOOD"}
        assert specs["TSLA"].key.asset == TSLA and specs["TSLA"].sz_decimals == 3
        _meta, ctxs = await info.meta_and_asset_ctxs("xyz")
        assert ctxs[0].oracle_px == Decimal("100.1")
        body = _signed(
            sim,
            account.agent_key,
            order_action([order_wire(TSLA, True, "100.2", "1.2", False, "Ioc")]),
            sim.engine.now_ms(),
        )
        result = await info.post_exchange(body)
        assert isinstance(result, ActionOk) and isinstance(result.statuses[0], Filled)
        assert result.statuses[0].total_sz == Decimal("1.2")
        state = await info.clearinghouse_state(account.master, "xyz")
        fills = await info.user_fills_by_time(account.master, 0)
        assert len(fills) == 2 and fills[1].start_position == Decimal("0.5")
    assert state is not None


async def test_ws_session_against_sim(sim: Sim) -> None:
    account = create_throwaway_account(sim.engine)
    async with open_ws_session(sim.ws_url, post_timeout=5) as ws:
        with trio.fail_after(5):
            await ws.wait_connected()
            await ws.subscribe({"type": "bbo", "coin": "xyz:NVDA"})
            await ws.subscribe({"type": "userFills", "user": account.master})
            body = _signed(
                sim,
                account.agent_key,
                order_action([order_wire(TSLA, True, "99", "0.2", False, "Gtc")]),
                sim.engine.now_ms(),
            )
            result = await ws.post_action(body)
            assert isinstance(result, ActionOk) and isinstance(result.statuses[0], Resting)
            body = _signed(
                sim,
                account.agent_key,
                order_action([order_wire(TSLA, True, "100.1", "0.2", False, "Ioc")]),
                sim.engine.now_ms() + 1,
            )
            assert isinstance(await ws.post_action(body), ActionOk)
            seen_bbo = seen_stream_fill = False
            async for event in ws.events:
                if isinstance(event, Bbo):
                    seen_bbo = True
                if isinstance(event, UserFills) and not event.is_snapshot and event.fills:
                    assert event.fills[0].sz == Decimal("0.2")
                    seen_stream_fill = True
                if seen_bbo and seen_stream_fill:
                    break
