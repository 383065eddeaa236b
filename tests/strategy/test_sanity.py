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
