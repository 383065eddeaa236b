"""The app against hip3.sim on 127.0.0.1 (real clock, bounded by fail_after): startup order and
what the running bot knows."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import pytest
import trio

from hip3.service.app import Bot, run_bot
from hip3.sim import load_sim_config, open_sim
from tests.builders import sim_config


async def test_the_oi_cap_gate_knows_every_markets_cap(tmp_path: Path) -> None:
    # perpDexs lists assetToStreamingOiCap for every market of the dex: the running bot's
    # conditions cells carry each cap, so the OI-cap gate can fire outside unit tests too.
    with trio.fail_after(10):
        async with open_sim(load_sim_config(None)) as sim, trio.open_nursery() as nursery:
            bot: Bot = await nursery.start(
                functools.partial(run_bot, sim_config(sim, tmp_path), handle_signals=False)
            )
            caps = {m: bot.cells.conditions(m).oi_cap for m in bot.specs}
            bot.request_stop()
    assert bot.specs and all(cap is not None for cap in caps.values()), caps


async def test_unusual_settings_are_logged_as_warnings_at_startup(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cfg = sim_config  # built inside, once the simulator's URLs are known
    with caplog.at_level("WARNING", logger="hip3.service.app"), trio.fail_after(10):
        async with open_sim(load_sim_config(None)) as sim, trio.open_nursery() as nursery:
            unusual = cfg(sim, tmp_path, gates={"max_ctx_age_ms": 0}, exits={"flatten_slippage_bps": 500})
            bot: Bot = await nursery.start(functools.partial(run_bot, unusual, handle_signals=False))
            bot.request_stop()
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert any(w.startswith("unusual setting: gates.max_ctx_age_ms = 0: ") for w in warnings), warnings
    assert any(w.startswith("unusual setting: exits.flatten_slippage_bps = 500: ") for w in warnings)


async def test_a_refused_orphan_cancel_stops_the_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The master account has a resting order; the bot's signing key is not approved, so the
    # startup cancel is answered {"status": "err", ...}. The app treats every other startup
    # failure as "do not trade" (exit 1); an orphan it could not cancel must be one too.
    # (The startup signer check would refuse this key first: skipped here to reach the cancel.)
    import secrets

    import hip3.service.app

    async def signer_accepted(*args: object) -> None:
        return None

    monkeypatch.setattr(hip3.service.app, "verify_signer", signer_accepted)

    import attrs

    from hip3.hyperliquid import signing, wire
    from hip3.service.app import EXIT_FAILED
    from hip3.service.keys import SecretKey

    master_key = "0x" + secrets.token_hex(32)
    master = signing.address_of(master_key)
    agent = SecretKey("0x" + secrets.token_hex(32), source="throwaway test key")  # never approved
    outcome: dict[str, int] = {}

    async def bot_task(cfg: Any, task_status: trio.TaskStatus[Bot] = trio.TASK_STATUS_IGNORED) -> None:
        outcome["code"] = await run_bot(cfg, key=agent, handle_signals=False, task_status=task_status)

    with trio.fail_after(10):
        async with open_sim(attrs.evolve(load_sim_config(None), is_mainnet=False)) as sim:
            sim.engine.fund(master, 1000)
            sim.engine.set_oracle("TSLA", "100.1")
            sim.engine.set_book("TSLA", bids=[("100", "1")], asks=[("100.1", "1")])
            asset = 110000  # TSLA is first in the shipped meta(xyz)
            action = wire.order_action([wire.order_wire(asset, True, "99", "0.2", False, "Gtc")])
            nonce = sim.engine.now_ms()
            sig = signing.sign_l1_action(master_key, action, nonce, is_mainnet=False)
            sim.engine.handle_exchange({"action": action, "nonce": nonce, "signature": sig})
            assert len(sim.engine.open_orders(master)) == 1  # precondition: an orphan rests

            cfg = sim_config(
                sim, tmp_path, mode="trading", account={"address": master}, markets={"coins": ["TSLA"]}
            )
            async with trio.open_nursery() as nursery:
                try:
                    bot: Bot | None = await nursery.start(bot_task, cfg)
                except RuntimeError:  # run_bot returned before reporting started: it refused to trade
                    bot = None
                if bot is not None:
                    bot.request_stop()
            assert len(sim.engine.open_orders(master)) == 1  # the cancel really was refused
    assert bot is None and outcome.get("code") == EXIT_FAILED


async def test_a_fill_between_the_startup_sync_and_the_user_subscription_is_not_lost(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A seller crosses the account's orphaned resting order right after the startup
    # clearinghouseState was fetched, before userFills is subscribed (its snapshot is ignored).
    # The bot cancels orphans before taking the snapshot, so the order is gone by then and the
    # bot's picture and the exchange's agree once READY.
    import secrets

    import attrs

    from hip3.hyperliquid import signing, wire
    from hip3.hyperliquid.info import InfoClient
    from hip3.service.keys import SecretKey

    master_key = "0x" + secrets.token_hex(32)
    master = signing.address_of(master_key)

    with trio.fail_after(10):
        async with open_sim(attrs.evolve(load_sim_config(None), is_mainnet=False)) as sim:
            sim.engine.fund(master, 1000)
            sim.engine.set_oracle("TSLA", "99.5")
            sim.engine.set_book("TSLA", bids=[("98", "1")], asks=[("100.1", "1")])
            action = wire.order_action([wire.order_wire(110000, True, "99", "0.2", False, "Gtc")])
            nonce = sim.engine.now_ms()
            sig = signing.sign_l1_action(master_key, action, nonce, is_mainnet=False)
            sim.engine.handle_exchange({"action": action, "nonce": nonce, "signature": sig})
            assert len(sim.engine.open_orders(master)) == 1  # precondition: an orphan rests

            original = InfoClient.clearinghouse_state

            async def fetch_then_fill(self: InfoClient, user: str, dex: str) -> Any:
                state = await original(self, user, dex)
                # A seller crosses the orphan just after the snapshot was taken.
                sim.engine.set_book("TSLA", bids=[("98", "1")], asks=[("99", "1")])
                return state

            monkeypatch.setattr(InfoClient, "clearinghouse_state", fetch_then_fill)
            cfg = sim_config(
                sim,
                tmp_path,
                mode="trading",
                account={"address": master},
                markets={"coins": ["TSLA"]},
                position={"position_resync_interval_secs": 0},
            )
            key = SecretKey(master_key, source="throwaway test key")
            async with trio.open_nursery() as nursery:
                bot: Bot = await nursery.start(functools.partial(run_bot, cfg, key=key, handle_signals=False))
                while not bot.ready.is_ready:
                    await trio.sleep(0.02)
                await trio.sleep(0.2)  # let any fill event that did arrive reach the tracker
                assert bot.tracker is not None
                held = {m.coin: p.size for m, p in bot.tracker.view().positions.items()}
                on_exchange = {c: s for c, s in sim.engine.positions(master).items() if s != 0}
                orphans = sim.engine.open_orders(master)
                bot.request_stop()
    assert orphans == []
    assert held == on_exchange == {}
