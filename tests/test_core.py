"""Core value types: rounding onto the exchange grid, cloids, sides."""

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hip3.core import Cloid, MarketKey, MarketSpec, Side, strip_zeros, to_decimal

KEY = MarketKey("xyz", "TSLA", 110001)


def exchange_accepts_price(px: Decimal, sz_decimals: int) -> bool:
    """The exchange's rule, written from the docs (hyperliquid.md §5), independent of hip3.core."""
    if px <= 0:
        return False
    text = format(px.normalize(), "f")
    if "." not in text:
        return True  # integer prices are always allowed
    integer, fraction = text.split(".")
    digits = (integer.lstrip("0") + fraction).lstrip("0")
    return len(digits) <= 5 and len(fraction) <= 6 - sz_decimals


prices = st.decimals(min_value=Decimal("0.000001"), max_value=Decimal("2000000"), places=8)
sizes = st.decimals(min_value=Decimal("0"), max_value=Decimal("100000"), places=8)
sz_decimals = st.integers(min_value=0, max_value=5)


@settings(max_examples=400)
@given(px=prices, szd=sz_decimals, up=st.booleans())
def test_rounded_price_is_on_the_exchange_grid(px: Decimal, szd: int, up: bool) -> None:
    spec = MarketSpec(KEY, szd)
    rounded = spec.round_price(px, up=up)
    if rounded > 0:
        assert exchange_accepts_price(rounded, szd), (px, szd, up, rounded)
        assert spec.is_valid_price(rounded)
    if up:
        assert rounded >= px
    else:
        assert rounded <= px


@settings(max_examples=400)
@given(px=prices, szd=sz_decimals)
def test_rounding_moves_to_the_nearest_grid_point(px: Decimal, szd: int) -> None:
    spec = MarketSpec(KEY, szd)
    down, up = spec.round_price(px, up=False), spec.round_price(px, up=True)
    assert down <= px <= up
    if exchange_accepts_price(px, szd):
        assert down == px == up
    # nothing on the grid lies strictly between the two
    step = Decimal(1).scaleb(-spec.price_decimals_for(px))
    assert up - down <= step


@settings(max_examples=400)
@given(size=sizes, szd=sz_decimals, px=prices)
def test_size_rounds_down_to_the_lot_and_never_increases_notional(
    size: Decimal, szd: int, px: Decimal
) -> None:
    spec = MarketSpec(KEY, szd)
    rounded = spec.round_size(size)
    lot = Decimal(1).scaleb(-szd)
    assert rounded <= size
    assert size - rounded < lot
    assert rounded % lot == 0
    buy_px = spec.round_price(px, up=False)
    assert rounded * buy_px <= size * px


def test_price_examples_from_the_docs() -> None:
    tsla = MarketSpec(KEY, 3)
    assert tsla.is_valid_price(Decimal("465.13"))
    assert not tsla.is_valid_price(Decimal("465.125"))
    assert tsla.round_price(Decimal("465.125"), up=False) == Decimal("465.12")
    assert tsla.round_price(Decimal("465.125"), up=True) == Decimal("465.13")
    xyz100 = MarketSpec(MarketKey("xyz", "XYZ100", 110000), 4)
    assert xyz100.is_valid_price(Decimal("25451"))
    assert not xyz100.is_valid_price(Decimal("25451.5"))
    assert xyz100.is_valid_price(Decimal("123456"))  # integers always allowed


def test_zero_size_after_lot_rounding() -> None:
    platinum = MarketSpec(MarketKey("xyz", "PLATINUM", 110004), 4)
    assert platinum.round_size(Decimal("0.00005")) == 0  # floors to zero: the executor must drop it
    assert not platinum.is_valid_size(Decimal("0"))
    assert not platinum.meets_min_notional(Decimal("1000"), Decimal("0.0099"))
    assert platinum.meets_min_notional(Decimal("1000"), Decimal("0.01"))


def test_strip_zeros_never_uses_exponents() -> None:
    assert str(strip_zeros(Decimal("100.000"))) == "100"
    assert str(strip_zeros(Decimal("0.0100"))) == "0.01"
    assert str(strip_zeros(Decimal("-0.0"))) == "0"


def test_cloid_format() -> None:
    cloid = Cloid.random()
    assert len(cloid.value) == 34 and cloid.value.startswith("0x")
    assert Cloid.parse("0x0000000000000000000000000000000A").value == "0x0000000000000000000000000000000a"
    for bad in ["hip3_1_abc", "0x123", "0x" + "g" * 32, "00" * 17]:
        with pytest.raises(ValueError, match="cloid"):
            Cloid.parse(bad)
    assert Cloid.random() != Cloid.random()


def test_side_codes() -> None:
    assert Side.from_wire("B") is Side.BUY and Side.from_wire("A") is Side.SELL
    assert Side.BUY.opposite is Side.SELL and Side.SELL.sign == -1
    with pytest.raises(ValueError, match="side"):
        Side.from_wire("X")


def test_to_decimal_refuses_floats() -> None:
    assert to_decimal("1.10") == Decimal("1.10")
    with pytest.raises(ValueError, match="px"):
        to_decimal(1.1, "px")
    with pytest.raises(ValueError, match="not a number"):
        to_decimal("abc")
    with pytest.raises(ValueError, match="finite"):
        to_decimal("NaN")


def test_market_key_names() -> None:
    assert KEY.name == "xyz:TSLA"
    assert str(KEY) == "xyz:TSLA"
