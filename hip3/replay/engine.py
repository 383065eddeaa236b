"""Replay a market-data recording through the bot's own rules under virtual time.

Driven, in the live order, are the bot's own pieces: the recorded frames go through the parser
(`parse_ws_frame`) into the live feed's `Feed.on_market_data` (cells and READY); after each frame the
live `SignalScanner.scan` (gates, then detector and sizing) looks at the changed markets; a signal
is admitted by the tracker's caps (a small copy of its rules here: one position or order per
market, notional caps including pending, concurrent positions), priced by the executor's
`entry_terms`, and reaches the recorded book `latency` later (`hip3.replay.fills`). Exits are the
live `ExitPlanner` (time stop, mark regression, backoff) stepped every `check_interval_secs`,
priced by `flatten_terms`. The tasks themselves (WebSocket, executor, tracker) are not run: the
transport and the exchange are what a replay replaces.

Time is trio's: run under `trio.testing.MockClock`, frames are applied at their recorded
spacing, so every age and timer the rules use sees recording time. A gap in the recording
resets the cells and READY (no trade across a gap) and cancels orders still on their way.
"""

from __future__ import annotations

import heapq
import json
import logging
import random
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import trio

from hip3.clock import use_wall_clock
from hip3.core import Cloid, MarketKey, MarketSpec, Side
from hip3.hyperliquid.events import AssetCtx, Bbo, Fill
from hip3.hyperliquid.parse import parse_ws_frame
from hip3.market.cells import MarketCells
from hip3.market.feed import Feed
from hip3.market.ready import ReadyState
from hip3.replay.fills import FillModel, IocOutcome, draw_pull, ioc_fill, is_stale, taker_fee
from hip3.service.journal import Journal
from hip3.sim.recording import RecordedFrame, RecordedGap
from hip3.strategy.accounting import EdgeLedger, RoundTrip, signed_bps
from hip3.strategy.scanner import SignalScanner
from hip3.trading.executor.pricing import DropReason, OrderTerms, entry_terms, flatten_terms
from hip3.trading.exits import ExitParams, ExitPlanner
from hip3.trading.messages import PortfolioView, PositionClosed, PositionOpened, PositionView, Signal

log = logging.getLogger(__name__)

ZERO = Decimal(0)
BPS = Decimal(10_000)


@dataclass(frozen=True)
class Caps:
    max_notional_per_market: Decimal
    max_total_notional: Decimal
    max_concurrent_positions: int


@dataclass
class Order:
    cloid: Cloid
    oid: int
    market: MarketKey
    terms: OrderTerms
    reduce_only: bool
    reason: str
    sent_at: float
    signal: Signal | None = None
    epoch: int = 0  # the recording segment it was sent in: a gap cancels it


@dataclass
class Position:
    size: Decimal  # signed
    entry_px: Decimal
    opened_at: float
    side: Side
    realized: Decimal = ZERO
    exit_notional: Decimal = ZERO
    exit_size: Decimal = ZERO


@dataclass(frozen=True)
class EntryOutcome:
    market: MarketKey
    at_ms: int
    why: str  # IocOutcome.why, or "gap"
    signal_edge_bps: Decimal
    taken_bps: Decimal | None  # the price taken against the signal's oracle


@dataclass
class ReplayResult:
    signals: list[tuple[Signal, int]] = field(default_factory=list)  # (signal, recording ms)
    entries: list[EntryOutcome] = field(default_factory=list)
    trips: list[tuple[RoundTrip, int]] = field(default_factory=list)  # (trip, recording ms opened)
    dropped: dict[str, int] = field(default_factory=dict)  # signals never sent, by reason
    fees: Decimal = ZERO
    frames: int = 0
    gaps: int = 0
    open_at_end: list[str] = field(default_factory=list)
    first_ms: int | None = None
    last_ms: int | None = None


def frame_text(item: RecordedFrame) -> str:
    """The frame as the WebSocket carried it (the recording reader keeps channel and data)."""
    return json.dumps({"channel": item.channel, "data": item.data}, separators=(",", ":"))


class Replay:
    def __init__(
        self,
        specs: Mapping[MarketKey, MarketSpec],
        scanner: SignalScanner,
        *,
        caps: Caps,
        max_slippage_bps: Decimal,
        flatten_slippage_bps: Decimal,
        exit_params: ExitParams,
        fill_model: FillModel,
        taker_bps_of: Callable[[MarketKey], Decimal],
        journal: Journal | None = None,
    ) -> None:
        self.specs = specs
        self.markets = {spec.key.name: spec.key for spec in specs.values()}
        self.scanner = scanner
        self.caps = caps
        self.max_slippage_bps = max_slippage_bps
        self.flatten_slippage_bps = flatten_slippage_bps
        self.exit_params = exit_params
        self.model = fill_model
        self.rng = random.Random(fill_model.seed)
        self.taker_bps_of = taker_bps_of
        self.journal = journal
        self.cells = MarketCells(specs)
        self.ready = ReadyState(specs, trading=False)
        self.feed = Feed(self.cells, self.markets, self.ready)
        self.exits = ExitPlanner(self.cells, exit_params, structural_gap=scanner.structural_gap_bps)
        self.ledger = EdgeLedger(oracle_of=self._oracle, taker_bps_of=taker_bps_of)
        self.result = ReplayResult()
        self.positions: dict[MarketKey, Position] = {}
        self.pending: dict[MarketKey, Order] = {}
        self._heap: list[tuple[float, int, str, Any]] = []
        self._seq = 0
        self._ids = 0
        self._epoch = 0
        self._base = 0.0
        self._t0_ms = 0.0
        self._check_at: float | None = None

    # -- clocks ----------------------------------------------------------------------------------

    def ms_at(self, t: float) -> int:
        return round(self._t0_ms + (t - self._base) * 1000)

    def now_ms(self) -> int:
        return self.ms_at(trio.current_time())

    def _oracle(self, market: MarketKey) -> Decimal | None:
        return self.cells.get(market).oracle_px

    def _fair(self, market: MarketKey) -> Decimal | None:
        """Where the book settles: the oracle shifted by the scanner's structural gap (as measured
        for entries and exits); the oracle while the gap is unknown."""
        oracle = self._oracle(market)
        gap = self.scanner.structural_gap_bps(market, trio.current_time())
        if oracle is None or gap is None:
            return oracle
        return oracle * (1 + gap / BPS)

    # -- the run ---------------------------------------------------------------------------------

    async def run(self, items: Iterable[RecordedFrame | RecordedGap]) -> ReplayResult:
        self._base = trio.current_time()
        # Journal rows, fills and hours carry recording time: the one wall-clock seam follows it.
        with use_wall_clock(self.now_ms):
            return await self._run(items)

    async def _run(self, items: Iterable[RecordedFrame | RecordedGap]) -> ReplayResult:
        self.ready.on_connected()
        last_t: float | None = None
        for item in items:
            if self.result.first_ms is None:
                self._t0_ms = item.t_ms
                self.result.first_ms = int(item.t_ms)
            at = self._base + max(0.0, item.t_ms - self._t0_ms) / 1000
            if last_t is not None and at < last_t:
                at = last_t  # receive times never go back in one run; files out of order are clamped
            last_t = at
            await self._run_scheduled_until(at)
            await trio.sleep_until(at)
            self.result.last_ms = int(item.t_ms)
            if isinstance(item, RecordedGap):
                self._gap(item.reason)
            else:
                await self._frame(item)
        # After the last frame: orders on their way arrive, exits run their course (bounded).
        if last_t is not None:
            p = self.exit_params
            horizon = last_t + max(p.time_stop_secs, p.min_holding_secs) + p.retry_backoff_max_secs + 5
            await self._run_scheduled_until(horizon)
        self.result.open_at_end = [f"{m} {p.size}" for m, p in sorted(self.positions.items())]
        if self.journal is not None:
            self.journal.flush()
        return self.result

    def _schedule(self, at: float, kind: str, payload: Any) -> None:
        self._seq += 1
        heapq.heappush(self._heap, (at, self._seq, kind, payload))

    async def _run_scheduled_until(self, until: float) -> None:
        while self._heap and self._heap[0][0] <= until:
            at, _, kind, payload = heapq.heappop(self._heap)
            await trio.sleep_until(max(at, trio.current_time()))
            if kind == "arrive":
                self._arrive(payload)
            elif kind == "exits" and self._check_at == at:
                self._check_at = None
                self._step_exits()

    # -- market data -----------------------------------------------------------------------------

    def _gap(self, reason: str) -> None:
        self.result.gaps += 1
        log.info("recording gap (%s): book and READY reset, orders on their way cancelled", reason)
        # Fresh cells: no book, no oracle, no ages; the gates and READY fail closed until data comes.
        self.cells = MarketCells(self.specs)
        self.feed.cells = self.cells
        self.exits.cells = self.cells
        self.ready.on_disconnected()
        self.ready.on_connected()
        self._epoch += 1

    async def _frame(self, item: RecordedFrame) -> None:
        self.result.frames += 1
        touched = False
        for event in parse_ws_frame(frame_text(item)):
            self.feed.on_market_data(event)
            touched = touched or (isinstance(event, Bbo | AssetCtx) and event.coin in self.markets)
        if not touched:
            return
        # The detector task's wake-up: every market changed since it last looked.
        changed = await self.cells.wait_changed()
        for signal in self.scanner.scan(self.cells, changed, trio.current_time()):
            self._on_signal(signal)

    # -- entries ---------------------------------------------------------------------------------

    def _on_signal(self, signal: Signal) -> None:
        self.result.signals.append((signal, self.now_ms()))
        self.ledger.on_signal(signal)
        if self.journal is not None:
            self.journal.record(signal)
        if not self.ready.is_ready:
            self._drop("not_ready")
            return
        spec = self.specs[signal.market]
        terms = entry_terms(
            spec, signal.side, signal.best_px, signal.suggested_size, self.max_slippage_bps, signal.worst_px
        )
        if isinstance(terms, DropReason):
            self._drop(terms.value)
            return
        denied = self._admission(signal.market, terms.notional)
        if denied is not None:
            self._drop(denied)
            return
        self._send(signal.market, terms, reduce_only=False, reason="entry", signal=signal)

    def _drop(self, reason: str) -> None:
        self.result.dropped[reason] = self.result.dropped.get(reason, 0) + 1

    def _admission(self, market: MarketKey, notional: Decimal) -> str | None:
        """The tracker's entry caps (counting pending orders), or None when admitted."""
        if market in self.positions:
            return "has_position"
        if market in self.pending:
            return "pending_order"
        if notional > self.caps.max_notional_per_market:
            return "market_notional_cap"
        held = sum((abs(p.size) * p.entry_px for p in self.positions.values()), ZERO)
        pending = sum((o.terms.notional for o in self.pending.values() if not o.reduce_only), ZERO)
        if held + pending + notional > self.caps.max_total_notional:
            return "total_notional_cap"
        busy = len(set(self.positions) | {m for m, o in self.pending.items() if not o.reduce_only})
        if busy >= self.caps.max_concurrent_positions:
            return "max_concurrent_positions"
        return None

    def _send(
        self, market: MarketKey, terms: OrderTerms, *, reduce_only: bool, reason: str, signal: Signal | None
    ) -> None:
        self._ids += 1
        order = Order(
            cloid=Cloid(f"0x{self._ids:032x}"),
            oid=self._ids,
            market=market,
            terms=terms,
            reduce_only=reduce_only,
            reason=reason,
            sent_at=trio.current_time(),
            signal=signal,
            epoch=self._epoch,
        )
        self.pending[market] = order
        if self.journal is not None:
            self.journal.order_sending(
                order.cloid, market, terms.side, terms.size, terms.limit_px, reduce_only, reason
            )
        self._schedule(order.sent_at + self.model.latency_secs, "arrive", order)

    # -- the order reaches the book --------------------------------------------------------------

    def _arrive(self, order: Order) -> None:
        self.pending.pop(order.market, None)
        if order.epoch != self._epoch:
            outcome = IocOutcome(ZERO, ZERO, "gap")
        else:
            state = self.cells.get(order.market)
            stale = (
                not order.reduce_only
                and state.bbo is not None
                and is_stale(order.terms.side, state.bbo, self._fair(order.market))
            )
            pulled = draw_pull(self.rng, self.model.pull_probability, stale)
            outcome = ioc_fill(
                self.specs[order.market], order.terms.side, order.terms.size, order.terms.limit_px,
                state.bbo, pulled=pulled,
            )  # fmt: skip
        if self.journal is not None:
            status = "filled" if outcome.filled else f"canceled ({outcome.why})"
            self.journal.add_order_event(str(order.cloid), status, final=True, source="replay")
        if not order.reduce_only and order.signal is not None:
            taken = (
                signed_bps(order.terms.side, outcome.px, order.signal.oracle_px) if outcome.filled else None
            )
            self.result.entries.append(
                EntryOutcome(order.market, self.now_ms(), outcome.why, order.signal.raw_edge_bps, taken)
            )
        if outcome.filled:
            self._apply_fill(order, outcome)
        if self.positions or order.reduce_only:
            self._step_exits()

    def _apply_fill(self, order: Order, outcome: IocOutcome) -> None:
        market, side, now = order.market, order.terms.side, trio.current_time()
        fee = taker_fee(outcome.px, outcome.size, self.taker_bps_of(market))
        self.result.fees += fee
        pos = self.positions.get(market)
        start = ZERO if pos is None else pos.size
        signed = outcome.size if side is Side.BUY else -outcome.size
        closed_pnl = ZERO
        if pos is None:
            pos = Position(signed, outcome.px, now, side)
            self.positions[market] = pos
            opened = PositionOpened(market, side, abs(signed), outcome.px, now)
            self.ledger.on_opened(opened)
            if self.journal is not None:
                self.journal.record(opened)
            direction = "Open Long" if side is Side.BUY else "Open Short"
        else:
            closed_pnl = (outcome.px - pos.entry_px) * outcome.size * (1 if pos.size > 0 else -1)
            pos.realized += closed_pnl
            pos.exit_notional += outcome.px * outcome.size
            pos.exit_size += outcome.size
            pos.size += signed
            direction = "Close Long" if pos.side is Side.BUY else "Close Short"
        if self.journal is not None:
            self.journal.add_fills(
                [
                    Fill(
                        coin=market.name, px=outcome.px, sz=outcome.size, side=side, time=self.now_ms(),
                        start_position=start, dir=direction, closed_pnl=closed_pnl, hash=f"replay-{order.oid}",
                        oid=order.oid, crossed=True, fee=fee, tid=order.oid, cloid=order.cloid,
                    )
                ]
            )  # fmt: skip
        if pos.size == 0:
            del self.positions[market]
            closed = PositionClosed(
                market=market,
                side=pos.side,
                size=pos.exit_size,
                entry_px=pos.entry_px,
                exit_px=pos.exit_notional / pos.exit_size,
                realized_pnl=pos.realized,
                held_for=now - pos.opened_at,
                at=now,
            )
            trip = self.ledger.on_closed(closed)
            self.result.trips.append((trip, self.ms_at(pos.opened_at)))
            if self.journal is not None:
                self.journal.record(closed)

    # -- exits -----------------------------------------------------------------------------------

    def _view(self) -> PortfolioView:
        positions = {m: PositionView(m, p.size, p.entry_px, p.opened_at) for m, p in self.positions.items()}
        flattening = frozenset(m for m, o in self.pending.items() if o.reduce_only)
        return PortfolioView(positions=positions, flattening_markets=flattening)

    def _step_exits(self) -> None:
        now = trio.current_time()
        view = self._view()
        for request in self.exits.step(view, now):
            pos = self.positions.get(request.market)
            if pos is None or request.market in self.pending:
                continue
            state = self.cells.get(request.market)
            terms = flatten_terms(
                self.specs[request.market], pos.size, state.bbo, state.ctx, self.flatten_slippage_bps
            )
            if isinstance(terms, DropReason):
                continue  # the planner sees no flatten in flight and backs off, as live
            self._send(request.market, terms, reduce_only=True, reason=request.reason, signal=None)
        if self.positions or self.exits.markets:
            wake = self.exits.next_wakeup(self._view(), now)
            if self._check_at is None or wake < self._check_at:
                self._check_at = wake
                self._schedule(wake, "exits", None)


__all__ = ["Caps", "EntryOutcome", "Replay", "ReplayResult", "frame_text"]
