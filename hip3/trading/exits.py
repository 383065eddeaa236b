"""Exits: time stop and mark regression, each a `FlattenRequest` to the executor.

Both go through the executor's single Reserve path, so the tracker lets at most one flatten per
market be in flight. This task owns only the per-market retry backoff: a flatten
that ends without closing the position (rejected, unfilled, denied) waits `initial`, doubling up to
`max`, before the next try; the backoff resets when the position closes. Entry time comes from the
tracker's `PositionView.opened_at`, which a resync never resets, so a
resync cannot postpone a time stop.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Annotated, Protocol

import attrs
import trio
from attrs import frozen

from hip3.core import Cloid, MarketKey
from hip3.hyperliquid.events import AssetCtx, Bbo
from hip3.market.cells import MarketSource
from hip3.params import Bps, Gt, Le, Secs, SecsOrOff, Warn, must_be_le, must_be_lt, param, parameters
from hip3.trading.messages import FlattenRequest, PortfolioView, PositionView

log = logging.getLogger(__name__)

BPS = Decimal(10_000)


@frozen(field_transformer=parameters("exits"))
class ExitParams:
    """`[exits]`: when a position is closed, and how flattens are priced and retried."""

    time_stop_secs: Secs = param(20.0, "close a position held longer than this")
    mark_regression_bps: Bps = param(
        Decimal(5), "close when the book is back within this of the oracle (shifted by the structural gap)"
    )
    min_holding_secs: SecsOrOff = param(1.0, "no exit but the time stop before holding this long")
    flatten_slippage_bps: Annotated[
        Decimal,
        Gt(0),
        Le(
            1000,
            "a sell flatten is priced this far below the mark: at 10000 its limit is 0 and no long can "
            "be closed, from 5000 it is a market order in all but name",
        ),
        Warn(lambda v: v > 200, "a flatten may fill more than 2% away from the mark"),
    ] = param(Decimal(50), "reduce-only IOC flatten limit this far beyond the mark")
    retry_backoff_initial_secs: Secs = param(1.0, "backoff after a failed flatten; doubles up to the max")
    retry_backoff_max_secs: Secs = param(30.0, "longest backoff between flatten attempts in one market")
    check_interval_secs: Secs = param(0.25, "how often exit rules are evaluated")
    # A request not seen in flight within this time is taken as failed (denied, or done between looks).
    request_grace_secs: Secs = param(1.0, "a flatten request not seen in flight this long counts as failed")

    def problems(self) -> list[str]:
        return [
            *must_be_le(
                "exits.retry_backoff_initial_secs",
                self.retry_backoff_initial_secs,
                "exits.retry_backoff_max_secs",
                self.retry_backoff_max_secs,
            ),
            *must_be_lt(
                "exits.min_holding_secs", self.min_holding_secs, "exits.time_stop_secs", self.time_stop_secs
            ),
        ]


@frozen(field_transformer=parameters("shutdown"))
class ShutdownParams:
    """`[shutdown]`: what an orderly stop does with open positions."""

    flatten_on_shutdown: Annotated[
        bool,
        Warn(
            lambda v: v is False,
            "positions stay open after a stop and nothing manages them until the next start",
        ),
    ] = param(True, "flatten open positions before exiting")
    settle_timeout_secs: Secs = param(10.0, "wait this long for in-flight orders and fills to settle")


#: (market, now) -> the market's structural book–oracle gap in bps, or None while unknown.
StructuralGap = Callable[[MarketKey, float], Decimal | None]


class ViewSource(Protocol):
    def view(self) -> PortfolioView: ...

    async def wait_view_change(self, seq: int) -> PortfolioView: ...


# ---------------------------------------------------------------------------------------------
# Pure rules


def exit_reason(
    position: PositionView,
    bbo: Bbo | None,
    ctx: AssetCtx | None,
    now: float,
    params: ExitParams,
    *,
    gap_bps: Decimal | None = None,
) -> str | None:
    """Why this position should be closed now, or None.

    "Caught up" means the book is back near the oracle or near where the market's book settles
    (the oracle shifted by its structural gap `gap_bps`, the detector's baseline; None = unknown),
    whichever it reaches first: a HOOD short (book +30 bps) closes near oracle + 30 instead of
    waiting for the time stop, and no position waits for a "usual place" that may be gone.
    """
    held = now - position.opened_at
    if params.time_stop_secs > 0 and held >= params.time_stop_secs:
        return "time_stop"
    if held < params.min_holding_secs or ctx is None or bbo is None or ctx.oracle_px <= 0:
        return None
    oracle = ctx.oracle_px
    settled = oracle * (1 + gap_bps / BPS) if gap_bps is not None else oracle
    if position.size > 0:
        # Long: the bid we sell into is back near the lower of the two.
        target = min(oracle, settled)
        if bbo.bid is not None and bbo.bid.px >= target - target * params.mark_regression_bps / BPS:
            return "mark_regression"
    else:
        target = max(oracle, settled)
        if bbo.ask is not None and bbo.ask.px <= target + target * params.mark_regression_bps / BPS:
            return "mark_regression"
    return None


def next_time_stop(positions: Mapping[MarketKey, PositionView], params: ExitParams) -> float | None:
    """The earliest trio time a time stop or the minimum holding time expires (to wake up exactly)."""
    times: list[float] = []
    for p in positions.values():
        if params.time_stop_secs > 0:
            times.append(p.opened_at + params.time_stop_secs)
        times.append(p.opened_at + params.min_holding_secs)
    return min(times) if times else None


class Phase(enum.Enum):
    IDLE = "idle"
    REQUESTED = "requested"  # sent to the executor, not yet seen in flight
    IN_FLIGHT = "in_flight"  # the tracker shows a flatten reservation
    BACKOFF = "backoff"  # the last flatten ended with the position still open


@attrs.define
class MarketExit:
    opened_at: float
    phase: Phase = Phase.IDLE
    since: float = 0.0
    retry_at: float = 0.0
    delay: float = 0.0
    attempts: int = 0


@attrs.define
class ExitStats:
    requested: dict[str, int] = attrs.field(factory=dict)  # reason -> count
    failed_flattens: int = 0
    closed: int = 0


class ExitPlanner:
    """Per-market exit state; `step(view, now)` returns the flatten requests to send now."""

    def __init__(
        self, cells: MarketSource, params: ExitParams, *, structural_gap: StructuralGap | None = None
    ) -> None:
        self.cells = cells
        self.params = params
        self.structural_gap = structural_gap
        self.markets: dict[MarketKey, MarketExit] = {}
        self.stats = ExitStats()

    def step(self, view: PortfolioView, now: float) -> list[FlattenRequest]:
        out: list[FlattenRequest] = []
        for market in list(self.markets):
            pos = view.positions.get(market)
            if pos is None or pos.opened_at != self.markets[market].opened_at:
                if self.markets[market].attempts:
                    self.stats.closed += 1
                del self.markets[market]  # closed (or a new position): the backoff resets
        for market, pos in sorted(view.positions.items()):
            st = self.markets.setdefault(
                market, MarketExit(opened_at=pos.opened_at, delay=self.params.retry_backoff_initial_secs)
            )
            flattening = market in view.flattening_markets
            if st.phase is Phase.REQUESTED:
                if flattening:
                    st.phase = Phase.IN_FLIGHT
                elif now - st.since >= self.params.request_grace_secs:
                    self._failed(market, st, now)
            elif st.phase is Phase.IN_FLIGHT and not flattening:
                self._failed(market, st, now)
            elif st.phase is Phase.BACKOFF and now >= st.retry_at:
                st.phase = Phase.IDLE
            if st.phase is not Phase.IDLE or flattening:
                continue
            state = self.cells.get(market)
            gap = self.structural_gap(market, now) if self.structural_gap is not None else None
            reason = exit_reason(pos, state.bbo, state.ctx, now, self.params, gap_bps=gap)
            if reason is None:
                continue
            st.phase, st.since = Phase.REQUESTED, now
            st.attempts += 1
            self.stats.requested[reason] = self.stats.requested.get(reason, 0) + 1
            log.info(
                "exit %s: %s (held %.2f s, size %s, attempt %d)",
                market,
                reason,
                now - pos.opened_at,
                pos.size,
                st.attempts,
            )
            out.append(FlattenRequest(market, reason))
        return out

    def _failed(self, market: MarketKey, st: MarketExit, now: float) -> None:
        self.stats.failed_flattens += 1
        st.phase, st.retry_at = Phase.BACKOFF, now + st.delay
        log.warning("flatten of %s ended with the position still open; retry in %.1f s", market, st.delay)
        st.delay = min(st.delay * 2, self.params.retry_backoff_max_secs)

    def next_wakeup(self, view: PortfolioView, now: float) -> float:
        """Trio time of the next check: the regular interval, or earlier for a timer that expires."""
        wake = now + self.params.check_interval_secs
        candidates = [t for t in (next_time_stop(view.positions, self.params),) if t is not None]
        for st in self.markets.values():
            if st.phase is Phase.BACKOFF:
                candidates.append(st.retry_at)
            elif st.phase is Phase.REQUESTED:
                candidates.append(st.since + self.params.request_grace_secs)
        future = [t for t in candidates if t > now]
        return min([wake, *future]) if future else wake


async def run_exits(
    tracker: ViewSource,
    cells: MarketSource,
    flattens: trio.MemorySendChannel[FlattenRequest],
    params: ExitParams = ExitParams(),
    *,
    planner: ExitPlanner | None = None,
    structural_gap: StructuralGap | None = None,
    task_status: trio.TaskStatus[ExitPlanner] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Check every `check_interval_secs`, on every tracker view change, and when a timer expires."""
    planner = planner or ExitPlanner(cells, params, structural_gap=structural_gap)
    task_status.started(planner)
    view = tracker.view()
    while True:
        now = trio.current_time()
        for req in planner.step(view, now):
            await flattens.send(req)
        wake = planner.next_wakeup(view, now)
        with trio.move_on_at(wake):
            view = await tracker.wait_view_change(view.seq)
            continue
        view = tracker.view()


# ---------------------------------------------------------------------------------------------
# Shutdown


class EntrySwitch(Protocol):
    def stop_entries(self) -> None: ...


@frozen
class ShutdownOutcome:
    """How shutdown left the account. True (as a bool) only if flat with nothing unknown."""

    flat: bool
    positions_left: tuple[MarketKey, ...] = ()
    unresolved: tuple[Cloid, ...] = ()  # orders whose outcome was still unknown at the end

    def __bool__(self) -> bool:
        return self.flat


async def shutdown_sequence(
    tracker: ViewSource,
    flattens: trio.MemorySendChannel[FlattenRequest],
    entries: EntrySwitch,
    *,
    flatten_on_shutdown: bool,
    settle_timeout_secs: float,
    flatten_timeout_secs: float | None = None,
    resend_interval_secs: float = 1.0,
) -> ShutdownOutcome:
    """Stop entries, let in-flight orders settle (bounded), optionally flatten; say how it ended.

    Every wait is bounded: settling by `settle_timeout_secs`, flattening by `flatten_timeout_secs`
    (default: the settle timeout). With `flatten_on_shutdown`, orders still unsettled after the
    settle wait keep being resolved (by the executor, still running) for the flatten timeout, and
    whatever position they turn into is flattened too. A market whose flatten ended without closing
    it gets a new request every `resend_interval_secs`; the tracker still admits only one flatten
    per market. The account is never called flat while an order's outcome is unknown.
    """
    entries.stop_entries()
    view = tracker.view()
    with trio.move_on_after(settle_timeout_secs):
        while view.pending_markets:
            view = await tracker.wait_view_change(view.seq)
    view = tracker.view()
    if view.pending_markets:
        log.warning(
            "shutdown: orders still unsettled after %.1f s in %s%s",
            settle_timeout_secs,
            ", ".join(sorted(str(m) for m in view.pending_markets)),
            "; still resolving them" if flatten_on_shutdown else "",
        )
    if flatten_on_shutdown and (view.positions or view.pending_markets):
        if view.positions:
            log.info("shutdown: flattening %d positions", len(view.positions))
        timeout = settle_timeout_secs if flatten_timeout_secs is None else flatten_timeout_secs
        last_sent: dict[MarketKey, float] = {}
        with trio.move_on_after(timeout):
            while view.positions or view.pending_markets:
                now = trio.current_time()
                for market in sorted(view.positions):
                    due = last_sent.get(market, -float("inf")) + resend_interval_secs
                    if market not in view.flattening_markets and now >= due:
                        last_sent[market] = now
                        await flattens.send(FlattenRequest(market, "shutdown"))
                with trio.move_on_after(resend_interval_secs):
                    await tracker.wait_view_change(view.seq)
                view = tracker.view()
    # Fills known only from order responses carry no fee: give the userFills stream a moment
    # (bounded) so the last fees reach the hard stop and the journal before we exit.
    view = tracker.view()
    with trio.move_on_after(settle_timeout_secs):
        while view.awaiting_fill_reports:
            view = await tracker.wait_view_change(view.seq)
    view = tracker.view()
    unresolved = tuple(sorted(view.pending_cloids, key=str))
    left = tuple(sorted(view.positions))
    if unresolved:
        log.error(
            "shutdown: %d orders unresolved, their outcome is unknown (check them on the exchange): %s",
            len(unresolved),
            ", ".join(str(c) for c in unresolved),
        )
    if left:
        held = ", ".join(f"{m} {p.size}" for m, p in sorted(view.positions.items()))
        level = logging.ERROR if flatten_on_shutdown else logging.INFO
        log.log(level, "shutdown: positions left open: %s", held)
    if not unresolved and not left:
        log.info("shutdown: account is flat")
    return ShutdownOutcome(flat=not unresolved and not left, positions_left=left, unresolved=unresolved)
