"""The tracker task's wiring and timing under MockClock."""

from __future__ import annotations

import pytest
import trio

from hip3.core import Side
from hip3.trading.messages import (
    Correction,
    DenyReason,
    PositionClosed,
    PositionOpened,
    ReserveDenied,
    ReserveGranted,
)
from hip3.trading.reports import PostFilled, PostRefused
from hip3.trading.tracker import TrackerRequestError, TrackerStopped, run_tracker

from . import TSLA, D, chs, fill, fills_msg, make_tracker, req


async def test_reserve_round_trip_and_view_published(autojump_clock):
    tracker = make_tracker()
    async with trio.open_nursery() as nursery:
        handle = await nursery.start(run_tracker, tracker)
        assert handle.view().seq == 0
        r = req(TSLA, Side.BUY, 2, 10)
        assert await handle.reserve(r) == ReserveGranted(cloid=r.cloid, size=r.size)
        assert TSLA in handle.view().pending_markets
        second = await handle.reserve(req(TSLA, Side.BUY, 1, 10))
        assert isinstance(second, ReserveDenied) and second.reason is DenyReason.PENDING_ORDER
        await trio.sleep(3)
        await handle.post_result(r.cloid, PostFilled(total_sz=D(2), avg_px=D(10), oid=1))
        view = handle.view()  # readable without awaiting, already updated
        assert view.positions[TSLA].size == D(2)
        assert view.positions[TSLA].opened_at == pytest.approx(trio.current_time())
        assert TSLA not in view.pending_markets
        nursery.cancel_scope.cancel()


async def test_events_fan_out_to_every_subscriber(autojump_clock):
    tracker = make_tracker()
    async with trio.open_nursery() as nursery:
        handle = await nursery.start(run_tracker, tracker)
        first, second = handle.subscribe(), handle.subscribe()
        await handle.report_fills(fills_msg(fill(TSLA, Side.BUY, 1, 10)))
        await handle.report_fills(fills_msg(fill(TSLA, Side.SELL, 1, 12)))
        for channel in (first, second):
            opened = channel.receive_nowait()
            closed = channel.receive_nowait()
            assert isinstance(opened, PositionOpened) and opened.size == D(1)
            assert isinstance(closed, PositionClosed) and closed.realized_pnl == D(2)
        # a closed subscriber is dropped, the other keeps receiving
        await first.aclose()
        await handle.report_fills(fills_msg(fill(TSLA, Side.BUY, 1, 10)))
        assert isinstance(second.receive_nowait(), PositionOpened)
        nursery.cancel_scope.cancel()


async def test_wait_view_change(autojump_clock):
    tracker = make_tracker()
    async with trio.open_nursery() as nursery:
        handle = await nursery.start(run_tracker, tracker)
        seen = []

        async def watcher() -> None:
            seen.append(await handle.wait_view_change(handle.view().seq))

        nursery.start_soon(watcher)
        await trio.sleep(5)
        assert seen == []
        await handle.report_fills(fills_msg(fill(TSLA, Side.BUY, 1, 10)))
        await trio.sleep(0.1)
        assert len(seen) == 1 and TSLA in seen[0].positions
        # an already newer view returns at once
        assert (await handle.wait_view_change(-1)).seq == handle.view().seq
        nursery.cancel_scope.cancel()


async def test_snapshot_round_trip_returns_corrections(autojump_clock):
    tracker = make_tracker()
    async with trio.open_nursery() as nursery:
        handle = await nursery.start(run_tracker, tracker)
        fence = await handle.begin_fetch()
        corrections = await handle.apply_snapshot(fence, chs((TSLA, -1, 20)))
        assert corrections == [
            Correction(market=TSLA, before=D(0), after=D(-1), entry_px=D(20), at=trio.current_time())
        ]
        assert handle.view().corrections == 1
        nursery.cancel_scope.cancel()


async def test_stale_and_abandon(autojump_clock):
    tracker = make_tracker()
    async with trio.open_nursery() as nursery:
        handle = await nursery.start(run_tracker, tracker)
        r = req(TSLA, Side.BUY, 1, 10)
        await handle.reserve(r)
        assert await handle.stale_reservations(10.0) == []
        await trio.sleep(11)
        assert await handle.stale_reservations(10.0) == [r.cloid]
        seq = handle.view().seq
        await handle.abandon(r.cloid, "gave up")
        # the reservation stays (rule 6) and is not chased again; a resync fenced after it settles it
        assert handle.view().seq > seq and TSLA in handle.view().pending_markets
        assert await handle.stale_reservations(10.0) == []
        for _ in range(2):  # "flat" releases it only when two snapshots say so (one may be bogus)
            assert TSLA in handle.view().pending_markets
            fence = await handle.begin_fetch()
            await handle.apply_snapshot(fence, chs())
        assert TSLA not in handle.view().pending_markets
        nursery.cancel_scope.cancel()


async def test_periodic_eviction_runs(autojump_clock):
    tracker = make_tracker(memory=100.0)
    async with trio.open_nursery() as nursery:
        handle = await nursery.start(run_tracker, tracker)
        r = req(TSLA, Side.BUY, 1, 10)
        await handle.reserve(r)
        await handle.post_result(r.cloid, PostRefused("no match"))
        await handle.report_fills(fills_msg(fill(TSLA, Side.BUY, 1, 10)))
        assert tracker.tid_count == 1 and tracker.order_count == 1
        await trio.sleep(90)
        assert tracker.tid_count == 1  # not old enough yet
        await trio.sleep(100)
        assert tracker.tid_count == 0 and tracker.order_count == 0
        nursery.cancel_scope.cancel()


async def test_bad_request_is_reported_and_task_survives(autojump_clock):
    tracker = make_tracker()
    async with trio.open_nursery() as nursery:
        handle = await nursery.start(run_tracker, tracker)
        with pytest.raises(TrackerRequestError, match="size"):
            await handle.reserve(req(TSLA, size=0))
        assert isinstance(await handle.reserve(req(TSLA, size=1)), ReserveGranted)
        nursery.cancel_scope.cancel()


async def test_cancelled_task_exits_cleanly_and_callers_learn_it(autojump_clock):
    tracker = make_tracker()
    async with trio.open_nursery() as nursery:
        handle = await nursery.start(run_tracker, tracker)
        events = handle.subscribe()
        nursery.cancel_scope.cancel()
    with pytest.raises(TrackerStopped):
        await handle.reserve(req(TSLA))
    with pytest.raises(trio.EndOfChannel):
        await events.receive()
