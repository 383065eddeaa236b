"""Per-market taker fee = account base rate (with discounts) × the asset's HIP-3 multiplier."""

from __future__ import annotations

from decimal import Decimal

import pytest

from hip3.core import MarketKey
from hip3.hyperliquid.events import Meta, MetaAsset, UserFees
from hip3.strategy.fees import (
    TIER0_FEES,
    FeeTable,
    account_taker_rate,
    hip3_fee_multiplier,
    market_fee,
)

TSLA = MarketKey("xyz", "TSLA", 110000)
GOLD = MarketKey("xyz", "GOLD", 110001)
HOOD = MarketKey("xyz", "HOOD", 110002)


def asset(name: str, scale: str | None, growth: bool) -> MetaAsset:
    return MetaAsset(
        name=name,
        sz_decimals=3,
        max_leverage=10,
        deployer_fee_scale=None if scale is None else Decimal(scale),
        growth_mode=growth,
    )


@pytest.mark.parametrize(
    ("scale", "growth", "expected"),
    [
        ("1", False, "2"),  # the launch rule: 2 × base
        ("1", True, "0.2"),  # growth mode: × 0.1
        ("0.5", False, "1.5"),  # scale < 1: scale + 1
        ("0", False, "1"),
        ("3", False, "6"),  # scale >= 1: 2 × scale
        ("10", True, "2.0"),
    ],
)
def test_hip3_multiplier(scale: str, growth: bool, expected: str) -> None:
    assert hip3_fee_multiplier(Decimal(scale), growth) == Decimal(expected)


def test_reference_figures_at_tier_0() -> None:
    # hyperliquid.md §11: at tier 0 about 0.9 bp on TSLA (growth mode) and 9 bp on GOLD.
    rate = account_taker_rate(TIER0_FEES)
    assert market_fee(rate, asset("xyz:TSLA", "1.0", True), hip3=True).taker_bps == Decimal("0.9")
    assert market_fee(rate, asset("xyz:GOLD", "1.0", False), hip3=True).taker_bps == Decimal("9")
    assert market_fee(rate, asset("xyz:HOOD", "0.5", False), hip3=True).taker_bps == Decimal("6.75")


def test_discounts_multiply_the_base_rate() -> None:
    # The live xyz:SILVER fill paid 0.765 bp = 0.9 × 0.85 (a 15 % discount).
    fees = UserFees(cross_rate=Decimal("0.00045"), add_rate=Decimal(0), staking_discount=Decimal("0.15"))
    fee = market_fee(account_taker_rate(fees), asset("xyz:SILVER", "1", True), hip3=True)
    assert fee.taker_bps == Decimal("0.765")
    both = UserFees(
        cross_rate=Decimal("0.0004"),
        add_rate=Decimal(0),
        staking_discount=Decimal("0.1"),
        referral_discount=Decimal("0.04"),
    )
    assert account_taker_rate(both) == Decimal("0.0004") * Decimal("0.9") * Decimal("0.96")


def test_missing_scale_is_the_launch_rule_and_validator_perps_pay_base() -> None:
    rate = account_taker_rate(TIER0_FEES)
    fee = market_fee(rate, asset("xyz:OLD", None, False), hip3=True)
    assert fee.taker_bps == Decimal("9") and "scale not in meta" in fee.source
    assert market_fee(rate, None, hip3=False).taker_bps == Decimal("4.5")


def test_fee_table_applies_meta_reports_changes_and_keeps_overrides() -> None:
    table = FeeTable([TSLA, GOLD, HOOD], overrides={HOOD: Decimal("12")})
    # Before meta is read every HIP-3 market pays the launch rule (never the cheaper guess).
    assert table.taker_bps(TSLA) == Decimal("9")
    meta = Meta(
        universe=(asset("xyz:TSLA", "1", True), asset("xyz:GOLD", "1", False), asset("xyz:HOOD", "1", True))
    )
    changes = table.apply_meta(meta)
    assert table.taker_bps(TSLA) == Decimal("0.9") and table.taker_bps(GOLD) == Decimal("9")
    assert table.taker_bps(HOOD) == Decimal("12")  # the config wins
    assert len(changes) == 1 and "xyz:TSLA" in changes[0] and "growth mode" in changes[0]
    assert table.apply_meta(meta) == []  # nothing new: nothing to log
    # TSLA leaves growth mode: logged once, rate back to 9 bp.
    meta2 = Meta(universe=(asset("xyz:TSLA", "1", False), asset("xyz:GOLD", "1", False)))
    changes = table.apply_meta(meta2)
    assert [c.split(":")[0] for c in changes] == ["taker fee xyz"] and table.taker_bps(TSLA) == Decimal(9)
    # HOOD missing from the second meta keeps its (overridden) fee; GOLD unchanged.
    assert table.taker_bps(HOOD) == Decimal("12") and table.taker_bps(GOLD) == Decimal("9")
    assert len(table.describe()) == 3


def test_fee_table_uses_the_accounts_rate() -> None:
    fees = UserFees(cross_rate=Decimal("0.0003"), add_rate=Decimal(0))
    table = FeeTable([GOLD], fees, account_source="userFees")
    table.apply_meta(Meta(universe=(asset("xyz:GOLD", "1", False),)))
    assert table.taker_bps(GOLD) == Decimal("6")


def test_a_market_missing_from_meta_keeps_its_fee() -> None:
    # A halted or delisted market drops out of meta; its last known fee stays (logged nothing).
    table = FeeTable([TSLA, GOLD])
    table.apply_meta(Meta(universe=(asset("xyz:TSLA", "1", True), asset("xyz:GOLD", "1", False))))
    assert table.apply_meta(Meta(universe=(asset("xyz:GOLD", "1", False),))) == []
    assert table.taker_bps(TSLA) == Decimal("0.9")
