"""scripts/bench keeps running as the bot changes: its rigs, on tiny sizes, do what they claim.

Nothing here asserts a time: only that frames are applied, the detector's view is conflated, post
replies arrive, orders leave for dislocations, and memory readings are taken.
"""

from __future__ import annotations

import sys
from pathlib import Path

import trio

SCRIPTS = Path(__file__).resolve().parent.parent / "scripts"
sys.path.insert(0, str(SCRIPTS))

import bench_e2e  # noqa: E402
import bench_feed  # noqa: E402


def test_feed_rig_applies_every_frame_and_conflates() -> None:
    result = trio.run(bench_feed.throughput, 3_000)
    assert result["frames"] >= 3_000
    assert result["max_view_lag"] <= 1
    assert result["evaluations"] < result["frames"]  # conflated, not one evaluation per frame
    lines, _ = bench_feed.throughput_summary(result)
    assert lines[0].startswith("feed throughput:")


def test_memory_rig_reads_rss_before_and_after() -> None:
    result = trio.run(bench_feed.memory, 2_000, 300)
    assert result["messages"] >= 2_000 and result["fills"] == 300
    assert result["early"] > 0 and result["late"] > 0


def test_tick_to_order_rig_times_orders_for_dislocations() -> None:
    result = trio.run(bench_e2e.run, 3, 10.0)
    assert result["double"]["triggers"] == 6
    timed = sum(len(v) for v in result["tick_to_order"].values())
    assert timed >= 4  # an order left for (nearly) every dislocation and was timed
    lines, _ = bench_e2e.summary(result, 10.0)
    assert any(line.startswith("tick-to-order (normal rates)") for line in lines)
