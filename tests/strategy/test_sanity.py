"""The oracle sanity bound as a pure rule (the end-to-end case is in test_oracle_sanity.py)."""

from __future__ import annotations

from decimal import Decimal

from hip3.strategy.sanity import oracle_sanity_problem

D = Decimal
ON = {"max_oracle_mark_bps": D(200), "max_edge_bps": D(200)}


def test_a_real_dislocation_is_sane() -> None:
    # Oracle 0.5 % above a book and mark that lag: tradeable.
    assert oracle_sanity_problem(D("100.5"), D(100), D("99.99"), D(100), **ON) is None


def test_oracle_far_from_mark_is_not_trusted() -> None:
    problem = oracle_sanity_problem(D(150), D(100), D("149"), D("151"), **ON)
    assert problem is not None and "5000 bps from mark 100" in problem


def test_edge_ceiling_catches_an_oracle_the_mark_followed() -> None:
    # The mark went along (e.g. a deployer's mark input), the book did not: still no trade.
    problem = oracle_sanity_problem(D(150), D(149), D("99.99"), D(100), **ON)
    assert problem is not None and "exceeds the ceiling 200 bps" in problem
    sell = oracle_sanity_problem(D(100), D(100), D(103), D("103.1"), **ON)
    assert sell is not None and "edge 300 bps" in sell


def test_limits_of_zero_turn_each_check_off() -> None:
    assert (
        oracle_sanity_problem(D(150), D(100), D("99.99"), D(100), max_oracle_mark_bps=D(0), max_edge_bps=D(0))
        is None
    )
    assert (
        oracle_sanity_problem(
            D(150), D(150), D("99.99"), D(100), max_oracle_mark_bps=D(200), max_edge_bps=D(0)
        )
        is None
    )
    assert oracle_sanity_problem(D(0), D(100), None, None, **ON) is not None


def test_edge_ceiling_also_bounds_the_edge_from_where_the_book_settles() -> None:
    # A book living 150 bps above its oracle whose ask is now 100 bps below it: 250 bps below where
    # it settles, which is the edge an entry would bet on.
    problem = oracle_sanity_problem(D(100), D(100), D("98.9"), D(99), **ON, baseline_bps=D(150))
    assert problem is not None and "edge 246 bps against where the book settles" in problem
    assert "structural gap 150.0 bps" in problem
    # Without the gap known only the raw edge (100 bps) is bounded; with the book at its usual
    # place (ask 2 bps over it) nothing is wrong.
    assert oracle_sanity_problem(D(100), D(100), D("98.9"), D(99), **ON) is None
    assert oracle_sanity_problem(D(100), D(100), D("101.48"), D("101.52"), **ON, baseline_bps=D(150)) is None
