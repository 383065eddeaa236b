"""One resilient WebSocket link to the exchange: subscribe/ack, heartbeat, reconnect, posts.

`open_ws_session` runs the link in its own nursery and yields a `WsSession`:

* subscriptions are remembered and re-sent on every reconnect; acks are matched to them by
  subset (the server echoes a normalized subscription with extra fields);
* a `{"method":"ping"}` goes out after `ping_after` seconds without *outbound* traffic (the server
  drops a client that has sent nothing for 60 s); `silence_timeout` seconds without any inbound
  frame mean a dead link: close it and reconnect;
* reconnects back off exponentially with jitter, and the backoff resets once a connection has
  stayed up for `healthy_after` seconds (the original system's backoff never reset);
* posts are correlated by id; a post that is not answered in time, or whose connection drops,
  fails with an exception and is never re-sent; the caller finds out the order's state another
  way (DESIGN.md rule 6).

Market/user events, acks, `Connected()` and `Disconnected(reason)` flow out on `session.events`.
That channel is bounded and applies back-pressure to the reader: events are never dropped.
"""

from __future__ import annotations

import logging
import random
import re
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, Protocol

import orjson
import trio
import trio_websocket
from attrs import frozen

from hip3 import timing
from hip3.hyperliquid.events import (
    ActionResult,
    ErrorMessage,
    Pong,
    PostError,
    PostReply,
    SubscriptionAck,
)
from hip3.hyperliquid.parse import STATS, ParseError, ParseStats, parse_action_response, parse_ws_frame
from hip3.hyperliquid.ratelimit import RollingLimiter
from hip3.hyperliquid.urls import shown_url
from hip3.params import Secs, must_be_le, param, parameters

log = logging.getLogger(__name__)


class WsConnection(Protocol):
    """What the session needs from a connection (trio-websocket's `WebSocketConnection` fits).

    A connection may also offer `get_message_nowait() -> str | bytes`, raising `trio.WouldBlock`
    when nothing is buffered: the reader then takes every frame already received in one step,
    so a burst is applied before the detector looks, instead of one frame per scheduler pass.
    """

    async def send_message(self, message: str) -> None: ...

    async def get_message(self) -> str | bytes: ...


ConnectFactory = Callable[[str], AbstractAsyncContextManager[WsConnection]]
#: Takes an event straight from the reader and returns True if it consumed it (market data into
#: latest-value cells: never blocks, never queues). Everything else goes out on `events`.
MarketSink = Callable[[Any], bool]
#: Most frames, and most time, the reader takes in one step before letting other tasks run.
MAX_FRAMES_PER_STEP = 200
MAX_STEP_SECS = 0.0002


# ---------------------------------------------------------------------------------------------
# Events and errors


@frozen
class Connected:
    """The link is up; remembered subscriptions are being re-sent (wait for their acks)."""


@frozen
class Disconnected:
    """The link went down; every in-flight post has failed with ConnectionLost."""

    reason: str


class PostFailed(Exception):
    """A post got no usable answer. Subclasses say whether it may have reached the exchange."""


class PostNotSent(PostFailed):
    """The post was never sent (no connection, no free slot in time): safe to treat as not placed."""


class NotConnected(PostNotSent):
    """There was no connection when the post was to be sent."""


class PostTimeout(PostFailed):
    """Sent, but no reply within `post_timeout`: the outcome is unknown."""


class ConnectionLost(PostFailed):
    """The connection dropped after (or while) sending: the outcome is unknown."""


class BadPostReply(PostFailed):
    """A reply arrived but has no shape we understand: the outcome is unknown."""


class PostRejected(PostFailed):
    """An info post answered with `{"type":"error"}`."""


# ---------------------------------------------------------------------------------------------
# Subscription matching


def _same(sent: Any, echoed: Any) -> bool:
    if isinstance(sent, str) and isinstance(echoed, str) and sent[:2].lower() == "0x":
        return sent.lower() == echoed.lower()  # hex addresses: the echo may change case
    return bool(sent == echoed)


def subscription_matches(sent: dict[str, Any], echoed: dict[str, Any]) -> bool:
    """True if the echoed subscription contains every non-null field we sent (echoes add fields)."""
    return all(value is None or (key in echoed and _same(value, echoed[key])) for key, value in sent.items())


_POST_ID_IN_ERROR = re.compile(r"\bid=(\d+)\s*$")


class _Pending:
    __slots__ = ("done", "error", "reply")

    def __init__(self) -> None:
        self.done = trio.Event()
        self.reply: PostReply | None = None
        self.error: PostFailed | None = None


# ---------------------------------------------------------------------------------------------
# Session


class WsSession:
    """Use `open_ws_session`. All methods are safe to call from several tasks."""

    def __init__(
        self,
        url: str,
        *,
        events_send: trio.MemorySendChannel[Any],
        events: trio.MemoryReceiveChannel[Any],
        ping_after: float,
        silence_timeout: float,
        post_timeout: float,
        backoff_initial: float,
        backoff_max: float,
        healthy_after: float,
        max_messages_per_minute: int,
        max_posts_in_flight: int,
        connect: ConnectFactory,
        rng: random.Random,
        stats: ParseStats,
    ) -> None:
        self.url = url
        self.shown_url = shown_url(url)  # for log lines: no credentials, no tokens
        self.events = events
        self._events_send = events_send
        self._ping_after = ping_after
        self._silence_timeout = silence_timeout
        self._post_timeout = post_timeout
        self._backoff_initial = backoff_initial
        self._backoff_max = backoff_max
        self._healthy_after = healthy_after
        self._connect = connect
        self._rng = rng
        self._stats = stats
        self._msg_budget = RollingLimiter(max_messages_per_minute, 60.0)
        self._post_slots = trio.Semaphore(max_posts_in_flight)
        self._send_lock = trio.Lock()

        self._subs: list[dict[str, Any]] = []
        self._acked: set[int] = set()  # indices into _subs, acked on the current connection
        self._conn: WsConnection | None = None
        self._link_scope: trio.CancelScope | None = None
        self._link_reason = ""
        self._last_out = 0.0
        self._next_post_id = 1
        self._pending: dict[int, _Pending] = {}
        self._changed = trio.Event()
        self._market_sink: MarketSink | None = None
        self._frame_tap: Callable[[str], None] | None = None
        #: Number of connections made so far (1 after the first connect).
        self.connections = 0

    # ----------------------------------------------------------------------------------------
    # public API

    @property
    def is_connected(self) -> bool:
        return self._conn is not None

    async def wait_connected(self) -> None:
        while not self.is_connected:
            await self._wait_change()

    async def subscribe(self, subscription: dict[str, Any]) -> None:
        """Remember `subscription` (re-sent on every reconnect) and send it now if connected."""
        sub = dict(subscription)
        if sub in self._subs:
            return
        self._subs.append(sub)
        conn = self._conn
        if conn is not None:
            try:
                await self._send(conn, {"method": "subscribe", "subscription": sub})
            except PostFailed:
                pass  # the link went down; the next connection re-sends it

    def route_market_data(self, sink: MarketSink | None) -> None:
        """Hand events to `sink` as each frame is parsed, before (instead of) the `events` channel.

        For latest-value market data: the reader writes it where the detector reads it, so a
        burst is conflated rather than queued, and post replies and user events are never stuck
        behind it. Control events (Connected, acks, user events) still go through `events`.
        """
        self._market_sink = sink

    def tap_frames(self, tap: Callable[[str], None] | None) -> None:
        """Hand every inbound frame's raw text to `tap` before it is parsed (the recorder keeps
        what the exchange sent, not what the parser made of it). `tap` must not block."""
        self._frame_tap = tap

    def acked(self, subscription: dict[str, Any]) -> bool:
        """True once the server acknowledged `subscription` on the current connection."""
        try:
            return self._subs.index(dict(subscription)) in self._acked
        except ValueError:
            return False

    async def wait_acked(self, subscription: dict[str, Any]) -> None:
        while not self.acked(subscription):
            await self._wait_change()

    async def post_action(self, payload: dict[str, Any]) -> ActionResult:
        """Send a signed action (the /exchange body) as a WS post.

        Raises NotConnected / PostNotSent (not sent), PostTimeout / ConnectionLost / BadPostReply
        (outcome unknown). Never re-sends.
        """
        reply = await self._post("action", payload)
        if reply.kind == "error":
            return PostError(message=_text(reply.payload))
        if reply.kind != "action":
            raise BadPostReply(f"post {reply.id}: reply of type {reply.kind!r} to an action")
        try:
            return parse_action_response(reply.payload, self._stats)
        except ParseError as exc:
            raise BadPostReply(f"post {reply.id}: {exc}") from None

    async def post_info(self, payload: dict[str, Any]) -> Any:
        """Send an info request as a WS post; returns what the HTTP body would be."""
        reply = await self._post("info", payload)
        if reply.kind == "error":
            raise PostRejected(f"post {reply.id}: {_text(reply.payload)}")
        if reply.kind != "info" or not isinstance(reply.payload, dict) or "data" not in reply.payload:
            raise BadPostReply(f"post {reply.id}: unexpected info reply {_text(reply.payload)[:200]}")
        return reply.payload["data"]

    # ----------------------------------------------------------------------------------------
    # internals: state changes

    def _notify(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    async def _wait_change(self) -> None:
        await self._changed.wait()

    async def _emit(self, event: Any) -> None:
        try:
            await self._events_send.send(event)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass  # nobody listens any more (shutdown)

    def _drop(self, reason: str) -> None:
        """Declare the current link dead; the connection loop closes it and reconnects."""
        if self._link_scope is not None and not self._link_scope.cancel_called:
            self._link_reason = reason
            self._link_scope.cancel()

    # ----------------------------------------------------------------------------------------
    # internals: sending

    async def _send(self, conn: WsConnection, message: dict[str, Any], *, budgeted: bool = False) -> None:
        """Send one client message on `conn`. Raises NotConnected if `conn` is no longer the
        current link before sending, ConnectionLost if sending itself failed."""
        if not budgeted:
            await self._msg_budget.acquire(1)
        text = orjson.dumps(message).decode()
        # A free lock is taken without a pass through the scheduler (a pass lets every other
        # ready task, the reader included, run before the frame leaves).
        try:
            self._send_lock.acquire_nowait()
        except trio.WouldBlock:
            await self._send_lock.acquire()
        try:
            if conn is not self._conn:
                raise NotConnected("the connection went down before sending")
            hook = timing.on_frame_out
            if hook is not None:
                hook(text)
            try:
                await conn.send_message(text)
            except Exception as exc:
                self._drop(f"send failed: {type(exc).__name__}: {exc}")
                raise ConnectionLost(f"send failed: {type(exc).__name__}") from None
        finally:
            self._send_lock.release()
        self._last_out = trio.current_time()

    async def _post(self, kind: str, payload: Any) -> PostReply:
        if self._conn is None:
            raise NotConnected("not connected")
        try:
            self._post_slots.acquire_nowait()  # the usual case, without a pass through the scheduler
        except trio.WouldBlock:
            with trio.move_on_after(self._post_timeout) as slot_wait:
                await self._post_slots.acquire()
            if slot_wait.cancelled_caught:
                raise PostNotSent(f"no free post slot within {self._post_timeout:g} s") from None
        try:
            with trio.move_on_after(self._post_timeout) as budget_wait:
                await self._msg_budget.acquire(1)
            if budget_wait.cancelled_caught:
                raise PostNotSent(f"message budget still spent after {self._post_timeout:g} s")
            conn = self._conn
            if conn is None:
                raise NotConnected("not connected")
            post_id = self._next_post_id
            self._next_post_id += 1
            pending = _Pending()
            self._pending[post_id] = pending
            try:
                request = {"method": "post", "id": post_id, "request": {"type": kind, "payload": payload}}
                await self._send(conn, request, budgeted=True)
                with trio.move_on_after(self._post_timeout):
                    await pending.done.wait()
                if pending.error is not None:
                    raise pending.error
                if pending.reply is None:
                    raise PostTimeout(f"post {post_id}: no reply within {self._post_timeout:g} s")
                return pending.reply
            finally:
                del self._pending[post_id]
        finally:
            self._post_slots.release()

    # ----------------------------------------------------------------------------------------
    # internals: the link

    def _backoff(self, attempt: int) -> float:
        base = min(self._backoff_max, self._backoff_initial * 2.0 ** min(attempt - 1, 30))
        return base * (0.5 + 0.5 * self._rng.random())

    async def run(self) -> None:
        """Connect, serve, reconnect — until cancelled."""
        attempt = 0
        while True:
            reason, connected_at = await self._one_connection()
            if connected_at is not None and trio.current_time() - connected_at >= self._healthy_after:
                attempt = 0  # a healthy period wipes the history of failures
            attempt += 1
            delay = self._backoff(attempt)
            log.warning(
                "ws %s: %s; reconnecting in %.2f s (attempt %d)", self.shown_url, reason, delay, attempt
            )
            await trio.sleep(delay)

    async def _one_connection(self) -> tuple[str, float | None]:
        connected_at: float | None = None
        reason = "closed"
        try:
            async with self._connect(self.url) as conn:
                connected_at = trio.current_time()
                reason = await self._serve(conn)
        except Exception as exc:
            what = "connection error" if connected_at is not None else "connect failed"
            # trio-websocket's HandshakeError carries its cause only in __cause__; its own text can be empty.
            cause = exc.__cause__ or exc.__context__
            detail = f"{exc}" or (f"{type(cause).__name__}: {cause}" if cause is not None else "")
            reason = f"{what}: {type(exc).__name__}: {detail}"
        finally:
            self._link_down(reason)
        if connected_at is not None:
            log.warning("ws %s: disconnected: %s", self.shown_url, reason)
            await self._emit(Disconnected(reason))
        return reason, connected_at

    def _link_down(self, reason: str) -> None:
        was_up = self._conn is not None
        self._conn = None
        self._link_scope = None
        self._acked.clear()
        for post_id, pending in self._pending.items():
            if not pending.done.is_set():
                pending.error = ConnectionLost(f"post {post_id}: connection lost ({reason})")
                pending.done.set()
        if was_up:
            self._notify()

    async def _serve(self, conn: WsConnection) -> str:
        self._link_reason = "closed"
        async with trio.open_nursery() as nursery:
            self._link_scope = nursery.cancel_scope
            self._conn = conn
            self._acked.clear()
            self._last_out = trio.current_time()
            resend = list(self._subs)  # taken now: later subscribe() calls send their own
            self.connections += 1
            self._notify()
            log.info("ws %s: connected", self.shown_url)
            await self._emit(Connected())  # before the reader starts, so it precedes every frame's events
            nursery.start_soon(self._reader, conn)
            nursery.start_soon(self._heartbeat, conn)
            for sub in resend:
                try:
                    await self._send(conn, {"method": "subscribe", "subscription": sub})
                except PostFailed:
                    break
        return self._link_reason

    async def _reader(self, conn: WsConnection) -> None:
        nowait: Callable[[], str | bytes] | None = getattr(conn, "get_message_nowait", None)
        while True:
            with trio.move_on_after(self._silence_timeout) as silence:
                try:
                    message = await conn.get_message()
                except Exception as exc:
                    self._drop(f"connection closed: {type(exc).__name__}: {exc}")
                    return
            if silence.cancelled_caught:
                self._drop(f"no inbound frame for {self._silence_timeout:g} s")
                return
            taken = 1
            until = trio.current_time() + MAX_STEP_SECS
            while True:
                if not await self._handle_frame(message):
                    # A post reply or an event for another task: let its reader run before this one
                    # takes more frames (one pass of the scheduler may run this task first).
                    await trio.lowlevel.checkpoint()
                    break
                if nowait is None or taken >= MAX_FRAMES_PER_STEP or trio.current_time() >= until:
                    break
                try:
                    message = nowait()
                except trio.WouldBlock:
                    break
                except Exception as exc:
                    self._drop(f"connection closed: {type(exc).__name__}: {exc}")
                    return
                taken += 1

    async def _handle_frame(self, message: str | bytes) -> bool:
        """Parse and route one frame; True if it was market data only (the reader may go on)."""
        hook = timing.on_frame_in
        if hook is not None:
            hook(message)
        tap = self._frame_tap
        if tap is not None:
            tap(message if isinstance(message, str) else message.decode("utf-8", "replace"))
        sink = self._market_sink
        market_only = True
        for event in parse_ws_frame(message, self._stats):
            if sink is not None and sink(event):
                continue
            market_only = False
            await self._dispatch(event)
        return market_only

    async def _heartbeat(self, conn: WsConnection) -> None:
        while True:
            await trio.sleep_until(self._last_out + self._ping_after)
            if trio.current_time() >= self._last_out + self._ping_after:
                try:
                    await self._send(conn, {"method": "ping"})
                except PostFailed:
                    return

    async def _dispatch(self, event: Any) -> None:
        match event:
            case PostReply():
                pending = self._pending.get(event.id)
                if pending is None or pending.done.is_set():
                    self._stats.count("unmatched_post_reply", f"post id {event.id}")
                    return
                pending.reply = event
                pending.done.set()
            case Pong():
                pass
            case SubscriptionAck():
                self._mark_acked(event)
                await self._emit(event)
            case ErrorMessage():
                # Post errors the server could attribute carry an "id=N" suffix: fail that post now.
                found = _POST_ID_IN_ERROR.search(event.message)
                post_id = int(found.group(1)) if found else None
                pending = self._pending.get(post_id) if post_id is not None else None
                if post_id is not None and pending is not None and not pending.done.is_set():
                    pending.reply = PostReply(id=post_id, kind="error", payload=event.message)
                    pending.done.set()
                log.warning("ws %s: error channel: %s", self.shown_url, event.message[:300])
                await self._emit(event)
            case _:
                await self._emit(event)

    def _mark_acked(self, ack: SubscriptionAck) -> None:
        if ack.method != "subscribe":
            return
        for index, sub in enumerate(self._subs):
            if index not in self._acked and subscription_matches(sub, ack.subscription):
                self._acked.add(index)
                self._notify()
                return
        self._stats.count("unmatched_ack", _text(ack.subscription))


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        return repr(value)


class _BufferedConnection:
    """A trio-websocket connection that also hands over already-received frames without waiting.

    trio-websocket queues parsed messages in a memory channel; reading it with `receive_nowait`
    lets the reader take a whole burst in one step. Its queue is sized so a socket read's worth of
    frames fits (a bounded buffer, drained completely on every step of the reader).
    """

    def __init__(self, conn: trio_websocket.WebSocketConnection) -> None:
        self._conn = conn
        self._received: trio.MemoryReceiveChannel[str | bytes] | None = getattr(conn, "_recv_channel", None)

    async def send_message(self, message: str) -> None:
        await self._conn.send_message(message)

    async def get_message(self) -> str | bytes:
        return await self._conn.get_message()

    def get_message_nowait(self) -> str | bytes:
        if self._received is None:
            raise trio.WouldBlock
        try:
            return self._received.receive_nowait()
        except (trio.EndOfChannel, trio.ClosedResourceError):
            raise trio.WouldBlock from None  # the next get_message raises ConnectionClosed


@asynccontextmanager
async def _default_connect(url: str) -> AsyncIterator[WsConnection]:
    async with trio_websocket.open_websocket_url(
        url,
        connect_timeout=10.0,
        disconnect_timeout=5.0,
        max_message_size=16 * 1024 * 1024,
        message_queue_size=4096,
        receive_buffer_size=64 * 1024,
    ) as conn:
        yield _BufferedConnection(conn)


@frozen(field_transformer=parameters("websocket"))
class WebsocketParams:
    """`[websocket]`: heartbeat, silence detection and reconnect backoff (`open_ws_session`'s timing)."""

    # The exchange drops a connection idle for 60 s.
    ping_after_secs: Secs = param(45.0, "send a ping when nothing was sent for this long")
    silence_timeout_secs: Secs = param(30.0, "reconnect when nothing was received for this long")
    reconnect_initial_secs: Secs = param(0.5, "reconnect backoff starts here and doubles up to the max")
    reconnect_max_secs: Secs = param(30.0, "longest reconnect backoff")
    healthy_after_secs: Secs = param(60.0, "a connection up this long resets the backoff")

    def problems(self) -> list[str]:
        return list(
            must_be_le(
                "websocket.reconnect_initial_secs",
                self.reconnect_initial_secs,
                "websocket.reconnect_max_secs",
                self.reconnect_max_secs,
            )
        )


#: The session's timing defaults are the `[websocket]` parameters' defaults, declared once above.
_TIMING = WebsocketParams()


@asynccontextmanager
async def open_ws_session(
    url: str,
    *,
    ping_after: float = _TIMING.ping_after_secs,
    silence_timeout: float = _TIMING.silence_timeout_secs,
    post_timeout: float = 10.0,
    backoff_initial: float = _TIMING.reconnect_initial_secs,
    backoff_max: float = _TIMING.reconnect_max_secs,
    healthy_after: float = _TIMING.healthy_after_secs,
    max_messages_per_minute: int = 2000,
    max_posts_in_flight: int = 100,
    connect: ConnectFactory | None = None,
    events_buffer: int = 10_000,
    rng: random.Random | None = None,
    stats: ParseStats | None = None,
) -> AsyncIterator[WsSession]:
    """Run a session until the block exits. Returns at once; use `wait_connected()` to wait for the link."""
    events_send, events = trio.open_memory_channel[Any](events_buffer)
    session = WsSession(
        url,
        events_send=events_send,
        events=events,
        ping_after=ping_after,
        silence_timeout=silence_timeout,
        post_timeout=post_timeout,
        backoff_initial=backoff_initial,
        backoff_max=backoff_max,
        healthy_after=healthy_after,
        max_messages_per_minute=max_messages_per_minute,
        max_posts_in_flight=max_posts_in_flight,
        connect=connect or _default_connect,
        rng=rng or random.Random(),
        stats=STATS if stats is None else stats,
    )
    async with events_send, trio.open_nursery() as nursery:
        nursery.start_soon(session.run)
        try:
            yield session
        finally:
            nursery.cancel_scope.cancel()
