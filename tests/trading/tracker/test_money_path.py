"""Fills the bot did not send, snapshots around them, trade ids, and orderStatus totals.

Each test is one sequence written down by hand (exchange times in ms, tracker times in s) with the
position the exchange holds at the end; the tracker must hold the same.
"""

from __future__ import annotations

from hip3.core import Cloid, Side
from hip3.trading.messages import PositionClosed

from . import GOLD, TSLA, D, chs, fill, fills_msg, make_tracker, req, update
from .test_tracker import grant

T0 = 1_700_000_000_000


def long_one(t):
    """Startup: the exchange says long 1 @ 10 (adopted at once: it agrees with nothing pending)."""
    t.apply_snapshot(t.begin_fetch(), chs((TSLA, 1, 10), time_ms=T0 - 60_000), 0.0)
    assert t.position_size(TSLA) == D(1)


def test_a_foreign_close_before_an_unconfirmed_flat_snapshot_is_applied():
    # Long 1. A liquidation / manual close (no cloid) sells 1 @ 9 at T0. The resync at T0+300 says
    # flat; one flat snapshot is not believed alone. The close then arrives on the stream: it is
    # news to the tracker (nothing it adopted holds it) and must be applied.
    t = make_tracker(per_market=100)
    long_one(t)
    t.apply_snapshot(t.begin_fetch(), chs(time_ms=T0 + 300), 60.0)
    assert t.position_size(TSLA) == D(1)  # not adopted yet
    events = t.apply_fills(fills_msg(fill(TSLA, Side.SELL, 1, 9, time_ms=T0)), 60.5)
    assert t.position_size(TSLA) == 0
    assert t.realized_pnl == D(-1)  # reaches the daily-loss stop
    assert [type(e) for e in events] == [PositionClosed]


def test_foreign_cloid_late_fill_already_inside_the_adopted_snapshot_is_not_applied_again():
    # A cloid the bot never sent fills twice: tid1 at T0, tid2 at T0+200. tid1 is applied; the
    # snapshot at T0+500 holds both, so the tracker is corrected to 2; tid2 arrives late: it is
    # older than that snapshot, which holds it.
    t = make_tracker(per_market=100)
    other = Cloid.random()
    t.apply_fills(fills_msg(fill(TSLA, Side.BUY, 1, 10, cloid=other, tid=1, time_ms=T0)), 1.0)
    assert t.position_size(TSLA) == D(1)
    t.apply_snapshot(t.begin_fetch(), chs((TSLA, 2, 10), time_ms=T0 + 500), 2.0)
    assert t.position_size(TSLA) == D(2)
    t.apply_fills(fills_msg(fill(TSLA, Side.BUY, 1, 10, cloid=other, tid=2, time_ms=T0 + 200)), 3.0)
    assert t.position_size(TSLA) == D(2)


def test_foreign_cloid_fill_after_the_snapshot_is_applied_although_an_earlier_one_was_inside():
    # Converse: tid1 (T0) is already inside an adopted snapshot (recorded, not applied); tid2 at
    # T0+1000 comes after it and is news.
    t = make_tracker(per_market=100)
    other = Cloid.random()
    t.apply_snapshot(t.begin_fetch(), chs((TSLA, 1, 10), time_ms=T0 + 500), 1.0)
    t.apply_fills(fills_msg(fill(TSLA, Side.BUY, 1, 10, cloid=other, tid=1, time_ms=T0)), 2.0)
    assert t.position_size(TSLA) == D(1)
    t.apply_fills(fills_msg(fill(TSLA, Side.BUY, 1, 10, cloid=other, tid=2, time_ms=T0 + 1000)), 3.0)
    assert t.position_size(TSLA) == D(2)


def test_a_fill_older_than_what_the_tracker_can_still_recognise_is_not_applied_again():
    # A fill at T0 is applied; the link dies; the outage outlasts the fill memory (the tracker
    # forgets the tid); the reconnect's catch-up returns the fill again.
    t = make_tracker(per_market=100, memory=3600.0)
    seen = fill(TSLA, Side.BUY, 1, 10, tid=5, time_ms=T0)
    t.apply_fills(fills_msg(seen), 1.0)
    t.evict(2 * 3600.0)
    assert t.tid_count == 0  # forgotten
    t.apply_fills(fills_msg(seen), 2 * 3600.0 + 1)
    assert t.position_size(TSLA) == D(1)
    # ...while a fill from the outage itself (newer than anything forgotten) is applied
    t.apply_fills(fills_msg(fill(TSLA, Side.BUY, 1, 10, tid=6, time_ms=T0 + 3_600_000)), 2 * 3600.0 + 2)
    assert t.position_size(TSLA) == D(2)


def test_trade_ids_are_unique_only_together_with_their_coin():
    t = make_tracker(per_market=100)
    t.apply_fills(fills_msg(fill(TSLA, Side.BUY, 1, 10, tid=77)), 1.0)
    t.apply_fills(fills_msg(fill(GOLD, Side.BUY, 2, 10, tid=77)), 1.5)
    assert t.position_size(TSLA) == D(1)
    assert t.position_size(GOLD) == D(2)
    t.apply_fills(fills_msg(fill(GOLD, Side.BUY, 2, 10, tid=77)), 2.0)  # a true repeat
    assert t.position_size(GOLD) == D(2)


def test_order_status_filled_means_orig_minus_remaining():
    # An IOC for 4 filled 3 and the exchange reports "filled" with sz 1 left (or a reduce-only order
    # it shrank): the order's total is 3, so its 3 fills settle it.
    t = make_tracker(per_market=100)
    r = req(TSLA, Side.BUY, 4, 10)
    grant(t, r)
    t.apply_order_reports(update(r.cloid, "filled", 4, 1), 1.0)
    t.apply_fills(fills_msg(fill(TSLA, Side.BUY, 3, 10, cloid=r.cloid)), 2.0)
    assert t.position_size(TSLA) == D(3)
    assert TSLA not in t.view().pending_markets
    assert t.pending_notional() == 0
