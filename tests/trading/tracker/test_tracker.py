"""The tracker's rules, driven directly without an event loop; expected values are computed by hand."""

from __future__ import annotations

import itertools
import logging

import pytest

from hip3.core import Cloid, Side
from hip3.hyperliquid.events import OrderStatusResult, PostError, StatusOther, StatusSuccess, UserFills
from hip3.trading.edge import fill_reports, order_status_report, post_outcome
from hip3.trading.messages import (
    Correction,
    DenyReason,
    PositionChanged,
    PositionClosed,
    PositionOpened,
    ReserveDenied,
    ReserveGranted,
)
from hip3.trading.reports import PostFilled, PostRefused, PostResting, PostUnknown

from . import GOLD, NVDA, TSLA, D, chs, fill, fills_msg, make_tracker, req, update


def grant(tracker, request, now=0.0):
    decision, _ = tracker.reserve(request, now)
    assert isinstance(decision, ReserveGranted), decision
    return decision


def denied(tracker, request, now=0.0) -> DenyReason:
    decision, _ = tracker.reserve(request, now)
    assert isinstance(decision, ReserveDenied), decision
    assert decision.detail  # every denial says why
    return decision.reason


def open_position(tracker, market, side, size, px, now=0.0):
    """Reserve and fill an IOC entry through the post response only."""
    r = req(market, side, size, px)
    grant(tracker, r, now)
    tracker.apply_post_result(r.cloid, PostFilled(total_sz=D(size), avg_px=D(px), oid=1), now)
    return r.cloid


# --------------------------------------------------------------------------------------------
# admission


def test_unknown_market_denied():
    from hip3.core import MarketKey

    t = make_tracker()
    assert denied(t, req(MarketKey("abc", "X", 120000))) is DenyReason.UNKNOWN_MARKET


def test_duplicate_cloid_denied_even_after_the_order_ended():
    t = make_tracker()
    r = req(TSLA, size=1, px=10)
    grant(t, r)
    t.apply_post_result(r.cloid, PostRefused("no match"), 1.0)
    assert denied(t, req(NVDA, cloid=r.cloid)) is DenyReason.DUPLICATE_CLOID


def test_has_position_denied():
    t = make_tracker()
    open_position(t, TSLA, Side.BUY, 1, 10)
    assert denied(t, req(TSLA, size=1, px=10)) is DenyReason.HAS_POSITION


def test_pending_order_denied_then_released_by_error():
    t = make_tracker()
    r = req(TSLA, size=1, px=10)
    grant(t, r)
    assert denied(t, req(TSLA, size=1, px=10)) is DenyReason.PENDING_ORDER
    t.apply_post_result(r.cloid, PostRefused("Order could not immediately match"), 1.0)
    grant(t, req(TSLA, size=1, px=10))


@pytest.mark.parametrize("failure", [PostRefused("x"), PostRefused("bad nonce")])
def test_every_refusal_releases(failure):
    t = make_tracker()
    r = req(TSLA, size=1, px=10)
    grant(t, r)
    t.apply_post_result(r.cloid, failure, 1.0)
    assert TSLA not in t.view().pending_markets
    assert t.pending_notional() == 0


def test_an_error_reply_to_a_post_keeps_the_reservation():
    # A WS post error reply mirrors an HTTP error status: the order may have executed .
    t = make_tracker()
    r = req(TSLA, size=1, px=10)
    grant(t, r)
    t.apply_post_result(r.cloid, post_outcome(PostError("504 Gateway Timeout")), 1.0)
    assert TSLA in t.view().pending_markets
    assert t.pending_notional() == 10


def test_market_notional_cap():
    t = make_tracker(per_market=50)
    assert denied(t, req(TSLA, size=6, px=10)) is DenyReason.MARKET_NOTIONAL_CAP  # 60 > 50
    grant(t, req(TSLA, size=5, px=10))  # 50 == cap is allowed


def test_total_notional_cap_counts_positions_and_pending():
    t = make_tracker(per_market=50, total=100)
    open_position(t, TSLA, Side.BUY, 4, 10)  # 40
    grant(t, req(NVDA, size=4, px=10))  # 40 pending
    assert denied(t, req(GOLD, size=3, px=10)) is DenyReason.TOTAL_NOTIONAL_CAP  # 40+40+30 > 100
    grant(t, req(GOLD, size=2, px=10))  # 40+40+20 == 100


def test_half_filled_order_is_not_counted_twice():
    t = make_tracker(per_market=100, total=60)
    r = req(TSLA, size=10, px=3)  # 30 reserved
    grant(t, r)
    t.apply_fills(fills_msg(fill(TSLA, Side.BUY, 5, 3, cloid=r.cloid)), 1.0)
    # position 5×3 = 15 plus the unfilled remainder 5×3 = 15
    assert t.position_notional() == D(15)
    assert t.pending_notional() == D(15)
    grant(t, req(NVDA, size=10, px=3))  # 15 + 15 + 30 == 60: fits only if not double counted


def test_max_concurrent_positions_counts_positions_and_entry_reservations():
    t = make_tracker(concurrent=2)
    open_position(t, TSLA, Side.BUY, 1, 10)
    grant(t, req(NVDA, size=1, px=10))
    assert denied(t, req(GOLD, size=1, px=10)) is DenyReason.MAX_CONCURRENT_POSITIONS


def test_reduce_only_no_position_and_wrong_side():
    t = make_tracker()
    assert denied(t, req(TSLA, Side.SELL, reduce_only=True)) is DenyReason.NO_POSITION
    open_position(t, TSLA, Side.BUY, 2, 10)
    assert denied(t, req(TSLA, Side.BUY, reduce_only=True)) is DenyReason.WRONG_SIDE


def test_reduce_only_grant_is_cut_to_position_size():
    t = make_tracker()
    open_position(t, TSLA, Side.BUY, 2, 10)
    assert grant(t, req(TSLA, Side.SELL, size=5, px=9, reduce_only=True)).size == D(2)


def test_second_flatten_denied_bug004():
    t = make_tracker()
    open_position(t, TSLA, Side.BUY, 2, 10)
    first = req(TSLA, Side.SELL, size=2, px=9, reduce_only=True)
    grant(t, first)
    assert denied(t, req(TSLA, Side.SELL, size=2, px=9, reduce_only=True)) is DenyReason.FLATTEN_IN_PROGRESS
    assert t.view().flattening_markets == frozenset({TSLA})
    # an entry in a flattening market names the flatten first
    assert denied(t, req(TSLA, Side.BUY, size=1, px=10)) is DenyReason.FLATTEN_IN_PROGRESS
    # a flatten that did not fill releases the claim
    t.apply_post_result(first.cloid, PostRefused("Order could not immediately match"), 1.0)
    assert t.view().flattening_markets == frozenset()
    grant(t, req(TSLA, Side.SELL, size=2, px=9, reduce_only=True))


def test_deny_order_unknown_market_before_duplicate():
    from hip3.core import MarketKey

    t = make_tracker()
    r = req(TSLA)
    grant(t, r)
    assert denied(t, req(MarketKey("abc", "X", 1), cloid=r.cloid)) is DenyReason.UNKNOWN_MARKET


def test_non_positive_size_is_a_clear_error():
    t = make_tracker()
    with pytest.raises(ValueError, match="size"):
        t.reserve(req(TSLA, size=0), 0.0)


# --------------------------------------------------------------------------------------------
# fills: the seed's incidents


def test_post_response_fill_moves_position_without_userfills():
    t = make_tracker()
    r = req(TSLA, Side.BUY, 2, 10)
    grant(t, r)
    events = t.apply_post_result(r.cloid, PostFilled(total_sz=D(2), avg_px=D("9.5"), oid=7), 5.0)
    assert events == [PositionOpened(market=TSLA, side=Side.BUY, size=D(2), entry_px=D("9.5"), at=5.0)]
    pos = t.view().positions[TSLA]
    assert (pos.size, pos.entry_px, pos.opened_at) == (D(2), D("9.5"), 5.0)
    assert TSLA not in t.view().pending_markets


def test_partial_fills_over_k_tids_and_post_total_in_every_order():
    # One IOC buy of 4 crossing three levels: 1@10, 2@11, 1@13 -> total 4, VWAP (10+22+13)/4 = 11.25
    cloid_tids = [(D(1), D(10)), (D(2), D(11)), (D(1), D(13))]
    for order in itertools.permutations(range(4)):
        t = make_tracker(per_market=100)
        r = req(TSLA, Side.BUY, 5, 13)
        grant(t, r)
        fills = [fill(TSLA, Side.BUY, sz, px, cloid=r.cloid) for sz, px in cloid_tids]
        for step in order:
            if step == 3:
                t.apply_post_result(r.cloid, PostFilled(total_sz=D(4), avg_px=D("11.25"), oid=9), 1.0)
            else:
                t.apply_fills(fills_msg(fills[step]), 1.0)
            assert t.position_size(TSLA) <= D(4)
        pos = t.view().positions[TSLA]
        assert pos.size == D(4), order
        assert pos.entry_px == D("11.25"), order
        assert TSLA not in t.view().pending_markets, order
        # repeats of everything change nothing
        for f in fills:
            t.apply_fills(fills_msg(f), 2.0)
        t.apply_post_result(r.cloid, PostFilled(total_sz=D(4), avg_px=D("11.25"), oid=9), 2.0)
        assert t.view().positions[TSLA].size == D(4)


def test_reservation_counted_until_fills_catch_up_with_final_total():
    t = make_tracker(per_market=100)
    r = req(TSLA, Side.BUY, 5, 10)
    grant(t, r)
    t.apply_post_result(r.cloid, PostResting(oid=3), 0.0)
    t.apply_order_reports(update(r.cloid, "canceled", orig_sz=5, sz=2), 1.0)  # 3 filled, 2 canceled
    assert TSLA in t.view().pending_markets
    assert t.pending_notional(TSLA) == D(30)  # final total 3, nothing applied yet
    t.apply_fills(fills_msg(fill(TSLA, Side.BUY, 3, 10, cloid=r.cloid)), 2.0)
    assert TSLA not in t.view().pending_markets
    assert t.position_size(TSLA) == D(3)


def test_duplicate_userfills_apply_once():
    t = make_tracker()
    r = req(TSLA, Side.BUY, 2, 10)
    grant(t, r)
    f = fill(TSLA, Side.BUY, 2, 10, cloid=r.cloid, fee="0.01")
    t.apply_fills(fills_msg(f, f), 1.0)
    t.apply_fills(fills_msg(f), 2.0)
    assert t.position_size(TSLA) == D(2)
    assert t.fees == D("0.01")
    assert t.stats.duplicate_tids == 2


def test_fill_without_cloid_applies_by_tid():
    t = make_tracker()
    f = fill(TSLA, Side.SELL, 3, 20)  # manual trade / liquidation
    events = t.apply_fills(fills_msg(f, f), 1.0)
    assert events == [PositionOpened(market=TSLA, side=Side.SELL, size=D(3), entry_px=D(20), at=1.0)]
    assert t.position_size(TSLA) == D(-3)


def test_snapshot_userfills_never_reach_the_tracker():
    # History, not news: the edge turns a userFills snapshot into no fills at all.
    assert fill_reports(UserFills(user="0x1", is_snapshot=True, fills=())) == ()


def test_fills_for_unconfigured_coins_are_counted_and_ignored():
    t = make_tracker()
    t.apply_fills(fills_msg(fill(TSLA, Side.BUY, 1, 5, coin="BTC")), 1.0)
    assert t.view().positions == {}
    assert t.stats.unknown_coin_fills == 1


def test_fill_for_unreserved_cloid_is_reconciled_too():
    t = make_tracker()
    c = Cloid.random()
    f = fill(TSLA, Side.BUY, 1, 5, cloid=c)
    t.apply_fills(fills_msg(f, f), 1.0)
    assert t.position_size(TSLA) == D(1)
    assert TSLA not in t.view().pending_markets


# --------------------------------------------------------------------------------------------
# position math


def test_same_side_adds_with_weighted_entry():
    t = make_tracker()
    t.apply_fills(fills_msg(fill(TSLA, Side.BUY, 1, 10)), 1.0)
    events = t.apply_fills(fills_msg(fill(TSLA, Side.BUY, 3, 14)), 2.0)
    # (1×10 + 3×14) / 4 = 13
    assert events == [PositionChanged(market=TSLA, size=D(4), entry_px=D(13), at=2.0)]
    assert t.view().positions[TSLA].opened_at == 1.0


def test_partial_reduce_then_close_reports_pnl():
    t = make_tracker()
    t.apply_fills(fills_msg(fill(TSLA, Side.SELL, 4, 20)), 1.0)  # short 4 @ 20
    t.apply_fills(fills_msg(fill(TSLA, Side.BUY, 1, 18)), 2.0)  # +2
    events = t.apply_fills(fills_msg(fill(TSLA, Side.BUY, 3, 21)), 11.0)  # -3
    assert events == [
        PositionClosed(
            market=TSLA,
            side=Side.SELL,
            size=D(4),
            entry_px=D(20),
            exit_px=D("20.25"),  # (18 + 63) / 4
            realized_pnl=D(-1),
            held_for=10.0,
            at=11.0,
        )
    ]
    assert t.realized_pnl == D(-1)
    assert t.view().positions == {}


def test_flip_closes_and_opens_at_fill_price():
    t = make_tracker()
    t.apply_fills(fills_msg(fill(TSLA, Side.BUY, 2, 100)), 1.0)
    events = t.apply_fills(fills_msg(fill(TSLA, Side.SELL, 5, 110)), 3.0)
    assert events == [
        PositionClosed(
            market=TSLA,
            side=Side.BUY,
            size=D(2),
            entry_px=D(100),
            exit_px=D(110),
            realized_pnl=D(20),
            held_for=2.0,
            at=3.0,
        ),
        PositionOpened(market=TSLA, side=Side.SELL, size=D(3), entry_px=D(110), at=3.0),
    ]
    pos = t.view().positions[TSLA]
    assert (pos.size, pos.entry_px, pos.opened_at) == (D(-3), D(110), 3.0)


def test_fees_accumulate_once_per_tid():
    t = make_tracker()
    a = fill(TSLA, Side.BUY, 1, 10, fee="0.004")
    b = fill(TSLA, Side.BUY, 1, 10, fee="0.006")
    t.apply_fills(fills_msg(a, b, a), 1.0)
    assert t.view().fees == D("0.010")


def test_flatten_via_post_then_userfills_closes_once_and_releases():
    t = make_tracker()
    open_position(t, TSLA, Side.BUY, 2, 10)
    r = req(TSLA, Side.SELL, 2, 9, reduce_only=True)
    grant(t, r, 5.0)
    events = t.apply_post_result(r.cloid, PostFilled(total_sz=D(2), avg_px=D(11), oid=5), 6.0)
    assert [type(e) for e in events] == [PositionClosed]
    assert isinstance(events[0], PositionClosed) and events[0].realized_pnl == D(2)
    # the stream then reports the same flatten: no phantom opposite position
    events = t.apply_fills(fills_msg(fill(TSLA, Side.SELL, 2, 11, cloid=r.cloid)), 7.0)
    assert events == []
    assert t.view().positions == {}
    assert t.view().flattening_markets == frozenset()


# --------------------------------------------------------------------------------------------
# order outcomes


def test_order_updates_open_keeps_terminal_releases_unknown_counted():
    t = make_tracker()
    r = req(TSLA, size=2, px=10)
    grant(t, r)
    t.apply_post_result(r.cloid, PostResting(oid=1), 0.0)
    t.apply_order_reports(update(r.cloid, "open", 2, 2), 1.0)
    assert TSLA in t.view().pending_markets
    t.apply_order_reports(update(r.cloid, "perpMarginRejectedSomethingNew", 2, 2), 2.0)
    assert TSLA not in t.view().pending_markets
    t.apply_order_reports(update(Cloid.random(), "canceled", 2, 2), 3.0)
    assert t.stats.unknown_cloid_updates == 1


def test_filled_update_waits_for_fills():
    t = make_tracker()
    r = req(TSLA, size=2, px=10)
    grant(t, r)
    t.apply_post_result(r.cloid, post_outcome(StatusSuccess()), 0.0)
    t.apply_order_reports(update(r.cloid, "filled", 2, 0), 1.0)
    assert TSLA in t.view().pending_markets
    t.apply_fills(fills_msg(fill(TSLA, Side.BUY, 2, 10, cloid=r.cloid)), 2.0)
    assert TSLA not in t.view().pending_markets


@pytest.mark.parametrize(
    "result", [PostUnknown("timeout"), post_outcome(StatusOther({"waitingForFill": {}}))]
)
def test_unknown_outcome_stays_counted_until_resolved(result):
    t = make_tracker(per_market=50)
    r = req(TSLA, size=4, px=10)
    grant(t, r)
    t.apply_post_result(r.cloid, result, 1.0)
    assert t.pending_notional(TSLA) == D(40)
    assert t.stale_reservations(30.0, older_than=10.0) == [r.cloid]
    assert t.stale_reservations(1.0, older_than=0.0) == [r.cloid]  # "is it still open?"
    assert t.stale_reservations(5.0, older_than=10.0) == []
    t.order_resolved(order_status_report(r.cloid, OrderStatusResult(known=False)), 31.0)
    assert t.pending_notional(TSLA) == 0
    assert t.stale_reservations(31.0, older_than=10.0) == []


def test_order_resolved_terminal_and_open():
    t = make_tracker()
    r = req(TSLA, size=4, px=10)
    grant(t, r)
    t.apply_post_result(r.cloid, PostUnknown("timeout"), 1.0)
    t.order_resolved(
        order_status_report(r.cloid, OrderStatusResult(known=True, status="open", orig_sz=D(4), sz=D(4))), 2.0
    )
    assert TSLA in t.view().pending_markets
    status = OrderStatusResult(known=True, status="canceled", orig_sz=D(4), sz=D(4))
    t.order_resolved(order_status_report(r.cloid, status), 3.0)
    assert TSLA not in t.view().pending_markets


def test_abandon_keeps_the_reservation_and_logs_error(caplog):
    # Rule 6: the executor gave up, but the order may have filled: the reservation stays.
    t = make_tracker(per_market=50)
    r = req(TSLA, size=4, px=10)
    grant(t, r)
    t.apply_post_result(r.cloid, PostUnknown("timeout"), 1.0)
    seq = t.seq
    with caplog.at_level(logging.ERROR, logger="hip3.trading.tracker"):
        t.abandon(r.cloid, 100.0, "orderStatus kept failing")
    assert t.seq > seq  # published: the log and the view say it was abandoned
    assert TSLA in t.view().pending_markets
    assert t.pending_notional(TSLA) == D(40)  # 4 x limit 10, still counted
    assert t.stats.abandoned == 1
    assert any("abandoned" in rec.message for rec in caplog.records)
    assert denied(t, req(TSLA, size=1, px=10)) is DenyReason.PENDING_ORDER
    # the executor does not chase it again (only a resync can settle it), and a repeat is a no-op
    assert t.stale_reservations(1000.0, older_than=0.0) == []
    t.abandon(r.cloid, 101.0, "again")
    assert t.stats.abandoned == 1
    # a late fill of the abandoned order moves the position (no resync has absorbed it yet)
    t.apply_fills(fills_msg(fill(TSLA, Side.BUY, 4, 10, cloid=r.cloid)), 102.0)
    assert t.position_size(TSLA) == D(4)
    assert t.pending_notional(TSLA) == 0  # all 4 of the reserved 4 applied, nothing can add more
    # an order cannot fill more than its size: fully filled is final, the reservation ends
    assert TSLA not in t.view().pending_markets
    assert t.apply_snapshot(t.begin_fetch(), chs((TSLA, 4, 10)), 103.0) == []
    assert t.view().corrections == 0


def test_abandoned_reservation_counts_against_the_caps_in_other_markets_too():
    t = make_tracker(per_market=50, total=60)
    r = req(TSLA, size=4, px=10)
    grant(t, r)
    t.apply_post_result(r.cloid, PostUnknown("timeout"), 1.0)
    t.abandon(r.cloid, 70.0, "unresolved")
    # $40 pending in TSLA + $30 in NVDA = $70 > total cap $60
    assert denied(t, req(NVDA, size=3, px=10)) is DenyReason.TOTAL_NOTIONAL_CAP
    assert isinstance(t.reserve(req(NVDA, size=2, px=10), 71.0)[0], ReserveGranted)


def test_abandoned_order_ends_when_its_fills_reach_the_final_total():
    t = make_tracker()
    r = req(TSLA, size=4, px=10)
    grant(t, r)
    t.apply_post_result(r.cloid, PostUnknown("timeout"), 1.0)
    status = OrderStatusResult(known=True, status="canceled", orig_sz=D(4), sz=D(1))
    t.order_resolved(order_status_report(r.cloid, status), 2.0)  # final: 3 filled; the fills never came
    t.abandon(r.cloid, 70.0, "final but its fills never arrived")
    assert t.pending_notional(TSLA) == D(30)
    t.apply_fills(fills_msg(fill(TSLA, Side.BUY, 2, 10, cloid=r.cloid, tid=1)), 80.0)
    assert TSLA in t.view().pending_markets
    t.apply_fills(fills_msg(fill(TSLA, Side.BUY, 1, 10, cloid=r.cloid, tid=2)), 81.0)
    assert TSLA not in t.view().pending_markets
    assert t.position_size(TSLA) == D(3)


def test_snapshot_fenced_before_the_abandonment_does_not_release_it():
    t = make_tracker()
    r = req(TSLA, size=4, px=10)
    grant(t, r)
    t.apply_post_result(r.cloid, PostUnknown("timeout"), 1.0)
    early = t.begin_fetch()
    t.abandon(r.cloid, 70.0, "unresolved")
    # fetched before the abandonment, the snapshot may predate the fill: the market stays busy
    assert t.apply_snapshot(early, chs(), 71.0) == []
    assert TSLA in t.view().pending_markets
    assert t.pending_notional(TSLA) == D(40)


def test_resync_after_abandonment_corrects_releases_and_absorbs_late_fills():
    # The abandoned IOC bought 3 of 4 in two fills; the resync sees the exchange's +3 first.
    t = make_tracker()
    r = req(TSLA, size=4, px=10)
    grant(t, r)
    t.apply_post_result(r.cloid, PostUnknown("timeout"), 1.0)
    t.apply_fills(fills_msg(fill(TSLA, Side.BUY, 1, 10, cloid=r.cloid, tid=1)), 2.0)
    t.abandon(r.cloid, 70.0, "unresolved")
    events = t.apply_snapshot(t.begin_fetch(), chs((TSLA, 3, 10)), 80.0)
    assert events[0] == Correction(market=TSLA, before=D(1), after=D(3), entry_px=D(10), at=80.0)
    assert TSLA not in t.view().pending_markets
    assert t.pending_notional(TSLA) == 0
    entry = t.reservation(r.cloid)
    assert entry is not None and entry.absorbed
    # the rest of its fills, the post response and a status arrive late: none moves the position
    late = fill(TSLA, Side.BUY, 2, 10, cloid=r.cloid, tid=2, fee="0.02")
    assert t.apply_fills(fills_msg(late), 90.0) == []
    assert t.is_applied(late.trade_id)
    assert t.view().fees == D("0.02")  # the fee still counts (it is not in the position)
    assert t.apply_fills(fills_msg(late), 90.5) == []  # and a repeat does not count it twice
    assert t.view().fees == D("0.02")
    t.apply_post_result(r.cloid, PostFilled(total_sz=D(3), avg_px=D(10), oid=1), 91.0)
    t.order_resolved(
        order_status_report(r.cloid, OrderStatusResult(known=True, status="canceled", orig_sz=D(4), sz=D(1))),
        92.0,
    )
    assert t.position_size(TSLA) == D(3)
    assert TSLA not in t.view().pending_markets
    # and the next resync has nothing to correct
    assert t.apply_snapshot(t.begin_fetch(), chs((TSLA, 3, 10)), 100.0) == []
    assert t.view().corrections == 1


def test_late_sell_of_an_abandoned_flatten_does_not_open_a_phantom_short():
    # Flatten variant: the abandoned reduce-only sell closed the long; the resync sees flat
    # (twice, as flat needs confirming) and then the sell's fill arrives.
    t = make_tracker()
    open_position(t, TSLA, Side.BUY, 2, 10, now=1.0)
    flat = req(TSLA, Side.SELL, 2, 9, reduce_only=True)
    grant(t, flat, now=2.0)
    t.apply_post_result(flat.cloid, PostUnknown("timeout"), 3.0)
    t.abandon(flat.cloid, 70.0, "unresolved")
    assert TSLA in t.view().flattening_markets
    assert denied(t, req(TSLA, Side.SELL, 2, 9, reduce_only=True)) is DenyReason.FLATTEN_IN_PROGRESS
    t.apply_snapshot(t.begin_fetch(), chs(), 80.0)
    assert t.position_size(TSLA) == D(2)  # flat is not believed on one snapshot
    assert TSLA in t.view().flattening_markets
    t.apply_snapshot(t.begin_fetch(), chs(), 90.0)
    assert t.position_size(TSLA) == 0
    assert TSLA not in t.view().pending_markets
    t.apply_fills(fills_msg(fill(TSLA, Side.SELL, 2, 9, cloid=flat.cloid, tid=5)), 95.0)
    assert t.position_size(TSLA) == 0
    assert t.view().positions == {}


def test_snapshot_that_agrees_releases_the_abandoned_order_and_publishes():
    t = make_tracker()
    r = req(TSLA, size=4, px=10)
    grant(t, r)
    t.apply_post_result(r.cloid, PostUnknown("timeout"), 1.0)
    t.abandon(r.cloid, 70.0, "unresolved")
    # It never filled. An empty snapshot may be bogus, so one alone releases nothing.
    assert t.apply_snapshot(t.begin_fetch(), chs(), 79.0) == []
    assert TSLA in t.view().pending_markets
    seq = t.seq
    assert t.apply_snapshot(t.begin_fetch(), chs(), 80.0) == []  # confirmed: nothing to correct
    assert t.seq > seq
    assert TSLA not in t.view().pending_markets
    assert isinstance(t.reserve(req(TSLA, size=4, px=10), 81.0)[0], ReserveGranted)
    # its fill would be in that snapshot, so one showing up now (it cannot, but a bad feed) is ignored
    t.apply_fills(fills_msg(fill(TSLA, Side.BUY, 4, 10, cloid=r.cloid, tid=9)), 82.0)
    assert t.position_size(TSLA) == 0


def test_resync_absorbs_finished_orders_but_not_foreign_ones_still_live():
    t = make_tracker()
    mine = req(TSLA, size=2, px=10)
    grant(t, mine)
    t.apply_post_result(mine.cloid, PostFilled(total_sz=D(2), avg_px=D(10), oid=1), 1.0)
    foreign = Cloid.random()
    t.apply_fills(fills_msg(fill(TSLA, Side.BUY, 1, 10, cloid=foreign, tid=1)), 2.0)
    t.apply_snapshot(t.begin_fetch(), chs((TSLA, 4, 10)), 3.0)  # +1 more from elsewhere
    assert t.position_size(TSLA) == D(4)
    entry = t.reservation(mine.cloid)
    assert entry is not None and entry.absorbed
    # Not ours: it may still be resting, and each of its fills is decided by its own time.
    assert t.reservation(foreign) is None
    t.apply_fills(fills_msg(fill(TSLA, Side.BUY, 1, 10, cloid=foreign, tid=2)), 4.0)
    assert t.position_size(TSLA) == D(5)


# --------------------------------------------------------------------------------------------
# resync (rule 4)


def test_cap_race_resync_during_burst_never_exceeds_cap():
    # A resync in the middle of a burst of reserves must not make admission forget anything.
    t = make_tracker(per_market=50, total=1000)
    granted = []
    for i in range(20):
        fence = t.begin_fetch()
        decision, _ = t.reserve(req(TSLA, size=4, px=10), float(i))
        if isinstance(decision, ReserveGranted):
            granted.append(decision.cloid)
        t.apply_snapshot(fence, chs(), float(i))  # the exchange has not seen anything yet
        assert t.position_notional(TSLA) + t.pending_notional(TSLA) <= D(50)
    assert len(granted) == 1
    t.apply_post_result(granted[0], PostFilled(total_sz=D(4), avg_px=D(10), oid=1), 30.0)
    for i in range(20):
        fence = t.begin_fetch()
        assert denied(t, req(TSLA, size=1, px=10)) is DenyReason.HAS_POSITION
        t.apply_snapshot(fence, chs((TSLA, 4, 10)), 31.0 + i)
        assert t.position_notional(TSLA) + t.pending_notional(TSLA) <= D(50)


def test_stale_snapshot_fetched_before_a_fill_does_not_erase_it():
    t = make_tracker()
    fence = t.begin_fetch()
    open_position(t, TSLA, Side.BUY, 2, 10, now=1.0)
    for _ in range(3):  # even repeated, a snapshot older than the fill is skipped
        assert t.apply_snapshot(fence, chs(), 2.0) == []
    assert t.position_size(TSLA) == D(2)


def test_snapshot_skips_markets_with_open_reservations():
    t = make_tracker()
    r = req(TSLA, size=1, px=10)
    grant(t, r)
    fence = t.begin_fetch()
    assert t.apply_snapshot(fence, chs((TSLA, 1, 10)), 1.0) == []
    assert t.view().positions == {}


def test_removal_needs_two_consecutive_flat_snapshots():
    t = make_tracker()
    open_position(t, TSLA, Side.BUY, 2, 10, now=1.0)
    assert t.apply_snapshot(t.begin_fetch(), chs(), 5.0) == []  # remembered, not applied
    assert t.position_size(TSLA) == D(2)
    events = t.apply_snapshot(t.begin_fetch(), chs(), 6.0)
    assert events[0] == Correction(market=TSLA, before=D(2), after=D(0), entry_px=None, at=6.0)
    assert isinstance(events[1], PositionClosed)
    assert t.view().positions == {}
    assert t.view().corrections == 1


def test_flat_confirmation_is_reset_by_a_snapshot_that_agrees():
    t = make_tracker()
    open_position(t, TSLA, Side.BUY, 2, 10, now=1.0)
    t.apply_snapshot(t.begin_fetch(), chs(), 5.0)
    t.apply_snapshot(t.begin_fetch(), chs((TSLA, 2, 10)), 6.0)
    assert t.apply_snapshot(t.begin_fetch(), chs(), 7.0) == []
    assert t.position_size(TSLA) == D(2)


def test_correction_keeps_entry_time_of_surviving_position(caplog):
    t = make_tracker()
    open_position(t, TSLA, Side.BUY, 2, 10, now=1.0)
    with caplog.at_level(logging.WARNING, logger="hip3.trading.tracker"):
        events = t.apply_snapshot(t.begin_fetch(), chs((TSLA, 3, "10.5")), 50.0)
    assert events == [
        Correction(market=TSLA, before=D(2), after=D(3), entry_px=D("10.5"), at=50.0),
        PositionChanged(market=TSLA, size=D(3), entry_px=D("10.5"), at=50.0),
    ]
    pos = t.view().positions[TSLA]
    assert (pos.size, pos.entry_px, pos.opened_at) == (D(3), D("10.5"), 1.0)
    assert any("correction" in rec.message for rec in caplog.records)


def test_correction_opens_missing_position_and_flips():
    t = make_tracker()
    events = t.apply_snapshot(
        t.begin_fetch(), chs((NVDA, -2, 30), ("BTC", 1, 90000), ("abc:TSLA", 5, 1)), 9.0
    )
    assert events == [
        Correction(market=NVDA, before=D(0), after=D(-2), entry_px=D(30), at=9.0),
        PositionOpened(market=NVDA, side=Side.SELL, size=D(2), entry_px=D(30), at=9.0),
    ]
    events = t.apply_snapshot(t.begin_fetch(), chs((NVDA, 1, 31)), 10.0)
    assert [type(e) for e in events] == [Correction, PositionClosed, PositionOpened]
    assert t.view().positions[NVDA].opened_at == 10.0


def test_snapshot_limited_to_a_dex_leaves_other_dexes_alone():
    from hip3.core import MarketKey
    from hip3.trading.tracker import Tracker

    from . import MARKETS

    other = MarketKey("abc", "OIL", 120000)
    t = Tracker(
        {**MARKETS, other.name: other},
        max_notional_per_market=D(50),
        max_total_notional=D(1000),
        max_concurrent_positions=3,
    )
    t.apply_fills(fills_msg(fill(other, Side.BUY, 1, 70)), 1.0)
    for _ in range(2):
        t.apply_snapshot(t.begin_fetch(), chs(), 5.0, dex="xyz")
    assert t.position_size(other) == D(1)


# --------------------------------------------------------------------------------------------
# memory and view


def test_eviction_is_by_age():
    t = make_tracker(memory=1000.0)
    old = fill(TSLA, Side.BUY, 1, 10)
    new = fill(TSLA, Side.BUY, 1, 10)
    t.apply_fills(fills_msg(old), 0.0)
    t.apply_fills(fills_msg(new), 500.0)
    assert t.evict(900.0) == (0, 0)
    assert t.evict(1001.0) == (1, 0)
    assert not t.is_applied(old.trade_id)
    assert t.is_applied(new.trade_id)


def test_finished_ledgers_evicted_by_age_open_ones_never():
    t = make_tracker(memory=100.0)
    done = open_position(t, TSLA, Side.BUY, 1, 10, now=0.0)
    waiting = req(NVDA, size=1, px=10)
    grant(t, waiting, 0.0)
    t.apply_post_result(waiting.cloid, PostUnknown("timeout"), 0.0)
    t.evict(1000.0)
    assert t.reservation(done) is None
    assert t.reservation(waiting.cloid) is not None


def test_view_is_immutable_and_sequenced():
    t = make_tracker()
    v0 = t.view()
    open_position(t, TSLA, Side.BUY, 1, 10)
    v1 = t.view()
    assert v1.seq > v0.seq
    assert v0.positions == {}
    with pytest.raises(TypeError):
        v1.positions[NVDA] = v1.positions[TSLA]  # type: ignore[index]


def test_an_unknown_post_fully_filled_by_the_stream_ends_its_reservation():
    # No post answer and no orderStatus yet, but the stream shows the whole size filled: an order
    # cannot fill more than its size, so the reservation ends without waiting for the exchange.
    t = make_tracker(per_market=50)
    r = req(TSLA, size=4, px=10)
    grant(t, r)
    t.apply_post_result(r.cloid, PostUnknown("timeout"), 1.0)
    t.apply_fills(fills_msg(fill(TSLA, Side.BUY, 3, 10, cloid=r.cloid, tid=1)), 2.0)
    assert TSLA in t.view().pending_markets  # 3 of 4: the rest may still come
    t.apply_fills(fills_msg(fill(TSLA, Side.BUY, 1, 10, cloid=r.cloid, tid=2)), 3.0)
    assert TSLA not in t.view().pending_markets and t.position_size(TSLA) == D(4)


# --------------------------------------------------------------------------------------------
# abandoned orders (the executor gave up finding the outcome)


def abandoned_order(tracker, size=1, px=10):
    """An entry whose post timed out and that the executor abandoned after its resolve timeout."""
    r = req(TSLA, Side.BUY, size, px)
    grant(tracker, r)
    tracker.apply_post_result(r.cloid, PostUnknown("no answer within 5 s"), 5.0)
    tracker.abandon(r.cloid, 70.0, "unresolved after 60 s")
    return r.cloid


def test_late_fill_of_an_abandoned_order_is_not_counted_on_top_of_a_resync_correction():
    # Exchange truth: the abandoned IOC bought 1 TSLA (one fill, tid 7). The resync sees it first
    # and corrects the tracker to +1; the fill itself arrives afterwards (catch-up after a long
    # disconnect, or a slow stream). The position must stay +1.
    t = make_tracker(per_market=100)
    cloid = abandoned_order(t)
    t.apply_snapshot(t.begin_fetch(), chs((TSLA, 1, 10)), 80.0)
    assert t.position_size(TSLA) == D(1)  # precondition: corrected from the exchange
    t.apply_fills(fills_msg(fill(TSLA, Side.BUY, 1, 10, cloid=cloid, tid=7)), 90.0)
    assert t.position_size(TSLA) == D(1)


def test_an_unresolved_order_keeps_its_reservation_after_the_executor_gives_up():
    # Rule 6: a timed-out post's reservation stays counted until its outcome is known. Cap $15,
    # first order $10 with unknown outcome: a second $10 entry in the same market must not be
    # admitted (both may have filled: $20 > $15).
    t = make_tracker(per_market=15)
    abandoned_order(t)
    denied(t, req(TSLA, Side.BUY, 1, 10), 71.0)


class _NoScan(dict):  # type: ignore[type-arg]
    """A dict that refuses to be iterated: proves a code path looks orders up, never scans them."""

    def _refuse(self, *args, **kwargs):
        raise AssertionError("scanned every remembered order")

    __iter__ = values = items = keys = _refuse


def test_admission_view_and_resync_do_not_scan_remembered_orders():
    # Their cost must not grow with the count of finished orders (hours of trading before eviction).
    t = make_tracker(per_market=1000, total=100_000)
    for i in range(50):
        cloid = open_position(t, TSLA, Side.BUY, 1, 10, now=float(i))
        t.apply_fills(fills_msg(fill(TSLA, Side.BUY, 1, 10, cloid=cloid)), float(i))
        close = req(TSLA, Side.SELL, 1, 10, reduce_only=True)
        grant(t, close, float(i))
        t.apply_post_result(close.cloid, PostRefused("Order could not immediately match"), float(i))
        t.apply_fills(fills_msg(fill(TSLA, Side.SELL, 1, 10)), float(i))  # closed elsewhere
    assert t.order_count == 100 and t.position_size(TSLA) == 0
    t._orders.entries = _NoScan(t._orders.entries)
    r = req(GOLD, Side.BUY, 1, 10)
    grant(t, r, 100.0)
    assert GOLD in t.view().pending_markets
    t.apply_post_result(r.cloid, PostFilled(total_sz=D(1), avg_px=D(10), oid=1), 101.0)
    assert t.view().awaiting_fill_reports == {GOLD}
    t.apply_fills(fills_msg(fill(GOLD, Side.BUY, 1, 10, cloid=r.cloid)), 102.0)
    t.apply_snapshot(t.begin_fetch(), chs((GOLD, 1, 10)), 103.0)
    assert t.view().positions[GOLD].size == D(1) and not t.view().awaiting_fill_reports
