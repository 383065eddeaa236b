"""Exchange double for the tick-to-order benchmark: run by `scripts/bench` in its own process.

The simulator answers HTTP (discovery, positions, open orders, the signer's account), and this
script serves the WebSocket itself so it can stream market data at a chosen rate and put a
dislocation on the wire on demand. Every post is answered at once with the IOC "could not
immediately match" reject, so the bot never holds a position and every dislocation is a fresh entry.

Stdout carries one JSON object per line for the benchmark: `{"urls": …}` when listening, then
`{"phase": NAME}` when a phase starts, then `{"done": …}` with this side's counts.

Dislocations happen in the first market, one at a time, alternating two kinds:
* ctx: the oracle steps up twice; the second step (marked) puts the oracle well above the ask;
* bbo: the oracle steps up twice by less than the threshold; then a book (marked) whose ask sits
  below the oracle by more than the threshold.
The marked frame carries `"dayNtlVlm":"777"` (ctx) or `"n":777` (bbo levels) so the bot-side hook
knows which frame's arrival to time from. Every other market streams at the normal rate, or at
`--burst` times it in the burst phase.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from decimal import Decimal
from typing import Any

import orjson
import trio
import trio_websocket

from hip3.core import MarketSpec
from hip3.sim import load_sim_config, open_sim

BPS = Decimal("0.0001")
#: Normal per-market rates (frames per second): a bbo per block that changes it, ctx about once a second.
BBO_RATE = 10.0
CTX_RATE = 1.0
MARK = "777"
REJECT = "Order could not immediately match against any resting orders. asset={asset}"


def out(obj: Any) -> None:
    print(json.dumps(obj), flush=True)


class MarketFeed:
    """One market's current state and its frames (the state is what a re-sent frame repeats)."""

    def __init__(self, spec: MarketSpec, base: Decimal) -> None:
        self.spec = spec
        self.base = base
        self.oracle = base
        self.bid = spec.round_price(base * (1 - 2 * BPS), up=False)
        self.ask = spec.round_price(base * (1 + 2 * BPS), up=True)
        self.n = 0

    def px(self, bps: int) -> Decimal:
        return self.spec.round_price(self.base * (1 + bps * BPS), up=False)

    def bbo_frame(self, *, marked: bool = False) -> str:
        self.n += 1
        sz = (Decimal(5000) / self.base).quantize(self.spec.lot) + self.spec.lot * (self.n % 7)
        n = int(MARK) if marked else 3
        data = {
            "coin": self.spec.key.name,
            "time": time.time_ns() // 1_000_000,
            "bbo": [
                {"px": str(self.bid), "sz": str(sz), "n": n},
                {"px": str(self.ask), "sz": str(sz), "n": n},
            ],
        }
        return orjson.dumps({"channel": "bbo", "data": data}).decode()

    def ctx_frame(self, *, marked: bool = False) -> str:
        mid = (self.bid + self.ask) / 2
        ctx = {
            "funding": "0.0000125",
            "openInterest": "10",
            "prevDayPx": str(self.base),
            "dayNtlVlm": MARK if marked else "1000000",
            "premium": "0",
            "oraclePx": str(self.oracle),
            "markPx": str(self.base),
            "midPx": str(mid),
            "impactPxs": [str(self.bid), str(self.ask)],
            "dayBaseVlm": "1000",
        }
        return orjson.dumps(
            {"channel": "activeAssetCtx", "data": {"coin": self.spec.key.name, "ctx": ctx}}
        ).decode()

    def restore(self) -> None:
        self.oracle = self.base
        self.bid = self.spec.round_price(self.base * (1 - 2 * BPS), up=False)
        self.ask = self.spec.round_price(self.base * (1 + 2 * BPS), up=True)


class Double:
    def __init__(self, feeds: list[MarketFeed], args: argparse.Namespace) -> None:
        self.feeds = feeds
        self.args = args
        self.conn: trio_websocket.WebSocketConnection | None = None
        self.subscribed: set[tuple[str, str]] = set()
        self.ready = trio.Event()
        self.post_seen = trio.Event()
        self.rate = 1.0  # multiplier for the other markets
        self.posts = 0
        self.triggers = 0
        self.trigger_sent_ns = 0
        self.round_trips_us: dict[str, list[float]] = {}
        self.phase = ""

    async def send(self, text: str) -> None:
        conn = self.conn
        if conn is None:
            return
        try:
            await conn.send_message(text)
        except trio_websocket.ConnectionClosed:
            self.conn = None

    async def handler(self, request: trio_websocket.WebSocketRequest) -> None:
        conn = await request.accept()
        self.conn = conn
        try:
            while True:
                text = await conn.get_message()
                await self.on_message(json.loads(text))
        except trio_websocket.ConnectionClosed:
            pass
        finally:
            if self.conn is conn:
                self.conn = None

    async def on_message(self, msg: dict[str, Any]) -> None:
        method = msg.get("method")
        if method == "ping":
            await self.send('{"channel":"pong"}')
        elif method == "subscribe":
            sub = msg["subscription"]
            ack = {"channel": "subscriptionResponse", "data": {"method": "subscribe", "subscription": sub}}
            await self.send(orjson.dumps(ack).decode())
            self.subscribed.add((sub["type"], str(sub.get("coin") or sub.get("user"))))
            wanted = {("bbo", f.spec.key.name) for f in self.feeds} | {("userFills", self.args.master)}
            if wanted <= self.subscribed and ("orderUpdates", self.args.master) in self.subscribed:
                self.ready.set()
        elif method == "post":
            received = time.perf_counter_ns()
            self.posts += 1
            if self.trigger_sent_ns:
                rt = (received - self.trigger_sent_ns) / 1000
                self.round_trips_us.setdefault(self.phase, []).append(rt)
                self.trigger_sent_ns = 0
            orders = msg["request"]["payload"]["action"].get("orders", [{}])
            statuses = [{"error": REJECT.format(asset=o.get("a"))} for o in orders]
            payload = {"status": "ok", "response": {"type": "order", "data": {"statuses": statuses}}}
            reply = {
                "channel": "post",
                "data": {"id": msg["id"], "response": {"type": "action", "payload": payload}},
            }
            await self.send(orjson.dumps(reply).decode())
            self.post_seen.set()

    async def stream(self, feed: MarketFeed, other: bool) -> None:
        """Re-send the market's current book and context at the normal rate (× `rate` for others)."""
        next_bbo = next_ctx = trio.current_time()
        while True:
            now = trio.current_time()
            mult = self.rate if other else 1.0
            if now >= next_bbo:
                await self.send(feed.bbo_frame())
                next_bbo = max(next_bbo + 1 / (BBO_RATE * mult), now - 0.05)
            if now >= next_ctx:
                await self.send(feed.ctx_frame())
                next_ctx = max(next_ctx + 1 / (CTX_RATE * mult), now - 0.05)
            await trio.sleep_until(min(next_bbo, next_ctx))

    async def dislocate(self, feed: MarketFeed, kind: str, big: int) -> None:
        self.post_seen = trio.Event()
        feed.oracle = feed.px(6)
        await self.send(feed.ctx_frame())
        await trio.sleep(0.03)
        if kind == "ctx":
            feed.oracle = feed.px(big)
            self.trigger_sent_ns = time.perf_counter_ns()
            await self.send(feed.ctx_frame(marked=True))
        else:
            feed.oracle = feed.px(12)
            await self.send(feed.ctx_frame())
            await trio.sleep(0.03)
            feed.ask = feed.spec.round_price(feed.base * (1 - 8 * BPS), up=True)
            feed.bid = feed.spec.round_price(feed.base * (1 - 12 * BPS), up=False)
            self.trigger_sent_ns = time.perf_counter_ns()
            await self.send(feed.bbo_frame(marked=True))
        self.triggers += 1
        with trio.move_on_after(0.5):
            await self.post_seen.wait()
        self.trigger_sent_ns = 0
        await trio.sleep(0.02)
        feed.restore()
        await self.send(feed.ctx_frame())
        await self.send(feed.bbo_frame())

    async def run_phase(self, name: str, rate: float) -> None:
        self.rate = rate
        self.phase = name
        await trio.sleep(1.0)  # let the new rate settle
        out({"phase": name})
        target = self.feeds[0]
        for i in range(self.args.triggers):
            await self.dislocate(target, "ctx" if i % 2 == 0 else "bbo", 40 if i % 4 == 0 else 45)
            await trio.sleep(self.args.gap)

    async def main(self) -> None:
        cfg = load_sim_config(None)
        import attrs

        cfg = attrs.evolve(cfg, is_mainnet=False)
        async with open_sim(cfg, port=0) as sim, trio.open_nursery() as nursery:
            sim.engine.fund(self.args.master, 10_000)
            sim.engine.approve_agent(self.args.master, self.args.agent)
            specs = cfg.market_specs()
            self.feeds = [MarketFeed(specs[m.spec.key.name], m.start_px) for m in sim.engine.markets.values()]
            server = await nursery.start(trio_websocket.serve_websocket, self.handler, "127.0.0.1", 0, None)
            port = server.port
            out(
                {
                    "urls": {
                        "info_url": sim.info_url,
                        "exchange_url": sim.exchange_url,
                        "ws_url": f"ws://127.0.0.1:{port}/ws",
                    }
                }
            )
            await self.ready.wait()
            for i, feed in enumerate(self.feeds):
                nursery.start_soon(self.stream, feed, i > 0)
            await trio.sleep(self.args.warmup)
            await self.run_phase("normal", 1.0)
            await self.run_phase("burst", self.args.burst)
            out(
                {
                    "done": {
                        "triggers": self.triggers,
                        "posts": self.posts,
                        "round_trips_us": self.round_trips_us,
                    }
                }
            )
            await trio.sleep_forever()  # until the benchmark ends this process


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--master", required=True)
    parser.add_argument("--agent", required=True)
    parser.add_argument("--triggers", type=int, default=200, help="dislocations per phase")
    parser.add_argument("--gap", type=float, default=0.1, help="seconds between dislocations")
    parser.add_argument("--burst", type=float, default=10.0, help="rate multiplier of the burst phase")
    parser.add_argument("--warmup", type=float, default=4.0, help="seconds of plain streaming first")
    args = parser.parse_args(argv)
    double = Double([], args)
    try:
        trio.run(double.main)
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
