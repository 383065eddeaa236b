"""Prometheus metrics: a collector that reads the bot's own counters at scrape time, served under trio.

Nothing here is updated on the hot path: the feed, detector, executor, tracker, resync and hard stop
keep their counters as they always have, and `BotCollector.collect` turns them into metric families
when Prometheus asks. The only things measured here are the event loop's lag (a task that notes how
late it wakes up) and the ages of the newest market data (computed from the cells at scrape time).

The endpoint is a tiny HTTP/1.0 server on a trio socket (GET /metrics, nothing else), so a slow or
stuck client costs one task and a bounded read, never a thread that could stall the bot.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING

import trio
from prometheus_client import CollectorRegistry, ProcessCollector, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from hip3.histogram import Histogram
from hip3.hyperliquid import parse

if TYPE_CHECKING:
    from hip3.service.app import Bot

log = logging.getLogger("hip3.service.metrics")

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
#: A request's head must arrive within this long and fit in this many bytes.
REQUEST_TIMEOUT_SECS = 5.0
MAX_REQUEST_BYTES = 8192
LAG_PROBE_INTERVAL_SECS = 0.5
MAX_CONNECTIONS = 8


def _histogram(name: str, doc: str, hists: dict[tuple[str, ...], Histogram], labels: list[str]) -> Metric:
    family = HistogramMetricFamily(name, doc, labels=labels)
    for values, hist in sorted(hists.items()):
        buckets = [("+Inf" if b == float("inf") else repr(b), n) for b, n in hist.cumulative()]
        family.add_metric(list(values), buckets, hist.sum)
    return family


class BotCollector(Collector):
    """Metric families from one running bot, read when scraped."""

    def __init__(self, bot: Bot, loop_lag: Histogram) -> None:
        self.bot = bot
        self.loop_lag = loop_lag

    def collect(self) -> Iterator[Metric]:
        bot = self.bot
        yield from self._market_data()
        yield from self._detector()
        yield from self._trading()

        ready = GaugeMetricFamily("hip3_ready", "1 when the bot may open positions (READY), else 0")
        ready.add_metric([], 1.0 if bot.ready.is_ready else 0.0)
        yield ready
        stopped = GaugeMetricFamily("hip3_hard_stop_latched", "1 while the hard stop is latched")
        stopped.add_metric([], 1.0 if bot.hard_stop.latched else 0.0)
        yield stopped
        trading = GaugeMetricFamily("hip3_trading_mode", "1 in trading mode, 0 in observation mode")
        trading.add_metric([], 1.0 if bot.trading else 0.0)
        yield trading
        yield _histogram(
            "hip3_event_loop_lag_seconds",
            "How late the event loop woke a task that asked to sleep",
            {(): self.loop_lag},
            [],
        )

    def _market_data(self) -> Iterator[Metric]:
        bot = self.bot
        now = trio.current_time()
        updates = CounterMetricFamily(
            "hip3_feed_updates", "Market data messages applied (bbo and asset context)", labels=["market"]
        )
        bbo_age = GaugeMetricFamily(
            "hip3_feed_bbo_age_seconds", "Seconds since the newest bbo arrived", labels=["market"]
        )
        ctx_age = GaugeMetricFamily(
            "hip3_feed_ctx_age_seconds", "Seconds since the newest asset context arrived", labels=["market"]
        )
        for market in sorted(bot.specs):
            state = bot.cells.get(market)
            name = market.name
            updates.add_metric([name], state.updates)
            if state.bbo_at is not None:
                bbo_age.add_metric([name], now - state.bbo_at)
            if state.ctx_at is not None:
                ctx_age.add_metric([name], now - state.ctx_at)
        yield from (updates, bbo_age, ctx_age)
        rejected = CounterMetricFamily(
            "hip3_feed_rejected",
            "Frames or elements from the exchange the parser refused (malformed, out of bounds), by reason",
            labels=["reason"],
        )
        for reason, n in sorted(parse.STATS.counts.items()):
            rejected.add_metric([reason], n)
        yield rejected
        if bot.ws is not None:
            reconnects = CounterMetricFamily(
                "hip3_ws_reconnects", "WebSocket connections made after the first one"
            )
            reconnects.add_metric([], max(0, bot.ws.connections - 1))
            connected = GaugeMetricFamily("hip3_ws_connected", "1 while the WebSocket is connected")
            connected.add_metric([], 1.0 if bot.ws.is_connected else 0.0)
            yield from (reconnects, connected)

    def _detector(self) -> Iterator[Metric]:
        bot = self.bot
        stats = bot.scanner.stats
        blocks = CounterMetricFamily(
            "hip3_gate_blocked_evaluations",
            "Market evaluations a gate blocked, by gate and market",
            labels=["market", "gate"],
        )
        for (market, gate), n in sorted(stats.blocked_by_market.items()):
            blocks.add_metric([market.name, gate], n)
        yield blocks
        blocked_now = GaugeMetricFamily(
            "hip3_market_blocked",
            "1 while a gate blocks the market, labelled with that gate",
            labels=["market", "gate"],
        )
        for market, gate in sorted(bot.scanner.gate_log.blocked_markets().items()):
            blocked_now.add_metric([market.name, gate], 1.0)
        yield blocked_now
        signals = CounterMetricFamily(
            "hip3_signals",
            "Signals: the book lagged the oracle by more than the threshold",
            labels=["market", "side"],
        )
        for (market, side), n in sorted(stats.signals_by_market.items()):
            signals.add_metric([market.name, side], n)
        yield signals

    def _trading(self) -> Iterator[Metric]:
        bot = self.bot
        executor = bot.executor
        if executor is not None:
            s = executor.stats
            orders = CounterMetricFamily("hip3_orders", "Orders by outcome", labels=["outcome"])
            for outcome, n in (
                ("posted", s.posted),
                ("filled", s.filled),
                ("resting", s.resting),
                ("rejected", s.rejected),
                ("rejected_benign", s.rejected_benign),
                ("unknown", s.unknown),
                ("not_sent", s.not_sent),
                ("resolved", s.resolved),
                ("abandoned", s.abandoned),
            ):
                orders.add_metric([outcome], n)
            yield orders
            posted_http = CounterMetricFamily(
                "hip3_orders_posted_http", "Orders posted over the HTTP fallback"
            )
            posted_http.add_metric([], s.posted_http)
            yield posted_http
            denied = CounterMetricFamily(
                "hip3_orders_denied", "Orders the tracker refused to reserve (caps)", labels=["reason"]
            )
            for reason, n in sorted(s.denied.items()):
                denied.add_metric([reason], n)
            yield denied
            dropped = CounterMetricFamily(
                "hip3_signals_dropped", "Signals and flattens the executor did not act on", labels=["reason"]
            )
            for reason, n in sorted(s.dropped.items()):
                dropped.add_metric([reason], n)
            yield dropped
            yield _histogram(
                "hip3_order_round_trip_seconds",
                "Order post to the exchange's answer, by transport",
                {(via,): h for via, h in s.post_seconds.items()},
                ["via"],
            )
            yield _histogram(
                "hip3_signal_to_fill_seconds",
                "Signal seen to its entry order answered filled",
                {(): s.signal_to_fill_seconds},
                [],
            )
        if bot.tracker is not None and bot.trading:
            view = bot.tracker.view()
            notional = GaugeMetricFamily(
                "hip3_position_notional_usd",
                "Absolute position size times the mark (entry price before a mark is known)",
                labels=["market", "side"],
            )
            size = GaugeMetricFamily("hip3_position_size", "Signed position size (coins)", labels=["market"])
            for market, pos in sorted(view.positions.items()):
                ctx = bot.cells.get(market).ctx
                px = ctx.mark_px if ctx is not None else pos.entry_px
                notional.add_metric([market.name, pos.side.name.lower()], float(abs(pos.size) * px))
                size.add_metric([market.name], float(pos.size))
            yield from (notional, size)
            pnl = GaugeMetricFamily(
                "hip3_realized_pnl_usd", "Realized PnL of closed trades since start, before fees"
            )
            pnl.add_metric([], float(view.realized_pnl))
            fees = CounterMetricFamily("hip3_fees_usd", "Fees paid since start")
            fees.add_metric([], float(view.fees))
            corrections = CounterMetricFamily(
                "hip3_position_corrections", "Positions corrected from an exchange snapshot (resync)"
            )
            corrections.add_metric([], view.corrections)
            pending = GaugeMetricFamily("hip3_markets_pending", "Markets with an order in flight")
            pending.add_metric([], len(view.pending_markets))
            yield from (pnl, fees, corrections, pending)
        if bot.resync is not None:
            r = bot.resync
            runs = CounterMetricFamily(
                "hip3_resync_runs", "Periodic position resyncs by result", labels=["result"]
            )
            runs.add_metric(["ok"], r.runs)
            runs.add_metric(["failed"], r.failures)
            runs.add_metric(["skipped"], r.skipped)
            yield runs
            corrected = CounterMetricFamily(
                "hip3_resync_corrections", "Corrections the periodic resync applied"
            )
            corrected.add_metric([], r.corrections)
            yield corrected
        if bot.exits is not None:
            exits = CounterMetricFamily(
                "hip3_exits_requested", "Flattens requested, by reason", labels=["reason"]
            )
            for reason, n in sorted(bot.exits.stats.requested.items()):
                exits.add_metric([reason], n)
            yield exits


def bot_registry(bot: Bot, loop_lag: Histogram) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(BotCollector(bot, loop_lag))
    # process_start_time_seconds (restarts), resident memory, CPU, open files: read from /proc when scraped
    ProcessCollector(registry=registry)
    return registry


async def run_loop_lag_probe(
    lag: Histogram,
    interval: float = LAG_PROBE_INTERVAL_SECS,
    *,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Sleep `interval` over and over and record how much later than asked each wake-up came."""
    task_status.started()
    while True:
        due = trio.current_time() + interval
        await trio.sleep(interval)
        lag.observe(max(0.0, trio.current_time() - due))


def _response(
    status: str, body: bytes, content_type: str = "text/plain; charset=utf-8", *, with_body: bool = True
) -> bytes:
    head = (
        f"HTTP/1.0 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {len(body)}\r\n"
        "Connection: close\r\n\r\n"
    )
    return head.encode() + (body if with_body else b"")


async def _read_request_head(stream: trio.SocketStream) -> bytes | None:
    data = b""
    with trio.move_on_after(REQUEST_TIMEOUT_SECS):
        while b"\r\n\r\n" not in data and b"\n\n" not in data:
            if len(data) > MAX_REQUEST_BYTES:
                return None
            chunk = await stream.receive_some(4096)
            if not chunk:
                break
            data += chunk
        return data
    return None


async def _serve_one(registry: CollectorRegistry, stream: trio.SocketStream) -> None:
    async with stream:
        try:
            head = await _read_request_head(stream)
            if head is None:
                return
            method, _, rest = head.partition(b" ")
            path = rest.split(b" ", 1)[0].split(b"?", 1)[0]
            if method not in (b"GET", b"HEAD"):
                reply = _response("405 Method Not Allowed", b"GET /metrics\n")
            elif path not in (b"/metrics", b"/"):
                reply = _response("404 Not Found", b"GET /metrics\n")
            else:
                body = generate_latest(registry)
                reply = _response("200 OK", body, CONTENT_TYPE, with_body=method == b"GET")
            with trio.move_on_after(REQUEST_TIMEOUT_SECS):
                await stream.send_all(reply)
        except trio.BrokenResourceError:
            pass
        except Exception:
            # A metrics request must never take the bot down.
            log.warning("metrics request failed", exc_info=True)


async def serve_metrics(
    registry: CollectorRegistry,
    host: str,
    port: int,
    *,
    task_status: trio.TaskStatus[tuple[str, int]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve GET /metrics on host:port until cancelled; started() with the bound (host, port)."""
    listeners = await trio.open_tcp_listeners(port, host=host)
    sockname = listeners[0].socket.getsockname()
    bound = (str(sockname[0]), int(sockname[1]))
    log.info("metrics on http://%s:%d/metrics", *bound)

    slots = trio.Semaphore(MAX_CONNECTIONS)

    async def handler(stream: trio.SocketStream) -> None:
        try:
            slots.acquire_nowait()
        except trio.WouldBlock:
            await stream.aclose()  # a flood of connections gets closed, not queued
            return
        try:
            await _serve_one(registry, stream)
        finally:
            slots.release()

    async with trio.open_nursery() as nursery:
        await nursery.start(trio.serve_listeners, handler, listeners)
        task_status.started(bound)
