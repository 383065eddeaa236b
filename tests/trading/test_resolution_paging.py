"""The resolver finds an order's fills on a busy account: userFillsByTime is paged, never read as one answer."""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import Any

import attrs
import pytest
import trio

from hip3.core import Cloid
from hip3.hyperliquid.events import OrderStatusResult
from hip3.trading.executor.resolution import FILL_WINDOW_MARGIN_MS, Resolver, ResolveTiming, SentOrder
from hip3.trading.reports import FillReport, OrderNotFound, OrderReport
from tests.fakes.paged_fills import PagedFills, account_fill, busy_account
from tests.fakes.trading import TSLA, FakeHardStop

T0 = 1_700_000_000_000
USER = "0x" + "ab" * 20


class Exchange(PagedFills):
    def __init__(self, status: OrderStatusResult) -> None:
        super().__init__()
        self.status = status

    async def order_status(self, user: str, oid_or_cloid: int | str) -> OrderStatusResult:
        return self.status


@attrs.define
class Tracker:
    fed: list[FillReport] = attrs.field(factory=list)
    resolved: list[OrderReport | OrderNotFound] = attrs.field(factory=list)
    abandoned: list[tuple[Cloid, str]] = attrs.field(factory=list)

    async def order_resolved(self, report: OrderReport | OrderNotFound) -> None:
        self.resolved.append(report)

    async def report_fills(self, fills: tuple[FillReport, ...]) -> None:
        self.fed.extend(fills)

    async def stale_reservations(self, older_than: float) -> list[Cloid]:
        return []

    async def abandon(self, cloid: Cloid, reason: str) -> None:
        self.abandoned.append((cloid, reason))


def resolver(ex: Exchange, tracker: Tracker, hard_stop: FakeHardStop) -> Resolver:
    return Resolver(
        tracker=tracker,
        info=ex,
        user=USER,
        hard_stop=hard_stop,
        timing=ResolveTiming(
            resolve_timeout_secs=60,
            post_timeout_secs=5,
            poll_initial_secs=0.5,
            poll_max_secs=8,
            unknown_oid_grace_secs=5,
        ),
        now_ms=lambda: T0 + 90_000,
        on_resolved=lambda: None,
        on_abandoned=lambda: None,
    )


FILLED = OrderStatusResult(known=True, status="filled", orig_sz=Decimal(2), sz=Decimal(0))


async def test_a_resolved_flattens_fills_on_the_third_page_reach_the_tracker(autojump_clock: Any) -> None:
    # A busy account: 4500 fills of other markets (another client, another dex) between the
    # window's start and the flatten's two fills.
    flatten = Cloid.random()
    ex = Exchange(FILLED)
    ex.add(busy_account(4500, T0 - FILL_WINDOW_MARGIN_MS, per_ms=2))
    ours = [account_fill(1, T0 + 500, cloid=flatten, coin=TSLA.name, pnl="-1")]
    ours.append(account_fill(2, T0 + 500, cloid=flatten, coin=TSLA.name, pnl="-1"))
    ex.add(ours)
    tracker, hard_stop = Tracker(), FakeHardStop()
    async with trio.open_nursery() as nursery:
        resolver(ex, tracker, hard_stop).start(
            nursery, SentOrder(flatten, TSLA, reduce_only=True, sent_ms=T0)
        )
    assert sorted(f.trade_id.tid for f in tracker.fed) == [1, 2]
    assert sum(f.closed_pnl for f in tracker.fed) == Decimal(-2)
    assert len(ex.queries) == 3
    assert hard_stop.flatten_successes == [TSLA]


async def test_a_lookup_cut_short_by_the_page_bound_is_unknown_and_names_the_order(
    autojump_clock: Any, caplog: pytest.LogCaptureFixture
) -> None:
    # More fills in the window than the page bound reaches: the order's own are beyond it.
    order = Cloid.random()
    ex = Exchange(FILLED)
    ex.add(busy_account(20_000, T0 - FILL_WINDOW_MARGIN_MS))
    ex.add([account_fill(1, T0 + 59_000, cloid=order, coin=TSLA.name)])
    tracker = Tracker()
    r = resolver(ex, tracker, FakeHardStop())
    with caplog.at_level(logging.WARNING):
        window = await r.feed_fills(SentOrder(order, TSLA, reduce_only=False, sent_ms=T0))
    assert window is not None and not window.complete  # unknown, not "no fill"
    assert len(ex.queries) == 6  # bounded
    assert tracker.fed == []
    (warning,) = [r for r in caplog.records if "incomplete" in r.getMessage()]
    assert str(order) in warning.getMessage()


async def test_an_unresolved_order_whose_fill_lookup_failed_midway_hands_over_what_was_found(
    autojump_clock: Any, caplog: pytest.LogCaptureFixture
) -> None:
    order = Cloid.random()
    ex = Exchange(OrderStatusResult(known=True, status="open"))  # never final: the deadline passes
    ex.add([account_fill(1, T0 + 10, cloid=order, coin=TSLA.name)])
    ex.add(busy_account(2500, T0 + 20))
    ex.fail_from_query = 2
    tracker = Tracker()
    with caplog.at_level(logging.WARNING):
        async with trio.open_nursery() as nursery:
            resolver(ex, tracker, FakeHardStop()).start(nursery, SentOrder(order, TSLA, False, T0))
    assert [f.trade_id.tid for f in tracker.fed] == [1]
    assert [c for c, _ in tracker.abandoned] == [order]  # still unknown: the reservation stays
    assert any("incomplete" in r.getMessage() and str(order) in r.getMessage() for r in caplog.records)
