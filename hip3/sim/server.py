"""The simulator on one loopback port: an ASGI app (POST /info, POST /exchange, WS /ws) served by
hypercorn under trio, plus the market-data loop that drives the model and feeds subscribers.

`open_sim(config)` runs all of it inside the caller's trio context and yields a `Sim`.
"""

from __future__ import annotations

import json
import logging
import math
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from decimal import Decimal
from functools import partial
from typing import Any, cast

import attrs
import orjson
import trio
from hypercorn.config import Config as HypercornConfig
from hypercorn.trio import serve

from hip3.core import Side
from hip3.sim.config import SimConfig, load_sim_config
from hip3.sim.dislocations import Dislocation, DislocationLog
from hip3.sim.engine import Engine, Publish, RecoverSigner
from hip3.sim.faults import MALFORMED_FRAME, Faults
from hip3.sim.foreign import OpError, foreign_order, liquidate, manual_close
from hip3.sim.info import all_mids, asset_ctx, bbo, handle_info, l2_book
from hip3.sim.model import DexModel
from hip3.sim.replay import ReplayFeed
from hip3.sim.requests import DESERIALIZE_PREFIX, BadRequest

log = logging.getLogger("hip3.sim")

GREETING = "Websocket connection established."
WS_PARSE_ERROR = "Error parsing JSON into valid websocket request: "
_CLOSE = object()  # sentinel on a connection's outgoing channel: a normal close frame
_ABORT = object()  # sentinel: drop the connection without a close frame (the client sees 1006)


class _AbortConnection(Exception):
    """Raised by a connection's writer to end the socket abruptly."""


#: how much of an invalid request an error reply quotes
ERROR_EXCERPT_CHARS = 120
_MAX_BODY = 1_000_000

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


def dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def frame(channel: str, data: Any) -> str:
    return dumps({"channel": channel, "data": data})


# ---------------------------------------------------------------------------------------------
# WebSocket connections and subscriptions


def excerpt(text: str, limit: int = ERROR_EXCERPT_CHARS) -> str:
    """The start of a client's text for an error reply: never the whole of a huge frame."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text)} chars)"


class Connection:
    """One WS client: an outgoing queue drained by a writer task, and its subscriptions.

    The queue is bounded in bytes, not frames: a client that stops reading while frames keep
    coming is disconnected once `max_queued_bytes` wait for it (its queue is dropped at once).
    """

    def __init__(self, number: int, max_queued_bytes: int = 4_000_000) -> None:
        self.number = number
        self.max_queued_bytes = max_queued_bytes
        self.send_channel, self.receive_channel = trio.open_memory_channel[Any](math.inf)
        self.subscriptions: dict[tuple[str, str], dict[str, Any]] = {}
        self.closed = False
        self.last_bbo: dict[str, Any] = {}  # per coin, what this client was sent last
        self.queued_bytes = 0  # text queued and not yet handed to the socket
        self.cancel_scope: trio.CancelScope | None = None  # ends the connection's tasks

    def push(self, text: str) -> None:
        if self.closed:
            return
        # one frame is always let through (a big snapshot to a client that is keeping up)
        if self.queued_bytes and self.queued_bytes + len(text) > self.max_queued_bytes:
            log.warning(
                "ws client %d is too slow (%d bytes waiting); disconnecting it",
                self.number,
                self.queued_bytes,
            )
            self.drop()
            return
        try:
            self.send_channel.send_nowait(text)
            self.queued_bytes += len(text)
        except (trio.ClosedResourceError, trio.BrokenResourceError):
            self.closed = True

    def sent(self, text: str) -> None:
        self.queued_bytes -= len(text)

    def drop(self) -> None:
        """Disconnect now without sending what is queued (the writer may be stuck on this client)."""
        self.closed = True
        self.send_channel.close()
        self.queued_bytes = 0
        if self.cancel_scope is not None:
            self.cancel_scope.cancel()

    def close(self, *, abort: bool = False) -> None:
        """Close after what is queued (a close frame), or with `abort` drop the socket without one."""
        if self.closed:
            return
        self.closed = True
        try:
            self.send_channel.send_nowait(_ABORT if abort else _CLOSE)
        except (trio.WouldBlock, trio.ClosedResourceError, trio.BrokenResourceError):
            self.send_channel.close()


class Hub:
    """Who is subscribed to what; routes stream frames to connections."""

    def __init__(self, faults: Faults) -> None:
        self.faults = faults
        self.connections: set[Connection] = set()
        self._count = 0

    def new_connection(self, max_queued_bytes: int = 4_000_000) -> Connection:
        self._count += 1
        conn = Connection(self._count, max_queued_bytes)
        self.connections.add(conn)
        return conn

    def drop(self, conn: Connection) -> None:
        self.connections.discard(conn)
        conn.closed = True

    def subscribers(self, key: tuple[str, str]) -> list[Connection]:
        return [c for c in self.connections if key in c.subscriptions and not c.closed]

    def has(self, key: tuple[str, str]) -> bool:
        return any(key in c.subscriptions for c in self.connections)

    def stream(self, key: tuple[str, str], text: str) -> None:
        """Send a stream frame (not an ack or post reply): here the malformed-frame fault applies."""
        for conn in self.subscribers(key):
            if self.faults.take_malformed():
                conn.push(MALFORMED_FRAME)
            conn.push(text)

    def stream_bbo(self, coin: str, data: dict[str, Any]) -> None:
        """Send a bbo frame to each subscriber whose last bbo for `coin` differs (the exchange: on change)."""
        text: str | None = None
        for conn in self.subscribers(("bbo", coin)):
            if conn.last_bbo.get(coin) == data["bbo"]:
                continue
            conn.last_bbo[coin] = data["bbo"]
            text = text or frame("bbo", data)
            if self.faults.take_malformed():
                conn.push(MALFORMED_FRAME)
            conn.push(text)

    def close_all(self) -> None:
        for conn in list(self.connections):
            conn.close()


#: subscription_key's answer for a market channel on a coin the dex does not list
UNKNOWN_COIN = "unknown coin"


def subscription_key(sub: dict[str, Any], sim: Sim) -> tuple[tuple[str, str], dict[str, Any]] | str:
    """(routing key, normalized echo) for a subscription, or an error string for the error channel."""
    kind = sub.get("type")
    text = excerpt(dumps(sub))
    if kind in ("l2Book", "bbo", "activeAssetCtx", "trades"):
        coin = sub.get("coin")
        if not isinstance(coin, str):
            return WS_PARSE_ERROR + text
        if coin not in sim.engine.markets:
            return UNKNOWN_COIN
        echo: dict[str, Any] = {"type": kind, "coin": coin}
        if kind == "l2Book":
            echo.update(nSigFigs=sub.get("nSigFigs"), mantissa=sub.get("mantissa"))
        return (kind, coin), echo
    if kind == "allMids":
        dex = sub.get("dex", "")
        if not isinstance(dex, str):
            return WS_PARSE_ERROR + text
        return ("allMids", dex), ({"type": "allMids", "dex": dex} if dex else {"type": "allMids"})
    if kind in ("userFills", "orderUpdates", "userEvents"):
        user = sub.get("user")
        if not isinstance(user, str) or len(user) != 42 or not user.startswith("0x"):
            return WS_PARSE_ERROR + text
        user = user.lower()
        channel = "user" if kind == "userEvents" else kind
        echo = {"type": kind, "user": user}
        if kind == "userFills" and sub.get("aggregateByTime") is not None:
            echo["aggregateByTime"] = sub["aggregateByTime"]
        return (channel, user), echo
    return WS_PARSE_ERROR + text


# ---------------------------------------------------------------------------------------------
# the simulator


class Sim:
    """A running simulator: URLs, the exchange state (`engine`) and the runtime fault switches."""

    def __init__(
        self,
        config: SimConfig,
        *,
        clock_ms: Callable[[], int],
        start: float,
        recover_signer: RecoverSigner | None = None,
    ) -> None:
        self.config = config
        # a private copy: runtime switches never leak into the config or into another Sim
        self.faults: Faults = attrs.evolve(
            config.faults, stalled_markets=set(config.faults.stalled_markets), rng=random.Random(config.seed)
        )
        self.start = start
        self.engine = Engine(
            config,
            clock_ms=lambda: clock_ms() - self.faults.timestamps_backwards_ms,
            recover_signer=recover_signer,
        )
        self.model = DexModel(self.engine, config, start)
        self.dislocation_log = DislocationLog()
        self.model.on_pull = self.dislocation_log.note_pulled
        #: serving a recording instead of the model (recorded makers do not pull quotes for us)
        self.replay = (
            ReplayFeed(self, config.replay_paths, config.replay_speed) if config.replay_paths else None
        )
        if self.replay is not None:
            self.engine.before_taker = None
        self.hub = Hub(self.faults)
        self.host = "127.0.0.1"
        self.port = 0
        self._ctx_sent_at: dict[str, float] = {}
        self._last_l2: dict[str, tuple[int, float]] = {}
        self._last_mids: tuple[Any, float] = (None, 0.0)
        self._disconnect_fired_for = 0.0
        self.ops_rng = random.Random(f"{config.seed}:ops")  # cloids of injected foreign orders

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def info_url(self) -> str:
        return f"{self.base_url}/info"

    @property
    def exchange_url(self) -> str:
        return f"{self.base_url}/exchange"

    @property
    def ws_url(self) -> str:
        return f"ws://{self.host}:{self.port}/ws"

    def dislocations(self) -> tuple[Dislocation, ...]:
        """Every dislocation so far (frozen records, still-open ones with `closed_ms = None`), in order."""
        return self.dislocation_log.records()

    def observe_dislocations(self) -> None:
        """Record the current top of book against fair value in every market (per block, after actions)."""
        now_ms = self.engine.now_ms()
        for coin, market in self.engine.markets.items():
            bid, ask = market.best(Side.BUY), market.best(Side.SELL)
            self.dislocation_log.observe(
                now_ms,
                coin,
                oracle=market.oracle_px,
                gap_bps=market.structural_gap_bps,
                cost_bps={
                    side: self.engine.round_trip_cost_bps(coin, side) for side in (Side.BUY, Side.SELL)
                },
                best_bid=(bid.limit_px, bid.sz) if bid else None,
                best_ask=(ask.limit_px, ask.sz) if ask else None,
                informative=not market.halted and coin not in self.model.internal,
            )

    def _note_trades(self, events: list[Publish]) -> None:
        for event in events:
            if event.channel != "trades":
                continue
            for trade in event.data:
                side = Side.BUY if trade["side"] == "B" else Side.SELL
                taker = trade["users"][0] if side is Side.BUY else trade["users"][1]
                self.dislocation_log.note_trade(event.key, side, taker, Decimal(trade["sz"]))

    def push_ctx(self, coin: str) -> None:
        """Send `coin`'s activeAssetCtx to its subscribers now (a replayed ctx frame arrived)."""
        if self.faults.is_stalled(coin):
            return
        ctx = asset_ctx(self.engine.markets[coin])
        self.hub.stream(("activeAssetCtx", coin), frame("activeAssetCtx", {"coin": coin, "ctx": ctx}))

    def stream_trades(self, coin: str, trades: Any) -> None:
        """Pass other traders' recorded trades on to `trades` subscribers."""
        self.hub.stream(("trades", coin), frame("trades", trades))

    def after_action(self) -> None:
        """Publish what an in-process change caused and look at the books again."""
        events = self.engine.take_events()
        self._note_trades(events)
        self.publish(events)
        self.observe_dislocations()

    # -- foreign account activity (also `POST /control`, see hip3.sim.ops) ----------------------

    def liquidate(self, user: str, coin: str, px: Decimal | str | None = None) -> list[dict[str, Any]]:
        """Liquidate `user`'s position in `coin` (fills without a cloid); published at once."""
        fills = liquidate(self.engine, user, coin, px)
        self.after_action()
        return fills

    def manual_close(self, user: str, coin: str, sz: Decimal | str | None = None) -> Any:
        """Close `user`'s position as the web app does (market order, no cloid); published at once."""
        status = manual_close(self.engine, user, coin, sz)
        self.after_action()
        return status

    def foreign_order(self, user: str, coin: str, *, is_buy: bool, sz: Decimal | str, **kw: Any) -> Any:
        """Another client's order on `user`'s account with its own cloid; published at once."""
        status = foreign_order(self.engine, user, coin, is_buy=is_buy, sz=sz, rng=self.ops_rng, **kw)
        self.after_action()
        return status

    def disconnect_all(self) -> None:
        """Close every WebSocket connection now (clients must reconnect and resubscribe)."""
        self.hub.close_all()

    # -- publishing ---------------------------------------------------------------------------

    def publish(self, events: list[Publish]) -> None:
        for event in events:
            if event.channel == "userFills":
                repeats = 2 if self.faults.duplicate_user_fills else 1
                for _ in range(repeats):
                    self.hub.stream(("userFills", event.key), frame("userFills", event.data))
                    self.hub.stream(("user", event.key), frame("user", {"fills": event.data["fills"]}))
            elif event.channel == "orderUpdates":
                self.hub.stream(("orderUpdates", event.key), frame("orderUpdates", event.data))
            elif event.channel == "trades":
                self.hub.stream(("trades", event.key), frame("trades", event.data))
            elif event.channel == "userEvents":
                self.hub.stream(("user", event.key), frame("user", event.data))

    def publish_market_data(self, now: float) -> None:
        l2_interval = self.config.model.l2_book_interval
        for coin, market in self.engine.markets.items():
            if self.faults.is_stalled(coin):
                continue
            if self.hub.has(("bbo", coin)):
                self.hub.stream_bbo(coin, bbo(self.engine, market))
            # about once a second whether or not it changed (the exchange's cadence), so an oracle
            # move reaches a client up to ctx_interval late
            if self.hub.has(("activeAssetCtx", coin)) and self.replay is None:
                if now - self._ctx_sent_at.get(coin, -1e9) >= self.config.model.ctx_interval - 1e-9:
                    self._ctx_sent_at[coin] = now
                    ctx = asset_ctx(market)
                    self.hub.stream(
                        ("activeAssetCtx", coin), frame("activeAssetCtx", {"coin": coin, "ctx": ctx})
                    )
            if self.hub.has(("l2Book", coin)):
                version, sent_at = self._last_l2.get(coin, (-1, -1e9))
                if market.book_version != version and now - sent_at >= l2_interval:
                    self._last_l2[coin] = (market.book_version, now)
                    self.hub.stream(("l2Book", coin), frame("l2Book", l2_book(self.engine, market)))
        key = ("allMids", self.config.dex)
        if self.hub.has(key):
            mids, sent_at = self._last_mids
            current = all_mids(self.engine)
            if current != mids and now - sent_at >= 0.5:
                self._last_mids = (current, now)
                self.hub.stream(key, frame("allMids", {"mids": current, "dex": self.config.dex}))

    def check_disconnects(self, now: float, tick: float) -> None:
        faults = self.faults
        at = faults.disconnect_at
        if at > 0 and at != self._disconnect_fired_for and now - self.start >= at:
            self._disconnect_fired_for = at  # once per setting; set a new time to fire again
            log.info("fault: disconnecting every WS client at t=%.1fs", now - self.start)
            self.hub.close_all()
        if faults.disconnect_rate > 0:
            p = faults.disconnect_rate / 60.0 * tick
            for conn in list(self.hub.connections):
                if faults.rng.random() < p:
                    conn.close()

    async def run_market_loop(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Drive the model and stream market data every `stream_tick` seconds."""
        tick = self.config.model.stream_tick
        if self.replay is None:
            self.model.step(trio.current_time())
        task_status.started()
        n = 0
        while True:
            now = trio.current_time()
            try:
                if self.replay is None:
                    self.model.step(now)
                self.engine.run_scheduled_cancels()
                events = self.engine.take_events()
                self._note_trades(events)
                self.publish(events)
                self.observe_dislocations()
                self.publish_market_data(now)
                self.check_disconnects(now, tick)
            except Exception:  # a bug here must not stop the exchange; it is logged loudly
                log.exception("simulator market loop step failed")
            # ticks on a fixed grid from the start (no drift; identical times under MockClock)
            n = max(n + 1, math.floor((trio.current_time() - self.start) / tick) + 1)
            await trio.sleep_until(self.start + n * tick)

    # -- request handling shared by HTTP and WS post -------------------------------------------

    def execute_action(self, body: Any) -> tuple[dict[str, Any], list[Publish]]:
        """Run an action now; returns its response body and the events it caused (not yet published)."""
        response = self.engine.handle_exchange(body)
        if log.isEnabledFor(logging.INFO):
            log.info("action %s -> %s", _describe_action(body), _describe_response(response))
        events = self.engine.take_events()
        self._note_trades(events)
        self.observe_dislocations()
        return response, events

    def answer_info(self, body: Any) -> tuple[Any, float]:
        """(answer, seconds to hold it): clearinghouseState may be delivered stale."""
        answer = handle_info(self.engine, body)
        delay = 0.0
        if isinstance(body, dict) and body.get("type") == "clearinghouseState":
            delay = self.faults.stale_clearinghouse_delay
        return answer, delay


def _describe_action(body: dict[str, Any]) -> str:
    action = body.get("action", {})
    kind = action.get("type")
    if kind == "order":
        parts = []
        for o in action.get("orders", []):
            side = "buy" if o.get("b") else "sell"
            flags = " reduce-only" if o.get("r") else ""
            tif = o.get("t", {}).get("limit", {}).get("tif", "trigger")
            parts.append(f"{side} {o.get('s')} asset {o.get('a')} @ {o.get('p')} {tif}{flags}")
        return "order " + "; ".join(parts)
    return str(kind)


def _describe_response(response: dict[str, Any]) -> str:
    if response.get("status") != "ok":
        return f"refused: {response.get('response')}"
    data = response.get("response", {}).get("data")
    if not data:
        return "ok"
    return ", ".join(json.dumps(s, separators=(",", ":")) for s in data.get("statuses", []))


# ---------------------------------------------------------------------------------------------
# ASGI app


def _parse_json(raw: bytes) -> Any:
    try:
        return json.loads(raw.decode("utf-8"), parse_float=float)
    except UnicodeDecodeError:
        raise BadRequest("invalid UTF-8 in the request body") from None
    except json.JSONDecodeError as exc:
        raise BadRequest(f"{exc.msg} at line {exc.lineno} column {exc.colno}") from None


class SimApp:
    """The ASGI application; hypercorn serves it."""

    def __init__(self, sim: Sim) -> None:
        self.sim = sim

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] == "http":
            await self._http(scope, receive, send)
        elif scope["type"] == "websocket":
            await self._websocket(scope, receive, send)

    @staticmethod
    async def _lifespan(receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return

    # -- HTTP ---------------------------------------------------------------------------------

    @staticmethod
    async def _reply(send: Send, status: int, body: Any, *, text: bool = False) -> None:
        payload = body.encode() if text else orjson.dumps(body)
        content_type = b"text/plain; charset=utf-8" if text else b"application/json"
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", content_type), (b"content-length", str(len(payload)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": payload})

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        path, method = scope["path"], scope["method"]
        if path not in ("/info", "/exchange", "/control"):
            await self._reply(send, 404, "Not Found", text=True)
            return
        if method != "POST":
            await self._reply(send, 405, "Method Not Allowed", text=True)
            return
        chunks = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > _MAX_BODY:
                await self._reply(send, 413, "Payload Too Large", text=True)
                return
            if not message.get("more_body"):
                break
        try:
            await self._answer(path, b"".join(chunks), send)
        except Exception:  # a simulator bug: answer 500 and keep serving
            log.exception("simulator failed to answer %s", path)
            await self._reply(send, 500, "Internal Server Error", text=True)

    async def _answer(self, path: str, raw: bytes, send: Send) -> None:
        sim = self.sim
        if path == "/control":
            from hip3.sim.ops import run_op

            try:
                result = run_op(sim, _parse_json(raw))
            except BadRequest as exc:
                await self._reply(send, 400, exc.message, text=True)
                return
            except OpError as exc:
                await self._reply(send, 400, f"control: {exc}", text=True)
                return
            await self._reply(send, 200, {"status": "ok", "result": result})
            return
        if path == "/info":
            if sim.faults.take_info_429():
                await self._reply(send, 429, "Too Many Requests", text=True)
                return
            try:
                answer, delay = sim.answer_info(_parse_json(raw))
            except BadRequest as exc:
                await self._reply(send, 422, exc.message, text=True)
                return
            if delay > 0:
                await trio.sleep(delay)
            await self._reply(send, 200, answer)
            return
        if sim.faults.action_delay > 0:
            await trio.sleep(sim.faults.action_delay)
        try:
            response, events = sim.execute_action(_parse_json(raw))
        except BadRequest as exc:
            await self._reply(send, 422, exc.message, text=True)
            return
        if sim.faults.fills_before_response:
            sim.publish(events)
        if sim.faults.post_response_delay > 0:
            await trio.sleep(sim.faults.post_response_delay)
        await self._reply(send, 200, response)
        if not sim.faults.fills_before_response:
            sim.publish(events)

    # -- WebSocket ----------------------------------------------------------------------------

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["path"] != "/ws":
            await receive()
            await send({"type": "websocket.close", "code": 1008})
            return
        message = await receive()
        if message["type"] != "websocket.connect":
            return
        await send({"type": "websocket.accept"})
        conn = self.sim.hub.new_connection(self.sim.config.ws_max_queued_bytes)
        try:
            async with trio.open_nursery() as nursery:
                conn.cancel_scope = nursery.cancel_scope
                nursery.start_soon(self._writer, conn, send, nursery.cancel_scope)
                conn.push(GREETING)
                await self._reader(conn, receive, nursery)
                nursery.cancel_scope.cancel()
        except* _AbortConnection:
            # leave without a close frame: hypercorn ends the socket (1011, no reason) — the nearest
            # an ASGI app gets to the exchange's abrupt 1006
            pass
        finally:
            self.sim.hub.drop(conn)

    @staticmethod
    async def _writer(conn: Connection, send: Send, scope: trio.CancelScope) -> None:
        try:
            async for item in conn.receive_channel:
                if item is _CLOSE:
                    await send({"type": "websocket.close", "code": 1000})
                    break
                if item is _ABORT:
                    raise _AbortConnection
                conn.sent(item)
                await send({"type": "websocket.send", "text": item})
        except _AbortConnection:
            raise
        except Exception as exc:  # the client went away mid-send
            log.debug("ws client %d: send failed: %r", conn.number, exc)
        finally:
            conn.closed = True
            scope.cancel()

    async def _reader(self, conn: Connection, receive: Receive, nursery: trio.Nursery) -> None:
        idle = self.sim.config.ws_idle_timeout
        while True:
            with trio.move_on_after(idle) as timeout:
                message = await receive()
            if timeout.cancelled_caught:
                log.info("ws client %d silent for %.0fs; closing", conn.number, idle)
                conn.close()
                await trio.sleep_forever()  # the writer sends the close frame and cancels us
            if message["type"] == "websocket.disconnect":
                return
            text = message.get("text")
            if text is None and message.get("bytes") is not None:
                text = message["bytes"].decode("utf-8", errors="replace")
            try:
                self._on_message(conn, text or "", nursery)
            except Exception:
                log.exception("ws client %d: request handling failed", conn.number)
                conn.push(frame("error", WS_PARSE_ERROR + excerpt(text or "")))

    def _on_message(self, conn: Connection, text: str, nursery: trio.Nursery) -> None:
        try:
            request = json.loads(text)
        except ValueError:
            conn.push(frame("error", WS_PARSE_ERROR + excerpt(text)))
            return
        if not isinstance(request, dict):
            conn.push(frame("error", WS_PARSE_ERROR + excerpt(text)))
            return
        method = request.get("method")
        if method == "ping":
            conn.push(dumps({"channel": "pong"}))
        elif method in ("subscribe", "unsubscribe"):
            sub = request.get("subscription")
            if not isinstance(sub, dict):
                conn.push(frame("error", WS_PARSE_ERROR + excerpt(text)))
                return
            self._subscribe(conn, method, sub)
        elif method == "post":
            self._post(conn, request, text, nursery)
        else:
            conn.push(frame("error", WS_PARSE_ERROR + excerpt(text)))

    def _subscribe(self, conn: Connection, method: str, sub: dict[str, Any]) -> None:
        sim = self.sim
        keyed = subscription_key(sub, sim)
        if keyed is UNKNOWN_COIN:
            # the exchange drops the whole socket (1006, no message) for an unknown or miscased coin
            log.info(
                "ws client %d subscribed to unknown coin %r: closing the socket", conn.number, sub.get("coin")
            )
            conn.close(abort=True)
            return
        if isinstance(keyed, str):
            conn.push(frame("error", keyed))
            return
        key, echo = keyed
        if method == "unsubscribe":
            if key not in conn.subscriptions:
                conn.push(frame("error", f"Already unsubscribed: {excerpt(dumps(sub))}"))
                return
            del conn.subscriptions[key]
            conn.push(frame("subscriptionResponse", {"method": "unsubscribe", "subscription": echo}))
            return
        if key in conn.subscriptions:
            conn.push(frame("error", f"Already subscribed: {excerpt(dumps(sub))}"))
            return
        # flush events of earlier changes first, so nothing in the snapshot is streamed again
        sim.publish(sim.engine.take_events())
        conn.subscriptions[key] = echo
        conn.push(frame("subscriptionResponse", {"method": "subscribe", "subscription": echo}))
        # first data after the ack: snapshots where the exchange sends them
        channel, name = key
        engine = sim.engine
        if channel == "userFills":
            fills = list(reversed(engine.fills(name)))[:2000]
            conn.push(frame("userFills", {"isSnapshot": True, "user": name, "fills": fills}))
        elif channel in ("l2Book", "bbo", "activeAssetCtx") and not sim.faults.is_stalled(name):
            market = engine.markets[name]
            if channel == "l2Book":
                conn.push(frame("l2Book", l2_book(engine, market)))
            elif channel == "bbo":
                data = bbo(engine, market)
                conn.last_bbo[name] = data["bbo"]
                conn.push(frame("bbo", data))
            else:
                conn.push(frame("activeAssetCtx", {"coin": name, "ctx": asset_ctx(market)}))
        elif channel == "allMids" and name == sim.config.dex:
            conn.push(frame("allMids", {"mids": all_mids(engine), "dex": name}))

    def _post(self, conn: Connection, request: dict[str, Any], text: str, nursery: trio.Nursery) -> None:
        sim = self.sim
        post_id = request.get("id")
        inner = request.get("request")
        if (
            isinstance(post_id, bool)
            or not isinstance(post_id, int)
            or not isinstance(inner, dict)
            or inner.get("type") not in ("info", "action")
            or "payload" not in inner
        ):
            conn.push(frame("error", WS_PARSE_ERROR + excerpt(text)))
            return

        def reply(response: dict[str, Any]) -> str:
            return frame("post", {"id": post_id, "response": response})

        payload = inner["payload"]
        if inner["type"] == "info":
            try:
                answer, delay = sim.answer_info(payload)
            except BadRequest as exc:
                conn.push(reply({"type": "error", "payload": exc.message}))
                return
            kind = payload.get("type") if isinstance(payload, dict) else None
            text_out = reply({"type": "info", "payload": {"type": kind, "data": answer}})
            if delay > 0:
                nursery.start_soon(self._push_later, conn, text_out, delay)
            else:
                conn.push(text_out)
            return
        if sim.faults.action_delay > 0:
            nursery.start_soon(self._post_action_later, conn, post_id, payload, sim.faults.action_delay)
            return
        self._post_action(conn, post_id, payload, nursery)

    async def _post_action_later(self, conn: Connection, post_id: int, payload: Any, delay: float) -> None:
        await trio.sleep(delay)
        async with trio.open_nursery() as nursery:
            self._post_action(conn, post_id, payload, nursery)

    def _post_action(self, conn: Connection, post_id: int, payload: Any, nursery: trio.Nursery) -> None:
        sim = self.sim

        def reply(response: dict[str, Any]) -> str:
            return frame("post", {"id": post_id, "response": response})

        try:
            response, events = sim.execute_action(payload)
        except BadRequest as exc:
            conn.push(reply({"type": "error", "payload": exc.message}))
            return
        faults = sim.faults
        out = reply({"type": "action", "payload": response})
        if faults.fills_before_response or faults.post_response_delay > 0 or faults.drop_post_responses:
            sim.publish(events)
            if faults.drop_post_responses:
                log.info("fault: dropping the response to post id %s", post_id)
            elif faults.post_response_delay > 0:
                nursery.start_soon(self._push_later, conn, out, faults.post_response_delay)
            else:
                conn.push(out)
            return
        conn.push(out)
        sim.publish(events)

    @staticmethod
    async def _push_later(conn: Connection, text: str, delay: float) -> None:
        await trio.sleep(delay)
        conn.push(text)


# ---------------------------------------------------------------------------------------------
# entry point


def _wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


@asynccontextmanager
async def open_sim(
    config: SimConfig | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    clock_ms: Callable[[], int] | None = None,
    recover_signer: RecoverSigner | None = None,
) -> AsyncIterator[Sim]:
    """Run the simulator on `host:port` (0 = a free port) until the block exits.

    Exchange timestamps are `clock_ms()`; by default the wall clock at start (or the config's
    `start_time_ms`) advanced by trio's clock, so they move under MockClock too.
    """
    config = config if config is not None else load_sim_config(None)
    start = trio.current_time()
    if clock_ms is None:
        base_ms = config.start_time_ms or _wall_clock_ms()

        def clock_ms() -> int:
            return base_ms + round((trio.current_time() - start) * 1000)

    sim = Sim(config, clock_ms=clock_ms, start=start, recover_signer=recover_signer)
    sim.host = host
    hc = HypercornConfig()
    hc.bind = [f"{host}:{port}"]
    hc.accesslog = None
    hc.errorlog = logging.getLogger("hip3.sim.hypercorn")
    hc.graceful_timeout = 0.2
    hc.websocket_ping_interval = None
    hc.keep_alive_timeout = 30.0
    async with trio.open_nursery() as nursery:
        await nursery.start(sim.run_market_loop)
        if sim.replay is not None:
            await nursery.start(sim.replay.run)
        binds = await nursery.start(partial(serve, cast(Any, SimApp(sim)), hc, mode="asgi"))
        sim.port = int(binds[0].rsplit(":", 1)[1])
        log.info("simulator listening on %s", sim.base_url)
        try:
            yield sim
        finally:
            nursery.cancel_scope.cancel()


__all__ = ["DESERIALIZE_PREFIX", "Sim", "SimApp", "open_sim"]
