"""Startup: the account's fills while the bot was down count towards today's loss, once."""

from __future__ import annotations

import json
import logging
import threading
from datetime import date
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import attrs
import pytest
import trio

from hip3.clock import use_wall_clock, wall_clock_following_trio
from hip3.hyperliquid.events import Fill, UserFills
from hip3.market.cells import MarketCells
from hip3.market.feed import Feed
from hip3.market.ready import ReadyState
from hip3.service.app import _mark_running, _watch_money
from hip3.service.downtime import (
    OVERLAP_MS,
    DowntimeFillsUnknown,
    count_fills_while_down,
    count_history_after_the_query,
)
from hip3.service.journal import Journal, prepare_journal
from hip3.trading import hardstop
from hip3.trading.hardstop import HardStop, HardStopParams, run_hard_stop_persistence
from tests.fakes.paged_fills import PagedFills, account_fill, busy_account

D = Decimal
MIDNIGHT = 1_767_225_600_000  # 2026-01-01T00:00:00Z
NOW = MIDNIGHT + 10 * 3_600_000  # 10:00 UTC
TODAY = date(2026, 1, 1)
TSLA = "xyz:TSLA"
COINS = frozenset({TSLA, "xyz:NVDA"})
USER = "0x" + "ab" * 20


def liquidation(tid: int, time_ms: int, *, pnl: str = "-30", fee: str = "0.75", coin: str = TSLA) -> Fill:
    return attrs.evolve(account_fill(tid, time_ms, coin=coin, pnl=pnl), fee=D(fee))


@pytest.fixture
def stop(tmp_path: Path) -> HardStop:
    return HardStop.load(HardStopParams(state_file=tmp_path / "hard_stop.json", max_daily_loss_usd=D(100)))


@pytest.fixture
def journal(tmp_path: Path) -> Journal:
    j = prepare_journal(str(tmp_path / "journal.sqlite3"))
    assert j is not None
    return j


async def count(
    info: PagedFills, stop: HardStop, journal: Journal | None, now: int = NOW
) -> tuple[int, Decimal, Decimal]:
    found = await count_fills_while_down(
        info, USER, coins=COINS, dex="xyz", hard_stop=stop, journal=journal, now_ms=lambda: now
    )
    return len(found.fills), found.realized, found.fees


async def test_a_liquidation_while_down_counts_its_closed_pnl_and_fee(
    stop: HardStop, journal: Journal, caplog: pytest.LogCaptureFixture
) -> None:
    stop.record_pnl(D("-5"), D("1"), TODAY)  # what the previous run had counted today
    stop.mark_running("xyz", NOW - 3_600_000)
    info = PagedFills([liquidation(1, NOW - 600_000)])
    with caplog.at_level(logging.INFO, logger="hip3.service.downtime"):
        assert await count(info, stop, journal) == (1, D("-30"), D("0.75"))
    assert stop.daily_net_pnl == D("-6") - D("30.75")
    assert stop.pnl_day == TODAY
    lines = [r.getMessage() for r in caplog.records]
    assert any("while down: 1 fills, realized -30, fees 0.75, counted to today's loss" in m for m in lines), (
        lines
    )
    # persisted at once, with the new running mark: a crash now neither loses nor repeats them
    saved = json.loads(stop.params.state_file.read_text())
    assert saved["daily"]["net_pnl"] == str(D("-36.75"))
    assert saved["running"] == {"xyz": NOW}
    # and journaled, so a later restart knows the bot has counted them
    assert journal.fills_not_journaled(list(info.fills)) == []


async def test_the_window_starts_at_the_last_running_mark_less_the_overlap(
    stop: HardStop, journal: Journal
) -> None:
    mark = NOW - 3_600_000
    stop.mark_running("xyz", mark)
    info = PagedFills([liquidation(1, mark - OVERLAP_MS - 1), liquidation(2, mark - 1000)])
    assert await count(info, stop, journal) == (1, D("-30"), D("0.75"))
    assert info.queries[0] == (mark - OVERLAP_MS, NOW)


async def test_without_a_journal_the_window_starts_at_the_mark_itself(stop: HardStop) -> None:
    # Nothing to tell a fill the previous run counted from one it never saw: no overlap.
    mark = NOW - 3_600_000
    stop.mark_running("xyz", mark)
    info = PagedFills([liquidation(1, mark - 1000), liquidation(2, mark + 1000)])
    assert await count(info, stop, None) == (1, D("-30"), D("0.75"))
    assert info.queries[0] == (mark, NOW)


async def test_a_fill_the_previous_run_journaled_is_not_counted_twice(
    stop: HardStop, journal: Journal
) -> None:
    stop.mark_running("xyz", NOW - 30_000)  # crashed 30 s ago; the close 10 s before that was seen
    seen = liquidation(1, NOW - 40_000, pnl="-12", fee="0.3")
    journal.add_fills([seen])
    down = liquidation(2, NOW - 10_000)
    info = PagedFills([seen, down])
    assert await count(info, stop, journal) == (1, D("-30"), D("0.75"))
    assert stop.daily_net_pnl == D("-30.75")


async def test_a_fill_from_yesterday_is_not_counted(stop: HardStop, journal: Journal) -> None:
    # No running mark (first start, or a reset): the window is today's; yesterday is yesterday's.
    info = PagedFills([liquidation(1, MIDNIGHT - 1), liquidation(2, MIDNIGHT + 5)])
    assert await count(info, stop, journal) == (1, D("-30"), D("0.75"))
    assert info.queries[0][0] == MIDNIGHT
    # a mark from yesterday does not reach back over midnight either
    stop.mark_running("xyz", MIDNIGHT - 3_600_000)
    info = PagedFills([liquidation(3, MIDNIGHT - 60_000), liquidation(4, MIDNIGHT + 60_000)])
    assert await count(info, stop, journal) == (1, D("-30"), D("0.75"))
    assert info.queries[0][0] == MIDNIGHT


async def test_other_markets_and_another_dexs_mark_are_not_ours(stop: HardStop, journal: Journal) -> None:
    stop.mark_running("abc", NOW - 1000)  # another dex's bot sharing the state file: not our mark
    info = PagedFills(
        [
            liquidation(1, MIDNIGHT + 1000, coin="abc:OTHER"),
            liquidation(2, MIDNIGHT + 2000, coin="xyz:AMD"),
            liquidation(3, MIDNIGHT + 3000),
        ]
    )
    assert await count(info, stop, journal) == (1, D("-30"), D("0.75"))
    assert info.queries[0][0] == MIDNIGHT  # not the other dex's mark: ours is unknown


async def test_nothing_while_down_still_moves_the_mark(stop: HardStop, journal: Journal) -> None:
    assert await count(PagedFills([]), stop, journal) == (0, D(0), D(0))
    assert stop.last_running_ms("xyz") == NOW
    assert stop.daily_net_pnl == 0


async def test_a_loss_while_down_past_the_limit_latches(stop: HardStop, journal: Journal) -> None:
    stop.record_pnl(D("-80"), D("0"), TODAY)
    info = PagedFills([liquidation(1, NOW - 1000)])
    await count(info, stop, journal)
    assert stop.latched and stop.reason is not None and "daily loss" in stop.reason
    assert json.loads(stop.params.state_file.read_text())["latched"] is True


async def test_a_failed_fill_query_is_unknown_and_counts_nothing(stop: HardStop, journal: Journal) -> None:
    stop.mark_running("xyz", NOW - 60_000)
    info = PagedFills([liquidation(1, NOW - 1000)])
    info.fail_from_query = 1
    with pytest.raises(DowntimeFillsUnknown, match="info down"):
        await count(info, stop, journal)
    assert stop.daily_net_pnl == 0
    assert stop.last_running_ms("xyz") == NOW - 60_000  # not moved: the next start asks again


async def test_more_fills_than_can_be_paged_is_unknown(stop: HardStop, journal: Journal) -> None:
    info = PagedFills(busy_account(13_000, MIDNIGHT + 1000))
    with pytest.raises(DowntimeFillsUnknown, match="full pages"):
        await count(info, stop, journal)


async def test_the_running_mark_moves_only_while_every_fill_is_seen(
    stop: HardStop, autojump_clock: Any
) -> None:
    # The mark says "every fill before this was seen": never while the user streams are down or
    # catching up, or a restart would skip the fills of that gap.
    ready = ReadyState([], trading=True)
    bot = SimpleNamespace(
        ready=ready, hard_stop=stop, cfg=SimpleNamespace(markets=SimpleNamespace(dex="xyz"))
    )
    with use_wall_clock(wall_clock_following_trio(NOW)):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_mark_running, bot, 10.0)
            ready.on_connected()
            ready.on_caught_up()
            await trio.sleep(15)
            assert stop.last_running_ms("xyz") is None  # user channels not acked yet
            ready.on_ack("userFills")
            ready.on_ack("orderUpdates")
            await trio.sleep(10)
            live = stop.last_running_ms("xyz")
            assert live == NOW + 20_000
            ready.on_disconnected()
            await trio.sleep(30)
            assert stop.last_running_ms("xyz") == live
            ready.on_connected()  # reconnected, missed fills not fetched yet
            ready.on_ack("userFills")
            ready.on_ack("orderUpdates")
            await trio.sleep(30)
            assert stop.last_running_ms("xyz") == live
            ready.on_caught_up()
            await trio.sleep(10)
            assert stop.last_running_ms("xyz") == NOW + 90_000
            nursery.cancel_scope.cancel()
    assert json.loads(stop.params.state_file.read_text())["running"] == {"xyz": NOW + 90_000}


class Views:
    """The tracker's money view, moved by the test."""

    def __init__(self) -> None:
        self.current = SimpleNamespace(seq=0, realized_pnl=D(0), fees=D(0))
        self.changed = trio.Event()

    def view(self) -> SimpleNamespace:
        return self.current

    async def wait_view_change(self, seq: int) -> SimpleNamespace:
        while self.current.seq == seq:
            await self.changed.wait()
        return self.current

    def move(self, realized: str, fees: str) -> None:
        self.current = SimpleNamespace(seq=self.current.seq + 1, realized_pnl=D(realized), fees=D(fees))
        self.changed.set()
        self.changed = trio.Event()


async def test_a_counted_fill_is_journaled_right_after_the_days_total_is_on_disk(
    stop: HardStop, journal: Journal, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The restart skips fills the journal holds. Journaled before the total is written, a crash
    # in between would lose the fill; left to the journal's periodic flush, the gap in which a
    # crash counts it twice would be a quarter second wide.
    gate = threading.Event()
    write = hardstop._write_in_thread

    def slow_write(*args: Any) -> Any:
        assert gate.wait(5)
        return write(*args)

    monkeypatch.setattr(hardstop, "_write_in_thread", slow_write)
    seen = liquidation(1, NOW)
    journal.user_fills(UserFills(USER, False, (seen,)))  # queued by the feed before the tracker
    views = Views()
    bot = SimpleNamespace(hard_stop=stop, journal=journal)
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            await nursery.start(run_hard_stop_persistence, stop)
            nursery.start_soon(_watch_money, bot, views)
            await trio.sleep(0.01)
            views.move("-30", "0.75")
            while stop.daily_net_pnl == 0:
                await trio.sleep(0.01)
            await trio.sleep(0.1)
            assert journal.fills_not_journaled([seen]) == [seen]  # the total is not on disk yet
            gate.set()
            while journal.fills_not_journaled([seen]):
                await trio.sleep(0.01)
            assert json.loads(stop.params.state_file.read_text())["daily"]["net_pnl"] == "-30.75"
            nursery.cancel_scope.cancel()


async def test_the_first_snapshot_counts_only_fills_the_startup_query_did_not_answer(
    stop: HardStop, journal: Journal
) -> None:
    stop.mark_running("xyz", NOW - 3_600_000)
    answered = liquidation(1, NOW - 600_000)
    down = await count_fills_while_down(
        PagedFills([answered]),
        USER,
        coins=COINS,
        dex="xyz",
        hard_stop=stop,
        journal=journal,
        now_ms=lambda: NOW,
    )
    assert stop.daily_net_pnl == D("-30.75")
    old = liquidation(2, down.start_ms - 1)  # before the window: an earlier run's
    skewed = liquidation(3, NOW - 500, pnl="-4", fee="0.1")  # after the query, stamped before its end
    later = liquidation(4, NOW + 800, pnl="-6", fee="0.2")
    other = liquidation(5, NOW + 900, coin="abc:OTHER")
    counted = count_history_after_the_query(
        [old, answered, skewed, later, other], down, coins=COINS, hard_stop=stop, journal=journal
    )
    assert counted == [skewed, later]
    assert stop.daily_net_pnl == D("-30.75") - D("4.1") - D("6.2")


def test_each_userfills_snapshot_is_shown_to_the_history_hook_before_the_journal() -> None:
    seen: list[str] = []
    feed = Feed(
        MarketCells([]),
        {},
        ReadyState([], trading=True),
        record=lambda event: seen.append("journal"),
        on_history=lambda event: seen.append(f"history {len(event.fills)}"),
    )

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            await feed.handle(UserFills(USER, True, (liquidation(1, NOW),)), nursery)
            await feed.handle(UserFills(USER, False, (liquidation(2, NOW),)), nursery)

    trio.run(main)
    assert seen == ["history 1", "journal", "journal"]
