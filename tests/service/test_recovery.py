"""Restart: the orders the journal has in doubt are settled by cloid (never sent again)."""

from __future__ import annotations

import logging
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import trio

from hip3.core import Cloid, MarketKey, Side
from hip3.hyperliquid.events import Fill, OrderStatusResult, OrderUpdate, OrderUpdates
from hip3.hyperliquid.info import InfoError
from hip3.service.journal import Journal, prepare_journal
from hip3.service.recovery import (
    RecoveryFailed,
    count_then_journal,
    settle_orders_in_doubt,
)
from tests.fakes.paged_fills import PagedFills, account_fill, busy_account

D = Decimal
TSLA = MarketKey("xyz", "TSLA", 110001)
NOW = 1_767_225_600_000
USER = "0x" + "ab" * 20


class Exchange:
    """orderStatus and userFillsByTime only: nothing here can send an order."""

    def __init__(self) -> None:
        self.statuses: dict[str, list[OrderStatusResult | Exception]] = {}
        self.fills: list[Fill] = []
        self.asked: list[str] = []
        self.fill_queries: list[int] = []

    async def order_status(self, user: str, oid_or_cloid: int | str) -> OrderStatusResult:
        cloid = str(oid_or_cloid)
        self.asked.append(cloid)
        answers = self.statuses.get(cloid, [OrderStatusResult(known=False)])
        answer = answers.pop(0) if len(answers) > 1 else answers[0]
        if isinstance(answer, Exception):
            raise answer
        return answer

    async def user_fills_by_time(self, user: str, start_ms: int, end_ms: int | None = None) -> list[Fill]:
        self.fill_queries.append(start_ms)
        return self.fills


def status(text: str, orig: str = "0.2", remaining: str = "0") -> OrderStatusResult:
    return OrderStatusResult(known=True, status=text, orig_sz=D(orig), sz=D(remaining))


def fill(cloid: Cloid, tid: int, pnl: str, fee: str) -> Fill:
    return Fill(
        "xyz:TSLA",
        D("250"),
        D("0.2"),
        Side.SELL,
        NOW,
        D("0.2"),
        "Close Long",
        D(pnl),
        "0x0",
        9,
        True,
        D(fee),
        tid,
        cloid,
    )


@pytest.fixture
def journal(tmp_path: Path) -> Journal:
    j = prepare_journal(str(tmp_path / "journal.sqlite3"))
    assert j is not None
    return j


def sent(journal: Journal, at_ms: int, *, reduce_only: bool = False) -> Cloid:
    cloid = Cloid.random()
    journal.order_sending(cloid, TSLA, Side.BUY, D("0.2"), D("250"), reduce_only, "entry")
    journal.connection().execute("UPDATE orders SET sent_ms = ? WHERE cloid = ?", (at_ms, str(cloid)))
    return cloid


class DailyLoss:
    """The hard stop's day total; `flush` notes how many fills the journal held at that moment."""

    def __init__(self, journal: Journal | None = None) -> None:
        self.recorded: list[tuple[Decimal, Decimal, date]] = []
        self.journal = journal
        self.fills_journaled_at_flush: list[int] = []

    def record_pnl(self, realized: Decimal, fees: Decimal, day: date, now: float | None = None) -> bool:
        self.recorded.append((realized, fees, day))
        return False

    def flush(self) -> None:
        if self.journal is not None:
            count = self.journal.connection().execute("SELECT COUNT(*) FROM fills").fetchone()[0]
            self.fills_journaled_at_flush.append(count)


async def test_a_filled_order_in_doubt_is_settled_and_its_fills_counted_before_they_are_journaled(
    journal: Journal, autojump_clock: Any
) -> None:
    ex = Exchange()
    filled, never = sent(journal, NOW - 30_000), sent(journal, NOW - 20_000)
    ex.statuses[str(filled)] = [InfoError("429"), status("filled")]
    ex.fills = [fill(filled, 1, "-0.5", "0.02"), fill(Cloid.random(), 2, "9", "9")]  # the second is not ours
    got = await settle_orders_in_doubt(journal, ex, USER, grace_ms=5_000, timeout_secs=10, now_ms=lambda: NOW)
    assert got.in_doubt == 2 and got.resolved == {str(filled): "filled", str(never): "unknownOid"}
    assert [f.tid for f in got.new_fills] == [1]
    assert ex.fill_queries == [NOW - 30_000 - 60_000]
    assert journal.orders_in_doubt(600_000) == []  # settled for good: a second restart asks nothing
    # Not journaled yet: the journal is what the next start skips, so the day's loss comes first.
    assert journal.connection().execute("SELECT cloid, tid FROM fills").fetchall() == []
    loss = DailyLoss(journal)
    count_then_journal(got.new_fills, loss, journal)
    assert loss.recorded == [(D("-0.5"), D("0.02"), date(2026, 1, 1))]
    assert loss.fills_journaled_at_flush == [0]  # on disk before the journal says "seen"
    rows = journal.connection().execute("SELECT cloid, tid FROM fills").fetchall()
    assert rows == [(str(filled), 1)]


async def test_unknown_right_after_it_was_written_is_asked_again_until_the_grace_passed(
    journal: Journal, autojump_clock: Any
) -> None:
    ex = Exchange()
    cloid = sent(journal, NOW - 1_000)
    start = trio.current_time()

    def now_ms() -> int:
        return NOW + int((trio.current_time() - start) * 1000)

    got = await settle_orders_in_doubt(journal, ex, USER, grace_ms=5_000, timeout_secs=30, now_ms=now_ms)
    assert got.resolved == {str(cloid): "unknownOid"}
    assert trio.current_time() - start >= 4.0 and len(ex.asked) >= 5


async def test_an_order_that_cannot_be_settled_stops_the_start(journal: Journal, autojump_clock: Any) -> None:
    ex = Exchange()
    cloid = sent(journal, NOW - 1_000)
    ex.statuses[str(cloid)] = [InfoError("exchange down")]
    with pytest.raises(RecoveryFailed, match=str(cloid)):
        await settle_orders_in_doubt(journal, ex, USER, grace_ms=5_000, timeout_secs=10, now_ms=lambda: NOW)
    assert [o.cloid for o in journal.orders_in_doubt(600_000)] == [str(cloid)]  # still in doubt next time


async def test_orders_already_settled_or_long_before_the_crash_are_not_asked_about(
    journal: Journal, autojump_clock: Any
) -> None:
    ex = Exchange()
    old = sent(journal, NOW - 3_600_000)
    done = sent(journal, NOW - 2_000)
    journal.order_updates(
        OrderUpdates((OrderUpdate("xyz:TSLA", Side.BUY, D(1), D(0), 1, 1, D(1), "filled", NOW, done),))
    )
    journal.flush()
    live = sent(journal, NOW - 1_000)
    ex.statuses[str(live)] = [status("canceled", remaining="0.2")]
    got = await settle_orders_in_doubt(journal, ex, USER, grace_ms=5_000, timeout_secs=10, now_ms=lambda: NOW)
    assert ex.asked == [str(live)] and str(old) not in got.resolved
    assert got.resolved == {str(live): "canceled"} and ex.fill_queries == []  # nothing filled


class BusyExchange(Exchange):
    """An account with many fills: userFillsByTime answers at most 2000 from startTime on."""

    def __init__(self, history: list[Fill]) -> None:
        super().__init__()
        self.history = PagedFills(history)

    async def user_fills_by_time(self, user: str, start_ms: int, end_ms: int | None = None) -> list[Fill]:
        self.fill_queries.append(start_ms)
        return await self.history.user_fills_by_time(user, start_ms, end_ms)


async def test_fills_of_an_order_in_doubt_beyond_the_first_page_are_found(
    journal: Journal, autojump_clock: Any
) -> None:
    filled = sent(journal, NOW - 30_000)
    ours = account_fill(1, NOW - 1_000, cloid=filled, coin="xyz:TSLA", pnl="-0.5")
    ex = BusyExchange([*busy_account(4500, NOW - 90_000), ours])
    ex.statuses[str(filled)] = [status("filled")]
    got = await settle_orders_in_doubt(journal, ex, USER, grace_ms=5_000, timeout_secs=10, now_ms=lambda: NOW)
    assert [f.tid for f in got.new_fills] == [1]
    assert got.fills_unknown == ()
    assert len(ex.fill_queries) == 3 and ex.fill_queries[0] == NOW - 90_000
    loss = DailyLoss()
    count_then_journal(got.new_fills, loss, journal)
    assert [realized for realized, _, _ in loss.recorded] == [D("-0.5")]


async def test_a_fill_lookup_cut_short_after_restart_names_the_orders_whose_fills_are_unknown(
    journal: Journal, autojump_clock: Any, caplog: pytest.LogCaptureFixture
) -> None:
    filled = sent(journal, NOW - 30_000)
    ours = account_fill(1, NOW - 1_000, cloid=filled, coin="xyz:TSLA", pnl="-0.5")
    ex = BusyExchange([*busy_account(20_000, NOW - 90_000, per_ms=3), ours])
    ex.statuses[str(filled)] = [status("filled")]
    with caplog.at_level(logging.WARNING):
        got = await settle_orders_in_doubt(
            journal, ex, USER, grace_ms=5_000, timeout_secs=10, now_ms=lambda: NOW
        )
    assert got.new_fills == [] and got.fills_unknown == (str(filled),)
    assert len(ex.fill_queries) == 6  # bounded
    assert any("incomplete" in r.getMessage() and str(filled) in r.getMessage() for r in caplog.records)


async def test_a_failed_fill_lookup_after_restart_is_unknown_not_empty(
    journal: Journal, autojump_clock: Any
) -> None:
    filled = sent(journal, NOW - 30_000)
    ex = BusyExchange([])
    ex.history.fail_from_query = 1
    ex.statuses[str(filled)] = [status("filled")]
    got = await settle_orders_in_doubt(journal, ex, USER, grace_ms=5_000, timeout_secs=10, now_ms=lambda: NOW)
    assert got.resolved == {str(filled): "filled"}
    assert got.new_fills == [] and got.fills_unknown == (str(filled),)
