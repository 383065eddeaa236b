"""Scoring a run against the simulator's dislocation records: which ones count as capturable."""

from __future__ import annotations

from decimal import Decimal

from hip3.core import Side
from hip3.service.scoring import MIN_CAPTURABLE_MS, is_capturable
from hip3.sim.dislocations import Dislocation

D = Decimal
NOW = 1_000_000


def record(opened_ms: int, closed_ms: int | None) -> Dislocation:
    return Dislocation(
        coin="xyz:TSLA",
        side=Side.BUY,
        opened_ms=opened_ms,
        closed_ms=closed_ms,
        cost_bps=D(4),
        best_edge_bps=D(10),
        best_ms=opened_ms,
        best_px=D(99),
        best_sz=D(1),
        oracle_px=D(100),
        fair_px=D(100),
    )


def test_a_dislocation_counts_when_it_lasted_long_enough_to_be_seen() -> None:
    assert is_capturable(record(NOW - 5000, NOW - 5000 + MIN_CAPTURABLE_MS), NOW)
    assert not is_capturable(record(NOW - 5000, NOW - 5000 + MIN_CAPTURABLE_MS - 1), NOW)


def test_one_still_open_at_the_end_counts_only_once_it_has_been_open_long_enough() -> None:
    # Opened half a second before the run stopped: no client could have seen it in time.
    assert not is_capturable(record(NOW - 500, None), NOW)
    assert is_capturable(record(NOW - MIN_CAPTURABLE_MS, None), NOW)
