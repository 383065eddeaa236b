"""Resync: interval timing under MockClock, the fence, failed fetches change nothing, 0 disables."""

from __future__ import annotations

import functools
from decimal import Decimal
from typing import Any

import trio

from hip3.hyperliquid.events import AssetPosition, ClearinghouseState
from hip3.hyperliquid.info import InfoError
from hip3.trading.edge import account_snapshot
from hip3.trading.messages import Correction
from hip3.trading.resync import ResyncStats, run_resync
from tests.fakes.trading import TSLA, FakeInfo, FakeTracker, empty_state

USER = "0x" + "cd" * 20


async def test_fetches_every_interval_with_a_fence_first(autojump_clock: Any) -> None:
    tracker, info = FakeTracker(), FakeInfo()
    info.states = [empty_state()]
    async with trio.open_nursery() as nursery:
        t0 = trio.current_time()
        stats = await nursery.start(run_resync, tracker, info, USER, "xyz", 60)
        await trio.sleep(59.9)
        assert info.state_queries == []
        await trio.sleep(125)
        nursery.cancel_scope.cancel()
    assert [(u, d, round(t - t0, 6)) for u, d, t in info.state_queries] == [
        (USER, "xyz", 60.0),
        (USER, "xyz", 120.0),
        (USER, "xyz", 180.0),
    ]
    assert len(tracker.fences) == 3 and len(tracker.snapshots) == 3
    assert tracker.snapshot_dexes == ["xyz", "xyz", "xyz"]
    assert stats.runs == 3 and stats.failures == 0


async def test_the_fence_is_taken_before_the_fetch(autojump_clock: Any) -> None:
    # A fill landing while the request is in the air must not be erased: the tracker gets the
    # sequence number from *before* the fetch, so it can see that the market moved since.
    tracker = FakeTracker()

    class SlowInfo(FakeInfo):
        async def clearinghouse_state(self, user: str, dex: str) -> ClearinghouseState:
            tracker.open(TSLA, "1", "100")  # something happens during the fetch
            await trio.sleep(1)
            return empty_state()

    async with trio.open_nursery() as nursery:
        await nursery.start(run_resync, tracker, SlowInfo(), USER, "xyz", 10)
        await trio.sleep(12)
        nursery.cancel_scope.cancel()
    ((fence, state),) = tracker.snapshots
    assert fence == 0 and tracker.seq == 1 and state == account_snapshot(empty_state())


async def test_a_failed_fetch_changes_nothing(autojump_clock: Any) -> None:
    tracker, info = FakeTracker(), FakeInfo()
    info.states = [InfoError("HTTP 502"), ValueError("malformed body"), empty_state()]
    async with trio.open_nursery() as nursery:
        stats = await nursery.start(run_resync, tracker, info, USER, "xyz", 5)
        await trio.sleep(11)
        assert tracker.snapshots == [] and stats.failures == 2 and stats.runs == 0
        await trio.sleep(5)
        assert len(tracker.snapshots) == 1 and stats.runs == 1
        nursery.cancel_scope.cancel()


async def test_a_hanging_fetch_is_bounded_and_counts_as_failed(autojump_clock: Any) -> None:
    tracker = FakeTracker()

    class HangingInfo(FakeInfo):
        async def clearinghouse_state(self, user: str, dex: str) -> ClearinghouseState:
            await trio.sleep_forever()
            raise AssertionError("unreachable")

    async with trio.open_nursery() as nursery:
        stats = await nursery.start(run_resync, tracker, HangingInfo(), USER, "xyz", 60)
        await trio.sleep(60 + 30 + 1)
        assert stats.failures == 1 and tracker.snapshots == []
        nursery.cancel_scope.cancel()


async def test_zero_disables(autojump_clock: Any) -> None:
    tracker, info = FakeTracker(), FakeInfo()
    info.states = [empty_state()]
    t0 = trio.current_time()
    async with trio.open_nursery() as nursery:
        stats = await nursery.start(run_resync, tracker, info, USER, "xyz", 0)
    # The task returned at once (the nursery closed without waiting) and never fetched.
    assert trio.current_time() == t0
    assert info.state_queries == [] and tracker.fences == [] and stats == ResyncStats()


async def test_corrections_are_counted(autojump_clock: Any) -> None:
    correction = Correction(TSLA, before=Decimal(0), after=Decimal("1.5"), entry_px=Decimal(100), at=0.0)
    tracker, info = FakeTracker(corrections=[correction]), FakeInfo()
    state = ClearinghouseState(
        positions=(
            AssetPosition(
                coin="xyz:TSLA",
                szi=Decimal("1.5"),
                entry_px=Decimal(100),
                position_value=Decimal(150),
                unrealized_pnl=Decimal(0),
                leverage_type="isolated",
                leverage=3,
            ),
        ),
        account_value=Decimal(1000),
        total_margin_used=Decimal(50),
        withdrawable=Decimal(950),
    )
    info.states = [state]
    async with trio.open_nursery() as nursery:
        stats = await nursery.start(run_resync, tracker, info, USER, "xyz", 1)
        await trio.sleep(2.5)
        nursery.cancel_scope.cancel()
    assert stats.corrections == 1 and stats.runs == 2
    assert tracker.snapshots[0][1] == account_snapshot(state)


async def test_no_resync_while_the_user_streams_are_down(autojump_clock: Any) -> None:
    # While disconnected the snapshot may hold fills the reconnect catch-up will apply again.
    tracker, info = FakeTracker(), FakeInfo()
    info.states = [empty_state()]
    live = False
    async with trio.open_nursery() as nursery:
        stats = await nursery.start(
            functools.partial(run_resync, may_run=lambda: live), tracker, info, USER, "xyz", 10
        )
        await trio.sleep(35)
        assert info.state_queries == [] and stats.skipped == 3
        live = True
        await trio.sleep(10)
        nursery.cancel_scope.cancel()
    assert len(tracker.snapshots) == 1 and stats.runs == 1


async def test_a_snapshot_fetched_across_a_disconnect_is_dropped(autojump_clock: Any) -> None:
    tracker = FakeTracker()
    epoch = 1

    class FlakyLinkInfo(FakeInfo):
        async def clearinghouse_state(self, user: str, dex: str) -> ClearinghouseState:
            nonlocal epoch
            epoch += 1  # the link drops (or reconnects) while the request is in the air
            return empty_state()

    async with trio.open_nursery() as nursery:
        stats = await nursery.start(
            functools.partial(run_resync, link_epoch=lambda: epoch), tracker, FlakyLinkInfo(), USER, "xyz", 10
        )
        await trio.sleep(11)
        nursery.cancel_scope.cancel()
    assert tracker.snapshots == [] and stats.skipped == 1 and stats.runs == 0


async def test_a_requested_resync_runs_at_once_then_the_period_resumes(autojump_clock: Any) -> None:
    from hip3.trading.resync import ResyncTrigger

    tracker, info = FakeTracker(), FakeInfo()
    info.states = [empty_state()]
    trigger = ResyncTrigger()
    async with trio.open_nursery() as nursery:
        stats = await nursery.start(
            functools.partial(run_resync, trigger=trigger), tracker, info, USER, "xyz", 60
        )
        await trio.sleep(5)
        assert stats.runs == 0
        trigger.request(TSLA)
        await trio.sleep(1.5)
        assert stats.runs == 1  # within a moment, not at the next period
        await trio.sleep(60)
        assert stats.runs == 2
        nursery.cancel_scope.cancel()
