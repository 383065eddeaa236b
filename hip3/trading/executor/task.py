"""The executor task: signal → round → Reserve → sign once → post → outcome to the tracker.

Entries and flattens arrive on two memory channels. Everything position-dependent is decided by
the tracker in `reserve` (DESIGN.md rule 2); the executor only checks what it owns: the hard
stop and READY (entries), legal sizes and prices (rule 5, before reserving), the new-order rate.
Each order is posted in its own child task so one slow post never blocks another market. A post
whose fate is unknown is settled by orderStatus / userFills, never by sending it again (rule 6).
"""

from __future__ import annotations

import logging
import math
from collections import Counter, deque
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Annotated, Any, Protocol

import attrs
import trio
from attrs import frozen

from hip3 import timing
from hip3.clock import wall_clock_ms
from hip3.core import Cloid, MarketKey, MarketSpec, Side
from hip3.histogram import Histogram
from hip3.hyperliquid.events import ActionErr, ActionOk, PostError
from hip3.market.cells import MarketSource
from hip3.params import Ge, Gt, Le, Secs, Warn, must_be_le, param, parameters
from hip3.trading.edge import post_outcome
from hip3.trading.executor.pricing import DropReason, OrderTerms, entry_terms, flatten_terms
from hip3.trading.executor.resolution import OrderInfo, Resolver, ResolveTiming, SentOrder
from hip3.trading.executor.signer import OrderSigner, expires_after_of
from hip3.trading.executor.transport import ActionPoster, ExchangePoster, SendOutcome, send_action
from hip3.trading.exits import ExitParams
from hip3.trading.messages import (
    FlattenRequest,
    PortfolioView,
    ReserveDecision,
    ReserveDenied,
    ReserveRequest,
    Signal,
)
from hip3.trading.reports import (
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

log = logging.getLogger(__name__)

#: A reduce-only order refused with this (prefix) found no position to reduce: the tracker holds a
#: position the exchange does not.
REDUCE_ONLY_NO_POSITION = "Reduce only order would increase position"


@frozen(field_transformer=parameters("executor"))
class ExecutorParams:
    """`[executor]`: how orders are priced, sent and resolved when their outcome is unknown."""

    max_slippage_bps: Annotated[
        Decimal,
        Ge(0),
        Le(1000, "an entry priced more than 10% through the book is not a dislocation trade"),
        Warn(lambda v: v > 100, "an entry may fill more than 1% beyond the best price"),
    ] = param(Decimal(10), "IOC entry limit at most this far beyond the best price")
    post_timeout_secs: Secs = param(5.0, "wait this long for the exchange's reply to a posted order")
    resolve_timeout_secs: Secs = param(60.0, "after a timed-out post, ask the order's status this long")
    http_fallback: bool = param(True, "post orders over HTTP when the websocket is down")
    # Fractional rates (0.5 = one order every two seconds) are meaningful, so not an integer.
    max_orders_per_second: Annotated[float, Gt(0)] = param(
        10.0, "client-side cap on order actions per second"
    )
    resolve_poll_initial_secs: Secs = param(0.5, "first order-status poll delay; doubles up to the max")
    resolve_poll_max_secs: Secs = param(8.0, "longest delay between order-status polls")
    unknown_oid_grace_secs: Secs = param(
        5.0, 'after a lost post, "unknownOid" means "not there yet" this long'
    )
    # A dislocation lasts 1-3 s: an entry that reaches the exchange later than this is refused
    # there (expiresAfter) rather than filled against a book that has moved on. Flattens never expire.
    entry_expiry_secs: Secs = param(2.0, "entry orders carry expiresAfter = now + this (s)")

    def problems(self) -> list[str]:
        return [
            *must_be_le(
                "executor.post_timeout_secs",
                self.post_timeout_secs,
                "executor.resolve_timeout_secs",
                self.resolve_timeout_secs,
            ),
            *must_be_le(
                "executor.resolve_poll_initial_secs",
                self.resolve_poll_initial_secs,
                "executor.resolve_poll_max_secs",
                self.resolve_poll_max_secs,
            ),
        ]


@attrs.define
class ExecutorStats:
    signals: int = 0
    flatten_requests: int = 0
    dropped: Counter[str] = attrs.field(factory=Counter)
    reserved: int = 0
    denied: Counter[str] = attrs.field(factory=Counter)
    posted: int = 0
    posted_http: int = 0
    filled: int = 0
    resting: int = 0
    rejected: int = 0
    rejected_benign: int = 0
    unknown: int = 0
    not_sent: int = 0
    resolved: int = 0
    abandoned: int = 0
    #: Post to answer, per transport ("ws", "http"); read by the metrics endpoint.
    post_seconds: dict[str, Histogram] = attrs.field(factory=dict)
    #: Signal seen to its entry filled (answered filled).
    signal_to_fill_seconds: Histogram = attrs.field(factory=Histogram)


# ---------------------------------------------------------------------------------------------
# What the executor depends on (the real ones live in hip3.trading.tracker, hip3.market.cells, hip3.trading.hardstop)


class TrackerPort(Protocol):
    def view(self) -> PortfolioView: ...

    async def reserve(self, req: ReserveRequest) -> ReserveDecision: ...

    async def post_result(self, cloid: Cloid, outcome: PostOutcome) -> None: ...

    async def order_resolved(self, report: OrderReport | OrderNotFound) -> None: ...

    async def report_fills(self, fills: tuple[FillReport, ...]) -> None: ...

    async def stale_reservations(self, older_than: float) -> list[Cloid]: ...

    async def abandon(self, cloid: Cloid, reason: str) -> None: ...


class HardStopLike(Protocol):
    @property
    def latched(self) -> bool: ...

    def record_reject(self, message: str, now: float) -> Any: ...

    def record_flatten_failure(self, market: MarketKey, reason: str) -> Any: ...

    def record_flatten_success(self, market: MarketKey) -> Any: ...


class ReadyLike(Protocol):
    @property
    def is_ready(self) -> bool: ...

    def why_not(self) -> str: ...


class InfoAndExchange(OrderInfo, ExchangePoster, Protocol):
    pass


#: Records an order (cloid, market, side, size, limit price, reduce-only, reason) before it is sent;
#: raising means it could not be recorded.
WriteAhead = Callable[[Cloid, MarketKey, Side, Decimal, Decimal, bool, str], None]


class RateLimiter:
    """At most `rate` new orders in any rolling second of trio time (0 or less: unlimited)."""

    def __init__(self, rate: float) -> None:
        self.capacity = math.floor(rate) if rate > 0 else 0
        self.sent: deque[float] = deque()

    def allows(self, now: float) -> bool:
        if self.capacity <= 0:
            return True
        while self.sent and now - self.sent[0] >= 1.0:
            self.sent.popleft()
        return len(self.sent) < self.capacity

    def record(self, now: float) -> None:
        if self.capacity > 0:
            self.sent.append(now)


@frozen
class _Order:
    cloid: Cloid
    market: MarketKey
    terms: OrderTerms
    reduce_only: bool
    reason: str  # "entry" or the flatten reason
    signal_at: float | None = None  # trio time the entry's signal was seen
    expires_at: float | None = None  # trio time after which the exchange refuses it (expiresAfter)

    def describe(self) -> str:
        kind = "flatten" if self.reduce_only else "entry"
        return (
            f"{kind} {self.market} {self.terms.side} {self.terms.size} @ {self.terms.limit_px} "
            f"cloid={self.cloid} ({self.reason})"
        )


class Executor:
    """State the executor owns: counters, the rate limiter, orders being resolved, the entry switch.

    `info` is needed in trading mode whatever `http_fallback` says: it settles posts whose outcome
    is unknown (orderStatus by cloid, userFillsByTime). `params.http_fallback` alone decides
    whether it is also used to post when the WebSocket is down.
    """

    def __init__(
        self,
        *,
        tracker: TrackerPort,
        cells: MarketSource,
        specs: Mapping[MarketKey, MarketSpec],
        signer: OrderSigner,
        user: str,
        ws: ActionPoster | None,
        info: InfoAndExchange | None,
        hard_stop: HardStopLike,
        ready: ReadyLike,
        is_benign_reject: Callable[[str], bool],
        params: ExecutorParams = ExecutorParams(),
        exit_params: ExitParams = ExitParams(),
        now_ms: Callable[[], int] = wall_clock_ms,
        write_ahead: WriteAhead | None = None,
        request_resync: Callable[[MarketKey], None] | None = None,
    ) -> None:
        self.tracker = tracker
        self.write_ahead = write_ahead
        self.cells = cells
        self.specs = specs
        self.signer = signer
        self.user = user
        self.ws = ws
        self.info = info
        self.hard_stop = hard_stop
        self.ready = ready
        self.is_benign_reject = is_benign_reject
        self.params = params
        self.exit_params = exit_params
        self.now_ms = now_ms
        # Asks the resync task for an immediate fenced resync of a market (phantom positions).
        self.request_resync = request_resync
        self.stats = ExecutorStats()
        self.rate = RateLimiter(params.max_orders_per_second)
        self.entries_stopped = False
        self.in_flight: set[Cloid] = set()
        self.resolver = Resolver(
            tracker=tracker,
            info=info,
            user=user,
            hard_stop=hard_stop,
            timing=ResolveTiming(
                resolve_timeout_secs=params.resolve_timeout_secs,
                post_timeout_secs=params.post_timeout_secs,
                poll_initial_secs=params.resolve_poll_initial_secs,
                poll_max_secs=params.resolve_poll_max_secs,
                unknown_oid_grace_secs=params.unknown_oid_grace_secs,
            ),
            now_ms=now_ms,
            on_resolved=self._count_resolved,
            on_abandoned=self._count_abandoned,
            on_missing_position=self._missing_position,
        )
        self._block_reason: str | None = None
        self._nursery: trio.Nursery | None = None
        if info is None:
            log.warning("executor has no info client: posts with an unknown outcome cannot be resolved")

    # -- switches --------------------------------------------------------------------------

    def stop_entries(self) -> None:
        """Shutdown: from now on every signal is dropped; flattens still flow."""
        if not self.entries_stopped:
            log.info("executor: new entries stopped")
        self.entries_stopped = True

    @property
    def busy(self) -> bool:
        """True while a post or a resolution is under way."""
        return bool(self.in_flight or self.resolver.resolving)

    def _count_resolved(self) -> None:
        self.stats.resolved += 1

    def _count_abandoned(self) -> None:
        self.stats.abandoned += 1

    def _missing_position(self, market: MarketKey, why: str) -> bool:
        """A flatten was refused because the exchange holds no such position: resync, don't count.

        False when no resync can be asked for: then it counts as a failed flatten after all.
        """
        if self.request_resync is None:
            return False
        log.warning(
            "flatten of %s refused (%s): the position is not there; resyncing %s now", market, why, market
        )
        self.request_resync(market)
        return True

    # -- entries ---------------------------------------------------------------------------

    def _drop(self, reason: DropReason, what: str) -> None:
        self.stats.dropped[reason.value] += 1
        log.debug("dropped %s: %s", what, reason.value)

    def _entry_block(self) -> str | None:
        if self.entries_stopped:
            return DropReason.SHUTTING_DOWN.value
        if self.hard_stop.latched:
            return DropReason.HARD_STOP.value
        if not self.ready.is_ready:
            return DropReason.NOT_READY.value
        return None

    def _note_block(self, block: str | None) -> None:
        # Log the state change, not every blocked signal (a blocked market can emit many).
        if block == self._block_reason:
            return
        if block is None:
            log.info("executor: entries allowed again")
        elif block == DropReason.NOT_READY.value:
            log.info("executor: entries blocked: not READY (%s)", self.ready.why_not())
        else:
            log.info("executor: entries blocked: %s", block)
        self._block_reason = block

    async def handle_signal(self, signal: Signal) -> None:
        if timing.on_stage is not None:
            timing.on_stage("executor")
        self.stats.signals += 1
        block = self._entry_block()
        self._note_block(block)
        if block is not None:
            self.stats.dropped[block] += 1
            return
        spec = self.specs.get(signal.market)
        if spec is None:
            self._drop(DropReason.UNKNOWN_MARKET, f"signal for {signal.market}")
            return
        terms = entry_terms(
            spec,
            signal.side,
            signal.best_px,
            signal.suggested_size,
            self.params.max_slippage_bps,
            signal.worst_px,
        )
        if isinstance(terms, DropReason):
            self._drop(terms, f"{signal.market} {signal.side} size {signal.suggested_size}")
            return
        now = trio.current_time()
        if not self.rate.allows(now):
            self._drop(DropReason.RATE_LIMITED, f"{signal.market} {signal.side}")
            return
        granted = await self._reserve(
            _Order(
                Cloid.random(),
                signal.market,
                terms,
                reduce_only=False,
                reason="entry",
                signal_at=signal.created_at,
            )
        )
        if granted is None:
            return
        if timing.on_stage is not None:
            timing.on_stage("reserved")
        late_block = self._entry_block()
        if late_block is not None:
            # The hard stop latched (or READY was lost) while the tracker answered: give it back.
            self.stats.dropped[late_block] += 1
            await self.tracker.post_result(granted.cloid, NotSent(f"entries blocked: {late_block}"))
            return
        self.rate.record(trio.current_time())
        await self._launch(granted, spec)

    # -- flattens --------------------------------------------------------------------------

    def _can_send(self) -> bool:
        ws_up = self.ws is not None and self.ws.is_connected
        return ws_up or (self.params.http_fallback and self.info is not None)

    async def handle_flatten(self, req: FlattenRequest) -> None:
        """Allowed while the hard stop is latched and while not READY, if an order can leave."""
        self.stats.flatten_requests += 1
        spec = self.specs.get(req.market)
        if spec is None:
            self._drop(DropReason.UNKNOWN_MARKET, f"flatten of {req.market}")
            return
        position = self.tracker.view().positions.get(req.market)
        if position is None:
            self._drop(DropReason.FLATTEN_NO_POSITION, f"flatten of {req.market} ({req.reason})")
            return
        if not self._can_send():
            self._drop(DropReason.FLATTEN_DISCONNECTED, f"flatten of {req.market}")
            self.hard_stop.record_flatten_failure(req.market, "not connected")
            log.warning("flatten of %s (%s) not sent: not connected", req.market, req.reason)
            return
        state = self.cells.get(req.market)
        terms = flatten_terms(
            spec, position.size, state.bbo, state.ctx, self.exit_params.flatten_slippage_bps
        )
        if isinstance(terms, DropReason):
            self._drop(terms, f"flatten of {req.market}")
            self.hard_stop.record_flatten_failure(req.market, terms.value)
            log.warning("flatten of %s (%s) not sent: %s", req.market, req.reason, terms.value)
            return
        granted = await self._reserve(
            _Order(Cloid.random(), req.market, terms, reduce_only=True, reason=req.reason)
        )
        if granted is not None:
            await self._launch(granted, spec)

    # -- common path -----------------------------------------------------------------------

    async def _reserve(self, order: _Order) -> _Order | None:
        """Ask the tracker (rule 2); the granted order, whose size a reduce-only grant may cut."""
        req = ReserveRequest(
            cloid=order.cloid,
            market=order.market,
            side=order.terms.side,
            size=order.terms.size,
            limit_px=order.terms.limit_px,
            reduce_only=order.reduce_only,
            reason=order.reason,
        )
        decision = await self.tracker.reserve(req)
        if isinstance(decision, ReserveDenied):
            self.stats.denied[decision.reason.value] += 1
            log.debug(
                "reserve denied for %s: %s %s", order.describe(), decision.reason.value, decision.detail
            )
            return None
        self.stats.reserved += 1
        if decision.size != order.terms.size:
            if not 0 < decision.size <= order.terms.size:
                # Never send more than asked; a nonsense grant is given back.
                log.error("reserve for %s granted size %s; not sending", order.describe(), decision.size)
                await self.tracker.post_result(order.cloid, NotSent(f"bad grant size {decision.size}"))
                return None
            order = attrs.evolve(order, terms=attrs.evolve(order.terms, size=decision.size))
        return order

    async def _launch(self, order: _Order, spec: MarketSpec) -> None:
        assert self._nursery is not None, "run the executor with run_executor()"
        try:
            # Signed here, once; the body is never rebuilt or re-signed (rule 6).
            body = self.signer.sign_order(
                spec.key.asset,
                order.terms.side is Side.BUY,
                order.terms.limit_px,
                order.terms.size,
                order.reduce_only,
                order.cloid,
            )
        except Exception as exc:
            log.error("order %s not sent: signing failed: %s", order.describe(), type(exc).__name__)
            await self.tracker.post_result(order.cloid, NotSent(f"signing failed: {type(exc).__name__}"))
            self.stats.not_sent += 1
            return
        if timing.on_stage is not None:
            timing.on_stage("signed")
        if self.write_ahead is not None:
            try:
                # Journaled before it can leave, so a restart knows this order may be in flight.
                self.write_ahead(
                    order.cloid, order.market, order.terms.side, order.terms.size, order.terms.limit_px,
                    order.reduce_only, order.reason,
                )  # fmt: skip
            except Exception as exc:
                log.error("order %s: the write-ahead journal failed: %s", order.describe(), exc)
                if not order.reduce_only:  # an entry is not worth an order nobody could trace; an exit is
                    await self.tracker.post_result(order.cloid, NotSent(f"journal failed: {exc}"))
                    self.stats.not_sent += 1
                    return
        expires_after = expires_after_of(body)
        if expires_after is not None:
            # expiresAfter is exchange ms: kept as trio time, so resolving it waits on trio's clock.
            lifetime = max(0, expires_after - self.now_ms()) / 1000
            order = attrs.evolve(order, expires_at=trio.current_time() + lifetime)
        self.in_flight.add(order.cloid)
        self._nursery.start_soon(self._post, order, body)

    def _about_to_send(self, order: _Order) -> SentOrder:
        """The one point just before a signed order leaves: from here on it may be at the exchange."""
        sent = SentOrder(order.cloid, order.market, order.reduce_only, self.now_ms(), order.expires_at)
        self.resolver.remember(sent)
        if timing.on_stage is not None:
            timing.on_stage("posting")
        # No log line before the send (it would delay the order): every outcome below logs the
        # order with its result.
        if log.isEnabledFor(logging.DEBUG):
            log.debug("posting %s", order.describe())
        return sent

    async def _post(self, order: _Order, body: dict[str, Any]) -> None:
        try:
            sent_order = self._about_to_send(order)
            started = trio.current_time()
            sent = await send_action(
                body,
                self.ws,
                self.info,
                http_fallback=self.params.http_fallback,
                timeout=self.params.post_timeout_secs,
            )
            if sent.via != "none":
                self.stats.posted += 1
                latency = self.stats.post_seconds.setdefault(sent.via, Histogram())
                latency.observe(trio.current_time() - started)
            if sent.via == "http":
                self.stats.posted_http += 1
            await self._outcome(order, sent.outcome, sent_order)
        except Exception:
            # Never crash the executor; the reservation stays counted and the sweep chases it.
            log.exception("order %s: handling its outcome failed", order.describe())
        finally:
            self.in_flight.discard(order.cloid)

    async def _outcome(self, order: _Order, outcome: SendOutcome, sent_order: SentOrder) -> None:
        now = trio.current_time()
        match outcome:
            case ActionOk(statuses=statuses) if statuses:
                reported = post_outcome(statuses[0])
                await self.tracker.post_result(order.cloid, reported)
                await self._order_status(order, reported, now, sent_order)
            case ActionOk():
                # An order action answered with no status: we can't tell what happened.
                await self._unknown(order, PostUnknown("answer carried no order status"), sent_order)
            case ActionErr(message=message):
                await self.tracker.post_result(order.cloid, PostRefused(message))
                log.warning("order %s refused: %s", order.describe(), message)
                self._reject(order, message, now)
            case PostError(message=message):
                # It still counts as a rejection, so a systematic error latches the hard stop; but
                # the action may have reached the matching engine, so the outcome is unknown.
                self._reject(order, message, now)
                await self._unknown(order, PostUnknown(f"post answered with an error: {message}"), sent_order)
            case PostUnknown():
                await self._unknown(order, outcome, sent_order)
            case NotSent(reason=reason):
                self.stats.not_sent += 1
                await self.tracker.post_result(order.cloid, outcome)
                log.warning("order %s not sent: %s", order.describe(), reason)
                if order.reduce_only:
                    self.hard_stop.record_flatten_failure(order.market, f"not sent: {reason}")

    async def _order_status(
        self, order: _Order, reported: PostOutcome, now: float, sent_order: SentOrder
    ) -> None:
        match reported:
            case PostFilled(total_sz=total, avg_px=avg):
                self.stats.filled += 1
                if order.signal_at is not None:
                    self.stats.signal_to_fill_seconds.observe(now - order.signal_at)
                log.info("order %s filled %s @ %s", order.describe(), total, avg)
                if order.reduce_only:
                    self.hard_stop.record_flatten_success(order.market)
            case PostRefused(message=message):
                log.info("order %s rejected: %s", order.describe(), message)
                self._reject(order, message, now)
            case PostResting(oid=oid):
                self.stats.resting += 1
                log.warning("order %s is resting (oid %s) although sent IOC", order.describe(), oid)
            case PostUnknown(reason=reason):
                # Not an IOC answer we model: find out from the exchange, as for an unknown post.
                log.warning("order %s: %s; resolving by orderStatus", order.describe(), reason)
                self._start_resolve(sent_order)
            case NotSent():
                pass

    def _reject(self, order: _Order, message: str, now: float) -> None:
        self.stats.rejected += 1
        if self.is_benign_reject(message):
            self.stats.rejected_benign += 1
        else:
            self.hard_stop.record_reject(message, now)
        if order.reduce_only and not (
            message.startswith(REDUCE_ONLY_NO_POSITION) and self._missing_position(order.market, message)
        ):
            self.hard_stop.record_flatten_failure(order.market, message)

    async def _unknown(self, order: _Order, unknown: PostUnknown, sent_order: SentOrder) -> None:
        self.stats.unknown += 1
        log.warning(
            "order %s: outcome unknown (%s); resolving by orderStatus", order.describe(), unknown.reason
        )
        await self.tracker.post_result(order.cloid, unknown)
        self._start_resolve(sent_order)

    def _start_resolve(self, sent_order: SentOrder) -> None:
        if self._nursery is not None:
            self.resolver.start(self._nursery, sent_order)

    async def sweep_stale(self) -> None:
        """Chase reservations nobody is resolving (a post task that died, fills that never came)."""
        if self._nursery is not None:
            await self.resolver.sweep(self._nursery, self.in_flight)

    # -- task --------------------------------------------------------------------------------

    async def run(
        self,
        signals: trio.MemoryReceiveChannel[Signal],
        flattens: trio.MemoryReceiveChannel[FlattenRequest],
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            nursery.start_soon(self._entry_loop, signals)
            nursery.start_soon(self._flatten_loop, flattens)
            nursery.start_soon(self._sweep_loop)
            task_status.started()

    async def _entry_loop(self, signals: trio.MemoryReceiveChannel[Signal]) -> None:
        async with signals:
            async for signal in signals:
                try:
                    await self.handle_signal(signal)
                except Exception:  # a bad signal must never take the executor down
                    log.exception("executor: failed to handle signal %r", signal)

    async def _flatten_loop(self, flattens: trio.MemoryReceiveChannel[FlattenRequest]) -> None:
        async with flattens:
            async for req in flattens:
                try:
                    await self.handle_flatten(req)
                except Exception:
                    log.exception("executor: failed to handle flatten request %r", req)

    async def _sweep_loop(self) -> None:
        interval = max(1.0, self.params.resolve_timeout_secs)
        while True:
            await trio.sleep(interval)
            try:
                await self.sweep_stale()
            except Exception:
                log.exception("executor: stale reservation sweep failed")


async def run_executor(
    executor: Executor,
    signals: trio.MemoryReceiveChannel[Signal],
    flattens: trio.MemoryReceiveChannel[FlattenRequest],
    *,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """`await nursery.start(run_executor, executor, signals, flattens)`; runs until cancelled."""
    await executor.run(signals, flattens, task_status=task_status)
