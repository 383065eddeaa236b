"""The replay's fill model, as pure functions: what an IOC order gets from a recorded book.

An IOC reaches the book `latency` after the signal and fills against the book as recorded at that
moment: at the displayed top level's price, up to its displayed size, if that price is within the
order's limit; nothing rests. A quote that is still stale when the order arrives (on the wrong
side of the oracle: an ask below it, a bid above it) may have been pulled by its maker first; that
happens with `pull_probability`, drawn from a seeded generator so a replay is deterministic.
Fees are the market's taker rate on the filled notional.
"""

from __future__ import annotations

import random
from decimal import Decimal

from attrs import field, frozen

from hip3.core import MarketSpec, Side
from hip3.hyperliquid.events import Bbo

BPS = Decimal(10_000)
ZERO = Decimal(0)


def _probability(_inst: object, _attr: object, value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"pull probability must be within [0, 1], got {value}")


def _non_negative(_inst: object, _attr: object, value: float) -> None:
    if value < 0:
        raise ValueError(f"latency must be >= 0 seconds, got {value}")


@frozen
class FillModel:
    latency_secs: float = field(default=0.0, validator=_non_negative)
    pull_probability: float = field(default=0.0, validator=_probability)
    seed: int = 0


@frozen
class IocOutcome:
    size: Decimal  # filled size (0: nothing filled)
    px: Decimal  # the level's price (meaningless when nothing filled)
    why: str  # "filled", "partial", "pulled", "no_liquidity", "no_book"

    @property
    def filled(self) -> bool:
        return self.size > 0


def is_stale(side: Side, bbo: Bbo, oracle: Decimal | None) -> bool:
    """The level a taker on `side` would hit still sits on the wrong side of `oracle` (the caller
    passes where the book settles: the oracle shifted by the market's structural gap)."""
    if oracle is None or oracle <= 0:
        return False
    if side is Side.BUY:
        return bbo.ask is not None and bbo.ask.px < oracle
    return bbo.bid is not None and bbo.bid.px > oracle


def ioc_fill(
    spec: MarketSpec,
    side: Side,
    size: Decimal,
    limit_px: Decimal,
    bbo: Bbo | None,
    *,
    pulled: bool = False,
) -> IocOutcome:
    """What an IOC of `size` at `limit_px` gets from `bbo` (the book when it arrives)."""
    if bbo is None:
        return IocOutcome(ZERO, ZERO, "no_book")
    level = bbo.ask if side is Side.BUY else bbo.bid
    if level is None or level.sz <= 0 or level.px <= 0:
        return IocOutcome(ZERO, ZERO, "no_book")
    crosses = level.px <= limit_px if side is Side.BUY else level.px >= limit_px
    if not crosses:
        return IocOutcome(ZERO, level.px, "no_liquidity")
    if pulled:
        return IocOutcome(ZERO, level.px, "pulled")
    got = spec.round_size(min(size, level.sz))
    if got <= 0:
        return IocOutcome(ZERO, level.px, "no_liquidity")
    return IocOutcome(got, level.px, "filled" if got >= size else "partial")


def draw_pull(rng: random.Random, probability: float, stale: bool) -> bool:
    """Whether a stale quote is pulled before the order arrives; draws only for stale quotes."""
    if not stale or probability <= 0:
        return False
    return rng.random() < probability


def taker_fee(px: Decimal, size: Decimal, taker_bps: Decimal) -> Decimal:
    return px * size * taker_bps / BPS


__all__ = ["FillModel", "IocOutcome", "draw_pull", "ioc_fill", "is_stale", "taker_fee"]
