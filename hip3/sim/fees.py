"""HIP-3 fees as the exchange charges them: the account's base rates × the asset's deployer multiplier.

Reference §4.5/§11: each `meta(dex)` universe entry carries `deployerFeeScale` and (when on)
`growthMode: "enabled"`. The multiplier is `scale + max(scale, 1)` (scale 1 → 2× the base fee, the
launch rule), times 0.1 in growth mode. The account's base rates are `userFees.userCrossRate`
(taker) and `userAddRate` (maker), before its discounts; the simulator applies the referral and
staking discounts to both (positive) rates: base × (1 − referral) × (1 − staking).

Tier 0 (0.045 % / 0.015 %): `xyz:TSLA` in growth mode at scale 1 pays 0.9 bp taker, `xyz:GOLD`
(scale 1, no growth mode) 9 bp, `xyz:HOOD` (scale 0.5) 6.75 bp.
"""

from __future__ import annotations

from decimal import Decimal

from attrs import frozen

GROWTH_MODE_FACTOR = Decimal("0.1")
TIER0_CROSS_RATE = Decimal("0.00045")
TIER0_ADD_RATE = Decimal("0.00015")


def hip3_multiplier(scale: Decimal, growth_mode: bool) -> Decimal:
    """What a HIP-3 asset multiplies the account's base fee rates by."""
    multiplier = scale + max(scale, Decimal(1))
    return multiplier * GROWTH_MODE_FACTOR if growth_mode else multiplier


@frozen
class UserRates:
    """One account's base rates (what `userFees` reports) and its active discounts (fractions)."""

    cross: Decimal = TIER0_CROSS_RATE
    add: Decimal = TIER0_ADD_RATE
    referral_discount: Decimal = Decimal(0)
    staking_discount: Decimal = Decimal(0)

    def _discounted(self, rate: Decimal) -> Decimal:
        if rate <= 0:  # a maker rebate is not discounted
            return rate
        return rate * (1 - self.referral_discount) * (1 - self.staking_discount)

    def taker_rate(self, multiplier: Decimal) -> Decimal:
        return self._discounted(self.cross) * multiplier

    def maker_rate(self, multiplier: Decimal) -> Decimal:
        return self._discounted(self.add) * multiplier


__all__ = ["GROWTH_MODE_FACTOR", "TIER0_ADD_RATE", "TIER0_CROSS_RATE", "UserRates", "hip3_multiplier"]
