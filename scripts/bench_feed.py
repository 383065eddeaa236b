"""Feed throughput, conflation, post-reply latency under a burst, and memory over long runs.

The bot's real WebSocket session, feed, market cells and detector task run on one trio loop; the
connection is an in-memory stand-in whose socket buffer is always full (every `get_message`
returns the next frame at once), so the figure is what one core can parse and apply. Frames are
bbo (10 per ctx) and activeAssetCtx for the five simulator markets, rendered on the fly with
moving prices and increasing exchange times.
"""

from __future__ import annotations

import gc
import random
import time
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any

import trio

from hip3.core import Cloid, MarketKey, MarketSpec, Side
from hip3.hyperliquid.ws import open_ws_session
from hip3.market.cells import MarketCells
from hip3.market.feed import Feed, run_feed
from hip3.market.ready import ReadyState
from hip3.sim import load_sim_config
from hip3.strategy.detector import DetectorParams
from hip3.strategy.gates import GateParams
from hip3.strategy.scanner import SignalScanner, run_detector
from hip3.trading.reports import FillReport, TradeId
from hip3.trading.tracker import Tracker

#: How often the event-loop probe looks (it wakes the loop itself, so not too often).
PROBE_INTERVAL = 0.005


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


def rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


class FrameStream:
    """Endless realistic market frames; `post_reply` slips a reply in after the next few frames."""

    def __init__(self, specs: dict[str, MarketSpec], seed: int = 1) -> None:
        rng = random.Random(seed)
        self.coins = list(specs)
        self.prices: dict[str, list[tuple[str, str, str, str]]] = {}
        for coin, spec in specs.items():
            px = Decimal(str(round(rng.uniform(50, 500), 2)))
            walk = []
            for _ in range(997):
                px = spec.round_price(px * (1 + Decimal(rng.gauss(0, 1)) / 10_000), up=False)
                bid = spec.round_price(px * Decimal("0.9998"), up=False)
                ask = spec.round_price(px * Decimal("1.0002"), up=True)
                sz = (Decimal(4000) / px).quantize(spec.lot)
                walk.append((str(px), str(bid), str(ask), str(sz)))
            self.prices[coin] = walk
        self.n = 0
        self.time_ms = 1_763_000_000_000
        self.received: Counter[str] = Counter()
        self.inserts: list[tuple[int, str]] = []  # (after frame number, text)
        self.reply_at: dict[int, int] = {}  # post id -> perf_counter_ns when handed over

    def next_frame(self) -> tuple[str, str]:
        n = self.n
        self.n += 1
        coin = self.coins[n % len(self.coins)]
        px, bid, ask, sz = self.prices[coin][(n // len(self.coins)) % 997]
        if n % 11 == 10:
            return coin, (
                f'{{"channel":"activeAssetCtx","data":{{"coin":"{coin}","ctx":{{"funding":"0.0000125",'
                f'"openInterest":"10","prevDayPx":"{px}","dayNtlVlm":"1000000","premium":"0",'
                f'"oraclePx":"{px}","markPx":"{px}","midPx":"{px}","impactPxs":["{bid}","{ask}"],'
                f'"dayBaseVlm":"1000"}}}}}}'
            )
        self.time_ms += 1
        return coin, (
            f'{{"channel":"bbo","data":{{"coin":"{coin}","time":{self.time_ms},"bbo":['
            f'{{"px":"{bid}","sz":"{sz}","n":3}},{{"px":"{ask}","sz":"{sz}","n":2}}]}}}}'
        )

    def post_reply(self, post_id: int, after: int = 10) -> None:
        payload = (
            '{"status":"ok","response":{"type":"order","data":{"statuses":[{"error":"Order could not '
            'immediately match against any resting orders. asset=110000"}]}}}'
        )
        text = f'{{"channel":"post","data":{{"id":{post_id},"response":{{"type":"action","payload":{payload}}}}}}}'
        self.inserts.append((self.n + after, text))


class StreamConnection:
    """What WsSession needs of a connection: frames from `FrameStream`, as fast as they are read.

    Like a socket whose buffer always holds more: `get_message_nowait` always has a frame.
    """

    def __init__(self, stream: FrameStream) -> None:
        self.stream = stream

    async def send_message(self, message: str) -> None:
        await trio.lowlevel.checkpoint()
        if message.startswith('{"method":"post"'):
            post_id = int(message.split('"id":', 1)[1].split(",", 1)[0])
            self.stream.post_reply(post_id)

    async def get_message(self) -> str:
        await trio.lowlevel.checkpoint()
        return self.get_message_nowait()

    def get_message_nowait(self) -> str:
        stream = self.stream
        if stream.inserts and stream.inserts[0][0] <= stream.n:
            _, text = stream.inserts.pop(0)
            post_id = int(text.split('"id":', 1)[1].split(",", 1)[0])
            stream.reply_at[post_id] = time.perf_counter_ns()
            return text
        coin, text = stream.next_frame()
        stream.received[coin] += 1
        return text


class Rig:
    """Session + feed + cells + detector wired as `hip3.service.app` wires them (observation mode)."""

    def __init__(self) -> None:
        sim = load_sim_config(None)
        self.by_coin = sim.market_specs()
        self.specs: dict[MarketKey, MarketSpec] = {s.key: s for s in self.by_coin.values()}
        self.markets = {name: spec.key for name, spec in self.by_coin.items()}
        self.stream = FrameStream(self.by_coin)
        self.cells = MarketCells(self.specs)
        self.scanner = SignalScanner(
            self.specs,
            DetectorParams(min_book_notional=200, min_edge_bps=3, baseline_warmup_secs=0),
            GateParams(),
            max_notional=Decimal(100),
        )
        self.max_view_lag = 0
        self.scans = 0
        inner = self.scanner.scan

        def scan(cells: MarketCells, changed: set[MarketKey], now: float) -> Any:
            # How many frames of each changed market reached the client but not its cell.
            self.scans += 1
            for market in changed:
                behind = self.stream.received[market.name] - cells.get(market).updates
                self.max_view_lag = max(self.max_view_lag, behind)
            return inner(cells, changed, now)

        self.scanner.scan = scan  # type: ignore[method-assign]

    def applied(self) -> int:
        return sum(self.cells.get(m).updates for m in self.specs)

    @asynccontextmanager
    async def running_bot(self) -> AsyncIterator[Any]:
        @asynccontextmanager
        async def connect(url: str) -> AsyncIterator[StreamConnection]:
            yield StreamConnection(self.stream)

        ready = ReadyState(self.specs, trading=False)
        feed = Feed(self.cells, self.markets, ready)
        async with open_ws_session("ws://bench", connect=connect, silence_timeout=3600) as ws:
            async with trio.open_nursery() as nursery:
                ws.route_market_data(feed.on_market_data)
                await nursery.start(run_feed, ws.events, feed)
                await nursery.start(run_detector, self.cells, self.scanner, None)
                await ws.wait_connected()
                yield ws
                nursery.cancel_scope.cancel()

    async def until_applied(self, total: int) -> None:
        while self.applied() < total:
            await trio.sleep(0.001)


async def lag_probe(samples: list[float]) -> None:
    while True:
        await trio.sleep(PROBE_INTERVAL)
        start = time.perf_counter_ns()
        await trio.lowlevel.cancel_shielded_checkpoint()
        samples.append((time.perf_counter_ns() - start) / 1000)


async def throughput(frames: int) -> dict[str, Any]:
    rig = Rig()
    replies_us: list[float] = []
    lag: list[float] = []

    async def poster(ws: Any) -> None:
        stream = rig.stream
        while True:
            await trio.sleep(0.005)
            await ws.post_action({"action": {"type": "noop"}, "nonce": 1, "signature": {}})
            # from the reply frame's hand-over to the waiting post
            post_id = max(stream.reply_at)
            replies_us.append((time.perf_counter_ns() - stream.reply_at[post_id]) / 1000)

    gc.collect()
    start_applied = 0
    async with rig.running_bot() as ws, trio.open_nursery() as nursery:
        await trio.sleep(0.05)
        start_applied = rig.applied()
        nursery.start_soon(lag_probe, lag)
        nursery.start_soon(poster, ws)
        start = time.perf_counter()
        await rig.until_applied(start_applied + frames)
        elapsed = time.perf_counter() - start
        nursery.cancel_scope.cancel()
    done = rig.applied() - start_applied
    return {
        "rate": done / elapsed,
        "frames": done,
        "evaluations": rig.scanner.stats.evaluations,
        "scans": rig.scans,
        "max_view_lag": rig.max_view_lag,
        "replies_us": replies_us,
        "lag_us": lag,
    }


async def throughput_best(frames: int, rounds: int = 3) -> dict[str, Any]:
    """`rounds` runs of `frames` each: the best rate (other processes' load only ever lowers it);
    the worst view lag and every latency sample of all rounds."""
    results = [await throughput(frames) for _ in range(rounds)]
    best = max(results, key=lambda r: r["rate"])
    return {
        **best,
        "rates": [r["rate"] for r in results],
        "max_view_lag": max(r["max_view_lag"] for r in results),
        "replies_us": [x for r in results for x in r["replies_us"]],
        "lag_us": [x for r in results for x in r["lag_us"]],
    }


def _fill(tid: int, t_ms: int, coin: str, side: Side) -> FillReport:
    return FillReport(
        trade_id=TradeId(coin, tid),
        cloid=Cloid("0x" + f"{tid:032x}") if tid % 2 else None,
        side=side,
        px=Decimal("100.5"),
        sz=Decimal("0.1"),
        fee=Decimal("0.01"),
        time_ms=t_ms,
        oid=tid,
    )


async def memory(messages: int, fills: int) -> dict[str, Any]:
    """RSS after 1 % of the messages and fills, then after all of them."""
    rig = Rig()
    sim = load_sim_config(None)
    markets = {s.key.name: s.key for s in sim.market_specs().values()}
    tracker = Tracker(
        markets,
        max_notional_per_market=Decimal(100),
        max_total_notional=Decimal(400),
        max_concurrent_positions=4,
    )
    coin = next(iter(markets))
    fill_clock = [0.0, 0]
    lag: list[float] = []

    def apply_fills(upto: int) -> None:
        # One fill every FILL_EVERY_SECS, alternately buying and selling: the tid memory and ledger
        # keep six hours of them and must forget older ones (steady before the first reading).
        now, tid = fill_clock
        while tid < upto:
            tid += 1
            now += FILL_EVERY_SECS
            side = Side.BUY if tid % 2 else Side.SELL
            tracker.apply_fills((_fill(tid, 1_763_000_000_000 + int(now * 1000), coin, side),), now)
            if tid % 1000 == 0:
                tracker.evict(now)
        fill_clock[:] = [now, tid]

    first = max(1, messages // 100)
    async with rig.running_bot(), trio.open_nursery() as nursery:
        nursery.start_soon(lag_probe, lag)
        await rig.until_applied(first)
        apply_fills(max(1, fills // 10))
        gc.collect()
        early = rss_mb()
        await rig.until_applied(messages)
        apply_fills(fills)
        gc.collect()
        late = rss_mb()
        nursery.cancel_scope.cancel()
    return {
        "early": early,
        "late": late,
        "first_messages": first,
        "first_fills": max(1, fills // 10),
        "messages": rig.applied(),
        "fills": fill_clock[1],
        "tids": tracker.tid_count,
        "ledger": tracker.order_count,
        "lag_us": lag,
    }


THROUGHPUT_FRAMES = 100_000  # per round, best of three
#: A busy taker: twenty fills a minute, so the six-hour fill memory holds 7,200 of them.
FILL_EVERY_SECS = 3.0
GOAL_RATE = 50_000
GOAL_GROWTH_PCT = 10.0


def throughput_summary(r: dict[str, Any]) -> tuple[list[str], bool]:
    lag, replies = r["lag_us"], r["replies_us"]
    ok = r["rate"] >= GOAL_RATE and r["max_view_lag"] <= 1
    return [
        f"feed throughput: {r['rate']:,.0f} frames/s parsed and applied with the detector running "
        f"(goal >= {GOAL_RATE:,}/s; best of {len(r.get('rates', [1]))} rounds: "
        f"{', '.join(f'{x:,.0f}' for x in r.get('rates', []))}); {r['frames']:,} frames, "
        f"{r['evaluations']:,} detector evaluations; "
        f"detector view behind the client by at most {r['max_view_lag']} updates per market (goal <= 1)",
        f"  post replies amid the burst: p50 {percentile(replies, 50):.0f} µs, p99 {percentile(replies, 99):.0f} µs, "
        f"max {max(replies, default=float('nan')):.0f} µs from reply frame to the waiting post (n = {len(replies)}); "
        f"event-loop lag p50 {percentile(lag, 50):.0f} µs, p99 {percentile(lag, 99):.0f} µs, "
        f"max {max(lag, default=float('nan')):.0f} µs",
    ], ok


def memory_summary(r: dict[str, Any]) -> tuple[list[str], bool]:
    growth = (r["late"] - r["early"]) / r["early"] * 100
    lag = r["lag_us"]
    return [
        f"memory: RSS {r['early']:.1f} MB after {r['first_messages']:,} feed messages + {r['first_fills']:,} fills, "
        f"{r['late']:.1f} MB after {r['messages']:,} + {r['fills']:,} ({growth:+.1f} %, goal within "
        f"{GOAL_GROWTH_PCT:g} %); the tracker remembers {r['tids']:,} tids and {r['ledger']:,} orders "
        f"(six hours of fills, one every {FILL_EVERY_SECS:g} s); event-loop lag p99 {percentile(lag, 99):.0f} µs"
    ], abs(growth) <= GOAL_GROWTH_PCT


if __name__ == "__main__":
    import sys

    what = sys.argv[1] if len(sys.argv) > 1 else "throughput"
    if what == "throughput":
        frames = int(sys.argv[2]) if len(sys.argv) > 2 else THROUGHPUT_FRAMES
        print("\n".join(throughput_summary(trio.run(throughput_best, frames))[0]))
    else:
        print("\n".join(memory_summary(trio.run(memory, 1_000_000, 100_000))[0]))
