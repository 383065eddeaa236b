"""Fills while the bot is down: a liquidation between a stop and the restart reaches the daily loss.

The whole bot against the simulator on 127.0.0.1. Run 1 enters a long and stops without
flattening (its entry fill is counted and journaled); while no bot runs the account is
liquidated at a loss; run 2 adopts the account flat and must count the liquidation's closedPnl
and fee into today's loss, and the entry's fee only once.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import trio

import hip3.hyperliquid.info
from hip3.hyperliquid.events import Fill
from hip3.hyperliquid.info import InfoClient, InfoError
from hip3.service.app import EXIT_FAILED, EXIT_OK, Bot, run_bot
from hip3.service.config import Config
from hip3.sim import Sim

from .conftest import (
    TSLA,
    Accounts,
    FrozenMarket,
    bot_config,
    bot_positions,
    post_order_as_master,
    running_bot,
    wait_for,
)
from .test_bot_vs_sim import enter

D = Decimal


async def _enter_then_stop_holding(
    sim: Sim, market: FrozenMarket, accounts: Accounts, cfg: Config
) -> Decimal:
    """Run 1: one long entry, then an orderly stop that leaves the long open; returns its entry price."""
    async with running_bot(cfg, accounts.agent) as run:
        await enter(run, sim, market, accounts)
        assert await run.stop() == EXIT_OK
        counted = run.b.hard_stop.daily_net_pnl
    acct = sim.engine.account(accounts.master)
    assert acct is not None
    # run 1 counted its entry fee (precondition: otherwise "counted once" below says nothing)
    assert counted == -acct.fees_paid != 0
    pos = acct.positions[TSLA]
    return pos.entry_px


async def test_a_liquidation_while_the_bot_is_down_counts_to_todays_loss_once(
    sim: Sim, market: FrozenMarket, accounts: Accounts, tmp_path: Path
) -> None:
    cfg = bot_config(sim, accounts.master, tmp_path, shutdown={"flatten_on_shutdown": False})
    entry_px = await _enter_then_stop_holding(sim, market, accounts, cfg)

    [liq] = sim.liquidate(accounts.master, TSLA, px=entry_px - D("1"))  # nobody is watching
    assert D(liq["closedPnl"]) < 0 and D(liq["fee"]) > 0

    async with running_bot(cfg, accounts.agent) as run:
        bot = run.b
        acct = sim.engine.account(accounts.master)
        assert acct is not None
        assert bot_positions(bot) == {}  # adopted flat
        # every fill of the day exactly once: the entry fee (run 1, journaled) and the liquidation
        assert bot.hard_stop.daily_net_pnl == acct.realized_pnl - acct.fees_paid
        assert not bot.hard_stop.latched, bot.hard_stop.reason
        assert await run.stop() == EXIT_OK


async def test_a_loss_while_down_past_the_limit_latches_before_any_entry(
    sim: Sim, market: FrozenMarket, accounts: Accounts, tmp_path: Path
) -> None:
    cfg = bot_config(
        sim,
        accounts.master,
        tmp_path,
        shutdown={"flatten_on_shutdown": False},
        hard_stop={"state_file": str(tmp_path / "hard_stop.json"), "max_daily_loss_usd": 1},
    )
    entry_px = await _enter_then_stop_holding(sim, market, accounts, cfg)
    [liq] = sim.liquidate(accounts.master, TSLA, px=entry_px - D("10"))  # about -2.3 USD
    assert D(liq["closedPnl"]) < -1

    async with running_bot(cfg, accounts.agent) as run:
        bot = run.b
        # latched by the time startup hands the bot over: no entry can have been allowed
        assert bot.hard_stop.latched
        assert bot.hard_stop.reason is not None and "daily loss" in bot.hard_stop.reason
        assert not bot.hard_stop.allows(reduce_only=False)
        assert await run.stop() == EXIT_OK


async def test_a_failed_fill_query_at_startup_stops_the_start(
    sim: Sim, market: FrozenMarket, accounts: Accounts, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Fills while down unknown: the bot must not start trading blind (exit 1: systemd retries).
    async def refused(self: object, user: str, start_ms: int, end_ms: int | None = None) -> list[Fill]:
        raise InfoError("userFillsByTime: 500 from the test")

    monkeypatch.setattr(hip3.hyperliquid.info.InfoClient, "user_fills_by_time", refused)
    cfg = bot_config(sim, accounts.master, tmp_path)
    outcome: dict[str, int] = {}

    async def main(task_status: trio.TaskStatus[Bot] = trio.TASK_STATUS_IGNORED) -> None:
        outcome["code"] = await run_bot(
            cfg, key=accounts.agent, handle_signals=False, task_status=task_status
        )

    bot: Bot | None = None
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            try:
                bot = await nursery.start(main)
            except RuntimeError:  # returned before reporting started: it refused to trade
                pass
            if bot is not None:
                bot.request_stop()
    assert bot is None and outcome.get("code") == EXIT_FAILED


async def test_a_liquidation_between_the_startup_count_and_the_subscription_is_counted(
    sim: Sim, market: FrozenMarket, accounts: Accounts, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The account holds a long no bot has seen; the exchange liquidates it right after the
    # startup's fill query answered, before userFills is subscribed: only the subscription's
    # snapshot (history, never given to the tracker) carries that fill.
    status = await post_order_as_master(
        sim, accounts, is_buy=True, price=market.ask, size=D("0.1"), tif="Ioc"
    )
    assert "filled" in status, status
    original = InfoClient.user_fills_by_time
    liquidations: list[dict[str, Any]] = []

    async def query_then_liquidate(
        self: InfoClient, user: str, start_ms: int, end_ms: int | None = None
    ) -> list[Fill]:
        fills = await original(self, user, start_ms, end_ms)
        if not liquidations:
            liquidations.extend(sim.liquidate(accounts.master, TSLA, px=market.ask - D("2")))
        return fills

    monkeypatch.setattr(InfoClient, "user_fills_by_time", query_then_liquidate)
    cfg = bot_config(
        sim,
        accounts.master,
        tmp_path,
        shutdown={"flatten_on_shutdown": False},
        position={"position_resync_interval_secs": 0.5},
    )
    async with running_bot(cfg, accounts.agent) as run:
        bot = run.b
        acct = sim.engine.account(accounts.master)
        assert acct is not None and len(liquidations) == 1
        assert D(liquidations[0]["closedPnl"]) < 0
        await wait_for(lambda: bot.ready.is_ready, "READY", timeout=4)
        await wait_for(
            lambda: bot.hard_stop.daily_net_pnl == acct.realized_pnl - acct.fees_paid,
            f"the daily loss to reach {acct.realized_pnl - acct.fees_paid} "
            f"(it is {bot.hard_stop.daily_net_pnl})",
        )
        await wait_for(lambda: bot_positions(bot) == {}, "the resync to drop the liquidated long")
        await trio.sleep(0.3)
        assert bot.hard_stop.daily_net_pnl == acct.realized_pnl - acct.fees_paid  # and only once
        assert await run.stop() == EXIT_OK
