"""Tracker findings: late fills of abandoned orders, and abandonment vs DESIGN.md rule 6."""

from __future__ import annotations

from decimal import Decimal

from hip3.core import Cloid, MarketKey, Price, Side, Size
from hip3.hyperliquid.events import AssetPosition, ClearinghouseState, Fill, UserFills
from hip3.trading.messages import PostUnknown, ReserveDenied, ReserveGranted, ReserveRequest
from hip3.trading.tracker import Tracker

TSLA = MarketKey("xyz", "TSLA", 110001)


def make_tracker(per_market: str = "100") -> Tracker:
    return Tracker(
        {TSLA.name: TSLA},
        max_notional_per_market=Decimal(per_market),
        max_total_notional=Decimal(1000),
        max_concurrent_positions=3,
    )


def entry(size: str = "1", px: str = "10") -> ReserveRequest:
    return ReserveRequest(
        cloid=Cloid.random(),
        market=TSLA,
        side=Side.BUY,
        size=Size(Decimal(size)),
        limit_px=Price(Decimal(px)),
        reduce_only=False,
        reason="entry",
    )


def buy_fill(cloid: Cloid, sz: str, px: str, tid: int) -> Fill:
    return Fill(
        coin=TSLA.name,
        px=Decimal(px),
        sz=Decimal(sz),
        side=Side.BUY,
        time=1_700_000_000_000,
        start_position=Decimal(0),
        dir="Open Long",
        closed_pnl=Decimal(0),
        hash="0x" + "ab" * 32,
        oid=42,
        crossed=True,
        fee=Decimal(0),
        tid=tid,
        cloid=cloid,
    )


def exchange_long(size: str, px: str) -> ClearinghouseState:
    return ClearinghouseState(
        positions=(
            AssetPosition(
                coin=TSLA.name,
                szi=Decimal(size),
                entry_px=Decimal(px),
                position_value=Decimal(size) * Decimal(px),
                unrealized_pnl=Decimal(0),
                leverage_type="isolated",
                leverage=3,
            ),
        ),
        account_value=Decimal(1000),
        total_margin_used=Decimal(0),
        withdrawable=Decimal(1000),
    )


def abandoned_order(tracker: Tracker) -> Cloid:
    """An entry whose post timed out and that the executor abandoned after its resolve timeout."""
    request = entry()
    decision, _ = tracker.reserve(request, 0.0)
    assert isinstance(decision, ReserveGranted)
    tracker.apply_post_result(request.cloid, PostUnknown("no answer within 5 s"), 5.0)
    tracker.abandon(request.cloid, 70.0, "unresolved after 60 s")
    return request.cloid


def test_late_fill_of_an_abandoned_order_is_not_counted_on_top_of_a_resync_correction() -> None:
    # Exchange truth: the abandoned IOC bought 1 TSLA (one fill, tid 7). The resync sees it first
    # and corrects the tracker to +1; the fill itself arrives afterwards (catch-up after a long
    # disconnect, or a slow stream). The position must stay +1.
    tracker = make_tracker()
    cloid = abandoned_order(tracker)
    fence = tracker.begin_fetch()
    tracker.apply_snapshot(fence, exchange_long("1", "10"), 80.0)
    assert tracker.position_size(TSLA) == Decimal(1)  # precondition: corrected from the exchange
    tracker.apply_user_fills(
        UserFills(user="0x" + "11" * 20, is_snapshot=False, fills=(buy_fill(cloid, "1", "10", 7),)), 90.0
    )
    assert tracker.position_size(TSLA) == Decimal(1)


def test_an_unresolved_order_keeps_its_reservation_after_the_executor_gives_up() -> None:
    # DESIGN.md rule 6 / issue 4 item 5: a timed-out post's reservation stays counted until its
    # outcome is known. Cap $15, first order $10 with unknown outcome: a second $10 entry in the
    # same market must not be admitted (both may have filled: $20 > $15).
    tracker = make_tracker(per_market="15")
    abandoned_order(tracker)
    decision, _ = tracker.reserve(entry(), 71.0)
    assert isinstance(decision, ReserveDenied)
