"""Cost of the tracker's admission and published view against the number of remembered orders.

`reserve_and_view_us(finished)` builds a tracker that remembers `finished` settled orders (as after
hours of trading, before eviction) and times one reserve + its refusal + one published view, the
work every entry costs the tracker task. `scripts/bench` can call `bench_tracker_admission`.

    .venv/bin/python scripts/bench_tracker.py
"""

from __future__ import annotations

import statistics
import sys
import time
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hip3.core import Cloid, MarketKey, Price, Side, Size
from hip3.trading.messages import ReserveGranted, ReserveRequest
from hip3.trading.reports import FillReport, PostFilled, PostRefused, TradeId
from hip3.trading.tracker import Tracker

MARKETS = {f"xyz:M{i}": MarketKey("xyz", f"M{i}", 110000 + i) for i in range(5)}
REMEMBERED = (300, 5_300, 20_300)


def _tracker_with(finished: int) -> Tracker:
    tracker = Tracker(
        MARKETS,
        max_notional_per_market=Decimal(1_000_000),
        max_total_notional=Decimal(10_000_000),
        max_concurrent_positions=10,
        fill_memory_secs=1e9,
    )
    markets = list(MARKETS.values())
    for i in range(finished):
        market = markets[i % len(markets)]
        cloid = Cloid.random()
        req = ReserveRequest(cloid, market, Side.BUY, Size(Decimal(1)), Price(Decimal(10)), False, "entry")
        decision, _ = tracker.reserve(req, float(i))
        assert isinstance(decision, ReserveGranted)
        if i % 3:
            tracker.apply_post_result(cloid, PostRefused("Order could not immediately match"), float(i))
            continue
        tracker.apply_post_result(cloid, PostFilled(Decimal(1), Decimal(10), i), float(i))
        fill = FillReport(TradeId(market.name, i), cloid, Side.BUY, Decimal(10), Decimal(1), Decimal(0), i, i)
        tracker.apply_fills((fill,), float(i))
        close = ReserveRequest(
            Cloid.random(), market, Side.SELL, Size(Decimal(1)), Price(Decimal(10)), True, "x"
        )
        tracker.reserve(close, float(i))
        tracker.apply_post_result(close.cloid, PostFilled(Decimal(1), Decimal(10), i), float(i))
        sold = FillReport(
            TradeId(market.name, -i - 1), close.cloid, Side.SELL, Decimal(10), Decimal(1), Decimal(0), i, i
        )
        tracker.apply_fills((sold,), float(i))
    return tracker


def reserve_and_view_us(finished: int, rounds: int = 300) -> tuple[int, float]:
    """(orders remembered, median µs of reserve (granted, then refused) + one published view)."""
    tracker = _tracker_with(finished)
    remembered = tracker.order_count
    market = next(iter(MARKETS.values()))
    samples: list[float] = []
    now = float(finished)
    for _ in range(rounds):
        req = ReserveRequest(
            Cloid.random(), market, Side.BUY, Size(Decimal(1)), Price(Decimal(10)), False, "entry"
        )
        start = time.perf_counter()
        tracker.reserve(req, now)
        tracker.view()
        samples.append(time.perf_counter() - start)
        tracker.apply_post_result(req.cloid, PostRefused("Order could not immediately match"), now)
    return remembered, statistics.median(samples) * 1e6


def bench_tracker_admission(iterations: int = 300) -> tuple[str, bool]:
    """One line for scripts/bench: the figure for each count; ok if the cost does not grow with it."""
    figures = [reserve_and_view_us(n, iterations) for n in REMEMBERED]
    line = "tracker reserve+view: " + ", ".join(f"{us:.0f} µs with {n:,} orders" for n, us in figures)
    grows = figures[-1][1] > 3 * figures[0][1]
    return line, not grows


if __name__ == "__main__":
    text, ok = bench_tracker_admission()
    print(text, "(flat)" if ok else "(grows with remembered orders)")
