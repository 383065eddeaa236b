"""Paging through userFillsByTime: every fill of the window once, or an honest "incomplete"."""

from __future__ import annotations

from typing import Any

import attrs
import pytest
import trio

from hip3.core import Side
from hip3.hyperliquid.events import Fill
from hip3.hyperliquid.fills_window import fetch_fills_window
from tests.fakes.paged_fills import PagedFills, account_fill, busy_account

T0 = 1_700_000_000_000
USER = "0x" + "ab" * 20


def pager(ex: PagedFills) -> Any:
    async def page(since: int) -> list[Fill]:
        return await ex.user_fills_by_time(USER, since)

    return page


async def test_one_short_page_is_the_whole_window() -> None:
    ex = PagedFills(busy_account(10, T0))
    got = await fetch_fills_window(pager(ex), T0 - 1)
    assert got.complete and got.pages == 1
    assert [f.tid for f in got.fills] == list(range(10_000, 10_010))
    assert ex.queries == [(T0 - 1, None)]


async def test_pages_continue_from_the_newest_time_and_drop_the_overlap() -> None:
    # 4500 fills, three per millisecond: page 1 ends inside millisecond T0+666, whose other fills
    # start page 2 (the next startTime is that millisecond again, not one after it).
    ex = PagedFills(busy_account(4500, T0, per_ms=3))
    got = await fetch_fills_window(pager(ex), T0)
    assert got.complete and got.pages == 3
    assert [start for start, _ in ex.queries] == [T0, T0 + 666, T0 + 1332]
    assert sorted(f.tid for f in got.fills) == list(range(10_000, 14_500))  # every fill, once


async def test_a_page_reaching_the_end_of_the_window_ends_the_walk() -> None:
    ex = PagedFills(busy_account(5000, T0))
    got = await fetch_fills_window(pager(ex), T0, end_ms=T0 + 1999)
    assert got.complete and got.pages == 1


async def test_the_walk_is_bounded_and_says_it_is_incomplete() -> None:
    ex = PagedFills(busy_account(20_000, T0))
    got = await fetch_fills_window(pager(ex), T0, max_pages=3)
    assert not got.complete and got.pages == 3
    assert len(ex.queries) == 3
    assert "3 full pages" in got.why_incomplete
    assert len(got.fills) == 3 * 2000 - 2  # each later page repeats the previous one's last fill


async def test_a_whole_page_in_one_millisecond_cannot_be_paged_past() -> None:
    ex = PagedFills(busy_account(2500, T0, per_ms=2500))
    got = await fetch_fills_window(pager(ex), T0)
    assert not got.complete and got.pages == 1
    assert len(ex.queries) == 1


async def test_a_failed_later_page_keeps_what_was_found_and_is_incomplete() -> None:
    ex = PagedFills(busy_account(3000, T0))
    ex.fail_from_query = 2
    got = await fetch_fills_window(pager(ex), T0)
    assert not got.complete and got.pages == 1 and len(got.fills) == 2000
    assert "info down" in got.why_incomplete


async def test_an_unanswered_page_times_out_on_trios_clock(autojump_clock: Any) -> None:
    async def silent(since: int) -> list[Fill]:
        await trio.sleep_forever()
        raise AssertionError

    got = await fetch_fills_window(silent, T0, page_timeout_secs=4)
    assert not got.complete and got.fills == ()
    assert "no answer within 4 s" in got.why_incomplete


async def test_a_self_trade_keeps_both_sides() -> None:
    # Both sides of one trade are the account's: same tid, different orders.
    buy = account_fill(7, T0)
    sell = attrs.evolve(buy, oid=8, side=Side.BUY)
    got = await fetch_fills_window(pager(PagedFills([buy, sell])), T0)
    assert len(got.fills) == 2


async def test_max_pages_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_pages"):
        await fetch_fills_window(pager(PagedFills()), T0, max_pages=0)
