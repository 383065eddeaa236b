"""Exits: time stop and mark regression timing, one flatten per market, retry backoff, shutdown."""

from __future__ import annotations

import functools
import itertools
from decimal import Decimal
from typing import Any

import attrs
import pytest
import trio

from hip3.core import Cloid, MarketKey, Price, Side, Size
from hip3.hyperliquid.events import OrderStatusResult
from hip3.trading.edge import fill_reports
from hip3.trading.executor import Executor, ExecutorParams, run_executor
from hip3.trading.exits import ExitParams, exit_reason, run_exits, shutdown_sequence
from hip3.trading.messages import FlattenRequest, PositionView, ReserveGranted, ReserveRequest, Signal
from hip3.trading.reports import OrderReport, PostFilled, PostRefused
from tests.fakes.trading import (
    GOLD,
    SPECS,
    TSLA,
    D,
    FakeCells,
    FakeHardStop,
    FakeInfo,
    FakeReady,
    FakeSigner,
    FakeTracker,
    FakeWs,
    bbo,
    cloid_of,
    ctx,
    filled_all,
    is_benign_reject,
    order_error,
)

PARAMS = ExitParams(
    time_stop_secs=20,
    mark_regression_bps=Decimal(5),
    min_holding_secs=1,
    retry_backoff_initial_secs=1,
    retry_backoff_max_secs=4,
    check_interval_secs=0.25,
)


def pos(size: str, opened_at: float = 0.0, market: MarketKey = TSLA) -> PositionView:
    return PositionView(market, D(size), D("100"), opened_at)


# ---------------------------------------------------------------------------------------------
# Pure rule


def test_time_stop() -> None:
    book, oracle = bbo(TSLA, "90", "91"), ctx(TSLA, "100")
    assert exit_reason(pos("1"), book, oracle, 19.99, PARAMS) is None
    assert exit_reason(pos("1"), book, oracle, 20.0, PARAMS) == "time_stop"
    assert exit_reason(pos("1"), None, None, 25.0, PARAMS) == "time_stop"


def test_mark_regression_long_and_short() -> None:
    oracle = ctx(TSLA, "100")
    # 5 bps of 100 = 0.05: a long exits once the bid is >= 99.95.
    assert exit_reason(pos("1"), bbo(TSLA, "99.94", "100.2"), oracle, 2, PARAMS) is None
    assert exit_reason(pos("1"), bbo(TSLA, "99.95", "100.2"), oracle, 2, PARAMS) == "mark_regression"
    # A short exits once the ask is <= 100.05.
    assert exit_reason(pos("-1"), bbo(TSLA, "99.5", "100.06"), oracle, 2, PARAMS) is None
    assert exit_reason(pos("-1"), bbo(TSLA, "99.5", "100.05"), oracle, 2, PARAMS) == "mark_regression"
    # Not before the minimum holding time; not on a missing side.
    assert exit_reason(pos("1"), bbo(TSLA, "100", "100.2"), oracle, 0.99, PARAMS) is None
    assert exit_reason(pos("1"), bbo(TSLA, None, "100.2"), oracle, 2, PARAMS) is None


def test_caught_up_means_back_at_the_markets_structural_place() -> None:
    # HOOD-like: the book settles 30 bps above the oracle. A short sold at a stale bid far above
    # that has caught up when the ask is back near oracle + 30 bps, not near the oracle (where it
    # never goes: the position would wait for the time stop).
    oracle, settled = ctx(TSLA, "100"), bbo(TSLA, "100.28", "100.32")
    assert exit_reason(pos("-1"), settled, oracle, 2, PARAMS) is None
    assert exit_reason(pos("-1"), settled, oracle, 2, PARAMS, gap_bps=D(30)) == "mark_regression"
    # Whichever place the book reaches first: a long on the same book closes with the bid back
    # within 5 bps of the oracle (99.95), the nearer of the two; it does not wait for +30 bps.
    assert exit_reason(pos("1"), bbo(TSLA, "99.94", "100.3"), oracle, 2, PARAMS, gap_bps=D(30)) is None
    assert (
        exit_reason(pos("1"), bbo(TSLA, "99.95", "100.3"), oracle, 2, PARAMS, gap_bps=D(30))
        == "mark_regression"
    )
    # A book that settles 30 bps below the oracle: a long closes near oracle − 30 (99.70 − 5 bps).
    assert exit_reason(pos("1"), bbo(TSLA, "99.66", "99.8"), oracle, 2, PARAMS, gap_bps=D(-30)) == (
        "mark_regression"
    )
    assert exit_reason(pos("1"), bbo(TSLA, "99.64", "99.8"), oracle, 2, PARAMS, gap_bps=D(-30)) is None


async def test_the_exit_task_measures_against_the_structural_gap_it_is_given(autojump_clock: Any) -> None:
    tracker, cells = FakeTracker(), FakeCells()
    cells.set(TSLA, bbo(TSLA, "100.28", "100.32"), ctx(TSLA, "100"))
    cells.set(GOLD, bbo(GOLD, "2005.6", "2006.4"), ctx(GOLD, "2000"))  # 30 bps above, no gap known
    send, recv = trio.open_memory_channel[FlattenRequest](10)
    got: list[tuple[float, FlattenRequest]] = []
    gaps = {TSLA: D(30)}
    async with trio.open_nursery() as nursery:
        nursery.start_soon(collect, recv, got)
        await nursery.start(
            functools.partial(run_exits, structural_gap=lambda market, now: gaps.get(market)),
            tracker,
            cells,
            send,
            PARAMS,
        )
        t0 = trio.current_time()
        tracker.open(TSLA, "-1", "100.6", opened_at=t0)
        tracker.open(GOLD, "-1", "2012", opened_at=t0)
        await trio.sleep(5)
        nursery.cancel_scope.cancel()
    # (Nobody acts on the request here, so it is retried; the first one is what counts.)
    assert got[0] == (t0 + 1.0, FlattenRequest(TSLA, "mark_regression"))
    assert all(r.market == TSLA for _, r in got)  # GOLD: no gap known, 30 bps from the oracle is not back


# ---------------------------------------------------------------------------------------------
# The task


async def collect(
    recv: trio.MemoryReceiveChannel[FlattenRequest], out: list[tuple[float, FlattenRequest]]
) -> None:
    async for req in recv:
        out.append((trio.current_time(), req))


async def test_time_stop_fires_at_the_right_trio_time(autojump_clock: Any) -> None:
    tracker, cells = FakeTracker(), FakeCells()
    cells.set(TSLA, bbo(TSLA, "90", "91"), ctx(TSLA, "100"))
    send, recv = trio.open_memory_channel[FlattenRequest](10)
    got: list[tuple[float, FlattenRequest]] = []
    async with trio.open_nursery() as nursery:
        nursery.start_soon(collect, recv, got)
        await nursery.start(run_exits, tracker, cells, send, PARAMS)
        await trio.sleep(3.3)
        tracker.open(TSLA, "1", "100")
        opened = trio.current_time()
        # A resync that rewrites the position keeps opened_at: no reset of the timer.
        await trio.sleep(10)
        tracker.open(TSLA, "1.5", "100", opened_at=opened)
        await trio.sleep(10.5)
        nursery.cancel_scope.cancel()
    # Nobody acts on the request here, so it is retried later; the first one is what counts.
    assert [(t - opened, r) for t, r in got] == [(20.0, FlattenRequest(TSLA, "time_stop"))]


async def test_mark_regression_fires_after_min_holding_and_on_the_next_check(autojump_clock: Any) -> None:
    tracker, cells = FakeTracker(), FakeCells()
    cells.set(TSLA, bbo(TSLA, "99.99", "100.1"), ctx(TSLA, "100"))  # already back at the oracle
    cells.set(GOLD, bbo(GOLD, "1990", "1995"), ctx(GOLD, "2000"))
    send, recv = trio.open_memory_channel[FlattenRequest](10)
    got: list[tuple[float, FlattenRequest]] = []
    async with trio.open_nursery() as nursery:
        nursery.start_soon(collect, recv, got)
        await nursery.start(run_exits, tracker, cells, send, PARAMS)
        t0 = trio.current_time()
        tracker.open(TSLA, "1", "100", opened_at=t0)
        tracker.open(GOLD, "1", "2000", opened_at=t0)
        await trio.sleep(5.1)
        cells.set(GOLD, bbo(GOLD, "1999.5", "2001"))  # within 5 bps (1999) now
        await trio.sleep(1)
        nursery.cancel_scope.cancel()
    assert got[0] == (t0 + 1.0, FlattenRequest(TSLA, "mark_regression"))
    t_gold, req_gold = next((t, r) for t, r in got if r.market == GOLD)
    assert req_gold == FlattenRequest(GOLD, "mark_regression")
    assert t0 + 5.1 <= t_gold <= t0 + 5.1 + PARAMS.check_interval_secs


async def fail_every_flatten(
    tracker: FakeTracker, recv: trio.MemoryReceiveChannel[FlattenRequest], times: list[float]
) -> None:
    """Reserve each flatten, then let it fail (IOC no match): the position stays open."""
    async for req in recv:
        times.append(trio.current_time())
        cloid = Cloid.random()
        p = tracker.positions[req.market]
        decision = await tracker.reserve(
            ReserveRequest(
                cloid, req.market, p.side.opposite, Size(abs(p.size)), Price(D(1)), True, req.reason
            )
        )
        assert isinstance(decision, ReserveGranted)
        await trio.sleep(0.1)
        await tracker.post_result(cloid, PostRefused("Order could not immediately match. asset=1"))


async def test_failed_flatten_retries_with_doubling_capped_backoff(autojump_clock: Any) -> None:
    tracker, cells = FakeTracker(), FakeCells()
    send, recv = trio.open_memory_channel[FlattenRequest](10)
    times: list[float] = []
    async with trio.open_nursery() as nursery:
        nursery.start_soon(fail_every_flatten, tracker, recv, times)
        planner = await nursery.start(run_exits, tracker, cells, send, PARAMS)
        t0 = trio.current_time()
        tracker.open(TSLA, "1", "100", opened_at=t0)
        await trio.sleep(40)
        gaps = [round(b - a, 6) for a, b in itertools.pairwise(times)]
        assert times[0] == t0 + 20
        # Each failure is seen when the reservation ends (0.1 s after the request); then 1, 2, 4, 4 s.
        assert gaps[:5] == [1.1, 2.1, 4.1, 4.1, 4.1]
        # Once the position closes, the backoff resets for the next position.
        tracker.close(TSLA)
        await trio.sleep(1)
        assert TSLA not in planner.markets
        nursery.cancel_scope.cancel()


async def test_denied_request_backs_off_after_the_grace(autojump_clock: Any) -> None:
    tracker, cells = FakeTracker(), FakeCells()
    send, recv = trio.open_memory_channel[FlattenRequest](10)
    got: list[tuple[float, FlattenRequest]] = []
    async with trio.open_nursery() as nursery:
        nursery.start_soon(collect, recv, got)  # nobody acts on the request: never in flight
        await nursery.start(run_exits, tracker, cells, send, PARAMS)
        t0 = trio.current_time()
        tracker.open(TSLA, "1", "100", opened_at=t0 - 30)
        await trio.sleep(5.5)
        nursery.cancel_scope.cancel()
    # request at 0, grace 1 s, backoff 1 s -> 2; grace 1 + backoff 2 -> 5
    assert [round(t - t0, 6) for t, _ in got] == [0.0, 2.0, 5.0]


async def test_two_exits_for_one_market_send_one_flatten(autojump_clock: Any) -> None:
    # One flatten per market, end to end through the executor: time stop and mark regression both true, and
    # the first flatten hangs (its outcome unknown for a long time): exactly one order is posted.
    tracker, cells = FakeTracker(), FakeCells()
    cells.set(TSLA, bbo(TSLA, "100", "100.1"), ctx(TSLA, "100"))
    signer, ws, info = FakeSigner(), FakeWs(), FakeInfo()
    ws.hang = True
    info.status_answers = [OrderStatusResult(known=True, status="open")]
    executor = Executor(
        tracker=tracker,
        cells=cells,
        specs=SPECS,
        signer=signer,
        user="0x" + "1" * 40,
        ws=ws,
        info=info,
        hard_stop=FakeHardStop(),
        ready=FakeReady(),
        is_benign_reject=is_benign_reject,
        params=ExecutorParams(post_timeout_secs=5, resolve_timeout_secs=60),
    )
    _sig_send, sig_recv = trio.open_memory_channel[Signal](10)
    fl_send, fl_recv = trio.open_memory_channel[FlattenRequest](10)
    async with trio.open_nursery() as nursery:
        await nursery.start(run_executor, executor, sig_recv, fl_recv)
        await nursery.start(run_exits, tracker, cells, fl_send.clone(), PARAMS)
        tracker.open(TSLA, "1", "100", opened_at=trio.current_time() - 25)
        await fl_send.send(FlattenRequest(TSLA, "hard_stop"))  # a third source at the same moment
        await trio.sleep(30)
        assert len(ws.posts) == 1 and len(signer.signed) == 1
        assert TSLA in tracker.view().flattening_markets
        nursery.cancel_scope.cancel()


# ---------------------------------------------------------------------------------------------
# Shutdown


@attrs.define
class Switch:
    stopped: bool = False

    def stop_entries(self) -> None:
        self.stopped = True


async def test_shutdown_waits_for_settling_then_flattens_to_flat(autojump_clock: Any) -> None:
    # The real tracker, the real executor; the exchange (FakeWs) fills every order at its limit.
    from hip3.trading.reports import AccountSnapshot, FillReport, PositionReport, TradeId
    from hip3.trading.tracker import Tracker
    from hip3.trading.tracker.task import run_tracker

    tracker = Tracker(
        {TSLA.name: TSLA, GOLD.name: GOLD},
        max_notional_per_market=D(1000),
        max_total_notional=D(1000),
        max_concurrent_positions=3,
    )
    cells = FakeCells()
    cells.set(TSLA, bbo(TSLA, "100", "100.1"), ctx(TSLA, "100"))
    cells.set(GOLD, bbo(GOLD, "2000", "2001"), ctx(GOLD, "2000"))
    signer = FakeSigner()
    fill_all = filled_all(signer)
    _sig_send, sig_recv = trio.open_memory_channel[Signal](10)
    fl_send, fl_recv = trio.open_memory_channel[FlattenRequest](10)
    async with trio.open_nursery() as nursery:
        handle = await nursery.start(run_tracker, tracker)

        def fill_and_report(body: dict[str, Any]) -> Any:
            # The answer says filled; the stream reports the fill with its fee a moment later.
            order = next(o for o in signer.signed if o.cloid == cloid_of(body))
            market = next(m for m in SPECS if m.asset == order.asset)
            side = Side.BUY if order.is_buy else Side.SELL
            fill = FillReport(
                TradeId(market.name, len(signer.signed)),
                order.cloid,
                side,
                order.price,
                order.size,
                D("0.01"),
                1,
                7,
            )
            nursery.start_soon(handle.report_fills, (fill,))
            return fill_all(body)

        ws = FakeWs(fill_and_report)
        executor = Executor(
            tracker=handle,
            cells=cells,
            specs=SPECS,
            signer=signer,
            user="0x" + "1" * 40,
            ws=ws,
            info=FakeInfo(),
            hard_stop=FakeHardStop(),
            ready=FakeReady(),
            is_benign_reject=is_benign_reject,
        )
        await nursery.start(run_executor, executor, sig_recv, fl_recv)
        held = AccountSnapshot(
            positions=(
                PositionReport(TSLA.name, D(1), D(100)),
                PositionReport(GOLD.name, D("-0.01"), D(2000)),
            )
        )
        await handle.apply_snapshot(await handle.begin_fetch(), held)
        assert set(handle.view().positions) == {TSLA, GOLD}
        # An entry still in flight somewhere: the sequence waits for it before flattening.
        pending = ReserveRequest(Cloid.random(), GOLD, Side.SELL, Size(D("0.01")), Price(D(2000)), False, "x")
        await handle.reserve(pending)

        async def settle_later() -> None:
            await trio.sleep(2)
            await handle.post_result(pending.cloid, PostRefused("Order could not immediately match"))

        nursery.start_soon(settle_later)
        t0 = trio.current_time()
        flat = await shutdown_sequence(
            handle, fl_send, executor, flatten_on_shutdown=True, settle_timeout_secs=10
        )
        assert flat and handle.view().positions == {}
        assert executor.entries_stopped
        assert trio.current_time() - t0 < 3
        assert sorted(s.reduce_only for s in signer.signed) == [True, True]
        nursery.cancel_scope.cancel()


async def test_shutdown_is_bounded_when_flattens_keep_failing(autojump_clock: Any) -> None:
    tracker, cells = FakeTracker(), FakeCells()
    cells.set(TSLA, bbo(TSLA, "100", "100.1"), ctx(TSLA, "100"))
    signer = FakeSigner()
    ws = FakeWs(order_error("Order could not immediately match against any resting orders. asset=1"))
    executor = Executor(
        tracker=tracker,
        cells=cells,
        specs=SPECS,
        signer=signer,
        user="0x" + "1" * 40,
        ws=ws,
        info=FakeInfo(),
        hard_stop=FakeHardStop(),
        ready=FakeReady(),
        is_benign_reject=is_benign_reject,
    )
    _sig_send, sig_recv = trio.open_memory_channel[Signal](10)
    fl_send, fl_recv = trio.open_memory_channel[FlattenRequest](10)
    async with trio.open_nursery() as nursery:
        await nursery.start(run_executor, executor, sig_recv, fl_recv)
        tracker.open(TSLA, "1", "100")
        t0 = trio.current_time()
        flat = await shutdown_sequence(
            tracker,
            fl_send,
            executor,
            flatten_on_shutdown=True,
            settle_timeout_secs=3,
            flatten_timeout_secs=5,
            resend_interval_secs=1,
        )
        assert not flat and TSLA in tracker.positions
        assert trio.current_time() - t0 == 5
        assert 4 <= len(ws.posts) <= 6  # one retry per second, bounded
        nursery.cancel_scope.cancel()


async def test_shutdown_without_flatten_leaves_positions(autojump_clock: Any) -> None:
    tracker = FakeTracker()
    switch = Switch()
    send, recv = trio.open_memory_channel[FlattenRequest](10)
    tracker.open(TSLA, "1", "100")
    assert not await shutdown_sequence(
        tracker, send, switch, flatten_on_shutdown=False, settle_timeout_secs=1
    )
    assert switch.stopped
    assert recv.statistics().current_buffer_used == 0
    assert await shutdown_sequence(
        FakeTracker(), send, switch, flatten_on_shutdown=True, settle_timeout_secs=1
    )


async def test_shutdown_waits_for_the_fee_of_a_fill_known_only_from_its_response(autojump_clock: Any) -> None:
    # The real tracker: an order response says "filled" (no fee); the userFills message with the
    # fee comes 1 s later. Exiting before it would leave that fee out of the daily loss total.
    from hip3.hyperliquid.events import Fill
    from hip3.trading.tracker import Tracker
    from hip3.trading.tracker.task import run_tracker

    tracker = Tracker(
        {TSLA.name: TSLA},
        max_notional_per_market=D(1000),
        max_total_notional=D(1000),
        max_concurrent_positions=2,
    )
    send, _recv = trio.open_memory_channel[FlattenRequest](10)
    cloid = Cloid.random()
    async with trio.open_nursery() as nursery:
        handle = await nursery.start(run_tracker, tracker)
        await handle.reserve(ReserveRequest(cloid, TSLA, Side.BUY, Size(D(1)), Price(D(100)), False, "entry"))
        await handle.post_result(cloid, PostFilled(D(1), D(100), 7))
        assert TSLA in handle.view().awaiting_fill_reports

        async def fill_report_later() -> None:
            await trio.sleep(1)
            fill = Fill(
                TSLA.name,
                D(100),
                D(1),
                Side.BUY,
                1,
                D(0),
                "Open Long",
                D(0),
                "0x",
                7,
                True,
                D("0.09"),
                1,
                cloid,
            )
            await handle.report_fills(fill_reports([fill]))

        nursery.start_soon(fill_report_later)
        start = trio.current_time()
        await shutdown_sequence(handle, send, Switch(), flatten_on_shutdown=False, settle_timeout_secs=5)
        assert trio.current_time() - start == pytest.approx(1, abs=0.01)
        assert handle.view().fees == D("0.09") and not handle.view().awaiting_fill_reports
        nursery.cancel_scope.cancel()


# ---------------------------------------------------------------------------------------------
# Shutdown while an order's outcome is unknown (the real tracker)


def _real_tracker() -> Any:
    from hip3.trading.tracker import Tracker

    return Tracker(
        {TSLA.name: TSLA},
        max_notional_per_market=D(1000),
        max_total_notional=D(1000),
        max_concurrent_positions=2,
    )


def _outcome_flat(outcome: Any) -> bool:
    return bool(outcome.flat) if hasattr(outcome, "flat") else bool(outcome)


async def _flatten_by_filling(
    handle: Any, recv: trio.MemoryReceiveChannel[FlattenRequest], log: list[Any]
) -> None:
    """A stand-in executor for flattens: reserve, and fill at 100."""
    from hip3.trading.messages import ReserveGranted as Granted

    async for req in recv:
        log.append(req)
        pos = handle.view().positions.get(req.market)
        if pos is None:
            continue
        cloid = Cloid.random()
        decision = await handle.reserve(
            ReserveRequest(
                cloid, req.market, pos.side.opposite, Size(abs(pos.size)), Price(D(99)), True, req.reason
            )
        )
        if isinstance(decision, Granted):
            await handle.post_result(cloid, PostFilled(abs(pos.size), D(100), 9))


async def test_shutdown_keeps_resolving_an_unknown_entry_and_flattens_what_it_turns_into(
    autojump_clock: Any,
) -> None:
    # SIGTERM while an entry's post got no answer. The settle wait ends with it unresolved and no
    # position known; 5 s later the resolution finds it filled. Shutdown must not say "flat" at the
    # settle timeout: it keeps waiting (within its flatten timeout), then flattens the position.
    from hip3.trading.reports import PostUnknown
    from hip3.trading.tracker.task import run_tracker

    send, recv = trio.open_memory_channel[FlattenRequest](10)
    flattens: list[FlattenRequest] = []
    cloid = Cloid.random()
    async with trio.open_nursery() as nursery:
        handle = await nursery.start(run_tracker, _real_tracker())
        nursery.start_soon(_flatten_by_filling, handle, recv, flattens)
        await handle.reserve(ReserveRequest(cloid, TSLA, Side.BUY, Size(D(1)), Price(D(100)), False, "entry"))
        await handle.post_result(cloid, PostUnknown("no answer within 5 s"))

        async def resolved_later() -> None:
            await trio.sleep(5)
            await handle.order_resolved(OrderReport(cloid, "filled", D(1), D(0)))
            await handle.post_result(cloid, PostFilled(D(1), D(100), 7))

        nursery.start_soon(resolved_later)
        outcome = await shutdown_sequence(
            handle, send, Switch(), flatten_on_shutdown=True, settle_timeout_secs=2, flatten_timeout_secs=20
        )
        assert [f.market for f in flattens] == [TSLA]
        assert _outcome_flat(outcome) and handle.view().positions == {}
        nursery.cancel_scope.cancel()


async def test_shutdown_that_must_give_up_names_the_unresolved_orders_and_never_says_flat(
    autojump_clock: Any, caplog: Any
) -> None:
    from hip3.trading.reports import PostUnknown
    from hip3.trading.tracker.task import run_tracker

    send, _recv = trio.open_memory_channel[FlattenRequest](10)
    cloid = Cloid.random()
    async with trio.open_nursery() as nursery:
        handle = await nursery.start(run_tracker, _real_tracker())
        await handle.reserve(ReserveRequest(cloid, TSLA, Side.BUY, Size(D(1)), Price(D(100)), False, "entry"))
        await handle.post_result(cloid, PostUnknown("no answer within 5 s"))
        start = trio.current_time()
        outcome = await shutdown_sequence(
            handle, send, Switch(), flatten_on_shutdown=True, settle_timeout_secs=2, flatten_timeout_secs=6
        )
        assert trio.current_time() - start <= 2 + 6 + 2 + 0.01  # bounded
        assert not _outcome_flat(outcome)
        assert outcome.unresolved == (cloid,)
        assert "account is flat" not in caplog.text
        assert str(cloid) in caplog.text and "unresolved" in caplog.text
        nursery.cancel_scope.cancel()
