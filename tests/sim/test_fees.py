"""Per-asset HIP-3 fees: meta(dex) fields, userFees, and what fills are charged (hand-computed)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from hip3.core import Side
from hip3.sim.config import SimConfigError, _default_text, load_sim_config
from hip3.sim.engine import Engine
from hip3.sim.fees import hip3_multiplier
from hip3.sim.info import handle_info

from .helpers import SdkClient, statuses

GOLD, HOOD, NVDA = 110002, 110005, 110001


@pytest.mark.parametrize(
    ("scale", "growth", "expected"),
    [("1", False, "2"), ("1", True, "0.2"), ("0.5", False, "1.5"), ("0", False, "1"), ("3", False, "6")],
)
def test_multiplier(scale: str, growth: bool, expected: str) -> None:
    assert hip3_multiplier(Decimal(scale), growth) == Decimal(expected)


def _take(engine: Engine, trader: SdkClient, coin: str, asset: int, px: str, sz: str) -> dict:
    engine.set_oracle(coin, px)
    engine.set_book(coin, bids=[(Decimal(px) - 1, "10")], asks=[(px, "10")])
    [status] = statuses(engine.handle_exchange(trader.order(asset, True, px, sz)))
    assert "filled" in status, status
    return engine.fills(trader.address)[-1]


def test_fills_pay_the_assets_rate(engine: Engine, trader: SdkClient) -> None:
    # GOLD: scale 1, no growth mode → 0.045 % × 2 = 9 bp of 4000 × 0.01 = 40 → 0.036
    assert _take(engine, trader, "GOLD", GOLD, "4000", "0.01")["fee"] == "0.036"
    # HOOD: scale 0.5 → 0.045 % × 1.5 = 6.75 bp of 100 × 1 = 100 → 0.0675
    assert _take(engine, trader, "HOOD", HOOD, "100", "1")["fee"] == "0.0675"
    # NVDA: growth mode → 0.9 bp of 200 × 1 = 200 → 0.018
    assert _take(engine, trader, "NVDA", NVDA, "200", "1")["fee"] == "0.018"


def test_discounts_lower_the_rate(engine: Engine, trader: SdkClient) -> None:
    engine.set_user_fees(trader.address, referral_discount="0.04", staking_discount="0.1")
    # 0.00045 × 0.96 × 0.9 × 2 = 0.00077760 of 1000 (GOLD 4000 × 0.25) = 0.7776
    assert _take(engine, trader, "GOLD", GOLD, "4000", "0.25")["fee"] == "0.7776"


def test_user_fees_answer(engine: Engine, trader: SdkClient) -> None:
    _take(engine, trader, "GOLD", GOLD, "4000", "0.01")
    engine.set_user_fees(trader.address, referral_discount="0.04")
    answer = handle_info(engine, {"type": "userFees", "user": trader.address})
    assert answer["userCrossRate"] == "0.00045" and answer["userAddRate"] == "0.00015"
    assert answer["activeReferralDiscount"] == "0.04"
    assert answer["activeStakingDiscount"]["discount"] == "0.0"
    assert answer["dailyUserVlm"][0]["userCross"] == "40.0"
    stranger = handle_info(engine, {"type": "userFees", "user": "0x" + "22" * 20})
    assert stranger["userCrossRate"] == "0.00045"  # tier 0 for an account that never traded


def test_meta_carries_per_asset_fee_fields(engine: Engine) -> None:
    universe = {u["name"]: u for u in handle_info(engine, {"type": "meta", "dex": "xyz"})["universe"]}
    assert universe["xyz:TSLA"]["deployerFeeScale"] == "1.0"
    assert universe["xyz:TSLA"]["growthMode"] == "enabled"
    assert "growthMode" not in universe["xyz:GOLD"] and universe["xyz:GOLD"]["deployerFeeScale"] == "1.0"
    assert universe["xyz:HOOD"]["deployerFeeScale"] == "0.5"
    growth = [name for name, u in universe.items() if u.get("growthMode") == "enabled"]
    assert 0 < len(growth) < len(universe)  # a mix, as on the real dex


def test_round_trip_cost_per_asset(engine: Engine) -> None:
    # Two taker fees at tier 0 plus the exit through the caught-up book: the makers quote 2 bps
    # either side of fair, rounded outwards onto the tick grid (5 significant figures).
    # TSLA at 100.1 (the fixture's oracle): 2 bps is 0.02; the bid 100.07998 rounds down to 100.07
    # and the ask 100.12002 up to 100.13, both 0.03 away.
    tsla_exit = Decimal("0.03") / Decimal("100.1") * 10_000
    assert engine.round_trip_cost_bps("TSLA", Side.BUY) == Decimal("1.8") + tsla_exit
    assert engine.round_trip_cost_bps("TSLA", Side.SELL) == Decimal("1.8") + tsla_exit
    # GOLD 4061.3: 2 bps is 0.812; 4060.4 and 4062.2 are 0.9 away.
    gold_exit = Decimal("0.9") / Decimal("4061.3") * 10_000
    assert engine.round_trip_cost_bps("GOLD", Side.BUY) == Decimal(18) + gold_exit
    assert round(gold_exit, 2) == Decimal("2.22")  # about what the bot measures on this book
    hood = engine.round_trip_cost_bps("HOOD", Side.SELL) - Decimal("13.5")  # 2 × 6.75
    assert Decimal(2) <= hood < Decimal("2.5")


def test_fee_scale_out_of_range_is_named(tmp_path: Path) -> None:
    path = tmp_path / "sim.toml"
    path.write_text(_default_text().replace('deployer_fee_scale = "0.5"', 'deployer_fee_scale = "4"'))
    with pytest.raises(SimConfigError, match=r"markets\[5\]\.deployer_fee_scale: expected 0\.\.3"):
        load_sim_config(path)
