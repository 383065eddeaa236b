"""Dislocation records (the ground truth a run is scored against), stale-quote pulls, internal pricing."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import attrs
import pytest
import trio

from hip3.core import Side
from hip3.sim.config import SimConfig
from hip3.sim.dislocations import DislocationLog
from hip3.sim.server import Sim, open_sim

from .helpers import NOW_MS, TSLA, SdkClient, statuses

D = Decimal


def _observe(log: DislocationLog, t: int, bid: str, ask: str, oracle: str = "100", gap: str = "0") -> None:
    log.observe(
        t,
        "xyz:X",
        oracle=D(oracle),
        gap_bps=D(gap),
        cost_bps=D(10),
        best_bid=(D(bid), D(1)),
        best_ask=(D(ask), D(2)),
    )


def test_log_opens_tracks_best_and_closes() -> None:
    log = DislocationLog()
    _observe(log, 1000, "99.9", "100.1")  # no edge
    _observe(log, 1070, "99.7", "99.85")  # ask 15 bps below the oracle: opens (cost 10)
    _observe(log, 1140, "99.6", "99.75")  # 25 bps: the best
    log.note_trade("xyz:X", Side.BUY, "0xAB", D("0.5"))
    log.note_trade("xyz:X", Side.SELL, "0xcd", D("1"))  # the other side: not a capture
    [still_open] = log.records()
    assert still_open.is_open and still_open.best_edge_bps == D(25)
    _observe(log, 1210, "99.8", "99.95")  # 5 bps: below the cost, closes
    [record] = log.records()
    assert (record.side, record.opened_ms, record.closed_ms, record.duration_ms) == (
        Side.BUY,
        1070,
        1210,
        140,
    )
    assert (record.best_edge_bps, record.best_ms, record.best_px, record.best_sz) == (
        D(25),
        1140,
        D("99.75"),
        2,
    )
    assert record.taken == (("0xab", D("0.5")),) and record.taken_by("0xAB") == D("0.5")
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        record.closed_ms = 5  # type: ignore[misc]


def test_log_side_flip_and_structural_gap() -> None:
    log = DislocationLog()
    _observe(log, 0, "99.7", "99.8")  # buy side, 20 bps
    _observe(log, 70, "100.2", "100.3")  # bid 20 bps above: the buy one closes, a sell one opens
    buy, sell = log.records()
    assert (buy.side, buy.closed_ms, sell.side, sell.opened_ms, sell.closed_ms) == (
        Side.BUY,
        70,
        Side.SELL,
        70,
        None,
    )
    gap = DislocationLog()
    _observe(gap, 0, "100.28", "100.33", gap="30")  # 28 bps above the oracle, but that is where it sits
    assert gap.records() == ()


async def test_sim_records_an_oracle_jump_until_the_book_catches_up(sim: Sim) -> None:
    trader = SdkClient()
    sim.engine.fund(trader.address, 10000)
    sim.engine.set_oracle("TSLA", "101")  # asks at 100.1: 89 bps below the oracle
    await trio.sleep(0.2)
    [record] = [d for d in sim.dislocations() if d.coin == "xyz:TSLA"]
    assert record.is_open and record.side is Side.BUY
    assert record.best_edge_bps == (D(101) - D("100.1")) / D(101) * 10000
    # two 0.9 bp fees, and the caught-up bid 101 − 2 bps = 100.9798 rounds down to 100.97: 0.03 away
    assert record.cost_bps == D("1.8") + D("0.03") / D(101) * 10000
    body = trader.order(TSLA, True, "100.1", "0.5", nonce=sim.engine.now_ms())
    sim.execute_action(body)
    await trio.sleep(0.2)
    sim.engine.set_book("TSLA", bids=[("100.9", "1")], asks=[("101.1", "1")])
    await trio.sleep(0.2)
    [record] = [d for d in sim.dislocations() if d.coin == "xyz:TSLA"]
    assert not record.is_open and record.closed_ms is not None and record.closed_ms > record.opened_ms
    assert record.taken_by(trader.address) == D("0.5")


async def _run(config: SimConfig, seconds: float) -> tuple[Any, ...]:
    async with open_sim(attrs.evolve(config, start_time_ms=NOW_MS)) as sim:
        await trio.sleep(seconds)
        return sim.dislocations()


async def test_model_run_records_are_deterministic_and_hood_gap_is_not_edge(
    config: SimConfig, autojump_clock: Any
) -> None:
    first = await _run(config, 240)
    assert first == await _run(config, 240)
    assert len(first) >= 5
    assert all(d.best_edge_bps > d.cost_bps for d in first)
    assert all(d.closed_ms is None or d.closed_ms > d.opened_ms for d in first)
    # HOOD's book sits 30 bps above its oracle all the time; only lag on top of that is recorded
    hood = [d for d in first if d.coin == "xyz:HOOD"]
    assert all(d.duration_ms is not None and d.duration_ms < 10_000 for d in hood)


async def test_stale_quote_pulled_before_the_taker(config: SimConfig, autojump_clock: Any) -> None:
    """With probability 1 the makers pull an ask below the oracle before a taker's IOC reaches it."""
    for probability, expect_fill in ((1.0, False), (0.0, True)):
        cfg = attrs.evolve(config, model=attrs.evolve(config.model, stale_quote_pull_probability=probability))
        async with open_sim(cfg) as sim:
            trader = SdkClient()
            sim.engine.fund(trader.address, 10000)
            market = sim.engine.market("TSLA")
            stale_ask = market.best(Side.SELL)
            assert stale_ask is not None
            # the oracle jumps 50 bps; the makers' quotes are still around the old value
            sim.engine.set_oracle("TSLA", market.spec.round_price(market.oracle_px * D("1.005"), up=False))
            await trio.sleep(0.1)
            assert sim.dislocations()[-1].is_open
            body = trader.order(TSLA, True, stale_ask.limit_px, "0.05", nonce=sim.engine.now_ms())
            [status] = statuses(sim.execute_action(body)[0])
            assert ("filled" in status) is expect_fill, status
            if not expect_fill:
                assert status["error"].startswith("Order could not immediately match")
                [record] = [d for d in sim.dislocations() if d.coin == "xyz:TSLA"]
                assert record.pulled == 1 and not record.is_open


async def test_internal_pricing_oracle_follows_the_book(config: SimConfig, autojump_clock: Any) -> None:
    async with open_sim(attrs.evolve(config, start_time_ms=NOW_MS)) as sim:
        market = sim.engine.market("GOLD")
        start = market.oracle_px
        sim.model.set_internal_pricing(True)
        # the book moves 1 % up and stays there: the oracle is pulled after it, update by update
        sim.engine.set_book("GOLD", bids=[("4100", "1")], asks=[("4101", "1")])
        await trio.sleep(30)
        assert abs(market.oracle_px - D("4100.5")) < D("4100.5") * D("0.001"), (start, market.oracle_px)
        # no dislocation while the oracle follows the book, although it lagged it by up to 1 %
        assert not [d for d in sim.dislocations() if d.coin == "xyz:GOLD" and d.opened_ms > NOW_MS + 1000]
        # back to external pricing: the same lagging book is a dislocation again
        sim.model.set_internal_pricing(False)
        sim.engine.set_oracle("GOLD", "4060")
        await trio.sleep(0.5)
        [last] = [d for d in sim.dislocations() if d.coin == "xyz:GOLD"][-1:]
        assert last.is_open and last.side is Side.SELL
