"""Per-market taker fees come from the exchange: userFees × each asset's HIP-3 multiplier, at startup
and again when the periodic market check reads a changed meta (hip3.sim on 127.0.0.1)."""

from __future__ import annotations

import functools
import logging
import secrets
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import trio

from hip3.hyperliquid.signing import address_of
from hip3.service.app import Bot, run_bot
from hip3.service.config import config_from_mapping
from hip3.sim import load_sim_config, open_sim

D = Decimal


def _config(sim: Any, tmp_path: Path, **extra: Any) -> Any:
    raw: dict[str, Any] = {
        "mode": "observation",
        "network": {
            "name": "testnet",
            "info_url": sim.info_url,
            "exchange_url": sim.exchange_url,
            "ws_url": sim.ws_url,
        },
        "markets": {"dex": "xyz", "coins": ["TSLA", "GOLD", "HOOD"]},
        "hard_stop": {"state_file": str(tmp_path / "hard_stop.json")},
        "journal": {"path": ""},
        **extra,
    }
    return config_from_mapping(raw)


async def test_fees_per_market_from_user_fees_and_meta_then_on_change(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    master = address_of("0x" + secrets.token_hex(32))
    with trio.fail_after(15):
        async with open_sim(load_sim_config(None)) as sim:
            sim.engine.fund(master, 1000)
            cfg = _config(
                sim, tmp_path, account={"address": master}, gates={"param_check_interval_secs": 0.5}
            )
            async with trio.open_nursery() as nursery:
                bot: Bot = await nursery.start(functools.partial(run_bot, cfg, handle_signals=False))
                fees = {m.coin: bot.scanner.fees.taker_bps(m) for m in bot.specs}
                # Shipped simulator: TSLA growth mode at scale 1, GOLD normal, HOOD scale 0.5 (tier 0).
                assert fees == {"TSLA": D("0.9"), "GOLD": D(9), "HOOD": D("6.75")}
                assert "taker fee xyz:TSLA: 0.9 bps (base 4.5 bps, scale 1, growth mode" in caplog.text
                assert f"(userFees of {master})" in caplog.text
                # The deployer takes TSLA out of growth mode: the next market check sees it and logs it.
                sim.engine.market("TSLA").growth_mode = False
                tsla = bot.markets["xyz:TSLA"]
                with trio.fail_after(5):
                    while bot.scanner.fees.taker_bps(tsla) != D(9):
                        await trio.sleep(0.1)
                assert "taker fee xyz:TSLA: 0.9 bps" in caplog.text and "→ 9 bps" in caplog.text
                bot.request_stop()


async def test_observation_without_an_account_uses_tier_0_and_the_config_overrides(tmp_path: Path) -> None:
    with trio.fail_after(15):
        async with open_sim(load_sim_config(None)) as sim:
            cfg = _config(
                sim,
                tmp_path,
                detector={"taker_fee_bps": 3},
                markets={"dex": "xyz", "coins": ["TSLA", "GOLD"], "taker_fee_bps": {"GOLD": 5}},
            )
            async with trio.open_nursery() as nursery:
                bot: Bot = await nursery.start(functools.partial(run_bot, cfg, handle_signals=False))
                assert bot.scanner.fees.account_source == "tier 0 (no account configured)"
                assert {m.coin: bot.scanner.fees.taker_bps(m) for m in bot.specs} == {
                    "TSLA": D(3),
                    "GOLD": D(5),
                }
                bot.request_stop()
