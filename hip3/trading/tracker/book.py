"""The tracker's rules: positions, reservations, fill reconciliation, fenced resync (DESIGN.md rules 1–4).

`Tracker` is a plain class. Every method runs to completion without awaiting, takes the trio time
`now`, and returns what changed, so the task around it is a thin loop and the rules are tested
directly. Nothing outside the tracker task holds this state.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from decimal import Decimal
from types import MappingProxyType

from attrs import define

from hip3.core import Cloid, MarketKey, Side, Size
from hip3.trading.messages import (
    Correction,
    DenyReason,
    PortfolioView,
    PositionChanged,
    PositionClosed,
    PositionEvent,
    PositionOpened,
    PositionView,
    ReserveDecision,
    ReserveDenied,
    ReserveGranted,
    ReserveRequest,
)
from hip3.trading.reports import (
    LIVE_STATUSES,
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
)
from hip3.trading.tracker.ledger import ZERO, Ledger, OrderLedger, TidMemory

log = logging.getLogger("hip3.trading.tracker")

DEFAULT_FILL_MEMORY_SECS = 6 * 3600.0


@define
class TrackerStats:
    """Counters for things that are normal but worth watching."""

    duplicate_tids: int = 0
    unknown_coin_fills: int = 0
    snapshot_fill_messages: int = 0
    unknown_cloid_updates: int = 0
    unknown_cloid_results: int = 0
    mismatched_fills: int = 0
    corrections: int = 0
    skipped_snapshot_markets: int = 0
    flat_unconfirmed: int = 0
    abandoned: int = 0
    evicted_tids: int = 0
    evicted_ledgers: int = 0
    fills_in_snapshot: int = 0


@define
class _Position:
    size: Decimal  # signed, never 0 while stored
    entry_px: Decimal
    opened_at: float
    entry_edge_bps: Decimal | None = None
    realized: Decimal = ZERO  # over this position's life, gross of fees
    closed_sz: Decimal = ZERO
    closed_ntl: Decimal = ZERO

    @property
    def side(self) -> Side:
        return Side.BUY if self.size > 0 else Side.SELL

    def view(self, market: MarketKey) -> PositionView:
        return PositionView(
            market=market,
            size=self.size,
            entry_px=self.entry_px,
            opened_at=self.opened_at,
            entry_edge_bps=self.entry_edge_bps,
        )


@define
class _FlatSuspect:
    """A fenced snapshot said flat while we hold a position: remembered, not applied (7.C item 17)."""

    market_seq: int
    size: Decimal


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
        self.max_notional_per_market = max_notional_per_market
        self.max_total_notional = max_total_notional
        self.max_concurrent_positions = max_concurrent_positions
        self.fill_memory_secs = fill_memory_secs
        self.stats = TrackerStats()
        self.realized_pnl = ZERO
        self.fees = ZERO
        self._positions: dict[MarketKey, _Position] = {}
        self._ledger = Ledger()
        self._tids = TidMemory()
        self._seq = 0
        self._market_seq: dict[MarketKey, int] = {}
        # Last sequence number at which each market's *position* changed: what a fenced snapshot
        # must not predate. Orders that end unfilled do not move it (review R4).
        self._position_seq: dict[MarketKey, int] = {}
        self._flat_suspects: dict[MarketKey, _FlatSuspect] = {}
        # Exchange time (ms) of the newest snapshot compared for each market: a fill without a
        # reservation from before it is already in that snapshot (review R2).
        self._snapshot_time: dict[MarketKey, int] = {}

    # -----------------------------------------------------------------------------------------
    # reads

    @property
    def seq(self) -> int:
        return self._seq

    def position_size(self, market: MarketKey) -> Decimal:
        pos = self._positions.get(market)
        return pos.size if pos else ZERO

    def pending_notional(self, market: MarketKey | None = None) -> Decimal:
        """Unfilled remainder × limit price of open entry reservations (one market, or all)."""
        return sum(
            (
                e.pending_notional
                for e in self._ledger.open_entries()
                if not e.reduce_only and (market is None or e.market == market)
            ),
            ZERO,
        )

    def position_notional(self, market: MarketKey | None = None) -> Decimal:
        return sum(
            (abs(p.size) * p.entry_px for m, p in self._positions.items() if market is None or m == market),
            ZERO,
        )

    def is_applied_tid(self, tid: int) -> bool:
        return tid in self._tids

    def reservation(self, cloid: Cloid) -> OrderLedger | None:
        return self._ledger.get(cloid)

    def view(self) -> PortfolioView:
        open_entries = list(self._ledger.open_entries())
        return PortfolioView(
            seq=self._seq,
            positions=MappingProxyType({m: p.view(m) for m, p in self._positions.items()}),
            pending_markets=frozenset(e.market for e in open_entries),
            flattening_markets=frozenset(e.market for e in open_entries if e.reduce_only),
            realized_pnl=self.realized_pnl,
            fees=self.fees,
            corrections=self.stats.corrections,
            awaiting_fill_reports=frozenset(
                e.market for e in self._ledger.entries.values() if e.stream_sz < e.post_sz and not e.absorbed
            ),
        )

    def begin_fetch(self) -> int:
        """The fence for a resync: hand it back with the snapshot fetched after this call."""
        return self._seq

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
        entry = OrderLedger(
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
        self._ledger.add(entry)
        self._touch(req.market)
        return decision, []

    def _decide(self, req: ReserveRequest) -> ReserveDecision:
        def deny(reason: DenyReason, detail: str = "") -> ReserveDenied:
            return ReserveDenied(cloid=req.cloid, reason=reason, detail=detail)

        market = req.market
        if market not in self._known_keys:
            return deny(DenyReason.UNKNOWN_MARKET, f"{market} is not a configured market")
        if self._ledger.get(req.cloid) is not None:
            return deny(DenyReason.DUPLICATE_CLOID, f"cloid {req.cloid} was already used")
        open_here = [e for e in self._ledger.open_entries() if e.market == market]
        flattening = any(e.reduce_only for e in open_here)
        pos = self._positions.get(market)

        if req.reduce_only:
            if pos is None:
                return deny(DenyReason.NO_POSITION, f"no position in {market}")
            if pos.side is req.side:
                return deny(DenyReason.WRONG_SIDE, f"{req.side} would increase the {pos.side} position")
            if flattening:
                return deny(DenyReason.FLATTEN_IN_PROGRESS, f"a flatten of {market} is already open")
            return ReserveGranted(cloid=req.cloid, size=Size(min(req.size, abs(pos.size))))

        if flattening:
            return deny(DenyReason.FLATTEN_IN_PROGRESS, f"a flatten of {market} is open")
        if pos is not None:
            return deny(DenyReason.HAS_POSITION, f"{market} holds {pos.size}")
        if open_here:
            return deny(DenyReason.PENDING_ORDER, f"order {open_here[0].cloid} is open in {market}")
        market_ntl = self.position_notional(market) + self.pending_notional(market) + req.notional
        if market_ntl > self.max_notional_per_market:
            return deny(
                DenyReason.MARKET_NOTIONAL_CAP,
                f"{market} notional incl. pending {market_ntl} > {self.max_notional_per_market}",
            )
        total_ntl = self.position_notional() + self.pending_notional() + req.notional
        if total_ntl > self.max_total_notional:
            return deny(
                DenyReason.TOTAL_NOTIONAL_CAP,
                f"total notional incl. pending {total_ntl} > {self.max_total_notional}",
            )
        busy = set(self._positions) | {e.market for e in self._ledger.open_entries() if not e.reduce_only}
        if len(busy) + 1 > self.max_concurrent_positions:
            return deny(
                DenyReason.MAX_CONCURRENT_POSITIONS,
                f"{len(busy)} markets busy, max {self.max_concurrent_positions}",
            )
        return ReserveGranted(cloid=req.cloid, size=req.size)

    # -----------------------------------------------------------------------------------------
    # order outcomes

    def apply_post_result(self, cloid: Cloid, result: PostOutcome, now: float) -> list[PositionEvent]:
        entry = self._ledger.get(cloid)
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
            entry = self._ledger.get(report.cloid)
            if entry is None:
                self.stats.unknown_cloid_updates += 1
                log.debug("order report for unknown cloid %s (%s) ignored", report.cloid, report.status)
                continue
            events.extend(self._apply_status(entry, report, now))
        return events

    def order_resolved(self, report: OrderReport | OrderNotFound, now: float) -> list[PositionEvent]:
        entry = self._ledger.get(report.cloid)
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

    def _apply_status(self, entry: OrderLedger, report: OrderReport, now: float) -> list[PositionEvent]:
        was_open = entry.is_open
        if report.oid is not None:
            entry.oid = report.oid
        entry.last_activity = now
        if report.status in LIVE_STATUSES:
            return []
        total = report.orig_sz if report.status == "filled" else report.filled_sz
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
            for e in self._ledger.open_entries()
            if not e.abandoned and now - e.created_at >= older_than
        ]

    def abandon(self, cloid: Cloid, now: float, reason: str) -> list[PositionEvent]:
        """The executor gave up on finding this order's outcome.

        The reservation keeps counting and the market stays busy (rule 6: the order may have filled).
        It ends when the order's fills reach its final total, or when a resync fenced after this call
        absorbs it (`apply_snapshot`).
        """
        entry = self._ledger.get(cloid)
        if entry is None or not entry.is_open or entry.abandoned:
            return []
        entry.abandoned = True
        entry.last_activity = now
        self.stats.abandoned += 1
        self._touch(entry.market)
        entry.abandoned_seq = self._seq
        log.error(
            "order %s in %s abandoned (%s): applied %s of %s; its reservation stays until a resync settles it",
            cloid,
            entry.market,
            reason,
            entry.applied_sz,
            entry.reserved_size,
        )
        return []

    def _after_entry_change(self, entry: OrderLedger, was_open: bool, changed: bool) -> None:
        if changed or was_open != entry.is_open:
            self._touch(entry.market)

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
            log.debug("fill %s for unconfigured coin %s ignored", fill.trade_id.tid, fill.coin)
            return []
        if fill.trade_id.tid in self._tids:
            self.stats.duplicate_tids += 1
            log.debug("fill %s already applied; skipped", fill.trade_id)
            return []
        if fill.sz <= 0 or fill.px <= 0:
            log.warning("fill tid %s with size %s / px %s ignored", fill.trade_id.tid, fill.sz, fill.px)
            return []
        self._tids.add(fill.trade_id.tid, now)
        self.fees += fill.fee
        entry = self._ledger.get(fill.cloid) if fill.cloid is not None else None
        foreign = entry is None
        if fill.cloid is not None and entry is None:
            # A cloid we never reserved (restart, another client): reconcile it all the same.
            entry = OrderLedger(
                cloid=fill.cloid, market=market, side=fill.side, created_at=now, last_activity=now
            )
            self._ledger.add(entry)
        if foreign and fill.time_ms <= self._snapshot_time.get(market, -1):
            # Not our order, and older than the last snapshot compared for this market: that
            # snapshot already holds it (review R2). Its later fills are absorbed too.
            self.stats.fills_in_snapshot += 1
            log.info(
                "fill %s in %s predates the last resync snapshot; tid recorded only",
                fill.trade_id.tid,
                market,
            )
            if entry is not None:
                entry.record_stream_fill(fill.trade_id.tid, fill.sz, fill.px, now)
                entry.absorbed = True
            self._seq += 1  # publish the fee
            return []
        if entry is not None and (entry.market != market or entry.side is not fill.side):
            self.stats.mismatched_fills += 1
            log.error(
                "fill %s for cloid %s is %s %s but the order is %s %s; applied by tid alone",
                fill.trade_id.tid,
                fill.cloid,
                fill.side,
                market,
                entry.side,
                entry.market,
            )
            entry = None
        if entry is None:
            return self._move_position(market, fill.side, fill.sz, fill.px, now)
        was_open = entry.is_open
        entry.record_stream_fill(fill.trade_id.tid, fill.sz, fill.px, now)
        if entry.absorbed:
            # A1: a resync already took the exchange's position, which holds this fill.
            log.info(
                "fill %s of %s already in a resync snapshot; tid recorded only",
                fill.trade_id.tid,
                entry.cloid,
            )
            self._seq += 1  # publish the fee; the market itself did not change, so its fence stays
            return []
        events = self._apply_entry_delta(entry, now)
        self._after_entry_change(entry, was_open, True)
        return events

    def _apply_entry_delta(self, entry: OrderLedger, now: float) -> list[PositionEvent]:
        delta = entry.take_delta()
        if delta is None:
            log.debug("order %s: nothing new to apply (applied %s)", entry.cloid, entry.applied_sz)
            return []
        return self._move_position(entry.market, entry.side, delta.size, delta.px, now)

    def _move_position(
        self, market: MarketKey, side: Side, size: Decimal, px: Decimal, now: float
    ) -> list[PositionEvent]:
        """Apply `size` (> 0) on `side` at `px`: add, reduce, close or flip."""
        self._moved(market)
        pos = self._positions.get(market)
        signed = size * side.sign
        if pos is None:
            self._open(market, signed, px, now)
            return [PositionOpened(market=market, side=side, size=size, entry_px=px, at=now)]
        if pos.side is side:
            new_size = pos.size + signed
            pos.entry_px = (abs(pos.size) * pos.entry_px + size * px) / abs(new_size)
            pos.size = new_size
            return [PositionChanged(market=market, size=pos.size, entry_px=pos.entry_px, at=now)]
        closed = min(abs(pos.size), size)
        pnl = (px - pos.entry_px) * closed * pos.side.sign
        pos.realized += pnl
        pos.closed_sz += closed
        pos.closed_ntl += closed * px
        self.realized_pnl += pnl
        remainder = abs(pos.size) - size
        if remainder > 0:
            pos.size = remainder * pos.side.sign
            return [PositionChanged(market=market, size=pos.size, entry_px=pos.entry_px, at=now)]
        events: list[PositionEvent] = [self._close(market, pos, now)]
        if remainder < 0:  # crossed zero: the rest opens the other way at the fill price
            self._open(market, -remainder * side.sign, px, now)
            events.append(PositionOpened(market=market, side=side, size=-remainder, entry_px=px, at=now))
        return events

    def _open(self, market: MarketKey, signed: Decimal, px: Decimal, now: float) -> None:
        self._positions[market] = _Position(size=signed, entry_px=px, opened_at=now)
        log.info("position opened %s %s @ %s", market, signed, px)

    def _close(self, market: MarketKey, pos: _Position, now: float) -> PositionClosed:
        del self._positions[market]
        exit_px = pos.closed_ntl / pos.closed_sz if pos.closed_sz > 0 else pos.entry_px
        log.info(
            "position closed %s %s %s entry %s exit %s pnl %s held %.1fs",
            market,
            pos.side,
            pos.closed_sz,
            pos.entry_px,
            exit_px,
            pos.realized,
            now - pos.opened_at,
        )
        return PositionClosed(
            market=market,
            side=pos.side,
            size=pos.closed_sz,
            entry_px=pos.entry_px,
            exit_px=exit_px,
            realized_pnl=pos.realized,
            held_for=now - pos.opened_at,
            at=now,
        )

    def _touch(self, market: MarketKey) -> None:
        self._seq += 1
        self._market_seq[market] = self._seq

    def _moved(self, market: MarketKey) -> None:
        """The position in `market` changed: snapshots fenced before now must not correct it."""
        self._touch(market)
        self._position_seq[market] = self._seq
        self._flat_suspects.pop(market, None)

    # -----------------------------------------------------------------------------------------
    # resync (rule 4)

    def apply_snapshot(
        self, fence: int, snapshot: AccountSnapshot, now: float, *, dex: str | None = None
    ) -> list[PositionEvent]:
        """Correct quiet markets from a clearinghouseState fetched after `begin_fetch()` returned `fence`.

        `dex` limits the comparison to that dex's markets (clearinghouseState is per dex); None
        compares every configured market.
        """
        exchange: dict[MarketKey, tuple[Decimal, Decimal | None]] = {}
        for reported in snapshot.positions:
            market = self.markets.get(reported.coin)
            if market is None or (dex is not None and market.dex != dex):
                continue
            exchange[market] = (reported.size, reported.entry_px)
        # An abandoned order does not keep its market busy for a snapshot fenced after the abandonment:
        # that snapshot is the only way left to learn what the order did.
        busy = {e.market for e in self._ledger.open_entries() if not e.absorbable(fence)}
        events: list[PositionEvent] = []
        for market in sorted(self._known_keys):
            if dex is not None and market.dex != dex:
                continue
            if self._position_seq.get(market, 0) > fence or market in busy:
                self.stats.skipped_snapshot_markets += 1
                continue
            if snapshot.time_ms is not None:
                self._snapshot_time[market] = max(
                    snapshot.time_ms, self._snapshot_time.get(market, snapshot.time_ms)
                )
            theirs, their_px = exchange.get(market, (ZERO, None))
            ours = self.position_size(market)
            if theirs == ours:
                releases = any(e.is_open for e in self._absorbable(market, fence))
                if theirs == 0 and releases and not self._flat_confirmed(market, ours):
                    # An empty snapshot may be bogus (7.C item 17): an abandoned order is released on
                    # "flat" only when a second snapshot says so too.
                    continue
                self._flat_suspects.pop(market, None)
                if self._absorb(market, fence, now):
                    self._touch(market)  # a reservation ended: publish the view
                continue
            if theirs == 0 and not self._flat_confirmed(market, ours):
                continue
            corrected = self._correct(market, theirs, their_px, now)
            if corrected:
                self._absorb(market, fence, now)
            events.extend(corrected)
        return events

    def _flat_confirmed(self, market: MarketKey, ours: Decimal) -> bool:
        """True if the previous snapshot also said flat and nothing happened in `market` since."""
        suspect = self._flat_suspects.get(market)
        market_seq = self._position_seq.get(market, 0)
        if suspect is not None and suspect.market_seq == market_seq and suspect.size == ours:
            return True
        self._flat_suspects[market] = _FlatSuspect(market_seq=market_seq, size=ours)
        self.stats.flat_unconfirmed += 1
        log.warning(
            "resync: exchange says %s is flat (we hold %s); waiting for a second snapshot", market, ours
        )
        return False

    def _absorbable(self, market: MarketKey, fence: int) -> list[OrderLedger]:
        return [e for e in self._ledger.entries.values() if e.market == market and e.absorbable(fence)]

    def _absorb(self, market: MarketKey, fence: int, now: float) -> bool:
        """Mark the market's finished and abandoned orders as contained in the snapshot (A1).

        Returns True if a reservation ended (an abandoned order was released).
        """
        released = False
        for entry in self._absorbable(market, fence):
            if entry.is_open:
                released = True
                log.warning(
                    "order %s in %s settled by resync: applied %s of its fills, the snapshot holds the rest",
                    entry.cloid,
                    market,
                    entry.applied_sz,
                )
            entry.absorbed = True
            entry.last_activity = now
        return released

    def _correct(
        self, market: MarketKey, theirs: Decimal, their_px: Decimal | None, now: float
    ) -> list[PositionEvent]:
        pos = self._positions.get(market)
        ours = pos.size if pos else ZERO
        events: list[PositionEvent] = []
        if theirs == 0:
            assert pos is not None
            del self._positions[market]
            events.append(
                PositionClosed(
                    market=market,
                    side=pos.side,
                    size=abs(pos.size),
                    entry_px=pos.entry_px,
                    exit_px=pos.entry_px,  # unknown: the close happened outside our view
                    realized_pnl=ZERO,
                    held_for=now - pos.opened_at,
                    at=now,
                )
            )
        else:
            px = their_px if their_px is not None and their_px > 0 else (pos.entry_px if pos else None)
            if px is None:
                log.error("resync: %s size %s without an entry price; not corrected", market, theirs)
                return []
            if pos is not None and (pos.size > 0) == (theirs > 0):
                pos.size = theirs
                pos.entry_px = px
                events.append(PositionChanged(market=market, size=theirs, entry_px=px, at=now))
            else:
                if pos is not None:
                    del self._positions[market]
                    events.append(
                        PositionClosed(
                            market=market,
                            side=pos.side,
                            size=abs(pos.size),
                            entry_px=pos.entry_px,
                            exit_px=pos.entry_px,
                            realized_pnl=ZERO,
                            held_for=now - pos.opened_at,
                            at=now,
                        )
                    )
                self._positions[market] = _Position(size=theirs, entry_px=px, opened_at=now)
                side = Side.BUY if theirs > 0 else Side.SELL
                events.append(PositionOpened(market=market, side=side, size=abs(theirs), entry_px=px, at=now))
        self.stats.corrections += 1
        log.warning("resync correction %s: ours %s -> exchange %s (entry %s)", market, ours, theirs, their_px)
        self._moved(market)
        correction = Correction(market=market, before=ours, after=theirs, entry_px=their_px, at=now)
        return [correction, *events]

    # -----------------------------------------------------------------------------------------
    # memory

    def evict(self, now: float) -> tuple[int, int]:
        """Forget tids and finished ledgers older than the horizon; returns (tids, ledgers) dropped."""
        before = now - self.fill_memory_secs
        tids = self._tids.evict(before)
        ledgers = self._ledger.evict(before)
        self.stats.evicted_tids += tids
        self.stats.evicted_ledgers += ledgers
        if tids or ledgers:
            log.debug("evicted %d tids and %d finished orders older than %.0fs", tids, ledgers, before)
        return tids, ledgers

    @property
    def tid_count(self) -> int:
        return len(self._tids)

    @property
    def ledger_count(self) -> int:
        return len(self._ledger)


def correction_events(events: Iterable[PositionEvent]) -> list[Correction]:
    return [e for e in events if isinstance(e, Correction)]
