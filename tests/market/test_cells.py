"""Latest-value market cells: state transitions and the coalescing wake-up."""

from __future__ import annotations

from decimal import Decimal

import trio
import trio.testing

from hip3.core import MarketKey
from hip3.hyperliquid.events import AssetCtx, Bbo, BookLevel
from hip3.market.cells import (
    MarketCells,
    MarketConditions,
    MarketState,
    bbo_problem,
    is_valid_bbo,
    mid_px,
    spread_bps,
)

TSLA = MarketKey("xyz", "TSLA", 110001)
GOLD = MarketKey("xyz", "GOLD", 110002)
D = Decimal


def bbo(bid: str | None, ask: str | None, time: int = 1000, sz: str = "1") -> Bbo:
    return Bbo(
        coin="xyz:TSLA",
        time=time,
        bid=BookLevel(D(bid), D(sz), 1) if bid is not None else None,
        ask=BookLevel(D(ask), D(sz), 1) if ask is not None else None,
    )


def ctx(oracle: str, mark: str | None = None) -> AssetCtx:
    return AssetCtx(
        coin="xyz:TSLA",
        oracle_px=D(oracle),
        mark_px=D(mark or oracle),
        mid_px=None,
        open_interest=D(10),
        funding=D(0),
    )


def test_book_helpers() -> None:
    good = bbo("99", "101")
    assert is_valid_bbo(good)
    assert mid_px(good) == D(100)
    assert spread_bps(good) == D(200)  # 2 / 100 × 10⁴
    for bad, why in [
        (None, "no bbo"),
        (bbo(None, "101"), "no bid"),
        (bbo("99", None), "no ask"),
        (bbo(None, None), "empty book"),
        (bbo("101", "99"), "crossed"),
        (bbo("100", "100"), "crossed"),
        (bbo("99", "101", sz="0"), "non-positive"),
    ]:
        assert not is_valid_bbo(bad)
        assert mid_px(bad) is None
        assert spread_bps(bad) is None
        problem = bbo_problem(bad)
        assert problem is not None and why in problem


def test_updates_record_receive_times_and_counts() -> None:
    cells = MarketCells([TSLA])
    assert cells.get(TSLA) == MarketState(TSLA)
    cells.update_bbo(TSLA, bbo("99", "101"), 5.0)
    cells.update_ctx(TSLA, ctx("100"), 6.0)
    state = cells.get(TSLA)
    assert state.bbo_at == 5.0 and state.ctx_at == 6.0
    assert state.oracle_px == D(100)
    assert state.last_exchange_time == 1000
    assert state.updates == 2
    assert cells.get(GOLD) == MarketState(GOLD)  # never updated: "no data", no KeyError


def test_oracle_changed_at_moves_only_when_the_value_changes() -> None:
    cells = MarketCells([TSLA])
    cells.update_ctx(TSLA, ctx("100"), 1.0)
    assert cells.get(TSLA).oracle_changed_at == 1.0
    cells.update_ctx(TSLA, ctx("100", mark="100.5"), 2.0)  # same oracle, other fields moved
    assert cells.get(TSLA).oracle_changed_at == 1.0
    assert cells.get(TSLA).ctx_at == 2.0
    cells.update_ctx(TSLA, ctx("100.01"), 3.0)
    assert cells.get(TSLA).oracle_changed_at == 3.0


def test_exchange_time_going_backwards_is_recorded() -> None:
    cells = MarketCells([TSLA])
    cells.update_bbo(TSLA, bbo("99", "101", time=1000), 1.0)
    cells.update_bbo(TSLA, bbo("99", "101", time=1000), 2.0)  # equal is not backwards
    assert cells.get(TSLA).time_regressed_at is None
    cells.update_bbo(TSLA, bbo("99", "101", time=999), 3.0)
    assert cells.get(TSLA).time_regressed_at == 3.0
    assert cells.get(TSLA).last_exchange_time == 999
    cells.update_bbo(TSLA, bbo("99", "101", time=1001), 4.0)  # forward again: the mark stays
    assert cells.get(TSLA).time_regressed_at == 3.0


def test_snapshot_is_a_copy() -> None:
    cells = MarketCells([TSLA])
    snap = cells.snapshot()
    cells.update_bbo(TSLA, bbo("99", "101"), 1.0)
    assert snap[TSLA].bbo is None
    assert cells.snapshot()[TSLA].bbo is not None


async def test_wait_changed_returns_at_once_when_something_changed(
    autojump_clock: trio.testing.MockClock,
) -> None:
    cells = MarketCells([TSLA, GOLD])
    cells.update_bbo(TSLA, bbo("99", "101"), 0.0)
    cells.update_ctx(GOLD, ctx("2000"), 0.0)
    start = trio.current_time()
    assert await cells.wait_changed() == {TSLA, GOLD}
    assert trio.current_time() == start
    with trio.move_on_after(5) as scope:
        await cells.wait_changed()  # nothing new since the last call: parks
    assert scope.cancelled_caught


async def test_wait_changed_parks_until_the_next_update(autojump_clock: trio.testing.MockClock) -> None:
    cells = MarketCells([TSLA])
    woke_at: list[float] = []

    async def reader() -> None:
        changed = await cells.wait_changed()
        woke_at.append(trio.current_time())
        assert changed == {TSLA}

    async with trio.open_nursery() as nursery:
        nursery.start_soon(reader)
        await trio.sleep(3)
        cells.update_bbo(TSLA, bbo("99", "101"), trio.current_time())
    assert woke_at == [3.0]


async def test_slow_reader_sees_one_wake_with_the_newest_state(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Three updates to one market while the reader is busy ⇒ one wake, newest book, no backlog."""
    cells = MarketCells([TSLA])
    seen: list[tuple[set[MarketKey], Decimal]] = []

    async def reader(task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        while True:
            changed = await cells.wait_changed()
            state = cells.get(TSLA)
            assert state.bbo is not None and state.bbo.ask is not None
            seen.append((changed, state.bbo.ask.px))
            await trio.sleep(10)  # busy evaluating

    async with trio.open_nursery() as nursery:
        await nursery.start(reader)
        cells.update_bbo(TSLA, bbo("99", "101"), trio.current_time())
        await trio.sleep(1)  # reader has woken once and is now busy
        for ask in ("102", "103", "104"):
            cells.update_bbo(TSLA, bbo("99", ask), trio.current_time())
            await trio.sleep(1)
        await trio.sleep(30)
        nursery.cancel_scope.cancel()
    assert seen == [({TSLA}, D(101)), ({TSLA}, D(104))]


async def test_conditions_are_a_latest_value_cell_that_wakes_the_reader() -> None:
    cells = MarketCells([TSLA], {TSLA: MarketConditions(oi_cap=Decimal(1000))})
    assert cells.conditions(TSLA) == MarketConditions(Decimal(1000))
    other = MarketKey("xyz", "GOLD", 110002)
    assert cells.conditions(other) == MarketConditions()  # none published: no cap, trading
    cells.publish_conditions(TSLA, MarketConditions(Decimal(1000), halted=True))
    assert await cells.wait_changed() == {TSLA}
    assert cells.conditions(TSLA).halted
    cells.publish_conditions(TSLA, MarketConditions(Decimal(1000), halted=True))  # same value again
    cells.update_bbo(TSLA, bbo("100", "101"), 1.0)
    assert await cells.wait_changed() == {TSLA}


def test_mid_and_spread_are_computed_once_per_book_update() -> None:
    cells = MarketCells([TSLA])
    cells.update_bbo(TSLA, bbo("99", "101"), 1.0)
    state = cells.get(TSLA)
    assert state.mid == Decimal(100) and state.spread_bps == Decimal(200)
    cells.update_ctx(TSLA, ctx("100"), 2.0)
    assert cells.get(TSLA).mid is state.mid  # a context update carries the book's values over
    cells.update_bbo(TSLA, bbo("100", None), 3.0)  # one-sided: no mid, no spread
    assert cells.get(TSLA).mid is None and cells.get(TSLA).spread_bps is None
    # built directly (tests), the derived values follow the given book
    assert MarketState(TSLA, bbo=bbo("99", "101")).spread_bps == Decimal(200)
