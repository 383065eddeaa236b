"""Entry rules: threshold parts, the structural baseline, sizing from the stale level."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hip3.core import MarketKey, MarketSpec, Side
from hip3.strategy.entry import (
    MAX_MEDIAN_SAMPLES,
    RecentMedian,
    SlowAverage,
    Threshold,
    brackets,
    edge_above_baseline,
    half_spread_bps,
    signed_gap_bps,
    take_size,
)

D = Decimal
SPEC = MarketSpec(MarketKey("xyz", "TSLA", 110000), sz_decimals=3)


def test_threshold_is_the_round_trip_plus_margin_and_says_so() -> None:
    th = Threshold(entry_fee_bps=D("0.9"), exit_fee_bps=D("0.9"), exit_cost_bps=D(2), margin_bps=D(1))
    assert th.fees_bps == D("1.8") and th.cost_bps == D("3.8") and th.total_bps == D("4.8")
    assert th.describe() == "fees 0.9+0.9 + exit cost 2 + margin 1 = 4.8 bps"
    scaled = Threshold(D(9), D(9), D(2), D(1), session_multiplier=D(2))
    assert scaled.total_bps == D(42)
    assert scaled.describe() == "(fees 9+9 + exit cost 2 + margin 1) × 2 session = 42 bps"
    override = Threshold(D(9), D(9), D(2), D(1), override_bps=D(25))
    assert override.total_bps == D(25) and override.describe() == "override 25 = 25 bps"
    assert override.cost_bps == D(20)  # the round trip's cost is still known (for accounting)


def test_slow_average_warms_up_as_a_plain_average() -> None:
    avg = SlowAverage().observe(D(0), 0.0, 300.0)
    for t in range(1, 21):
        avg = avg.observe(D(10), float(t), 300.0)
    # A time average of 0 for the first second and 10 for the next 19 (the first sample does not dominate).
    assert avg.value is not None and D("9.4") < avg.value <= D(10)
    assert avg.warmed(20.0, 20.0) and not avg.warmed(19.0, 20.0)
    assert avg.observe(D(100), 20.0, 300.0) is avg  # the same instant adds nothing


def test_slow_average_forgets_slowly_after_warm_up() -> None:
    avg = SlowAverage()
    for t in range(0, 601):
        avg = avg.observe(D(30), float(t), 120.0)
    # A 3-second 60 bps excursion moves a 120 s average by little more than a bp.
    for t in range(601, 604):
        avg = avg.observe(D(90), float(t), 120.0)
    assert avg.value is not None and D(30) < avg.value < D("31.6")


def test_recent_median_ignores_outliers_forgets_the_window_and_stays_bounded() -> None:
    med = RecentMedian()
    for at, sample in enumerate(["1", "2", "-40", "3"]):
        med = med.observe(D(sample), float(at), 300.0)
    assert med.value == D("1.5")  # median of −40, 1, 2, 3: one wild sample barely moves it
    assert med.observe(D(99), 3.0, 300.0) is med  # the same instant again adds nothing
    assert med.age(10.0) == 10.0 and med.warmed(10.0, 5.0) and not med.warmed(4.0, 5.0)
    later = med.observe(D(7), 400.0, 300.0)  # everything seen more than 300 s ago is forgotten
    # ... and a lone sample is not a measurement: the warm-up starts again from it.
    assert later.value == D(7) and len(later.samples) == 1 and later.started_at == 400.0
    assert not later.warmed(404.0, 5.0) and not later.warmed(405.0, 5.0)  # and one sample is not three
    three = later.observe(D(8), 400.1, 300.0).observe(D(9), 400.2, 300.0)
    assert not three.warmed(404.0, 5.0) and three.warmed(405.0, 5.0)
    for at in range(MAX_MEDIAN_SAMPLES + 50):
        later = later.observe(D(at), 401.0 + at / 1000, 300.0)
    assert len(later.samples) == MAX_MEDIAN_SAMPLES


def test_edge_above_a_structural_gap() -> None:
    # The book sits 30 bps above the oracle all the time: a 28 bps sell "edge" is no edge.
    gap = signed_gap_bps(D(100), D("100.30"))
    assert gap == D(30)
    assert edge_above_baseline(Side.SELL, D(28), gap) == D(-2)
    assert edge_above_baseline(Side.SELL, D(45), gap) == D(15)
    # The gap is never added: the same book's ask 10 bps above the oracle is no buy edge, though it
    # is 20 bps under where the book has been sitting (that place may be gone: see the docstring).
    assert edge_above_baseline(Side.BUY, D(-10), gap) == D(-10)
    assert edge_above_baseline(Side.BUY, D(10), gap) == D(10)
    assert edge_above_baseline(Side.BUY, D(10), D(-5)) == D(5)
    assert edge_above_baseline(Side.SELL, D(10), D(-5)) == D(10)
    assert edge_above_baseline(Side.BUY, D(10), None) == D(10)


def test_book_helpers() -> None:
    assert brackets(D(99), D(101), D(100)) and not brackets(D(99), D(99.5), D(100))
    assert half_spread_bps(D("99.98"), D("100.02")) == D(2)


def test_take_size_takes_the_whole_stale_level_up_to_the_cap() -> None:
    # A $172 level (0.4 at 432.1): taken whole, not shrunk to the minimum.
    assert take_size(
        D("432.1"), D("0.4"), SPEC, max_notional=D(500), min_book_notional=D(50), min_order_notional=D(11)
    ) == D("0.4")
    # A $4,321 level under a $100 cap: 99 % of the cap, floored to the lot.
    assert take_size(
        D("432.1"), D(10), SPEC, max_notional=D(100), min_book_notional=D(50), min_order_notional=D(11)
    ) == D("0.229")


@pytest.mark.parametrize(
    ("sz", "cap", "reason"),
    [
        ("0.1", "100", "level $43 < min_book_notional $50"),  # the level taken is what counts
        ("1", "10", "takeable $"),  # the cap leaves less than the minimum order
        ("0", "100", "empty level"),
    ],
)
def test_take_size_refusals_say_why(sz: str, cap: str, reason: str) -> None:
    result = take_size(
        D("432.1"), D(sz), SPEC, max_notional=D(cap), min_book_notional=D(50), min_order_notional=D(11)
    )
    assert isinstance(result, str) and result.startswith(reason)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.floats(min_value=0.0, max_value=120.0),  # seconds since the previous sample
            st.decimals(min_value=-50, max_value=50, places=3),
        ),
        max_size=400,
    )
)
def test_recent_median_is_the_median_of_the_window(steps: list[tuple[float, Decimal]]) -> None:
    # Kept in order as samples come and go, it must equal the plain median of what the window holds.
    med, at, seen = RecentMedian(), 0.0, []
    for dt, sample in steps:
        at += dt
        before = med
        med = med.observe(sample, at, 300.0)
        if med is before:
            continue
        seen.append((at, sample))
        window = [v for t, v in seen if at - t < 300.0][-MAX_MEDIAN_SAMPLES:]
        ordered = sorted(window)
        half = len(ordered) // 2
        expected = ordered[half] if len(ordered) % 2 else (ordered[half - 1] + ordered[half]) / 2
        assert med.value == expected
        assert [v for _, v in med.samples] == window
