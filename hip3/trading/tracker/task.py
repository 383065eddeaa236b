"""The tracker task: a thin loop that owns a `Tracker` and talks to the rest of the bot.

Requests arrive on one memory channel as frozen messages (`hip3.trading.tracker.requests`) and
are handled one at a time, so every rule runs between two awaits with nobody else touching the
state (DESIGN.md rule 1). After each change the task publishes a fresh immutable `PortfolioView`
and fans the position events out to subscribers. An optional `record` callback sees every request
with the trio time it was applied at: enough to fold them again into the same state.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable
from typing import Any

import attrs
import trio

from hip3.core import Cloid
from hip3.trading.messages import (
    Correction,
    PortfolioView,
    PositionEvent,
    ReserveDecision,
    ReserveRequest,
)
from hip3.trading.reports import AccountSnapshot, FillReport, OrderNotFound, OrderReport, PostOutcome
from hip3.trading.tracker.requests import (
    Abandon,
    ApplySnapshot,
    BeginFetch,
    Evict,
    ListStaleReservations,
    RecordFills,
    RecordOrderReports,
    RecordPostOutcome,
    Reserve,
    ResolveOrder,
    TrackerRequest,
    apply_request,
)
from hip3.trading.tracker.tracker import Tracker

log = logging.getLogger("hip3.trading.tracker.task")

#: How often the task forgets old tids and finished orders.
DEFAULT_EVICT_INTERVAL = 60.0


class TrackerStopped(RuntimeError):
    """The tracker task is gone; no reservation can be granted."""


class TrackerRequestError(RuntimeError):
    """The tracker refused a request as malformed; the message says what was wrong."""


#: Sees each request with the trio time it is applied at, before it is applied.
RequestRecorder = Callable[[float, TrackerRequest], None]


@attrs.frozen
class _Envelope:
    request: TrackerRequest
    reply: trio.MemorySendChannel[Any] | None


@attrs.frozen
class _Failure:
    error: Exception


class TrackerHandle:
    """How other tasks talk to the tracker: request/reply over channels, plus the published view."""

    def __init__(self, requests: trio.MemorySendChannel[_Envelope], initial: PortfolioView) -> None:
        self._requests = requests
        self._view = initial
        self._view_changed = trio.Event()
        self._subscribers: list[trio.MemorySendChannel[PositionEvent]] = []

    # --- reads without awaiting ---------------------------------------------------------------

    def view(self) -> PortfolioView:
        """The latest immutable snapshot: for display and exits, never for admission."""
        return self._view

    def subscribe(self) -> trio.MemoryReceiveChannel[PositionEvent]:
        """Position events from now on; unbounded, so none is ever dropped. Close it to unsubscribe."""
        send, receive = trio.open_memory_channel[PositionEvent](math.inf)
        self._subscribers.append(send)
        return receive

    async def wait_view_change(self, seq: int) -> PortfolioView:
        """Return the first published view whose seq is greater than `seq`."""
        while self._view.seq <= seq:
            await self._view_changed.wait()
        return self._view

    # --- requests ---------------------------------------------------------------------------

    async def reserve(self, req: ReserveRequest) -> ReserveDecision:
        decision: ReserveDecision = await self._call(Reserve(req), f"reserve {req.cloid}")
        return decision

    async def post_result(self, cloid: Cloid, outcome: PostOutcome) -> None:
        await self._call(RecordPostOutcome(cloid, outcome), f"post_result {cloid}")

    async def report_fills(self, fills: Iterable[FillReport]) -> None:
        await self._call(RecordFills(tuple(fills)), "report_fills")

    async def report_orders(self, reports: Iterable[OrderReport]) -> None:
        await self._call(RecordOrderReports(tuple(reports)), "report_orders")

    async def order_resolved(self, report: OrderReport | OrderNotFound) -> None:
        await self._call(ResolveOrder(report), f"order_resolved {report.cloid}")

    async def stale_reservations(self, older_than: float) -> list[Cloid]:
        stale: list[Cloid] = await self._call(ListStaleReservations(older_than), "stale_reservations")
        return stale

    async def abandon(self, cloid: Cloid, reason: str) -> None:
        await self._call(Abandon(cloid, reason), f"abandon {cloid}")

    async def begin_fetch(self) -> int:
        fence: int = await self._call(BeginFetch(), "begin_fetch")
        return fence

    async def apply_snapshot(
        self, fence: int, snapshot: AccountSnapshot, *, dex: str | None = None
    ) -> list[Correction]:
        corrections: list[Correction] = await self._call(
            ApplySnapshot(fence, snapshot, dex), "apply_snapshot"
        )
        return corrections

    async def _call(self, request: TrackerRequest, what: str) -> Any:
        reply_send, reply_receive = trio.open_memory_channel[Any](1)
        try:
            await self._requests.send(_Envelope(request, reply_send))
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            raise TrackerStopped(f"tracker task is not running ({what})") from None
        async with reply_receive:
            try:
                answer = await reply_receive.receive()
            except trio.EndOfChannel:
                raise TrackerStopped(f"tracker task stopped before answering {what}") from None
        if isinstance(answer, _Failure):
            raise TrackerRequestError(f"{what}: {answer.error}") from answer.error
        return answer

    # --- used by the task only ----------------------------------------------------------------

    def _publish(self, view: PortfolioView, events: list[PositionEvent]) -> None:
        if view.seq != self._view.seq:
            self._view = view
            self._view_changed.set()
            self._view_changed = trio.Event()
        if not events:
            return
        alive: list[trio.MemorySendChannel[PositionEvent]] = []
        for send in self._subscribers:
            try:
                for event in events:
                    send.send_nowait(event)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                continue  # the subscriber closed its end
            alive.append(send)
        self._subscribers = alive

    def _close_subscribers(self) -> None:
        for send in self._subscribers:
            send.close()
        self._subscribers = []


async def run_tracker(
    tracker: Tracker,
    *,
    evict_interval: float = DEFAULT_EVICT_INTERVAL,
    record: RequestRecorder | None = None,
    task_status: trio.TaskStatus[TrackerHandle] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Own `tracker` until cancelled: `handle = await nursery.start(run_tracker, tracker)`."""
    send, receive = trio.open_memory_channel[_Envelope](100)
    handle = TrackerHandle(send, tracker.view())
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_evict_periodically, send.clone(), evict_interval)
            task_status.started(handle)
            async for envelope in receive:
                _serve(tracker, handle, envelope, record)
    finally:
        send.close()
        handle._close_subscribers()
        # Callers whose request is still queued get TrackerStopped instead of hanging.
        while True:
            try:
                pending = receive.receive_nowait()
            except (trio.WouldBlock, trio.EndOfChannel, trio.ClosedResourceError):
                break
            if pending.reply is not None:
                pending.reply.close()
        receive.close()


def _serve(
    tracker: Tracker, handle: TrackerHandle, envelope: _Envelope, record: RequestRecorder | None
) -> None:
    now = trio.current_time()
    request = envelope.request
    if record is not None:
        record(now, request)
    seq_before = tracker.seq
    answer: Any
    events: list[PositionEvent] = []
    try:
        answer, events = apply_request(tracker, request, now)
    except Exception as exc:  # bad input never kills the owner of all positions
        log.error("tracker request %s failed: %s", type(request).__name__, exc, exc_info=True)
        answer = _Failure(exc)
    if tracker.seq != seq_before:
        handle._publish(tracker.view(), events)
    if envelope.reply is not None:
        try:
            envelope.reply.send_nowait(answer)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            log.debug("caller of %s left before the answer", type(request).__name__)
        finally:
            envelope.reply.close()


async def _evict_periodically(send: trio.MemorySendChannel[_Envelope], interval: float) -> None:
    async with send:
        while True:
            await trio.sleep(interval)
            try:
                await send.send(_Envelope(Evict(), None))
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                return
