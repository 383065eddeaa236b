"""The tracker task: a thin loop that owns a `Tracker` and talks to the rest of the bot.

Requests arrive on one memory channel and are handled one at a time, so every rule runs between
two awaits with nobody else touching the state (DESIGN.md rule 1). After each change the task
publishes a fresh immutable `PortfolioView` and fans the position events out to subscribers.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import Any, Generic, TypeVar

import attrs
import trio

from hip3.core import Cloid
from hip3.hyperliquid.events import ClearinghouseState, OrderStatusResult, OrderUpdates, UserFills
from hip3.trading.messages import (
    Correction,
    PortfolioView,
    PositionEvent,
    ReserveDecision,
    ReserveRequest,
)
from hip3.trading.tracker.book import PostResult, Tracker

log = logging.getLogger("hip3.trading.tracker.task")

T = TypeVar("T")

#: How often the task forgets old tids and finished orders.
DEFAULT_EVICT_INTERVAL = 60.0


class TrackerStopped(RuntimeError):
    """The tracker task is gone; no reservation can be granted."""


class TrackerRequestError(RuntimeError):
    """The tracker refused a request as malformed; the message says what was wrong."""


@attrs.define
class _Call(Generic[T]):
    run: Callable[[Tracker, float], tuple[T, list[PositionEvent]]]
    reply: trio.MemorySendChannel[Any] | None
    what: str


@attrs.frozen
class _Failure:
    error: Exception


class TrackerHandle:
    """How other tasks talk to the tracker: request/reply over channels, plus the published view."""

    def __init__(self, requests: trio.MemorySendChannel[_Call[Any]], initial: PortfolioView) -> None:
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
        return await self._call(lambda t, now: t.reserve(req, now), f"reserve {req.cloid}")

    async def post_result(self, cloid: Cloid, result: PostResult) -> None:
        await self._call(
            lambda t, now: (None, t.apply_post_result(cloid, result, now)), f"post_result {cloid}"
        )

    async def user_fills(self, msg: UserFills) -> None:
        await self._call(lambda t, now: (None, t.apply_user_fills(msg, now)), "user_fills")

    async def order_updates(self, msg: OrderUpdates) -> None:
        await self._call(lambda t, now: (None, t.apply_order_updates(msg, now)), "order_updates")

    async def order_resolved(self, cloid: Cloid, status: OrderStatusResult) -> None:
        await self._call(
            lambda t, now: (None, t.order_resolved(cloid, status, now)), f"order_resolved {cloid}"
        )

    async def stale_reservations(self, older_than: float) -> list[Cloid]:
        return await self._call(
            lambda t, now: (t.stale_reservations(now, older_than), []), "stale_reservations"
        )

    async def abandon(self, cloid: Cloid, reason: str) -> None:
        await self._call(lambda t, now: (None, t.abandon(cloid, now, reason)), f"abandon {cloid}")

    async def begin_fetch(self) -> int:
        return await self._call(lambda t, now: (t.begin_fetch(), []), "begin_fetch")

    async def apply_snapshot(
        self, fence: int, state: ClearinghouseState, *, dex: str | None = None
    ) -> list[Correction]:
        def run(t: Tracker, now: float) -> tuple[list[Correction], list[PositionEvent]]:
            events = t.apply_snapshot(fence, state, now, dex=dex)
            return [e for e in events if isinstance(e, Correction)], events

        return await self._call(run, "apply_snapshot")

    async def _call(self, run: Callable[[Tracker, float], tuple[T, list[PositionEvent]]], what: str) -> T:
        reply_send, reply_receive = trio.open_memory_channel[Any](1)
        try:
            await self._requests.send(_Call(run=run, reply=reply_send, what=what))
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            raise TrackerStopped(f"tracker task is not running ({what})") from None
        async with reply_receive:
            try:
                answer = await reply_receive.receive()
            except trio.EndOfChannel:
                raise TrackerStopped(f"tracker task stopped before answering {what}") from None
        if isinstance(answer, _Failure):
            raise TrackerRequestError(f"{what}: {answer.error}") from answer.error
        result: T = answer
        return result

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
    task_status: trio.TaskStatus[TrackerHandle] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Own `tracker` until cancelled: `handle = await nursery.start(run_tracker, tracker)`."""
    send, receive = trio.open_memory_channel[_Call[Any]](100)
    handle = TrackerHandle(send, tracker.view())
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_evict_periodically, send.clone(), evict_interval)
            task_status.started(handle)
            async for call in receive:
                _serve(tracker, handle, call)
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


def _serve(tracker: Tracker, handle: TrackerHandle, call: _Call[Any]) -> None:
    now = trio.current_time()
    seq_before = tracker.seq
    answer: Any
    events: list[PositionEvent] = []
    try:
        answer, events = call.run(tracker, now)
    except Exception as exc:  # bad input never kills the owner of all positions
        log.error("tracker request %s failed: %s", call.what, exc, exc_info=True)
        answer = _Failure(exc)
    if tracker.seq != seq_before:
        handle._publish(tracker.view(), events)
    if call.reply is not None:
        try:
            call.reply.send_nowait(answer)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            log.debug("caller of %s left before the answer", call.what)
        finally:
            call.reply.close()


async def _evict_periodically(send: trio.MemorySendChannel[_Call[Any]], interval: float) -> None:
    def evict(t: Tracker, now: float) -> tuple[None, list[PositionEvent]]:
        t.evict(now)
        return None, []

    async with send:
        while True:
            await trio.sleep(interval)
            try:
                await send.send(_Call(run=evict, reply=None, what="evict"))
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                return
