"""Per-cloid fill reconciliation and tid memory (DESIGN.md rule 3).

A fill reaches the bot on two paths — the post response (`filled {totalSz, avgPx}`) and the
userFills stream (one record per maker match, each with its own `tid`) — in either order, possibly
repeated. For each cloid we keep what every source has reported and what has been applied to the
position, and apply only the difference. Nothing here touches positions: the ledger says *how much*
to apply and at what price; `hip3.trading.tracker.tracker` applies it.
"""

from __future__ import annotations

from decimal import Decimal

from attrs import define, field

from hip3.core import Cloid, MarketKey, Side
from hip3.trading.reports import TradeId

ZERO = Decimal(0)


@define
class Delta:
    """A size (> 0, in the order's side) still to apply to the position, at `px`."""

    size: Decimal
    px: Decimal


@define
class TrackedOrder:
    """Everything known about one cloid: the reservation, each fill source, and what was applied."""

    cloid: Cloid
    market: MarketKey
    side: Side
    created_at: float
    # the reservation (None for an order the bot did not reserve, e.g. seen only through fills)
    reserved_size: Decimal = ZERO
    limit_px: Decimal = ZERO
    reduce_only: bool = False
    reserved: bool = False
    # The executor gave up finding the outcome. The reservation still counts (rule 6) until a resync
    # whose fence is at least `abandoned_seq` (the tracker seq the abandonment produced) settles it.
    abandoned: bool = False
    abandoned_seq: int = 0
    # A resync took the exchange's position for this order's market after the order could no longer
    # change it unseen: the snapshot contains every fill of it, so later fills only record their tids.
    absorbed: bool = False
    # the stream source
    stream_tids: set[TradeId] = field(factory=set)
    stream_sz: Decimal = ZERO
    stream_ntl: Decimal = ZERO
    # the post source
    post_sz: Decimal = ZERO
    post_ntl: Decimal = ZERO
    # the order's final filled total, once the order can no longer fill (None while it can)
    final_total: Decimal | None = None
    # applied to the position so far
    applied_sz: Decimal = ZERO
    applied_ntl: Decimal = ZERO
    last_activity: float = 0.0
    oid: int | None = None

    @property
    def is_final(self) -> bool:
        return self.final_total is not None

    @property
    def is_open(self) -> bool:
        """The reservation still counts: the order may still fill, or fills it made are not applied yet.

        An abandoned order stays open: its outcome is unknown until its fills reach its final total or a
        resync absorbs it.
        """
        if not self.reserved or self.absorbed:
            return False
        if self.final_total is None:
            return True
        return self.applied_sz < self.final_total

    def absorbable(self, fence: int) -> bool:
        """A snapshot fetched after `fence` holds every fill this order will ever make."""
        if self.absorbed:
            return False
        if self.abandoned:
            return self.abandoned_seq <= fence
        return self.is_final and not self.is_open

    @property
    def awaiting_fill_reports(self) -> bool:
        """Fills known only from the post's answer: their fees (which come with the stream) are due."""
        return self.stream_sz < self.post_sz and not self.absorbed

    @property
    def stream_beyond_applied(self) -> Decimal:
        """Stream size the tracker never applied itself: after absorption, what only the snapshot holds."""
        return max(ZERO, self.stream_sz - self.applied_sz)

    @property
    def unfilled_size(self) -> Decimal:
        """Size the reservation may still add to the position (0 once closed)."""
        if not self.is_open:
            return ZERO
        ceiling = self.reserved_size if self.final_total is None else self.final_total
        return max(ZERO, ceiling - self.applied_sz)

    @property
    def pending_notional(self) -> Decimal:
        return self.unfilled_size * self.limit_px

    def record_stream_fill(self, tid: TradeId, sz: Decimal, px: Decimal, now: float) -> bool:
        """Add one userFills record; False if this tid was already counted."""
        if tid in self.stream_tids:
            return False
        self.stream_tids.add(tid)
        self.stream_sz += sz
        self.stream_ntl += sz * px
        self.last_activity = now
        if self.reserved and self.reserved_size > 0 and self.stream_sz >= self.reserved_size:
            # An order cannot fill more than its size: fully filled is final, whatever orderStatus
            # (or a lost post answer) would have said.
            self.mark_final(self.stream_sz, now)
        return True

    def record_post_fill(self, total_sz: Decimal, avg_px: Decimal, now: float) -> None:
        """The post response is a total, not an increment: a repeat never adds."""
        if total_sz > self.post_sz:
            self.post_sz = total_sz
            self.post_ntl = total_sz * avg_px
        self.last_activity = now

    def mark_final(self, total: Decimal, now: float) -> None:
        """The order can no longer fill; `total` is what it filled in all (never lowered once known)."""
        total = max(ZERO, total)
        if self.final_total is None or total > self.final_total:
            self.final_total = total
        self.last_activity = now

    def take_delta(self) -> Delta | None:
        """What to apply now so that applied == max(stream, post); records it as applied.

        The delta's price makes the applied notional equal the larger source's notional, so the
        position's entry price ends up the order's true VWAP whichever source arrived first.
        Nothing is applied for an absorbed order: the resync snapshot already holds all its fills.
        """
        if self.absorbed:
            return None
        if self.stream_sz >= self.post_sz:
            target_sz, target_ntl = self.stream_sz, self.stream_ntl
        else:
            target_sz, target_ntl = self.post_sz, self.post_ntl
        size = target_sz - self.applied_sz
        if size <= 0:
            return None
        px = (target_ntl - self.applied_ntl) / size
        if px <= 0:  # sources disagree wildly; fall back to the target's average price
            px = target_ntl / target_sz
        self.applied_sz = target_sz
        self.applied_ntl = target_ntl
        return Delta(size=size, px=px)


@define
class Orders:
    """All tracked orders by cloid, evicted by age once finished.

    Beside the full record it keeps small indexes (open orders per market, orders whose fees are
    still due, orders a resync may still absorb), so that admission, the published view and a
    resync cost what is live, not what is remembered. Whoever changes an order calls `refresh`.
    """

    entries: dict[Cloid, TrackedOrder] = field(factory=dict)
    open_by_market: dict[MarketKey, dict[Cloid, TrackedOrder]] = field(factory=dict, init=False)
    awaiting_by_market: dict[MarketKey, dict[Cloid, TrackedOrder]] = field(factory=dict, init=False)
    unabsorbed: dict[Cloid, TrackedOrder] = field(factory=dict, init=False)

    def get(self, cloid: Cloid) -> TrackedOrder | None:
        return self.entries.get(cloid)

    def add(self, entry: TrackedOrder) -> None:
        self.entries[entry.cloid] = entry
        self.refresh(entry)

    def refresh(self, entry: TrackedOrder) -> None:
        """Put `entry` in the indexes it now belongs to (and out of the others)."""
        cloid = entry.cloid
        here = self.open_by_market.setdefault(entry.market, {})
        if entry.is_open:
            here[cloid] = entry
        else:
            here.pop(cloid, None)
        awaiting = self.awaiting_by_market.setdefault(entry.market, {})
        if entry.awaiting_fill_reports:
            awaiting[cloid] = entry
        else:
            awaiting.pop(cloid, None)
        if entry.reserved and not entry.absorbed:
            self.unabsorbed[cloid] = entry
        else:
            self.unabsorbed.pop(cloid, None)

    def open_entries(self) -> list[TrackedOrder]:
        return [e for here in self.open_by_market.values() for e in here.values()]

    def open_in(self, market: MarketKey) -> list[TrackedOrder]:
        here = self.open_by_market.get(market)
        return list(here.values()) if here else []

    def markets_awaiting_fill_reports(self) -> frozenset[MarketKey]:
        return frozenset(m for m, here in self.awaiting_by_market.items() if here)

    def unabsorbed_in(self, market: MarketKey) -> list[TrackedOrder]:
        return [e for e in self.unabsorbed.values() if e.market == market]

    def indexes_match(self) -> bool:
        """The indexes say what a full scan says (for tests)."""
        entries = self.entries.values()
        return (
            {e.cloid for e in self.open_entries()} == {e.cloid for e in entries if e.is_open}
            and {c for here in self.awaiting_by_market.values() for c in here}
            == {e.cloid for e in entries if e.awaiting_fill_reports}
            and set(self.unabsorbed) == {e.cloid for e in entries if e.reserved and not e.absorbed}
        )

    def evict(self, before: float) -> int:
        """Drop finished orders with no activity since `before`; open reservations are never dropped."""
        old = [c for c, e in self.entries.items() if not e.is_open and e.last_activity < before]
        for cloid in old:
            entry = self.entries.pop(cloid)
            self.open_by_market.get(entry.market, {}).pop(cloid, None)
            self.awaiting_by_market.get(entry.market, {}).pop(cloid, None)
            self.unabsorbed.pop(cloid, None)
        return len(old)

    def __len__(self) -> int:
        return len(self.entries)


@define
class TradeMemory:
    """Every applied trade id with when it was seen; bounded by age, never cleared at once.

    What is forgotten leaves a horizon in exchange time: a fill at or before it may be one the
    tracker applied and no longer recognises, so it is never applied again (the resync repairs
    anything that was truly missed).
    """

    # trade id -> (trio time first seen, exchange time ms)
    seen: dict[TradeId, tuple[float, int]] = field(factory=dict)
    horizon_ms: int = -1

    def __contains__(self, trade_id: TradeId) -> bool:
        return trade_id in self.seen

    def add(self, trade_id: TradeId, time_ms: int, now: float) -> None:
        self.seen.setdefault(trade_id, (now, time_ms))

    def beyond_horizon(self, time_ms: int) -> bool:
        return time_ms <= self.horizon_ms

    def evict(self, before: float) -> int:
        # Insertion order is time order (trio time never goes back), so old tids sit at the front.
        count = 0
        for trade_id, (at, time_ms) in list(self.seen.items()):
            if at >= before:
                break
            del self.seen[trade_id]
            self.horizon_ms = max(self.horizon_ms, time_ms)
            count += 1
        return count

    def __len__(self) -> int:
        return len(self.seen)
