"""Fee fields from the exchange: meta's per-asset deployerFeeScale / growthMode, and userFees.

Shapes as the reference quotes them (hyperliquid.md §4.2, §11): a docs meta entry, the Sept 2026
captures of xyz:TSLA / xyz:GOLD / xyz:HOOD, and a live userFees answer.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
import trio

from hip3.hyperliquid.parse import ParseError, parse_meta, parse_user_fees
from tests.hyperliquid.test_info import USER, Recorder, client

META = {
    "universe": [
        {
            "szDecimals": 3,
            "name": "xyz:TSLA",
            "maxLeverage": 10,
            "growthMode": "enabled",
            "deployerFeeScale": "1.0",
            "lastFeeScaleChangeTime": "2025-11-23T17:21:40.390706535",
        },
        {"szDecimals": 4, "name": "xyz:GOLD", "maxLeverage": 20, "deployerFeeScale": "1.0"},
        {
            "szDecimals": 2,
            "name": "xyz:HOOD",
            "maxLeverage": 10,
            "marginMode": "noCross",
            "deployerFeeScale": "0.5",
            "growthMode": "disabled",
        },
        {"szDecimals": 2, "name": "xyz:OLDSHAPE", "maxLeverage": 5},
    ]
}

USER_FEES: dict[str, Any] = {
    "dailyUserVlm": [{"date": "2026-09-01", "userCross": "0.0", "userAdd": "0.0", "exchange": "1.0"}],
    "feeSchedule": {"cross": "0.00045", "add": "0.00015"},
    "userCrossRate": "0.00045",
    "userAddRate": "0.00015",
    "activeReferralDiscount": "0.04",
    "trial": None,
    "feeTrialReward": "0.0",
    "nextTrialAvailableTimestamp": None,
    "stakingLink": None,
    "activeStakingDiscount": {"bpsOfMaxSupply": "0.0", "discount": "0.0"},
}


def test_meta_fee_fields() -> None:
    tsla, gold, hood, old = parse_meta(META).universe
    assert (tsla.deployer_fee_scale, tsla.growth_mode) == (Decimal("1.0"), True)
    assert (gold.deployer_fee_scale, gold.growth_mode) == (Decimal("1.0"), False)
    assert (hood.deployer_fee_scale, hood.growth_mode) == (Decimal("0.5"), False)
    assert (old.deployer_fee_scale, old.growth_mode) == (None, False)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("deployerFeeScale", "-1", r"deployerFeeScale: expected 0\.\.10, got -1"),
        ("deployerFeeScale", "11", r"deployerFeeScale: expected 0\.\.10"),
        ("deployerFeeScale", "abc", r"deployerFeeScale"),
        ("growthMode", 3, r"growthMode: expected a string"),
    ],
)
def test_meta_bad_fee_fields_are_named(field: str, value: Any, message: str) -> None:
    body = {"universe": [{"szDecimals": 3, "name": "xyz:TSLA", "maxLeverage": 10, field: value}]}
    with pytest.raises(ParseError, match=message):
        parse_meta(body)


def test_growth_mode_as_boolean() -> None:
    body = {"universe": [{"szDecimals": 3, "name": "xyz:TSLA", "maxLeverage": 10, "growthMode": True}]}
    assert parse_meta(body).universe[0].growth_mode


def test_user_fees_live_shape() -> None:
    fees = parse_user_fees(USER_FEES)
    assert fees.cross_rate == Decimal("0.00045") and fees.add_rate == Decimal("0.00015")
    assert fees.referral_discount == Decimal("0.04") and fees.staking_discount == Decimal("0.0")


def test_user_fees_minimal_and_discount() -> None:
    fees = parse_user_fees(
        {"userCrossRate": "0.0004", "userAddRate": "0.0001", "activeStakingDiscount": {"discount": "0.15"}}
    )
    assert (fees.cross_rate, fees.referral_discount, fees.staking_discount) == (
        Decimal("0.0004"),
        Decimal(0),
        Decimal("0.15"),
    )


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"userAddRate": "0.0001"}, r"userFees\.userCrossRate: missing"),
        ({"userCrossRate": "0.5", "userAddRate": "0.0001"}, r"userCrossRate: expected 0\.\.0\.01"),
        ({"userCrossRate": "0.0004", "userAddRate": "0.0001", "activeReferralDiscount": "2"}, r"Referral"),
        (
            {"userCrossRate": "0.0004", "userAddRate": "0.0001", "activeStakingDiscount": "x"},
            r"activeStakingDiscount: expected an object",
        ),
        ([], r"userFees: expected an object"),
    ],
)
def test_user_fees_malformed(body: Any, message: str) -> None:
    with pytest.raises(ParseError, match=message):
        parse_user_fees(body)


async def test_info_user_fees_request(autojump_clock: trio.testing.MockClock) -> None:
    rec = Recorder(lambda n, body: USER_FEES)
    async with client(rec) as info:
        fees = await info.user_fees(USER)
    assert fees.cross_rate == Decimal("0.00045")
    assert rec.bodies == [{"type": "userFees", "user": USER}]
