"""The whole bot against the simulator while the account moves without it: a liquidation, a manual
close from the web app, another client's order. Each time the bot's books must equal the
simulator's account (positions, realized PnL, fees), the loss must reach the daily-loss stop, no
routine event may latch the hard stop, and the bot must not send a flatten for a position that is gone.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import trio

from hip3.service.app import EXIT_OK
from hip3.sim import Sim

from .conftest import (
    TSLA,
    Accounts,
    FrozenMarket,
    bot_config,
    bot_positions,
    cloid_counts,
    running_bot,
    settled,
    sim_positions,
    wait_for,
)
from .test_bot_vs_sim import assert_books_agree, enter

D = Decimal


def bot_orders(sim: Sim, accounts: Accounts) -> int:
    """Orders with a cloid on the account: the bot's (the liquidation's close has none)."""
    return sum(n for c, n in cloid_counts(sim, accounts.master).items() if c is not None)


async def test_a_liquidation_while_holding_reaches_the_books_and_the_daily_loss_not_the_latch(
    sim: Sim, market: FrozenMarket, accounts: Accounts, tmp_path: Path
) -> None:
    cfg = bot_config(sim, accounts.master, tmp_path, position={"position_resync_interval_secs": 0.5})
    async with running_bot(cfg, accounts.agent) as run:
        bot = run.b
        await enter(run, sim, market, accounts)
        orders_before = bot_orders(sim, accounts)
        entry_px = sim.engine.account(accounts.master).positions[TSLA].entry_px  # type: ignore[union-attr]
        [liq] = sim.liquidate(accounts.master, TSLA, px=entry_px - D("1"))
        assert D(liq["closedPnl"]) < 0
        await wait_for(lambda: bot_positions(bot) == {} and settled(bot), "the bot to see the liquidation")
        # a few resyncs and exit checks later nothing has changed and nobody flattened a ghost
        await trio.sleep(1.5)
        assert bot_positions(bot) == {} == sim_positions(sim, accounts.master)
        await assert_books_agree(run, sim, accounts)
        acct = sim.engine.account(accounts.master)
        assert acct is not None
        assert bot.hard_stop.daily_net_pnl == acct.realized_pnl - acct.fees_paid
        assert not bot.hard_stop.latched, bot.hard_stop.reason
        assert bot_orders(sim, accounts) == orders_before
        assert await run.stop() == EXIT_OK
    sent = cloid_counts(sim, accounts.master)
    assert all(n == 1 for c, n in sent.items() if c is not None), sent


async def test_a_manual_partial_close_leaves_the_rest_managed_and_counted(
    sim: Sim, market: FrozenMarket, accounts: Accounts, tmp_path: Path
) -> None:
    cfg = bot_config(sim, accounts.master, tmp_path, position={"position_resync_interval_secs": 0.5})
    async with running_bot(cfg, accounts.agent) as run:
        bot = run.b
        size = await enter(run, sim, market, accounts)
        half = (size / 2).quantize(D("0.01"))
        sim.manual_close(accounts.master, TSLA, half)
        rest = size - half
        await wait_for(
            lambda: bot_positions(bot).get(TSLA) == rest and settled(bot), "the bot to see the manual close"
        )
        await assert_books_agree(run, sim, accounts)
        acct = sim.engine.account(accounts.master)
        assert acct is not None
        assert bot.hard_stop.daily_net_pnl == acct.realized_pnl - acct.fees_paid
        # the rest is still the bot's to manage: the shutdown flattens it
        assert await run.stop() == EXIT_OK
        assert sim_positions(sim, accounts.master) == {}
        assert not bot.hard_stop.latched, bot.hard_stop.reason


async def test_another_clients_position_is_adopted_and_flattened_on_shutdown(
    sim: Sim, market: FrozenMarket, accounts: Accounts, tmp_path: Path
) -> None:
    cfg = bot_config(sim, accounts.master, tmp_path)
    async with running_bot(cfg, accounts.agent) as run:
        bot = run.b
        await wait_for(lambda: bot.ready.is_ready, "READY", timeout=4)
        sim.foreign_order(accounts.master, TSLA, is_buy=True, sz="0.2")
        held = sim_positions(sim, accounts.master).get(TSLA)
        assert held is not None and held > 0
        await wait_for(lambda: bot_positions(bot).get(TSLA) == held, "the bot to see the other client's fill")
        assert await run.stop() == EXIT_OK
        assert sim_positions(sim, accounts.master) == {}
        assert not bot.hard_stop.latched, bot.hard_stop.reason
