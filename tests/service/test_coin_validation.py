"""Configured coins are checked against meta(dex) before anything is subscribed (exit 2, coin named).

One unknown or wrongly cased coin makes the real exchange close the whole socket (hyperliquid.md
§11), so it must be a startup error in observation and in trading mode. Against hip3.sim on 127.0.0.1.
"""

from __future__ import annotations

import logging
import secrets
from pathlib import Path
from typing import Any

import attrs
import pytest
import trio

from hip3.hyperliquid import signing
from hip3.service.app import EXIT_REFUSED, run_bot
from hip3.service.config import config_from_mapping
from hip3.service.keys import SecretKey
from hip3.sim import load_sim_config, open_sim


def _config(sim: Any, tmp_path: Path, mode: str, coins: list[str], master: str | None) -> Any:
    raw: dict[str, Any] = {
        "mode": mode,
        "network": {
            "name": "testnet",
            "info_url": sim.info_url,
            "exchange_url": sim.exchange_url,
            "ws_url": sim.ws_url,
        },
        "markets": {"dex": "xyz", "coins": coins},
        "hard_stop": {"state_file": str(tmp_path / "hard_stop.json")},
        "journal": {"path": ""},
    }
    if master is not None:
        raw["account"] = {"address": master}
    return config_from_mapping(raw)


@pytest.mark.parametrize("mode", ["observation", "trading"])
@pytest.mark.parametrize(
    ("coins", "named"),
    [
        (["TSLA", "NOPE"], "NOPE not listed in dex 'xyz'"),
        (["Tsla"], "Tsla not listed in dex 'xyz' (did you mean 'TSLA'?"),
    ],
)
async def test_unknown_or_wrongly_cased_coin_refuses_start_before_subscribing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, mode: str, coins: list[str], named: str
) -> None:
    master = signing.address_of("0x" + secrets.token_hex(32))
    agent = SecretKey("0x" + secrets.token_hex(32), source="throwaway test key")
    caplog.set_level(logging.INFO)
    with trio.fail_after(10):
        async with open_sim(attrs.evolve(load_sim_config(None), is_mainnet=False)) as sim:
            sim.engine.fund(master, 1000)
            sim.engine.approve_agent(master, agent.address)
            cfg = _config(sim, tmp_path, mode, coins, master if mode == "trading" else None)
            code = await run_bot(cfg, key=agent, handle_signals=False)
    assert code == EXIT_REFUSED == 2
    assert named in caplog.text and "markets.coins" in caplog.text
    # Refused before the WebSocket was opened, so nothing was subscribed.
    assert "connected" not in caplog.text
