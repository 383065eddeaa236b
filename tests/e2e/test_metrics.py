"""The Prometheus endpoint scraped during an end-to-end round trip against hip3.sim.

Expected values come from the simulator's side (its fills, fees, PnL and accepted orders) or are
computed by hand from the prices the test set, never read back from the bot.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import httpx
import trio
from prometheus_client.parser import text_string_to_metric_families

from hip3.hyperliquid import parse
from hip3.sim import Sim

from .conftest import (
    TSLA,
    Accounts,
    BotRun,
    FrozenMarket,
    bot_config,
    cloid_counts,
    running_bot,
    wait_for,
)
from .test_bot_vs_sim import assert_books_agree, enter, exit_by_regression

D = Decimal
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def scrape(run: BotRun, path: str = "/metrics") -> httpx.Response:
    address = run.b.metrics_address
    assert address is not None, "metrics endpoint not started"
    host, port = address
    async with httpx.AsyncClient(timeout=3) as client:
        return await client.get(f"http://{host}:{port}{path}")


async def samples(run: BotRun) -> Samples:
    response = await scrape(run)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    out: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def value(got: Samples, name: str, **labels: str) -> float | None:
    return got.get((name, frozenset(labels.items())))


async def test_metrics_scraped_during_a_round_trip(
    sim: Sim, market: FrozenMarket, accounts: Accounts, tmp_path: Path
) -> None:
    cfg = bot_config(sim, accounts.master, tmp_path, metrics={"listen": "127.0.0.1:0"})
    with trio.fail_after(25):
        async with running_bot(cfg, accounts.agent) as run:
            bot = run.b
            tsla = bot.markets[TSLA]
            assert bot.metrics_address is not None and bot.metrics_address[0] == "127.0.0.1"
            await wait_for(lambda: bot.ready.is_ready, "READY", timeout=4)

            got = await samples(run)
            assert value(got, "hip3_ready") == 1
            assert value(got, "hip3_hard_stop_latched") == 0
            assert value(got, "hip3_trading_mode") == 1
            assert value(got, "hip3_ws_connected") == 1
            assert value(got, "hip3_ws_reconnects_total") == 0
            updates = value(got, "hip3_feed_updates_total", market=TSLA)
            assert updates is not None and updates >= 2  # a bbo and an asset context at least
            age = value(got, "hip3_feed_bbo_age_seconds", market=TSLA)
            assert age is not None and 0 <= age < 10
            assert value(got, "hip3_orders_total", outcome="posted") == 0
            assert (value(got, "process_start_time_seconds") or 0) > 0  # restarts show as changes

            # A book with no asks: the mark/mid gate has no mid to compare with and blocks the market.
            sim.engine.set_book("TSLA", bids=[(market.bid, market.size)], asks=[])
            await wait_for(lambda: tsla in bot.scanner.gate_log.blocked_markets(), "the market to be blocked")
            got = await samples(run)
            # a one-sided book: refused by the book check (the mark-mid gate is off by default)
            assert value(got, "hip3_market_blocked", market=TSLA, gate="spread_shock") == 1
            blocked = value(got, "hip3_gate_blocked_evaluations_total", market=TSLA, gate="spread_shock")
            assert blocked is not None and blocked >= 1
            market.quote(market.bid, market.ask)
            await wait_for(lambda: not bot.scanner.gate_log.blocked_markets(), "the market to be unblocked")

            size = await enter(run, sim, market, accounts)
            mark = sorted((market.oracle, market.bid, market.ask))[1]
            await wait_for(
                lambda: (ctx := bot.cells.get(tsla).ctx) is not None and ctx.mark_px == mark,
                f"the bot to see the mark at {mark}",
            )
            got = await samples(run)
            assert value(got, "hip3_signals_total", market=TSLA, side="buy") == 1
            assert value(got, "hip3_orders_total", outcome="posted") == 1
            assert value(got, "hip3_orders_total", outcome="filled") == 1
            assert value(got, "hip3_order_round_trip_seconds_count", via="ws") == 1
            assert value(got, "hip3_signal_to_fill_seconds_count") == 1
            assert value(got, "hip3_position_size", market=TSLA) == float(size)
            notional = value(got, "hip3_position_notional_usd", market=TSLA, side="buy")
            assert notional is not None and abs(notional - float(size * mark)) < 1e-6

            await exit_by_regression(run, sim, market, accounts)
            await assert_books_agree(run, sim, accounts)
            acct = sim.engine.account(accounts.master)
            assert acct is not None
            await trio.sleep(0.6)  # one more tick of the loop-lag probe
            got = await samples(run)
            sent = sum(cloid_counts(sim, accounts.master).values())
            assert sent == 2
            assert value(got, "hip3_orders_total", outcome="posted") == sent
            assert value(got, "hip3_orders_total", outcome="filled") == len(sim.engine.fills(accounts.master))
            assert value(got, "hip3_order_round_trip_seconds_count", via="ws") == sent
            assert value(got, "hip3_position_size", market=TSLA) is None  # flat: no series
            assert value(got, "hip3_realized_pnl_usd") == float(acct.realized_pnl)
            fees = value(got, "hip3_fees_usd_total")
            assert fees is not None and fees > 0 and fees == float(acct.fees_paid)
            assert value(got, "hip3_exits_requested_total", reason="mark_regression") == 1
            lag_probes = value(got, "hip3_event_loop_lag_seconds_count")
            assert lag_probes is not None and lag_probes >= 1

            assert (await scrape(run, "/other")).status_code == 404
            await run.stop()


async def test_metrics_off_by_default(
    sim: Sim, market: FrozenMarket, accounts: Accounts, tmp_path: Path
) -> None:
    cfg = bot_config(sim, accounts.master, tmp_path)
    assert cfg.metrics.listen == ""
    with trio.fail_after(10):
        async with running_bot(cfg, accounts.agent) as run:
            assert run.b.metrics_address is None
            await run.stop()


async def test_metrics_in_observation_mode(sim: Sim, market: FrozenMarket, tmp_path: Path) -> None:
    parse.STATS.reset()
    sim.faults.malformed_frame_rate = 0.2  # some frames the parser must refuse (and count)
    cfg = bot_config(sim, None, tmp_path, mode="observation", metrics={"listen": "127.0.0.1:0"})
    with trio.fail_after(10):
        async with running_bot(cfg, None) as run:
            await wait_for(lambda: run.b.ready.is_ready, "market data (READY in observation)", timeout=4)
            got = await samples(run)
            assert value(got, "hip3_trading_mode") == 0
            assert value(got, "hip3_ready") == 1
            updates = value(got, "hip3_feed_updates_total", market=TSLA)
            assert updates is not None and updates >= 2
            assert not any(name.startswith(("hip3_orders", "hip3_position")) for name, _ in got)
            for _ in range(20):
                market.refresh()
                await trio.sleep(0.02)
            got = await samples(run)
            refused = sum(v for (name, _), v in got.items() if name == "hip3_feed_rejected_total")
            assert refused >= 1
            await run.stop()
