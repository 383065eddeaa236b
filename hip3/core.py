"""Value types shared by every task: prices, sizes, markets, sides, client order ids.

Money is `Decimal`, never float. `Price` and `Size` are `Decimal` at run time and distinct types
for the type checker, so a size can't be passed where a price is expected.
"""

from __future__ import annotations

import enum
import re
import secrets
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal, InvalidOperation
from typing import NewType

from attrs import field, frozen

Price = NewType("Price", Decimal)
Size = NewType("Size", Decimal)

#: The exchange refuses opening orders whose notional (px × sz) is below this.
MIN_OPEN_NOTIONAL = Decimal(10)
#: Perp prices carry at most this many decimals minus szDecimals.
PERP_MAX_DECIMALS = 6
MAX_SIG_FIGS = 5


def strip_zeros(value: Decimal) -> Decimal:
    """Drop trailing zeros without switching to exponent notation (100, not 1E+2)."""
    normalized = value.normalize()
    exponent = normalized.as_tuple().exponent
    if isinstance(exponent, int) and exponent > 0:
        return normalized.quantize(Decimal(1))
    return normalized + 0  # + 0 turns -0 into 0


def to_decimal(value: object, what: str = "value") -> Decimal:
    """Parse an exchange number (a string, an int, or a Decimal) without ever going through float."""
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, bool):
        raise ValueError(f"{what}: expected a number, got a boolean")
    elif isinstance(value, int | str):
        try:
            result = Decimal(value)
        except InvalidOperation:
            raise ValueError(f"{what}: not a number: {value!r}") from None
    else:
        raise ValueError(f"{what}: expected a decimal string, got {type(value).__name__}")
    if not result.is_finite():
        raise ValueError(f"{what}: not a finite number: {value!r}")
    return result


class Side(enum.Enum):
    """Order side with the exchange's one-letter codes ("B" buy/bid, "A" sell/ask)."""

    BUY = "B"
    SELL = "A"

    @property
    def is_buy(self) -> bool:
        return self is Side.BUY

    @property
    def sign(self) -> int:
        """+1 for a buy, −1 for a sell: a fill of size s moves the position by sign × s."""
        return 1 if self is Side.BUY else -1

    @property
    def opposite(self) -> Side:
        return Side.SELL if self is Side.BUY else Side.BUY

    @classmethod
    def from_wire(cls, code: str) -> Side:
        try:
            return cls(code)
        except ValueError:
            raise ValueError(f"side: expected 'B' or 'A', got {code!r}") from None

    @classmethod
    def from_is_buy(cls, is_buy: bool) -> Side:
        return cls.BUY if is_buy else cls.SELL

    def __str__(self) -> str:
        return "buy" if self is Side.BUY else "sell"


@frozen(order=True, cache_hash=True)  # a dict key on every message: hash it once
class MarketKey:
    """One market, named the way every part of the bot names it.

    `coin` is the name without the dex prefix (``TSLA``); `name` is the exchange's coin string
    (``xyz:TSLA``) used in subscriptions, fills and info queries; `asset` is the order-wire id
    (100000 + perp_dex_index × 10000 + index in meta(dex)).
    """

    dex: str
    coin: str
    asset: int

    @property
    def name(self) -> str:
        return f"{self.dex}:{self.coin}" if self.dex else self.coin

    def __str__(self) -> str:
        return self.name


_CLOID_RE = re.compile(r"^0x[0-9a-f]{32}$")


@frozen(order=True)
class Cloid:
    """Client order id: ``0x`` + 32 lowercase hex digits (128 bits), as the exchange requires."""

    value: str = field()

    @value.validator
    def _check(self, _attr: object, value: str) -> None:
        if not isinstance(value, str) or not _CLOID_RE.match(value):
            raise ValueError(f"cloid: expected '0x' followed by 32 lowercase hex digits, got {value!r}")

    @classmethod
    def random(cls) -> Cloid:
        return cls("0x" + secrets.token_hex(16))

    @classmethod
    def parse(cls, text: str) -> Cloid:
        """Accept upper- or lowercase hex from the wire; store lowercase."""
        if not isinstance(text, str):
            raise ValueError(f"cloid: expected a string, got {type(text).__name__}")
        return cls(text.lower() if text[:2].lower() == "0x" else text)

    def __str__(self) -> str:
        return self.value


@frozen
class MarketSpec:
    """What the exchange allows in one market: lot size, price grid, minimum notional."""

    key: MarketKey
    sz_decimals: int
    max_leverage: int = 10
    only_isolated: bool = True

    @property
    def lot(self) -> Decimal:
        return Decimal(1).scaleb(-self.sz_decimals)

    @property
    def max_price_decimals(self) -> int:
        return max(0, PERP_MAX_DECIMALS - self.sz_decimals)

    def round_size(self, size: Decimal) -> Size:
        """Cut a size down to the lot; never rounds up (a bigger order than asked is never sent)."""
        if size <= 0:
            return Size(Decimal(0))
        return Size(strip_zeros(size.quantize(self.lot, rounding=ROUND_FLOOR)))

    def price_decimals_for(self, price: Decimal) -> int:
        """Decimals allowed for a price of this magnitude: ≤ 5 significant figures, ≤ 6 − szDecimals."""
        sig_decimals = MAX_SIG_FIGS - 1 - price.adjusted()
        return max(0, min(self.max_price_decimals, sig_decimals))

    def round_price(self, price: Decimal, *, up: bool) -> Price:
        """Round a price onto the exchange grid, up or down as the caller says.

        A buy limit normally rounds down and a sell limit up (never pay more than asked); an
        exit that must fill rounds the other way. Integer prices are always allowed.
        """
        if price <= 0:
            raise ValueError(f"price must be > 0, got {price}")
        rounding = ROUND_CEILING if up else ROUND_FLOOR
        decimals = self.price_decimals_for(price)
        rounded = price.quantize(Decimal(1).scaleb(-decimals), rounding=rounding)
        # A carry (9.99995 -> 10.0000) can add an integer digit: re-check against the new magnitude.
        if rounded != 0 and self.price_decimals_for(rounded) < decimals:
            rounded = rounded.quantize(
                Decimal(1).scaleb(-self.price_decimals_for(rounded)), rounding=rounding
            )
        return Price(strip_zeros(rounded))

    def is_valid_price(self, price: Decimal) -> bool:
        if price <= 0:
            return False
        if price == price.to_integral_value():
            return True
        normalized = price.normalize()
        exponent = normalized.as_tuple().exponent
        assert isinstance(exponent, int)
        decimals = max(0, -exponent)
        sig_figs = len(normalized.as_tuple().digits)
        return sig_figs <= MAX_SIG_FIGS and decimals <= self.max_price_decimals

    def is_valid_size(self, size: Decimal) -> bool:
        return size > 0 and size == size.quantize(self.lot, rounding=ROUND_FLOOR)

    @staticmethod
    def meets_min_notional(price: Decimal, size: Decimal) -> bool:
        return price * size >= MIN_OPEN_NOTIONAL
