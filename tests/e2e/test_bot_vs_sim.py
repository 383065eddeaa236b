"""The whole bot (`hip3.service.app.run_bot`) against `hip3.sim` over loopback, with the simulator's faults on.

Issue #4 point 9: with duplicates, fills before responses, a dropped response, a disconnect and
stale snapshots, the bot's final positions equal the simulator's, no order is ever sent twice,
and flatten-on-shutdown leaves the account flat. Expected sizes and prices are computed by hand
from the detector's rules (see conftest), never read back from the bot.
"""

from __future__ import annotations

import csv
import io
import json
import sqlite3
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import trio

from hip3.core import Side
from hip3.service.app import EXIT_OK
from hip3.service.journal_report import answer
from hip3.sim import Sim

from .conftest import (
    TSLA,
    Accounts,
    BotRun,
    FrozenMarket,
    assert_one_order_per_cloid,
    bot_config,
    bot_positions,
    cloid_counts,
    expected_entry_size,
    of_type,
    post_order_as_master,
    record_info_requests,
    running_bot,
    settled,
    sim_positions,
    wait_for,
)

D = Decimal
BPS = D("0.0001")
ENTRY_EDGE_BPS = D(60)


async def dislocate(run: BotRun, market: FrozenMarket, edge_bps: Decimal = ENTRY_EDGE_BPS) -> Decimal:
    """Leave the ask where it is and raise the oracle in two up-moves, the second to `edge_bps` above it.

    The first move keeps the edge (~2.5 bps) under the round-trip threshold of the simulator's
    TSLA (growth mode: 0.9 bp taker in and out, exit cost = the book's 1.2 bp half-spread, margin
    1 bp: about 4 bps), so the signal comes from the second move; both are rising moves of more
    than min_oracle_move_bps = 2. Returns the final oracle.
    """
    bot = run.b
    tsla = bot.markets[TSLA]
    market.refresh()  # a fresh bbo: the bbo_age gate sees a live book
    first = market.ask * (1 + D("2.5") * BPS)
    market.set_oracle(first)
    await wait_for(
        lambda: (ctx := bot.cells.get(tsla).ctx) is not None and ctx.oracle_px == market.oracle,
        f"the bot to see the oracle at {market.oracle}",
    )
    market.set_oracle(market.ask / (1 - edge_bps * BPS))
    return market.oracle


def regress(market: FrozenMarket) -> None:
    """Move the book back around the oracle: a long's exit condition (bid within 5 bps of the oracle)."""
    market.quote(market.oracle - D("0.05"), market.oracle + D("0.05"))


async def enter(run: BotRun, sim: Sim, market: FrozenMarket, accounts: Accounts) -> Decimal:
    """One dislocation and the bot's long entry, seen on both sides; returns the entry size."""
    bot = run.b
    await wait_for(lambda: bot.ready.is_ready, "READY", timeout=4)
    size = expected_entry_size(market.bid, market.ask)
    held = bot_positions(bot).get(TSLA, D(0))
    on_exchange = sim_positions(sim, accounts.master).get(TSLA, D(0))
    assert held == on_exchange
    await dislocate(run, market)
    await wait_for(
        lambda: sim_positions(sim, accounts.master).get(TSLA, D(0)) == on_exchange + size,
        f"the simulator to show the bot's long of {size}",
    )
    await wait_for(
        lambda: bot_positions(bot).get(TSLA, D(0)) == held + size and settled(bot),
        f"the bot's tracker to show its long of {size}",
    )
    return size


async def exit_by_regression(run: BotRun, sim: Sim, market: FrozenMarket, accounts: Accounts) -> None:
    bot = run.b
    regress(market)
    await wait_for(lambda: TSLA not in sim_positions(sim, accounts.master), "the simulator to show flat")
    await wait_for(lambda: bot_positions(bot) == {} and settled(bot), "the bot's tracker to show flat")


async def assert_books_agree(run: BotRun, sim: Sim, accounts: Accounts) -> None:
    """The bot's positions, realized PnL and fees equal the simulator's account.

    A post response can settle an order before its userFills message (which carries the fee)
    arrives, so the fees are given a moment to catch up; positions must already agree.
    """
    bot = run.b
    assert bot.tracker is not None
    tracker = bot.tracker
    acct = sim.engine.account(accounts.master)
    assert acct is not None
    assert bot_positions(bot) == sim_positions(sim, accounts.master)

    def money() -> tuple[Decimal, Decimal]:
        view = tracker.view()
        return view.realized_pnl, view.fees

    try:
        await wait_for(lambda: money() == (acct.realized_pnl, acct.fees_paid), "fees and PnL to agree", 2)
    except AssertionError:
        pass
    assert money() == (acct.realized_pnl, acct.fees_paid)
    assert bot_positions(bot) == sim_positions(sim, accounts.master)


# ---------------------------------------------------------------------------------------------
# 1. Happy path


async def test_entry_on_a_dislocation_then_exit_on_mark_regression(
    sim: Sim, market: FrozenMarket, accounts: Accounts, tmp_path: Path
) -> None:
    cfg = bot_config(sim, accounts.master, tmp_path)
    with trio.fail_after(15):
        async with running_bot(cfg, accounts.agent) as run:
            bot = run.b
            ask = market.ask
            size = await enter(run, sim, market, accounts)
            assert size == D("0.229")  # 99 % of $100 over mid 432.10, floored to 0.001

            [signal] = run.signals
            assert (signal.market.name, signal.side, signal.best_px) == (TSLA, Side.BUY, ask)
            assert abs(signal.raw_edge_bps - ENTRY_EDGE_BPS) < D("0.5")
            [fill] = sim.engine.fills(accounts.master)
            assert (fill["side"], D(fill["px"]), D(fill["sz"]), fill["crossed"]) == ("B", ask, size, True)
            assert bot.tracker is not None
            assert bot.tracker.view().positions[bot.markets[TSLA]].entry_px == ask
            await assert_books_agree(run, sim, accounts)

            await exit_by_regression(run, sim, market, accounts)
            assert bot.exits is not None and bot.exits.stats.requested == {"mark_regression": 1}
            close = sim.engine.fills(accounts.master)[-1]
            assert (close["side"], D(close["sz"]), D(close["px"])) == ("A", size, market.bid)
            exit_px = market.bid
            # PnL gross of fees, by hand: (exit - entry) x size, rounded to the cent as the exchange does.
            assert D(close["closedPnl"]) == ((market.bid - ask) * size).quantize(D("0.000001"))
            await assert_books_agree(run, sim, accounts)
            assert bot.signals_seen == 1
            code = await run.stop()
        assert code == EXIT_OK and bot.flat_at_exit is True
        assert_one_order_per_cloid(sim, accounts.master)
        assert sum(cloid_counts(sim, accounts.master).values()) == 2
    with sqlite3.connect(tmp_path / "journal.sqlite3") as db:
        # gate_blocks: the per-market counts of blocked evaluations, noted at shutdown (the report's)
        kinds = [k for (k,) in db.execute("SELECT kind FROM records WHERE kind != 'gate_blocks' ORDER BY id")]
        journaled_fills = db.execute("SELECT side, sz, px, fee FROM fills ORDER BY time_ms, tid").fetchall()
        [noted] = [json.loads(d) for (d,) in db.execute("SELECT data FROM records WHERE kind = 'round_trip'")]
    assert kinds == ["restart", "signal", "position_opened", "position_closed", "round_trip"]
    # Edge accounting: the edge at the signal, the prices against the oracle, fees and net PnL.
    assert abs(D(noted["signal_edge_bps"]) - ENTRY_EDGE_BPS) < D("0.5")
    assert (D(noted["entry_px"]), D(noted["size"]), noted["side"]) == (ask, size, "buy")
    assert D(noted["net_pnl"]) == D(noted["gross_pnl"]) - D(noted["fees"]) and D(noted["fees"]) > 0
    assert noted["held_secs"] > 0 and noted["entry_vs_oracle_bps"] is not None
    # the exchange's fills, as it reported them, fee included
    sim_fills = sim.engine.fills(accounts.master)
    assert journaled_fills == [(f["side"], f["sz"], f["px"], f["fee"]) for f in sim_fills]
    # `hip3 journal PATH trips` answers from what this run wrote: the entry at the ask, the exit at
    # the bid, the signal's edge, the exchange's closed PnL and both fees
    [trip] = csv.DictReader(io.StringIO(answer(tmp_path / "journal.sqlite3", "trips", as_csv=True)))
    assert (D(trip["entry_px"]), D(trip["exit_px"]), D(trip["size"])) == (ask, exit_px, size)
    assert abs(D(trip["signal_edge_bps"]) - ENTRY_EDGE_BPS) < D("0.5")
    assert D(trip["realized"]) == D(sim_fills[-1]["closedPnl"])
    assert D(trip["fees"]) == sum(D(f["fee"]) for f in sim_fills)
    # both orders were journaled before they were sent, and their outcome came from orderUpdates
    orders = list(csv.DictReader(io.StringIO(answer(tmp_path / "journal.sqlite3", "orders", as_csv=True))))
    assert [(o["kind"], o["outcome"], D(o["filled"])) for o in orders] == [
        ("entry", "filled", size),
        ("flatten", "filled", size),
    ]
    assert {o["cloid"] for o in orders} == {str(c) for c in cloid_counts(sim, accounts.master)}


# ---------------------------------------------------------------------------------------------
# 2. Faults


@pytest.mark.parametrize(
    "fault, value",
    [
        ("duplicate_user_fills", True),
        ("fills_before_response", True),
        ("post_response_delay", 0.3),
    ],
)
async def test_round_trips_with_a_fault_on(
    sim: Sim, market: FrozenMarket, accounts: Accounts, tmp_path: Path, fault: str, value: Any
) -> None:
    setattr(sim.faults, fault, value)
    cfg = bot_config(sim, accounts.master, tmp_path)
    with trio.fail_after(20):
        async with running_bot(cfg, accounts.agent) as run:
            for _ in range(2):
                await enter(run, sim, market, accounts)
                await assert_books_agree(run, sim, accounts)
                await exit_by_regression(run, sim, market, accounts)
                await assert_books_agree(run, sim, accounts)
            await trio.sleep(0.3)  # late duplicates / late responses would land here
            await assert_books_agree(run, sim, accounts)
            code = await run.stop()
    assert code == EXIT_OK
    assert sim_positions(sim, accounts.master) == {}
    assert_one_order_per_cloid(sim, accounts.master)
    assert len(sim.engine.fills(accounts.master)) == sum(cloid_counts(sim, accounts.master).values()) == 4


async def test_dropped_post_responses_are_resolved_by_order_status_never_resent(
    sim: Sim, market: FrozenMarket, accounts: Accounts, tmp_path: Path
) -> None:
    sim.faults.drop_post_responses = True
    requests = record_info_requests(sim)
    cfg = bot_config(
        sim, accounts.master, tmp_path, executor={"post_timeout_secs": 0.3, "resolve_timeout_secs": 3}
    )
    with trio.fail_after(20):
        async with running_bot(cfg, accounts.agent) as run:
            bot = run.b
            await enter(run, sim, market, accounts)
            await assert_books_agree(run, sim, accounts)
            await exit_by_regression(run, sim, market, accounts)
            await assert_books_agree(run, sim, accounts)
            executor = bot.executor
            assert executor is not None
            # The fills arrive on userFills at once; the posts stay unknown until orderStatus says "filled".
            await wait_for(lambda: executor.stats.resolved >= 2, "both unanswered posts to be resolved")
            assert (executor.stats.posted, executor.stats.unknown) == (2, 2), executor.stats
            assert not bot.hard_stop.latched
            code = await run.stop()
    assert code == EXIT_OK
    counts = cloid_counts(sim, accounts.master)
    assert_one_order_per_cloid(sim, accounts.master)
    assert sum(counts.values()) == 2
    asked = {r.body.get("oid") for r in of_type(requests, "orderStatus")}
    assert asked == set(counts), "each unanswered order is looked up by its cloid"


async def test_stop_while_an_unanswered_entry_is_in_flight_still_ends_flat(
    sim: Sim, market: FrozenMarket, accounts: Accounts, tmp_path: Path
) -> None:
    sim.faults.drop_post_responses = True
    cfg = bot_config(
        sim, accounts.master, tmp_path, executor={"post_timeout_secs": 1, "resolve_timeout_secs": 3}
    )
    with trio.fail_after(20):
        async with running_bot(cfg, accounts.agent) as run:
            bot = run.b
            await wait_for(lambda: bot.ready.is_ready, "READY", timeout=4)
            await dislocate(run, market)
            await wait_for(lambda: TSLA in sim_positions(sim, accounts.master), "the entry to execute")
            assert bot.executor is not None and bot.executor.stats.unknown == 0  # still waiting for it
            code = await run.stop()
    assert code == EXIT_OK and bot.flat_at_exit is True
    assert sim_positions(sim, accounts.master) == {}
    assert_one_order_per_cloid(sim, accounts.master)
    assert sum(cloid_counts(sim, accounts.master).values()) == 2


async def test_disconnect_with_a_post_in_flight_resolves_it_and_never_resends(
    sim: Sim, market: FrozenMarket, accounts: Accounts, tmp_path: Path
) -> None:
    # The exchange executes the entry but holds the answer for 1 s; the link drops meanwhile. The
    # post's outcome is unknown (it did leave), so it must be resolved by orderStatus, not re-sent
    # over the HTTP fallback.
    sim.faults.post_response_delay = 1.0
    cfg = bot_config(
        sim, accounts.master, tmp_path, executor={"post_timeout_secs": 2, "resolve_timeout_secs": 4}
    )
    with trio.fail_after(20):
        async with running_bot(cfg, accounts.agent) as run:
            bot = run.b
            executor = bot.executor
            assert executor is not None
            await wait_for(lambda: bot.ready.is_ready, "READY", timeout=4)
            await dislocate(run, market)
            await wait_for(lambda: TSLA in sim_positions(sim, accounts.master), "the entry to execute")
            assert executor.stats.posted == 0  # its answer is still held back
            sim.disconnect_all()
            await wait_for(lambda: executor.stats.unknown == 1, "the lost post to be taken as unknown")
            await wait_for(lambda: executor.stats.resolved == 1, "orderStatus to resolve it")
            await wait_for(lambda: bot.ready.is_ready, "READY after the reconnect", timeout=5)
            await assert_books_agree(run, sim, accounts)
            assert executor.stats.posted_http == 0
            code = await run.stop()
    assert code == EXIT_OK and bot.flat_at_exit is True
    assert sim_positions(sim, accounts.master) == {}
    assert_one_order_per_cloid(sim, accounts.master)
    assert sum(cloid_counts(sim, accounts.master).values()) == 2


async def test_disconnect_while_holding_catches_up_missed_fills(
    sim: Sim, market: FrozenMarket, accounts: Accounts, tmp_path: Path
) -> None:
    # No resync: only the reconnect catch-up (userFillsByTime) can learn about the missed fill.
    cfg = bot_config(
        sim,
        accounts.master,
        tmp_path,
        position={"position_resync_interval_secs": 0},
        websocket={"reconnect_initial_secs": 1.5, "reconnect_max_secs": 2},
    )
    with trio.fail_after(20):
        async with running_bot(cfg, accounts.agent) as run:
            bot = run.b
            size = await enter(run, sim, market, accounts)
            posted = bot.executor.stats.posted if bot.executor else 0

            sim.disconnect_all()
            await wait_for(lambda: not bot.ready.is_ready, "the bot to notice the disconnect", poll=0.01)
            # Another client sells part of the position while the bot is away: the fill is not
            # delivered live (no live connection is subscribed to the master's fills right now).
            status = await post_order_as_master(
                sim, accounts, is_buy=False, price=market.bid, size=D("0.1"), tif="Ioc", reduce_only=True
            )
            assert "filled" in status, status
            assert not sim.hub.subscribers(("userFills", accounts.master)), "the bot reconnected too early"
            assert sim_positions(sim, accounts.master) == {TSLA: size - D("0.1")}
            assert bot_positions(bot) == {TSLA: size}  # it cannot know yet

            await wait_for(lambda: bot.ready.is_ready, "READY again after the reconnect", timeout=5)
            assert bot_positions(bot) == {TSLA: size - D("0.1")}  # caught up before READY
            assert bot.executor is not None and bot.executor.stats.posted == posted  # no entry meanwhile
            await assert_books_agree(run, sim, accounts)

            await exit_by_regression(run, sim, market, accounts)
            await assert_books_agree(run, sim, accounts)
            code = await run.stop()
    assert code == EXIT_OK
    assert sim_positions(sim, accounts.master) == {}
    assert_one_order_per_cloid(sim, accounts.master)


async def test_time_stop_while_disconnected_flattens_over_http_and_catch_up_does_not_repeat_it(
    sim: Sim, market: FrozenMarket, accounts: Accounts, tmp_path: Path
) -> None:
    # The WS goes down right after the entry and stays down past the 1 s time stop: the flatten
    # leaves over HTTP (http_fallback), and the reconnect catch-up later re-delivers its fill.
    cfg = bot_config(
        sim,
        accounts.master,
        tmp_path,
        exits={"time_stop_secs": 1},
        position={"position_resync_interval_secs": 0},
        websocket={"reconnect_initial_secs": 3, "reconnect_max_secs": 3},
    )
    with trio.fail_after(20):
        async with running_bot(cfg, accounts.agent) as run:
            bot = run.b
            executor = bot.executor
            assert executor is not None
            await enter(run, sim, market, accounts)
            sim.disconnect_all()
            await wait_for(lambda: not bot.ready.connected, "the bot to notice the disconnect", poll=0.01)
            await wait_for(lambda: TSLA not in sim_positions(sim, accounts.master), "the time stop's flatten")
            await wait_for(lambda: bot_positions(bot) == {} and settled(bot), "the bot to see itself flat")
            assert not bot.ready.connected, "the bot reconnected too early for this test"
            assert executor.stats.posted_http == 1, executor.stats
            assert bot.exits is not None and bot.exits.stats.requested == {"time_stop": 1}

            await wait_for(lambda: bot.ready.is_ready, "READY after the reconnect", timeout=5)
            await trio.sleep(0.3)
            assert bot_positions(bot) == sim_positions(sim, accounts.master) == {}
            await assert_books_agree(run, sim, accounts)
            code = await run.stop()
    assert code == EXIT_OK
    assert_one_order_per_cloid(sim, accounts.master)


async def test_entries_stay_blocked_after_a_reconnect_until_missed_fills_are_caught_up(
    sim: Sim, market: FrozenMarket, accounts: Accounts, tmp_path: Path
) -> None:
    # The catch-up query (userFillsByTime) is answered 429 three times, so after the reconnect the
    # bot has live market data but is not READY for ~2-3 s; a dislocation then must not be traded.
    cfg = bot_config(sim, accounts.master, tmp_path, position={"position_resync_interval_secs": 0})
    with trio.fail_after(20):
        async with running_bot(cfg, accounts.agent) as run:
            bot = run.b
            executor = bot.executor
            assert executor is not None
            await wait_for(lambda: bot.ready.is_ready, "READY", timeout=4)
            sim.faults.info_429_next = 3  # nothing else queries /info: resync is off, no order is live
            sim.disconnect_all()
            await wait_for(lambda: not bot.ready.is_ready, "the bot to notice the disconnect", poll=0.01)
            tsla = bot.markets[TSLA]
            await wait_for(
                lambda: bot.ready.connected and bot.cells.get(tsla).ctx is not None,
                "the reconnect and fresh market data",
            )
            assert not bot.ready.caught_up
            await dislocate(run, market)
            await wait_for(lambda: executor.stats.dropped["not_ready"] >= 1, "the signal to be dropped")
            assert not bot.ready.is_ready and sim.faults.info_429_next > 0, (
                "caught up too early for this test"
            )
            assert sim.engine.orders == {} and bot_positions(bot) == {}

            await wait_for(lambda: bot.ready.is_ready, "READY after the catch-up", timeout=6)
            assert sim.engine.orders == {}  # the signal seen while not READY is not replayed
            regress(market)  # the book catches up with the oracle ...
            size = await enter(run, sim, market, accounts)  # ... and a new dislocation is traded
            assert sim_positions(sim, accounts.master) == {TSLA: size}
            code = await run.stop()
    assert code == EXIT_OK
    assert sim_positions(sim, accounts.master) == {}


async def test_stale_clearinghouse_snapshots_never_correct_a_correct_position(
    sim: Sim, market: FrozenMarket, accounts: Accounts, tmp_path: Path
) -> None:
    # clearinghouseState is computed when asked and delivered 0.6 s later; the bot resyncs every 0.7 s.
    delay = 0.6
    sim.faults.stale_clearinghouse_delay = delay
    requests = record_info_requests(sim)

    def asked_ms() -> list[int]:
        return [r.at_ms for r in of_type(requests, "clearinghouseState")]

    cfg = bot_config(sim, accounts.master, tmp_path, position={"position_resync_interval_secs": 0.7})
    with trio.fail_after(20):
        async with running_bot(cfg, accounts.agent) as run:
            bot = run.b
            resync = bot.resync
            assert resync is not None

            async def act_while_a_snapshot_is_in_flight(step: str) -> None:
                # Act right after a resync asked: its snapshot predates the fill and arrives after it.
                asked = len(asked_ms())
                await wait_for(lambda: len(asked_ms()) > asked, "a resync to ask for clearinghouseState")
                runs = resync.runs
                if step == "entry":
                    await enter(run, sim, market, accounts)
                else:
                    await exit_by_regression(run, sim, market, accounts)
                fill_ms = sim.engine.fills(accounts.master)[-1]["time"]
                assert 0 <= fill_ms - asked_ms()[-1] < delay * 1000, (
                    "the fill did not land while the snapshot was in flight"
                )
                await wait_for(lambda: resync.runs > runs, "the stale snapshot to be applied")
                assert resync.corrections == 0
                await assert_books_agree(run, sim, accounts)

            await act_while_a_snapshot_is_in_flight("entry")
            await act_while_a_snapshot_is_in_flight("exit")
            await wait_for(lambda: resync.runs >= 3, "one more resync", timeout=3)
            assert resync.corrections == 0
            await assert_books_agree(run, sim, accounts)
            code = await run.stop()
    assert code == EXIT_OK
    assert sim_positions(sim, accounts.master) == {}


async def test_resync_while_disconnected_does_not_double_count_the_caught_up_fill(
    sim: Sim, market: FrozenMarket, accounts: Accounts, tmp_path: Path
) -> None:
    # A resync that runs in the gap between a missed fill and the reconnect catch-up already
    # reflects that fill; the catch-up must not apply it a second time.
    cfg = bot_config(
        sim,
        accounts.master,
        tmp_path,
        position={"position_resync_interval_secs": 0.3},
        websocket={"reconnect_initial_secs": 2, "reconnect_max_secs": 2},
    )
    with trio.fail_after(20):
        async with running_bot(cfg, accounts.agent) as run:
            bot = run.b
            resync = bot.resync
            assert resync is not None
            size = await enter(run, sim, market, accounts)
            sim.disconnect_all()
            await wait_for(lambda: not bot.ready.is_ready, "the bot to notice the disconnect", poll=0.01)
            status = await post_order_as_master(
                sim, accounts, is_buy=False, price=market.bid, size=D("0.1"), tif="Ioc", reduce_only=True
            )
            assert "filled" in status, status
            after = size - D("0.1")
            await trio.sleep(0.5)  # the resync (every 0.3 s) runs at least once in the gap
            assert not sim.hub.subscribers(("userFills", accounts.master)), "the bot reconnected too early"
            await wait_for(
                lambda: bot.ready.is_ready, "READY again after the reconnect", timeout=5, poll=0.01
            )
            assert bot_positions(bot) == sim_positions(sim, accounts.master) == {TSLA: after}
            await trio.sleep(0.7)  # two more resyncs: nothing left to correct
            assert bot_positions(bot) == sim_positions(sim, accounts.master) == {TSLA: after}
            assert resync.corrections <= 1, bot.resync
            code = await run.stop()
    assert code == EXIT_OK
    assert sim_positions(sim, accounts.master) == {}


async def test_all_faults_at_once(sim: Sim, market: FrozenMarket, accounts: Accounts, tmp_path: Path) -> None:
    faults = sim.faults
    faults.duplicate_user_fills = True
    faults.fills_before_response = True
    faults.drop_post_responses = True
    faults.stale_clearinghouse_delay = 0.3
    faults.malformed_frame_rate = 0.02
    cfg = bot_config(
        sim,
        accounts.master,
        tmp_path,
        position={"position_resync_interval_secs": 0.4},
        executor={"post_timeout_secs": 0.3, "resolve_timeout_secs": 3},
        websocket={"reconnect_initial_secs": 0.2, "reconnect_max_secs": 0.5},
    )
    with trio.fail_after(25):
        async with running_bot(cfg, accounts.agent) as run:
            bot = run.b
            await enter(run, sim, market, accounts)
            await assert_books_agree(run, sim, accounts)
            sim.disconnect_all()  # while holding
            await wait_for(lambda: not bot.ready.is_ready, "the bot to notice the disconnect", poll=0.01)
            await wait_for(lambda: bot.ready.is_ready, "READY again after the reconnect", timeout=5)
            await assert_books_agree(run, sim, accounts)
            await exit_by_regression(run, sim, market, accounts)
            await enter(run, sim, market, accounts)  # a second entry after the reconnect
            await trio.sleep(0.5)  # stale snapshots land, late duplicates arrive
            await assert_books_agree(run, sim, accounts)
            assert bot.resync is not None and bot.resync.runs >= 1
            assert bot.resync.corrections == 0, bot.resync
            code = await run.stop()  # flattens the open long
    assert code == EXIT_OK and bot.flat_at_exit is True
    assert sim_positions(sim, accounts.master) == {}
    assert_one_order_per_cloid(sim, accounts.master)
    assert len(sim.engine.fills(accounts.master)) == sum(cloid_counts(sim, accounts.master).values()) == 4


# ---------------------------------------------------------------------------------------------
# 3. Flatten on shutdown


async def test_shutdown_flattens_an_open_position(
    sim: Sim, market: FrozenMarket, accounts: Accounts, tmp_path: Path
) -> None:
    # A long time stop and no regression: only the shutdown can close the position.
    cfg = bot_config(sim, accounts.master, tmp_path, exits={"time_stop_secs": 60})
    with trio.fail_after(15):
        async with running_bot(cfg, accounts.agent) as run:
            bot = run.b
            size = await enter(run, sim, market, accounts)
            await trio.sleep(0.5)
            assert sim_positions(sim, accounts.master) == bot_positions(bot) == {TSLA: size}
            code = await run.stop()
    assert code == EXIT_OK and bot.flat_at_exit is True
    assert sim_positions(sim, accounts.master) == {}
    close = sim.engine.fills(accounts.master)[-1]
    assert (close["dir"], D(close["sz"]), D(close["px"])) == ("Close Long", size, market.bid)
    assert sim.engine.open_orders(accounts.master) == []
    assert_one_order_per_cloid(sim, accounts.master)


async def test_shutdown_without_flatten_leaves_the_position(
    sim: Sim, market: FrozenMarket, accounts: Accounts, tmp_path: Path
) -> None:
    cfg = bot_config(
        sim, accounts.master, tmp_path, exits={"time_stop_secs": 60}, shutdown={"flatten_on_shutdown": False}
    )
    with trio.fail_after(15):
        async with running_bot(cfg, accounts.agent) as run:
            size = await enter(run, sim, market, accounts)
            code = await run.stop()
    assert code == EXIT_OK and run.b.flat_at_exit is False
    assert sim_positions(sim, accounts.master) == {TSLA: size}


# ---------------------------------------------------------------------------------------------
# 4. Startup with a position and an orphaned order


async def test_startup_adopts_the_position_and_cancels_orphaned_orders(
    sim: Sim, market: FrozenMarket, accounts: Accounts, tmp_path: Path
) -> None:
    # Before the bot starts, another client (the master's own key) opens a long and rests a bid.
    bought = await post_order_as_master(
        sim, accounts, is_buy=True, price=market.ask, size=D("0.1"), tif="Ioc"
    )
    assert D(bought["filled"]["totalSz"]) == D("0.1"), bought
    resting = await post_order_as_master(
        sim, accounts, is_buy=True, price=D("430.00"), size=D("0.05"), tif="Gtc"
    )
    oid = resting["resting"]["oid"]
    assert [o.oid for o in sim.engine.open_orders(accounts.master)] == [oid]

    # No regression exit (band 0) and a long time stop: the position stays until the shutdown.
    cfg = bot_config(sim, accounts.master, tmp_path, exits={"time_stop_secs": 60, "mark_regression_bps": 0})
    with trio.fail_after(15):
        async with running_bot(cfg, accounts.agent) as run:
            bot = run.b
            assert bot.tracker is not None
            # Right after startup (task_status.started): synced and cleaned up.
            view = bot.tracker.view()
            [(key, position)] = view.positions.items()
            assert (key.name, position.size, position.entry_px) == (TSLA, D("0.1"), market.ask)
            assert sim.engine.open_orders(accounts.master) == []
            assert sim.engine.orders[oid].status == "canceled"
            await wait_for(lambda: bot.ready.is_ready, "READY", timeout=4)
            await trio.sleep(0.3)
            assert sim_positions(sim, accounts.master) == bot_positions(bot) == {TSLA: D("0.1")}
            code = await run.stop()
    assert code == EXIT_OK and bot.flat_at_exit is True
    assert sim_positions(sim, accounts.master) == {}


async def test_startup_survives_rate_limited_info_queries(
    sim: Sim, market: FrozenMarket, accounts: Accounts, tmp_path: Path
) -> None:
    sim.faults.info_429_next = 2  # market discovery is refused twice, then answered
    cfg = bot_config(sim, accounts.master, tmp_path)
    with trio.fail_after(15):
        async with running_bot(cfg, accounts.agent, start_timeout=8) as run:
            assert sim.faults.info_429_next == 0
            await wait_for(lambda: run.b.ready.is_ready, "READY", timeout=4)
            code = await run.stop()
    assert code == EXIT_OK


# ---------------------------------------------------------------------------------------------
# 5. Observation mode


async def test_observation_mode_counts_signals_and_places_no_orders(
    sim: Sim, market: FrozenMarket, accounts: Accounts, tmp_path: Path
) -> None:
    cfg = bot_config(sim, None, tmp_path, mode="observation")
    with trio.fail_after(15):
        async with running_bot(cfg, None) as run:
            bot = run.b
            assert not bot.trading and bot.executor is None
            await wait_for(lambda: bot.ready.is_ready, "READY (market data only)", timeout=4)
            await dislocate(run, market)
            await wait_for(lambda: bot.signals_seen >= 1, "a signal")
            await trio.sleep(0.3)
            [signal] = run.signals
            assert (signal.market.name, signal.side) == (TSLA, Side.BUY)
            assert bot.signals_seen == 1
            code = await run.stop()
    assert code == EXIT_OK
    assert sim.engine.orders == {}  # no account (the makers are not accounts) placed any order
    assert all(not a.fills for a in sim.engine.accounts.values())


# ---------------------------------------------------------------------------------------------
# 6. The demo (scripts/run)


async def test_demo_starts_and_stops_cleanly(caplog: pytest.LogCaptureFixture) -> None:
    from hip3.service.demo import run_demo

    caplog.set_level("INFO")
    with trio.fail_after(20):
        code = await run_demo(seconds=3, seed=11, port=0)
    assert code == EXIT_OK
    assert "stopped cleanly" in caplog.text
    assert "simulator's final positions for the master account: flat" in caplog.text


# ---------------------------------------------------------------------------------------------
# 7. Position hooks reach the hard stop


async def test_fees_past_the_daily_loss_limit_latch_the_hard_stop_entries_stop_exits_flow(
    sim: Sim, market: FrozenMarket, accounts: Accounts, tmp_path: Path
) -> None:
    # The entry's taker fee (TSLA is in growth mode: 0.9 bp of ~$99, about 0.9 cents) alone passes a
    # half-cent daily loss limit: the hook must hand it to the hard stop, which then blocks entries
    # while the exit still flows.
    cfg = bot_config(sim, accounts.master, tmp_path, hard_stop={"max_daily_loss_usd": "0.005"})
    with trio.fail_after(20):
        async with running_bot(cfg, accounts.agent) as run:
            bot = run.b
            assert not bot.hard_stop.latched
            await enter(run, sim, market, accounts)
            await wait_for(lambda: bot.hard_stop.latched, "the hard stop to latch on the daily loss")
            assert "daily loss" in (bot.hard_stop.reason or "")
            await exit_by_regression(run, sim, market, accounts)  # exits flow while latched
            fills_before = len(sim.engine.fills(accounts.master))
            await dislocate(run, market)
            await trio.sleep(0.3)  # a signal now must not become an order
            assert len(sim.engine.fills(accounts.master)) == fills_before
            assert bot.executor is not None and bot.executor.stats.posted == 2
            code = await run.stop()
        assert code == EXIT_OK
        # systemd restarts the bot: the latch is on disk, entries stay blocked until a human resets it
        async with running_bot(cfg, accounts.agent) as again:
            assert again.b.hard_stop.latched
            await again.stop()
