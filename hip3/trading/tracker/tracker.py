"""The Tracker: positions, reservations, fills and resync in one owner (DESIGN.md rules 1–4).

`Tracker` is a plain class. Every method runs to completion without awaiting, takes the trio time
`now`, and returns what changed, so the task around it is a thin loop and the rules are tested
directly. Nothing outside the tracker task holds this state. The rules live beside it:
`admission` (may this order be reserved), `orders` (per-cloid fill reconciliation), `positions`
(one builder for every position change) and `reconciliation` (fenced snapshots).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from decimal import Decimal
from types import MappingProxyType

from hip3.core import Cloid, MarketKey, Side
from hip3.trading.messages import (
    DenyReason,
    PortfolioView,
    PositionEvent,
    ReserveDecision,
    ReserveDenied,
    ReserveRequest,
)
from hip3.trading.reports import (
    AccountSnapshot,
    FillReport,
    NotSent,
    OrderNotFound,
    OrderReport,
    PostFilled,
    PostOutcome,
    PostRefused,
    PostResting,
    PostUnknown,
    TradeId,
)
from hip3.trading.tracker.admission import Exposure, Limits, decide
from hip3.trading.tracker.orders import ZERO, Orders, TrackedOrder, TradeMemory
from hip3.trading.tracker.positions import Positions
from hip3.trading.tracker.reconciliation import Fences, Reconciler
from hip3.trading.tracker.stats import TrackerStats

log = logging.getLogger("hip3.trading.tracker")

DEFAULT_FILL_MEMORY_SECS = 6 * 3600.0


class Tracker:
    """The only owner of positions, reservations and the fill ledger."""

    def __init__(
        self,
        markets: Mapping[str, MarketKey],
        *,
        max_notional_per_market: Decimal,
        max_total_notional: Decimal,
        max_concurrent_positions: int,
        fill_memory_secs: float = DEFAULT_FILL_MEMORY_SECS,
    ) -> None:
        if fill_memory_secs <= 0:
            raise ValueError(f"fill_memory_secs must be > 0, got {fill_memory_secs}")
        if max_concurrent_positions < 0:
            raise ValueError(f"max_concurrent_positions must be >= 0, got {max_concurrent_positions}")
        self.markets: dict[str, MarketKey] = dict(markets)
        self._known_keys = frozenset(self.markets.values())
        self.limits = Limits(
            max_notional_per_market=max_notional_per_market,
            max_total_notional=max_total_notional,
            max_concurrent_positions=max_concurrent_positions,
        )
        self.fill_memory_secs = fill_memory_secs
        self.stats = TrackerStats()
        self.fees = ZERO
        self._positions = Positions.empty()
        self._orders = Orders()
        self._trades = TradeMemory()
        self._fences = Fences()
        self._reconciler = Reconciler(self.markets, self._positions, self._orders, self._fences, self.stats)

    # -----------------------------------------------------------------------------------------
    # reads

    @property
    def seq(self) -> int:
        return self._fences.seq

    @property
    def realized_pnl(self) -> Decimal:
        return self._positions.realized_pnl

    def position_size(self, market: MarketKey) -> Decimal:
        return self._positions.size(market)

    def pending_notional(self, market: MarketKey | None = None) -> Decimal:
        """Unfilled remainder × limit price of open entry reservations (one market, or all)."""
        return sum(
            (
                e.pending_notional
                for e in self._orders.open_entries()
                if not e.reduce_only and (market is None or e.market == market)
            ),
            ZERO,
        )

    def position_notional(self, market: MarketKey | None = None) -> Decimal:
        return self._positions.notional(market)

    def is_applied(self, trade_id: TradeId) -> bool:
        return trade_id in self._trades

    def reservation(self, cloid: Cloid) -> TrackedOrder | None:
        return self._orders.get(cloid)

    def view(self) -> PortfolioView:
        open_entries = self._orders.open_entries()
        held = self._positions.held
        return PortfolioView(
            seq=self.seq,
            positions=MappingProxyType({m: p.view(m) for m, p in held.items()}),
            pending_markets=frozenset(e.market for e in open_entries),
            pending_cloids=frozenset(e.cloid for e in open_entries),
            flattening_markets=frozenset(e.market for e in open_entries if e.reduce_only),
            realized_pnl=self.realized_pnl,
            fees=self.fees,
            corrections=self.stats.corrections,
            awaiting_fill_reports=self._orders.markets_awaiting_fill_reports(),
        )

    def begin_fetch(self) -> int:
        """The fence for a resync: hand it back with the snapshot fetched after this call."""
        return self.seq

    # -----------------------------------------------------------------------------------------
    # admission (rule 2: check and record in one step)

    def reserve(self, req: ReserveRequest, now: float) -> tuple[ReserveDecision, list[PositionEvent]]:
        if req.size <= 0 or req.limit_px <= 0:
            # Rule 5 drops such orders before they get here; reaching this is a caller bug.
            raise ValueError(f"reserve {req.cloid}: size {req.size} and limit_px {req.limit_px} must be > 0")
        decision = self._decide(req)
        if isinstance(decision, ReserveDenied):
            log.debug(
                "reserve denied %s %s: %s %s", req.market, req.cloid, decision.reason.value, decision.detail
            )
            return decision, []
        entry = TrackedOrder(
            cloid=req.cloid,
            market=req.market,
            side=req.side,
            created_at=now,
            reserved_size=decision.size,
            limit_px=req.limit_px,
            reduce_only=req.reduce_only,
            reserved=True,
            last_activity=now,
        )
        self._orders.add(entry)
        self._fences.touch()
        return decision, []

    def _decide(self, req: ReserveRequest) -> ReserveDecision:
        if req.market not in self._known_keys:
            return ReserveDenied(
                req.cloid, DenyReason.UNKNOWN_MARKET, f"{req.market} is not a configured market"
            )
        if self._orders.get(req.cloid) is not None:
            return ReserveDenied(req.cloid, DenyReason.DUPLICATE_CLOID, f"cloid {req.cloid} was already used")
        open_entries = self._orders.open_entries()
        exposure = Exposure(
            position=self._positions.get(req.market),
            open_here=self._orders.open_in(req.market),
            market_notional=self.position_notional(req.market) + self.pending_notional(req.market),
            total_notional=self.position_notional() + self.pending_notional(),
            busy_markets=len(
                set(self._positions.markets()) | {e.market for e in open_entries if not e.reduce_only}
            ),
        )
        return decide(req, exposure, self.limits)

    # -----------------------------------------------------------------------------------------
    # order outcomes

    def apply_post_result(self, cloid: Cloid, result: PostOutcome, now: float) -> list[PositionEvent]:
        entry = self._orders.get(cloid)
        if entry is None:
            self.stats.unknown_cloid_results += 1
            log.warning("post result for unknown cloid %s ignored: %r", cloid, result)
            return []
        was_open = entry.is_open
        events: list[PositionEvent] = []
        match result:
            case PostFilled(total_sz=total_sz, avg_px=avg_px, oid=oid):
                entry.oid = oid
                if total_sz > 0 and avg_px > 0:
                    entry.record_post_fill(total_sz, avg_px, now)
                # The bot posts IOC; a GTC answered "filled" filled completely. Either way it is final.
                entry.mark_final(total_sz, now)
                events = self._apply_entry_delta(entry, now)
            case PostResting(oid=oid):
                entry.oid = oid
                entry.last_activity = now
            case PostRefused(message=message):
                # Refused before matching: nothing of this post filled.
                log.info("order %s in %s refused: %s", cloid, entry.market, message)
                entry.mark_final(ZERO, now)
            case NotSent(reason=reason):
                # Never left the bot: nothing can fill.
                log.info("order %s in %s not sent: %s", cloid, entry.market, reason)
                entry.mark_final(ZERO, now)
            case PostUnknown():
                # Outcome not known yet (rule 6): the reservation stays counted until settled.
                entry.last_activity = now
            case _:
                log.error("post result for %s of unexpected type %s ignored", cloid, type(result).__name__)
                return []
        self._after_entry_change(entry, was_open, bool(events))
        return events

    def apply_order_reports(self, reports: Iterable[OrderReport], now: float) -> list[PositionEvent]:
        events: list[PositionEvent] = []
        for report in reports:
            entry = self._orders.get(report.cloid)
            if entry is None:
                self.stats.unknown_cloid_updates += 1
                log.debug("order report for unknown cloid %s (%s) ignored", report.cloid, report.status)
                continue
            events.extend(self._apply_status(entry, report, now))
        return events

    def order_resolved(self, report: OrderReport | OrderNotFound, now: float) -> list[PositionEvent]:
        entry = self._orders.get(report.cloid)
        if entry is None:
            self.stats.unknown_cloid_results += 1
            log.warning("orderStatus for unknown cloid %s ignored", report.cloid)
            return []
        if isinstance(report, OrderNotFound):
            was_open = entry.is_open
            if entry.stream_sz > 0 or entry.post_sz > 0:
                log.warning(
                    "orderStatus says %s unknown but fills were seen; keeping what was applied", report.cloid
                )
            entry.mark_final(max(entry.stream_sz, entry.post_sz), now)
            self._after_entry_change(entry, was_open, False)
            return []
        return self._apply_status(entry, report, now)

    def _apply_status(self, entry: TrackedOrder, report: OrderReport, now: float) -> list[PositionEvent]:
        was_open = entry.is_open
        if report.oid is not None:
            entry.oid = report.oid
        entry.last_activity = now
        if report.is_live:
            return []
        # Also for "filled": a partly filled IOC or a reduce-only order the exchange shrank reports
        # the rest as remaining, so the order's total is what left the book, not its original size.
        total = report.filled_sz
        entry.mark_final(total, now)
        if entry.is_open:
            log.debug(
                "order %s final at %s, waiting for fills (applied %s)", entry.cloid, total, entry.applied_sz
            )
        self._after_entry_change(entry, was_open, False)
        return []

    def stale_reservations(self, now: float, older_than: float) -> list[Cloid]:
        """Open reservations created more than `older_than` seconds ago: the executor chases them."""
        # Abandoned ones are not chased again: only a resync can settle them now.
        return [
            e.cloid
            for e in self._orders.open_entries()
            if not e.abandoned and now - e.created_at >= older_than
        ]

    def abandon(self, cloid: Cloid, now: float, reason: str) -> list[PositionEvent]:
        """The executor gave up on finding this order's outcome.

        The reservation keeps counting and the market stays busy (rule 6: the order may have filled).
        It ends when the order's fills reach its final total, or when a resync fenced after this call
        absorbs it (`apply_snapshot`).
        """
        entry = self._orders.get(cloid)
        if entry is None or not entry.is_open or entry.abandoned:
            return []
        entry.abandoned = True
        entry.last_activity = now
        self._orders.refresh(entry)
        self.stats.abandoned += 1
        self._fences.touch()
        entry.abandoned_seq = self.seq
        log.error(
            "order %s in %s abandoned (%s): applied %s of %s; its reservation stays until a resync settles it",
            cloid,
            entry.market,
            reason,
            entry.applied_sz,
            entry.reserved_size,
        )
        return []

    def _after_entry_change(self, entry: TrackedOrder, was_open: bool, changed: bool) -> None:
        self._orders.refresh(entry)
        if changed or was_open != entry.is_open:
            self._fences.touch()

    # -----------------------------------------------------------------------------------------
    # fills

    def apply_fills(self, fills: Iterable[FillReport], now: float) -> list[PositionEvent]:
        events: list[PositionEvent] = []
        for fill in fills:
            events.extend(self._apply_fill(fill, now))
        return events

    def _apply_fill(self, fill: FillReport, now: float) -> list[PositionEvent]:
        market = self.markets.get(fill.coin)
        if market is None:
            self.stats.unknown_coin_fills += 1
            log.debug("fill %s for unconfigured coin %s ignored", fill.trade_id, fill.coin)
            return []
        if fill.trade_id in self._trades:
            self.stats.duplicate_tids += 1
            log.debug("fill %s already applied; skipped", fill.trade_id)
            return []
        if fill.sz <= 0 or fill.px <= 0:
            log.warning("fill %s with size %s / px %s ignored", fill.trade_id, fill.sz, fill.px)
            return []
        if self._trades.beyond_horizon(fill.time_ms):
            # Older than trades the tracker has already forgotten (a reconnect's catch-up after a
            # long outage): it may have been applied, and can't be recognised any more.
            self.stats.fills_beyond_memory += 1
            log.warning(
                "fill %s in %s at %d is older than the fill memory; not applied (resync repairs a miss)",
                fill.trade_id,
                market,
                fill.time_ms,
            )
            return []
        self._trades.add(fill.trade_id, fill.time_ms, now)
        self.fees += fill.fee
        entry = self._orders.get(fill.cloid) if fill.cloid is not None else None
        if entry is not None and not entry.reserved:
            entry = None
        if entry is not None and (entry.market != market or entry.side is not fill.side):
            self.stats.mismatched_fills += 1
            log.error(
                "fill %s for cloid %s is %s %s but the order is %s %s; applied by tid alone",
                fill.trade_id,
                fill.cloid,
                fill.side,
                market,
                entry.side,
                entry.market,
            )
            entry = None
        if entry is None:
            # Not from a reservation of ours (liquidation, manual trade, another client, a cloid of
            # an earlier run): decided per fill, by its time against the last adopted snapshot.
            if self._fences.in_snapshot(market, fill.time_ms):
                # The snapshot set the size (a correction realizes nothing); the money this fill
                # made or lost is known only from the exchange's closedPnl: it counts here.
                self.stats.fills_in_snapshot += 1
                self._positions.realized_pnl += fill.closed_pnl
                log.info(
                    "fill %s in %s is inside the last adopted snapshot; fee and closed PnL %s counted only",
                    fill.trade_id,
                    market,
                    fill.closed_pnl,
                )
                self._fences.touch()  # publish the fee and the PnL
                return []
            return self._move(market, fill.side, fill.sz, fill.px, now)
        was_open = entry.is_open
        unapplied_before = entry.stream_beyond_applied
        entry.record_stream_fill(fill.trade_id, fill.sz, fill.px, now)
        self._orders.refresh(entry)
        if entry.absorbed:
            # A resync already took the exchange's position, which holds this fill: the size is not
            # applied again. A correction realizes nothing, so the money of the part the tracker never
            # applied itself is known only from the exchange's closedPnl: it counts here, once (the
            # part already applied realized its PnL when it moved the position).
            counted = self._absorbed_fill_pnl(fill, entry.stream_beyond_applied - unapplied_before)
            log.info(
                "fill %s of %s already in a resync snapshot; tid, fee and closed PnL %s counted only",
                fill.trade_id,
                entry.cloid,
                counted,
            )
            self._fences.touch()  # publish fee and PnL; the market itself did not change, so its fence stays
            return []
        events = self._apply_entry_delta(entry, now)
        self._after_entry_change(entry, was_open, True)
        return events

    def _absorbed_fill_pnl(self, fill: FillReport, unapplied: Decimal) -> Decimal:
        """Count the closed PnL of the `unapplied` part of an absorbed order's fill; returns it."""
        if unapplied <= 0:
            return ZERO
        # Pro rata when only part of the fill goes beyond what was applied (a post answer applied
        # some of this order's size before its fills arrived).
        pnl = fill.closed_pnl if unapplied >= fill.sz else fill.closed_pnl * unapplied / fill.sz
        self._positions.realized_pnl += pnl
        return pnl

    def _apply_entry_delta(self, entry: TrackedOrder, now: float) -> list[PositionEvent]:
        delta = entry.take_delta()
        if delta is None:
            log.debug("order %s: nothing new to apply (applied %s)", entry.cloid, entry.applied_sz)
            return []
        return self._move(entry.market, entry.side, delta.size, delta.px, now)

    def _move(
        self, market: MarketKey, side: Side, size: Decimal, px: Decimal, now: float
    ) -> list[PositionEvent]:
        self._fences.moved(market)
        return self._positions.move(market, side, size, px, now)

    # -----------------------------------------------------------------------------------------
    # resync (rule 4)

    def apply_snapshot(
        self, fence: int, snapshot: AccountSnapshot, now: float, *, dex: str | None = None
    ) -> list[PositionEvent]:
        """Correct quiet markets from a snapshot fetched after `begin_fetch()` returned `fence`."""
        return self._reconciler.apply_snapshot(fence, snapshot, now, dex=dex)

    # -----------------------------------------------------------------------------------------
    # memory

    def evict(self, now: float) -> tuple[int, int]:
        """Forget tids and finished orders older than the horizon; returns (tids, orders) dropped."""
        before = now - self.fill_memory_secs
        tids = self._trades.evict(before)
        orders = self._orders.evict(before)
        self.stats.evicted_tids += tids
        self.stats.evicted_ledgers += orders
        if tids or orders:
            log.debug("evicted %d tids and %d finished orders older than %.0fs", tids, orders, before)
        return tids, orders

    @property
    def tid_count(self) -> int:
        return len(self._trades)

    @property
    def order_count(self) -> int:
        return len(self._orders)
