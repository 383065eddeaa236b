"""with_bbo / with_ctx build the next state field by field: every field they don't own carries over."""

from __future__ import annotations

from decimal import Decimal

import attrs

from hip3.core import MarketKey
from hip3.hyperliquid.events import AssetCtx, Bbo, BookLevel
from hip3.market.cells import MarketState, with_bbo, with_ctx

TSLA = MarketKey("xyz", "TSLA", 110001)
OLD_BBO = Bbo("xyz:TSLA", 5, BookLevel(Decimal(100), Decimal(1), 1), BookLevel(Decimal(101), Decimal(1), 1))
NEW_BBO = Bbo("xyz:TSLA", 9, BookLevel(Decimal(102), Decimal(1), 1), BookLevel(Decimal(103), Decimal(1), 1))
OLD_CTX = AssetCtx("xyz:TSLA", Decimal(100), Decimal(100), None, Decimal(0), Decimal(0))
NEW_CTX = AssetCtx("xyz:TSLA", Decimal(100), Decimal(99), None, Decimal(0), Decimal(0))


def full_state() -> MarketState:
    """Every field set to something other than its default, so a dropped field shows."""
    values = {
        "market": TSLA,
        "bbo": OLD_BBO,
        "bbo_at": 1.0,
        "ctx": OLD_CTX,
        "ctx_at": 2.0,
        "oracle_changed_at": 3.0,
        "last_exchange_time": 5,
        "time_regressed_at": 4.0,
        "time_regression_ms": 3,
        "updates": 7,
        "mid": Decimal("100.5"),
        "spread_bps": Decimal(1) / Decimal("100.5") * 10_000,
    }
    names = {f.name for f in attrs.fields(MarketState)}
    assert names == set(values), f"MarketState fields changed: {names ^ set(values)}: update this test"
    return MarketState(**values)


def test_with_bbo_changes_only_the_book_fields() -> None:
    before = full_state()
    after = with_bbo(before, NEW_BBO, 10.0)
    changed = {
        "bbo": NEW_BBO,
        "bbo_at": 10.0,
        "last_exchange_time": 9,
        "updates": 8,
        "mid": Decimal("102.5"),  # derived from the new book, once
        "spread_bps": Decimal(1) / Decimal("102.5") * 10_000,
    }
    for field in attrs.fields(MarketState):
        expected = changed.get(field.name, getattr(before, field.name))
        assert getattr(after, field.name) == expected, field.name


def test_with_ctx_changes_only_the_context_fields() -> None:
    before = full_state()
    after = with_ctx(before, NEW_CTX, 10.0)
    changed = {"ctx": NEW_CTX, "ctx_at": 10.0, "updates": 8}  # same oracle: oracle_changed_at stays
    for field in attrs.fields(MarketState):
        expected = changed.get(field.name, getattr(before, field.name))
        assert getattr(after, field.name) == expected, field.name
