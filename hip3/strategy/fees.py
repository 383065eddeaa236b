"""Taker fees per market, from the exchange: the account's base rate × the asset's HIP-3 multiplier.

HIP-3 fees are per asset (hyperliquid.md §4.5, §11): `meta(dex)` gives each asset a
`deployerFeeScale` and a `growthMode`, and `userFees` gives the account's base taker rate
(`userCrossRate`) and its discounts. The taker rate of one fill is

    base × (1 − staking discount) × (1 − referral discount) × (scale + max(scale, 1)) × (0.1 in growth mode)

so at tier 0 a growth-mode asset at scale 1 pays about 0.9 bp and a normal one 9 bp. Without an
account (observation mode) the base is tier 0, the highest rate: the threshold errs on the side
of not trading. A configured override replaces the exchange's figure for a market.

`FeeTable` holds the current rate per market and says, in words, what changed when meta is read again.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal

from attrs import frozen

from hip3.core import MarketKey
from hip3.hyperliquid.events import Meta, MetaAsset, UserFees

BPS = Decimal(10_000)
#: Tier 0 perps: 0.045 % taker, 0.015 % maker (hyperliquid.md §4.5).
TIER0_FEES = UserFees(cross_rate=Decimal("0.00045"), add_rate=Decimal("0.00015"))
GROWTH_MODE_FACTOR = Decimal("0.1")
#: An asset whose meta carries no fee scale pays the launch rule: 2 × base (scale 1).
DEFAULT_FEE_SCALE = Decimal(1)


def hip3_fee_multiplier(scale: Decimal, growth_mode: bool) -> Decimal:
    """(scale + max(scale, 1)) × (0.1 in growth mode): scale 1 → 2, scale 0.5 → 1.5, growth → × 0.1."""
    multiplier = scale + max(scale, Decimal(1))
    return multiplier * GROWTH_MODE_FACTOR if growth_mode else multiplier


def account_taker_rate(fees: UserFees) -> Decimal:
    """The account's taker rate (fraction) before the HIP-3 multiplier, discounts applied."""
    return fees.cross_rate * (1 - fees.staking_discount) * (1 - fees.referral_discount)


@frozen
class MarketFee:
    taker_bps: Decimal
    source: str  # how it was worked out, for the log

    def describe(self) -> str:
        return f"{self.taker_bps.normalize():f} bps ({self.source})"


def market_fee(account_rate: Decimal, asset: MetaAsset | None, *, hip3: bool) -> MarketFee:
    """The taker fee of one market from the account's rate and the asset's meta entry."""
    base_bps = account_rate * BPS
    if not hip3:
        return MarketFee(base_bps, f"base {_fmt(base_bps)} bps, validator perp")
    scale = asset.deployer_fee_scale if asset is not None else None
    growth = asset.growth_mode if asset is not None else False
    parts = [f"base {_fmt(base_bps)} bps"]
    if scale is None:
        scale = DEFAULT_FEE_SCALE
        parts.append("scale not in meta, taken as 1")
    else:
        parts.append(f"scale {_fmt(scale)}")
    if growth:
        parts.append("growth mode")
    multiplier = hip3_fee_multiplier(scale, growth)
    return MarketFee(base_bps * multiplier, f"{', '.join(parts)} → × {_fmt(multiplier)}")


def _fmt(value: Decimal) -> str:
    return f"{value.normalize():f}"


class FeeTable:
    """Current taker fee per market; the detector reads `taker_bps`, the market checks call `apply_meta`.

    `overrides` (bps per market) win over the exchange's figures and are never changed by meta.
    """

    def __init__(
        self,
        markets: Iterable[MarketKey],
        account: UserFees = TIER0_FEES,
        *,
        account_source: str = "tier 0",
        overrides: Mapping[MarketKey, Decimal] | None = None,
    ) -> None:
        self.markets = tuple(sorted(markets))
        self.account = account
        self.account_source = account_source
        self.overrides = dict(overrides or {})
        self._fees: dict[MarketKey, MarketFee] = {}
        # Until meta is applied every market pays the launch rule (the higher, normal rate).
        self.apply_assets({})

    @property
    def account_rate(self) -> Decimal:
        return account_taker_rate(self.account)

    def taker_bps(self, market: MarketKey) -> Decimal:
        return self._fees[market].taker_bps

    def fee(self, market: MarketKey) -> MarketFee:
        return self._fees[market]

    def apply_meta(self, meta: Meta) -> list[str]:
        """Read each market's fee fields from a fresh meta(dex); returns one line per market whose fee changed."""
        return self.apply_assets({asset.name: asset for asset in meta.universe})

    def apply_assets(self, assets: Mapping[str, MetaAsset]) -> list[str]:
        changes: list[str] = []
        rate = self.account_rate
        for market in self.markets:
            override = self.overrides.get(market)
            if override is not None:
                new = MarketFee(override, "config override")
            else:
                asset = assets.get(market.name)
                if asset is None and market in self._fees and assets:
                    continue  # not in this meta (halted/delisted): keep what we had
                new = market_fee(rate, asset, hip3=bool(market.dex))
            old = self._fees.get(market)
            self._fees[market] = new
            if old is not None and old.taker_bps != new.taker_bps:
                changes.append(f"taker fee {market}: {old.describe()} → {new.describe()}")
        return changes

    def describe(self) -> list[str]:
        """One line per market, for the startup log."""
        return [f"taker fee {m}: {self._fees[m].describe()}" for m in self.markets]
