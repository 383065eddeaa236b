"""The tracker against a model exchange, under arbitrary interleavings (hypothesis state machine).

The model exchange executes each granted IOC order against its own truth (a reduce-only order is cut
to the real position), and queues what the bot would hear about it: the post response (or a
timeout followed by the orderStatus answer), one userFills record per maker level, and an
orderUpdate. Steps deliver those messages in any order, repeat fills, take resync snapshots and
apply them later (fenced), and feed bogus empty snapshots and fills of foreign coins.
"""

from __future__ import annotations

import itertools
from decimal import Decimal

from attrs import define, field
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from hip3.core import Cloid, MarketKey, Side
from hip3.hyperliquid.events import (
    ClearinghouseState,
    Fill,
    Filled,
    OrderError,
    OrderStatusResult,
    OrderUpdates,
)
from hip3.messages import PostUnknown, ReserveGranted

from . import GOLD, MARKETS, NVDA, TSLA, D, chs, fill, fills_msg, make_tracker, req, update

CAP = D(50)
TOTAL_CAP = D(120)
FEE = D("0.01")
ALL = (TSLA, NVDA, GOLD)


@define
class Message:
    kind: str  # "post", "fill", "update", "resolve"
    payload: object
    after: Message | None = None  # may only be delivered once this one was


@define
class Order:
    cloid: Cloid
    market: MarketKey
    side: Side
    size: Decimal
    limit_px: Decimal
    reduce_only: bool
    executed: bool = False
    pending: list[Message] = field(factory=list)
    delivered: list[Message] = field(factory=list)


class TrackerVsExchange(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.tracker = make_tracker(per_market=CAP, total=TOTAL_CAP, concurrent=2)
        self.truth: dict[MarketKey, Decimal] = {m: D(0) for m in ALL}
        self.orders: list[Order] = []
        self.snapshots: list[tuple[int, ClearinghouseState]] = []
        self.delivered_fills: list[Fill] = []
        self.distinct_tids: set[int] = set()
        self.tids = itertools.count(1)
        self.now = 0.0

    def tick(self) -> float:
        self.now += 1.0
        return self.now

    # --- the bot asks -----------------------------------------------------------------------

    @rule(
        market=st.sampled_from(ALL),
        side=st.sampled_from(list(Side)),
        size=st.integers(1, 5),
        px=st.sampled_from([D(10), D(20)]),
        reduce_only=st.booleans(),
    )
    def reserve(self, market: MarketKey, side: Side, size: int, px: Decimal, reduce_only: bool) -> None:
        if reduce_only:
            ours = self.tracker.position_size(market)
            if ours != 0:
                side = Side.SELL if ours > 0 else Side.BUY
        request = req(market, side, size, px, reduce_only=reduce_only)
        decision, _ = self.tracker.reserve(request, self.tick())
        if isinstance(decision, ReserveGranted):
            assert decision.size <= D(size)
            self.orders.append(Order(decision.cloid, market, side, decision.size, px, reduce_only))

    # --- the exchange executes ------------------------------------------------------------

    @precondition(lambda self: any(not o.executed for o in self.orders))
    @rule(
        data=st.data(),
        fraction=st.sampled_from([D(0), D("0.5"), D(1)]),
        levels=st.integers(1, 3),
        timeout=st.booleans(),
        with_update=st.booleans(),
    )
    def execute(
        self, data: st.DataObject, fraction: Decimal, levels: int, timeout: bool, with_update: bool
    ) -> None:
        order = data.draw(st.sampled_from([o for o in self.orders if not o.executed]))
        order.executed = True
        total = (order.size * fraction).quantize(D("0.1"))
        truth = self.truth[order.market]
        if order.reduce_only:  # the exchange cuts a reduce-only order to the real position
            opposite = (truth > 0 and order.side is Side.SELL) or (truth < 0 and order.side is Side.BUY)
            total = min(total, abs(truth)) if opposite else D(0)
        sizes = split(total, levels)
        fills = []
        for i, sz in enumerate(sizes):
            # buys fill at or below the limit, sells at the limit: notional never exceeds the reservation
            px = order.limit_px - i if order.side is Side.BUY else order.limit_px
            fills.append(
                fill(order.market, order.side, sz, px, cloid=order.cloid, tid=next(self.tids), fee=FEE)
            )
        self.truth[order.market] += total * order.side.sign
        notional = sum((f.sz * f.px for f in fills), D(0))
        if total > 0:
            post_result: object = Filled(total_sz=total, avg_px=notional / total, oid=1, cloid=order.cloid)
        else:
            post_result = OrderError("Order could not immediately match against any resting orders. asset=1")
        remaining = order.size - total
        status = "filled" if remaining == 0 else ("iocCancelRejected" if total == 0 else "canceled")
        if timeout:
            post = Message("post", PostUnknown("timeout"))
            if total == 0 and data.draw(st.booleans()):
                resolved = OrderStatusResult(known=False)
            else:
                resolved = OrderStatusResult(
                    known=True, status=status, orig_sz=order.size, sz=remaining, cloid=order.cloid
                )
            order.pending += [post, Message("resolve", resolved, after=post)]
        else:
            order.pending.append(Message("post", post_result))
        order.pending += [Message("fill", f) for f in fills]
        if with_update:
            order.pending.append(
                Message(
                    "update", update(order.cloid, status, order.size, remaining, order.market, order.side)
                )
            )

    # --- messages reach the bot in any order ----------------------------------------------

    @precondition(lambda self: any(o.pending for o in self.orders))
    @rule(data=st.data(), batch=st.booleans())
    def deliver(self, data: st.DataObject, batch: bool) -> None:
        order = data.draw(st.sampled_from([o for o in self.orders if o.pending]))
        ready = [m for m in order.pending if m.after is None or m.after in order.delivered]
        message = data.draw(st.sampled_from(ready))
        now = self.tick()
        if message.kind == "fill" and batch:  # several maker levels in one userFills message
            batch_msgs = [m for m in ready if m.kind == "fill"]
            for m in batch_msgs:
                self._delivered(order, m)
            self.tracker.apply_user_fills(fills_msg(*(m.payload for m in batch_msgs)), now)  # type: ignore[misc, arg-type]
            return
        self._delivered(order, message)
        match message.kind:
            case "post":
                self.tracker.apply_post_result(order.cloid, message.payload, now)  # type: ignore[arg-type]
            case "fill":
                self.tracker.apply_user_fills(fills_msg(message.payload), now)  # type: ignore[arg-type]
            case "update":
                assert isinstance(message.payload, OrderUpdates)
                self.tracker.apply_order_updates(message.payload, now)
            case "resolve":
                assert isinstance(message.payload, OrderStatusResult)
                self.tracker.order_resolved(order.cloid, message.payload, now)

    def _delivered(self, order: Order, message: Message) -> None:
        order.pending.remove(message)
        order.delivered.append(message)
        if message.kind == "fill":
            assert isinstance(message.payload, Fill)
            self.delivered_fills.append(message.payload)
            self.distinct_tids.add(message.payload.tid)

    @precondition(lambda self: self.delivered_fills)
    @rule(data=st.data())
    def repeat_fills(self, data: st.DataObject) -> None:
        again = data.draw(st.lists(st.sampled_from(self.delivered_fills), min_size=1, max_size=3))
        self.tracker.apply_user_fills(fills_msg(*again), self.tick())

    @precondition(lambda self: any(m.kind == "post" for o in self.orders for m in o.delivered))
    @rule(data=st.data())
    def repeat_post_response(self, data: st.DataObject) -> None:
        order = data.draw(
            st.sampled_from([o for o in self.orders if any(m.kind == "post" for m in o.delivered)])
        )
        post = next(m for m in order.delivered if m.kind == "post")
        self.tracker.apply_post_result(order.cloid, post.payload, self.tick())  # type: ignore[arg-type]

    @rule()
    def foreign_coin_fill(self) -> None:
        before = self.tracker.view()
        self.tracker.apply_user_fills(fills_msg(fill(TSLA, Side.BUY, 1, 5, coin="BTC", fee=FEE)), self.tick())
        self.tracker.apply_user_fills(
            fills_msg(fill(TSLA, Side.BUY, 1, 5, fee=FEE), snapshot=True), self.tick()
        )
        assert self.tracker.view() == before

    # --- resync ---------------------------------------------------------------------------

    @rule()
    def fetch_snapshot(self) -> None:
        fence = self.tracker.begin_fetch()
        state = chs(*((m, size, 10) for m, size in self.truth.items() if size != 0))
        self.snapshots.append((fence, state))

    @precondition(lambda self: self.snapshots)
    @rule(data=st.data())
    def apply_snapshot(self, data: st.DataObject) -> None:
        fence, state = data.draw(st.sampled_from(self.snapshots))
        self.tracker.apply_snapshot(fence, state, self.tick())

    @rule()
    def bogus_empty_snapshot_then_a_true_one(self) -> None:
        before = {m: self.tracker.position_size(m) for m in ALL}
        self.tracker.apply_snapshot(self.tracker.begin_fetch(), chs(), self.tick())
        assert {m: self.tracker.position_size(m) for m in ALL} == before
        fence = self.tracker.begin_fetch()
        state = chs(*((m, size, 10) for m, size in self.truth.items() if size != 0))
        self.tracker.apply_snapshot(fence, state, self.tick())

    # --- invariants -----------------------------------------------------------------------

    @invariant()
    def notional_including_pending_within_caps(self) -> None:
        t = self.tracker
        for m in ALL:
            assert t.position_notional(m) + t.pending_notional(m) <= CAP, m
        assert t.position_notional() + t.pending_notional() <= TOTAL_CAP

    @invariant()
    def settled_markets_match_the_exchange(self) -> None:
        for m in ALL:
            busy = [o for o in self.orders if o.market == m and (o.pending or not o.executed)]
            if not any(o.pending for o in busy):
                assert self.tracker.position_size(m) == self.truth[m], m
            if not busy:
                assert m not in self.tracker.view().pending_markets, m

    @invariant()
    def post_response_alone_moves_the_position(self) -> None:
        for order in self.orders:
            for m in order.delivered:
                if m.kind == "post" and isinstance(m.payload, Filled):
                    entry = self.tracker.reservation(order.cloid)
                    assert entry is not None and entry.applied_sz >= m.payload.total_sz

    @invariant()
    def no_tid_applied_twice(self) -> None:
        assert self.tracker.fees == FEE * len(self.distinct_tids)

    @invariant()
    def fenced_resync_never_corrects_a_correct_picture(self) -> None:
        assert self.tracker.stats.corrections == 0


def split(total: Decimal, levels: int) -> list[Decimal]:
    """Split a fill over up to `levels` maker levels in lots of 0.1 (no empty level)."""
    if total == 0:
        return []
    lots = int(total / D("0.1"))
    levels = min(levels, lots)
    base, extra = divmod(lots, levels)
    return [D("0.1") * (base + (1 if i < extra else 0)) for i in range(levels)]


TrackerVsExchange.TestCase.settings = settings(
    max_examples=300,
    stateful_step_count=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_tracker_matches_model_exchange = TrackerVsExchange.TestCase

assert set(MARKETS.values()) == set(ALL)
