"""Numbers and records in the exchange's JSON shapes: numbers as strings, ids and times as ints."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal

from hip3.core import strip_zeros

USDC = Decimal("0.000001")


def num(value: Decimal) -> str:
    """The exchange's number text: no exponent, no trailing zeros, at least one decimal (``"0.0"``)."""
    text = f"{strip_zeros(value):f}"
    return text if "." in text else text + ".0"


def usd(value: Decimal) -> Decimal:
    """Round a USDC amount to the 6 decimals the exchange keeps."""
    return value.quantize(USDC, rounding=ROUND_HALF_EVEN)


def px_text(value: Decimal, digits: int = 8) -> str:
    """A derived price (entry, average) rounded to a sane number of decimals."""
    return num(value.quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_EVEN))


def direction(start: Decimal, delta: Decimal) -> str:
    """The fill `dir` for a position `start` moved by signed `delta`."""
    if start == 0 or (start > 0) == (delta > 0):
        return "Open Long" if delta > 0 else "Open Short"
    if abs(delta) <= abs(start):
        return "Close Long" if start > 0 else "Close Short"
    return "Long > Short" if start > 0 else "Short > Long"
