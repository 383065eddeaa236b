"""The tracker against a model exchange, under arbitrary interleavings (hypothesis state machine).

The model exchange executes each granted IOC order against its own truth (a reduce-only order is cut
to the real position), and queues what the bot would hear about it: the post response (or a
timeout followed by the orderStatus answer), one userFills record per maker level, and an
orderUpdate. Steps deliver those messages in any order, repeat fills, take resync snapshots and
apply them later (fenced), and feed bogus empty snapshots and fills of foreign coins. The executor
may abandon an executed order whose outcome the tracker does not know yet; some of its messages are
then lost for good and the rest arrive late, after resyncs.
"""

from __future__ import annotations

import itertools
from decimal import Decimal

from attrs import define, field
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from hip3.core import Cloid, MarketKey, Side
from hip3.hyperliquid.events import OrderStatusResult
from hip3.trading.edge import order_status_report
from hip3.trading.messages import Correction, ReserveGranted
from hip3.trading.reports import AccountSnapshot, FillReport, PostFilled, PostRefused, PostUnknown

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
    abandoned: bool = False
    pending: list[Message] = field(factory=list)
    delivered: list[Message] = field(factory=list)
    lost: list[Message] = field(factory=list)


class TrackerVsExchange(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.tracker = make_tracker(per_market=CAP, total=TOTAL_CAP, concurrent=2)
        self.truth: dict[MarketKey, Decimal] = {m: D(0) for m in ALL}
        self.orders: list[Order] = []
        self.snapshots: list[tuple[int, AccountSnapshot]] = []
        self.delivered_fills: list[FillReport] = []
        self.distinct_tids: set[int] = set()
        self.tids = itertools.count(1)
        self.corrections: dict[MarketKey, int] = {m: 0 for m in ALL}
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
            post_result: object = PostFilled(total_sz=total, avg_px=notional / total, oid=1)
        else:
            post_result = PostRefused("Order could not immediately match against any resting orders. asset=1")
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
            self.tracker.apply_fills(fills_msg(*(m.payload for m in batch_msgs)), now)  # type: ignore[misc, arg-type]
            return
        self._delivered(order, message)
        match message.kind:
            case "post":
                self.tracker.apply_post_result(order.cloid, message.payload, now)  # type: ignore[arg-type]
            case "fill":
                self.tracker.apply_fills(fills_msg(message.payload), now)  # type: ignore[arg-type]
            case "update":
                assert isinstance(message.payload, tuple)
                self.tracker.apply_order_reports(message.payload, now)
            case "resolve":
                assert isinstance(message.payload, OrderStatusResult)
                self.tracker.order_resolved(order_status_report(order.cloid, message.payload), now)

    def _delivered(self, order: Order, message: Message) -> None:
        order.pending.remove(message)
        order.delivered.append(message)
        if message.kind == "fill":
            assert isinstance(message.payload, FillReport)
            self.delivered_fills.append(message.payload)
            self.distinct_tids.add(message.payload.trade_id.tid)

    @precondition(lambda self: self.delivered_fills)
    @rule(data=st.data())
    def repeat_fills(self, data: st.DataObject) -> None:
        again = data.draw(st.lists(st.sampled_from(self.delivered_fills), min_size=1, max_size=3))
        self.tracker.apply_fills(fills_msg(*again), self.tick())

    @precondition(lambda self: any(m.kind == "post" for o in self.orders for m in o.delivered))
    @rule(data=st.data())
    def repeat_post_response(self, data: st.DataObject) -> None:
        order = data.draw(
            st.sampled_from([o for o in self.orders if any(m.kind == "post" for m in o.delivered)])
        )
        post = next(m for m in order.delivered if m.kind == "post")
        self.tracker.apply_post_result(order.cloid, post.payload, self.tick())  # type: ignore[arg-type]

    # --- the executor gives up ----------------------------------------------------------------

    def _abandonable(self) -> list[Order]:
        # The executor abandons only after its resolve timeout: the IOC has long executed by then.
        return [o for o in self.orders if o.executed and not o.abandoned and self._open_in_tracker(o)]

    def _open_in_tracker(self, order: Order) -> bool:
        entry = self.tracker.reservation(order.cloid)
        return entry is not None and entry.is_open

    @precondition(lambda self: self._abandonable())
    @rule(data=st.data())
    def abandon(self, data: st.DataObject) -> None:
        order = data.draw(st.sampled_from(self._abandonable()))
        lost = data.draw(st.lists(st.sampled_from(order.pending), unique_by=id)) if order.pending else []
        # a message that can only follow a lost one is lost too
        lost += [m for m in order.pending if m.after is not None and m.after in lost and m not in lost]
        for message in lost:
            order.pending.remove(message)
            order.lost.append(message)
        order.abandoned = True
        self.tracker.abandon(order.cloid, self.tick(), "model: unresolved")

    @rule()
    def foreign_coin_fill(self) -> None:
        before = self.tracker.view()
        self.tracker.apply_fills(fills_msg(fill(TSLA, Side.BUY, 1, 5, coin="BTC", fee=FEE)), self.tick())
        assert self.tracker.view() == before

    # --- resync ---------------------------------------------------------------------------

    @rule()
    def fetch_snapshot(self) -> None:
        fence = self.tracker.begin_fetch()
        self.snapshots.append((fence, self._truth_snapshot()))

    @precondition(lambda self: self.snapshots)
    @rule(data=st.data())
    def apply_snapshot(self, data: st.DataObject) -> None:
        fence, state = data.draw(st.sampled_from(self.snapshots))
        self._apply_snapshot(fence, state)

    def _apply_snapshot(self, fence: int, state: AccountSnapshot) -> None:
        for event in self.tracker.apply_snapshot(fence, state, self.tick()):
            if isinstance(event, Correction):
                self.corrections[event.market] += 1

    def _truth_snapshot(self) -> AccountSnapshot:
        return chs(*((m, size, 10) for m, size in self.truth.items() if size != 0))

    @rule()
    def resync_settles_quiet_markets(self) -> None:
        # Two fresh snapshots (flat needs confirming): every market whose orders have all executed
        # and have nothing left in flight is settled, abandoned orders included.
        for _ in range(2):
            self._apply_snapshot(self.tracker.begin_fetch(), self._truth_snapshot())
        view = self.tracker.view()
        for m in ALL:
            if all(o.executed and not o.pending for o in self.orders if o.market == m):
                assert m not in view.pending_markets, m
                assert self.tracker.position_size(m) == self.truth[m], m

    @rule()
    def bogus_empty_snapshot_then_a_true_one(self) -> None:
        before = {m: self.tracker.position_size(m) for m in ALL}
        pending_before = self.tracker.view().pending_markets
        self._apply_snapshot(self.tracker.begin_fetch(), chs())
        for m in ALL:
            # Where the exchange is flat, "empty" is the truth: after a true flat snapshot it may
            # rightly confirm a correction. Elsewhere it must change nothing, nor release an order.
            if self.truth[m] != 0:
                assert self.tracker.position_size(m) == before[m], m
                assert (m in self.tracker.view().pending_markets) == (m in pending_before), m
        self._apply_snapshot(self.tracker.begin_fetch(), self._truth_snapshot())

    # --- invariants -----------------------------------------------------------------------

    @invariant()
    def order_indexes_match_a_full_scan(self) -> None:
        # Admission and the view read the indexes; they must say what scanning every order says.
        assert self.tracker._orders.indexes_match()

    @invariant()
    def notional_including_pending_within_caps(self) -> None:
        t = self.tracker
        for m in ALL:
            assert t.position_notional(m) + t.pending_notional(m) <= CAP, m
        assert t.position_notional() + t.pending_notional() <= TOTAL_CAP

    @invariant()
    def the_exchange_never_holds_more_than_the_cap(self) -> None:
        # Independent of the tracker's arithmetic: entries are admitted at px >= 10, so a position the
        # caps allow is at most CAP / 10. An early release of an abandoned order breaks this.
        for m in ALL:
            assert abs(self.truth[m]) * D(10) <= CAP, (m, self.truth[m])

    @invariant()
    def settled_markets_match_the_exchange(self) -> None:
        view = self.tracker.view()
        for m in ALL:
            here = [o for o in self.orders if o.market == m]
            busy = [o for o in here if o.pending or not o.executed]
            # an abandoned order that lost messages is settled only by a resync (it leaves pending then)
            unsettled = any(o.lost for o in here) and m in view.pending_markets
            if not any(o.pending for o in busy) and not unsettled:
                assert self.tracker.position_size(m) == self.truth[m], m
            if not busy and not any(o.lost for o in here):
                assert m not in view.pending_markets, m

    @invariant()
    def post_response_alone_moves_the_position(self) -> None:
        for order in self.orders:
            if order.abandoned:  # absorbed by a resync, its late post response is not applied
                continue
            for m in order.delivered:
                if m.kind == "post" and isinstance(m.payload, PostFilled):
                    entry = self.tracker.reservation(order.cloid)
                    assert entry is not None and entry.applied_sz >= m.payload.total_sz

    @invariant()
    def no_tid_applied_twice(self) -> None:
        assert self.tracker.fees == FEE * len(self.distinct_tids)

    @invariant()
    def fenced_resync_never_corrects_a_correct_picture(self) -> None:
        # Only an abandoned order can leave the picture wrong, and one resync repairs it for good.
        for m in ALL:
            assert self.corrections[m] <= sum(1 for o in self.orders if o.market == m and o.abandoned), m
        assert self.tracker.stats.corrections == sum(self.corrections.values())


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
