"""Wire formats against the official SDK's builders and the reference's examples (§1.6–1.8, §2)."""

from __future__ import annotations

import json
import random
from decimal import Decimal
from typing import Any

import msgpack
import pytest
from hyperliquid.utils import signing as sdk
from hyperliquid.utils.types import Cloid as SdkCloid
from hypothesis import given, settings
from hypothesis import strategies as st

from hip3.core import Cloid
from hip3.hyperliquid.wire import (
    WireError,
    cancel_action,
    cancel_by_cloid_action,
    canonical_action,
    order_action,
    order_wire,
    schedule_cancel_action,
    to_wire,
)


def packed(x: Any) -> bytes:
    """msgpack bytes: equal only if values *and* key order are equal (dict == ignores order)."""
    return msgpack.packb(x)


# ---------------------------------------------------------------------------------------------
# to_wire


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (100, "100"),
        (Decimal("100.0"), "100"),
        (Decimal("1670.1"), "1670.1"),
        (Decimal("0.0147"), "0.0147"),
        (Decimal("1e-8"), "0.00000001"),
        (Decimal("1.23456789"), "1.23456789"),
        (Decimal("1E+2"), "100"),
        (Decimal("-0.0"), "0"),
        ("-0", "0"),
        (0, "0"),
        ("0.00000000", "0"),
        ("1.000000000000", "1"),  # more than 8 decimals, but only zeros: nothing is lost
        (Decimal("-1.50"), "-1.5"),
        ("465.13", "465.13"),
        (Decimal("123456789012345678901234567890.12345678"), "123456789012345678901234567890.12345678"),
        (10**30, "1000000000000000000000000000000"),
    ],
)
def test_to_wire_examples(value: Decimal | int | str, expected: str) -> None:
    assert to_wire(value) == expected


@pytest.mark.parametrize("value", ["0.000012312", Decimal("0.000000001"), Decimal("1.123456785"), "1e-9"])
def test_to_wire_rejects_more_than_8_decimals(value: Decimal | str) -> None:
    with pytest.raises(ValueError, match="more than 8 decimals"):
        to_wire(value)


@pytest.mark.parametrize("value", [1.5, True, "abc", "", Decimal("NaN"), "Infinity", None, [1]])
def test_to_wire_rejects_non_decimals(value: Any) -> None:
    with pytest.raises(WireError):
        to_wire(value)


def test_wire_error_is_value_error() -> None:
    assert issubclass(WireError, ValueError)


# Below 1e6 with ≤ 8 decimals, "%.8f" of the nearest float shows ≤ 14 significant digits, so the value
# survives the trip through float and the SDK's float_to_wire is an independent oracle for it.
exact_decimals = st.integers(0, 8).flatmap(
    lambda exp: st.builds(
        lambda units, neg: Decimal(-units if neg else units).scaleb(-exp),
        st.integers(0, 10 ** (6 + exp) - 1),
        st.booleans(),
    )
)


@settings(max_examples=300)
@given(exact_decimals)
def test_to_wire_matches_sdk_float_to_wire(value: Decimal) -> None:
    expected = sdk.float_to_wire(float(value))
    if expected == "-0":  # the SDK's documented "-0" bug (reference §1.6); we emit "0"
        expected = "0"
    assert to_wire(value) == expected
    assert to_wire(str(value)) == expected


# ---------------------------------------------------------------------------------------------
# order_wire / order_action against the SDK's builders


def sdk_order_wire(
    asset: int, is_buy: bool, px: Decimal, sz: Decimal, reduce_only: bool, tif: str, cloid: str | None
) -> dict[str, Any]:
    request: dict[str, Any] = {
        "coin": "ignored",
        "is_buy": is_buy,
        "sz": float(sz),
        "limit_px": float(px),
        "order_type": {"limit": {"tif": tif}},
        "reduce_only": reduce_only,
    }
    if cloid is not None:
        request["cloid"] = SdkCloid.from_str(cloid)
    return sdk.order_request_to_order_wire(request, asset)  # type: ignore[arg-type]


positive_decimals = st.integers(0, 8).flatmap(
    lambda exp: st.builds(lambda units: Decimal(units).scaleb(-exp), st.integers(1, 10 ** (6 + exp) - 1))
)
cloid_text = st.binary(min_size=16, max_size=16).map(lambda b: "0x" + b.hex())


@settings(max_examples=100)
@given(
    asset=st.one_of(st.integers(0, 300), st.integers(110000, 200000)),
    is_buy=st.booleans(),
    px=positive_decimals,
    sz=positive_decimals,
    reduce_only=st.booleans(),
    tif=st.sampled_from(["Ioc", "Gtc", "Alo"]),
    cloid=st.one_of(st.none(), cloid_text),
    builder=st.one_of(
        st.none(),
        st.builds(
            lambda b, f: {"b": b, "f": f},
            st.binary(min_size=20, max_size=20).map(lambda b: "0x" + b.hex()),
            st.integers(0, 100),
        ),
    ),
)
def test_order_action_matches_sdk(
    asset: int,
    is_buy: bool,
    px: Decimal,
    sz: Decimal,
    reduce_only: bool,
    tif: str,
    cloid: str | None,
    builder: dict[str, Any] | None,
) -> None:
    ours = order_wire(asset, is_buy, px, sz, reduce_only, tif, cloid)
    theirs = sdk_order_wire(asset, is_buy, px, sz, reduce_only, tif, cloid)
    assert packed(ours) == packed(theirs)
    assert list(ours) == (["a", "b", "p", "s", "r", "t", "c"] if cloid else ["a", "b", "p", "s", "r", "t"])
    assert packed(order_action([ours, ours], builder=builder)) == packed(
        sdk.order_wires_to_order_action([theirs, theirs], builder)
    )


def test_order_wire_reference_example() -> None:
    # §2.1, verbatim key order.
    expected = json.loads(
        '{"a": 110003, "b": true, "p": "465.13", "s": "0.25", "r": false,'
        ' "t": {"limit": {"tif": "Alo"}}, "c": "0x0000000000000000000000000000002a"}'
    )
    got = order_wire(
        110003, True, Decimal("465.130"), Decimal("0.25"), False, "Alo", Cloid("0x" + "0" * 30 + "2a")
    )
    assert packed(got) == packed(expected)


def test_order_action_builder_lowercased_and_optional_keys_omitted() -> None:
    w = order_wire(1, False, "10", "1", True, "Ioc")
    assert "c" not in w
    action = order_action([w])
    assert list(action) == ["type", "orders", "grouping"]
    upper = "0x" + "AB" * 20
    with_builder = order_action([w], builder={"b": upper, "f": 10})
    assert list(with_builder) == ["type", "orders", "grouping", "builder"]
    assert with_builder["builder"] == {"b": upper.lower(), "f": 10}
    assert list(with_builder["builder"]) == ["b", "f"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"tif": "FrontendMarket"}, "tif"),
        ({"price": 0}, "price: must be > 0"),
        ({"size": "-1"}, "size: must be > 0"),
        ({"price": 1.5}, "price"),
        ({"size": Decimal("0.123456789")}, "size: .*more than 8 decimals"),
        ({"asset": True}, "asset"),
        ({"asset": -1}, "asset"),
        ({"is_buy": 1}, "is_buy"),
        ({"reduce_only": None}, "reduce_only"),
        ({"cloid": "0x1234"}, "cloid"),
        ({"cloid": "1234567890abcdef1234567890abcdef"}, "cloid"),
    ],
)
def test_order_wire_rejects_bad_input(kwargs: dict[str, Any], message: str) -> None:
    args: dict[str, Any] = {
        "asset": 1,
        "is_buy": True,
        "price": "100",
        "size": "1",
        "reduce_only": False,
        "tif": "Ioc",
    }
    args.update(kwargs)
    with pytest.raises(WireError, match=message):
        order_wire(**args)


def test_order_wire_lowercases_cloid() -> None:
    assert order_wire(1, True, 1, 1, False, "Gtc", "0x" + "AB" * 16)["c"] == "0x" + "ab" * 16


def test_order_action_rejects_bad_input() -> None:
    w = order_wire(1, True, 1, 1, False, "Gtc")
    with pytest.raises(WireError, match="orders"):
        order_action([])
    with pytest.raises(WireError, match="grouping"):
        order_action([w], grouping="bogus")
    with pytest.raises(WireError, match=r"builder\.b"):
        order_action([w], builder={"b": "0x12", "f": 1})
    with pytest.raises(WireError, match=r"builder\.f"):
        order_action([w], builder={"b": "0x" + "1" * 40, "f": 1.5})


# ---------------------------------------------------------------------------------------------
# cancels / scheduleCancel: the reference's literal bodies (§2.3), compared with key order


def test_cancel_actions_match_reference_bodies() -> None:
    assert packed(cancel_action([(110000, 123456789), (4, 7)])) == packed(
        json.loads('{"type":"cancel","cancels":[{"a":110000,"o":123456789},{"a":4,"o":7}]}')
    )
    cloid = "0x0000000000000000000000000000002a"
    assert packed(cancel_by_cloid_action([(110003, cloid)])) == packed(
        json.loads(
            '{"type":"cancelByCloid","cancels":[{"asset":110003,"cloid":"0x0000000000000000000000000000002a"}]}'
        )
    )
    assert packed(schedule_cancel_action()) == packed({"type": "scheduleCancel"})
    assert packed(schedule_cancel_action(123456789)) == packed(
        json.loads('{"type":"scheduleCancel","time":123456789}')
    )


def test_cancel_actions_reject_bad_input() -> None:
    with pytest.raises(WireError, match=r"cancels\[0\].o"):
        cancel_action([(1, -5)])
    with pytest.raises(WireError, match=r"cancels\[1\].a"):
        cancel_action([(1, 5), (True, 5)])
    with pytest.raises(WireError, match=r"cancels\[0\].cloid"):
        cancel_by_cloid_action([(1, "0x12")])
    with pytest.raises(WireError, match="cancels"):
        cancel_action([])
    with pytest.raises(WireError, match="time"):
        schedule_cancel_action(-1)


# ---------------------------------------------------------------------------------------------
# canonical_action


def shuffled(value: Any, rng: random.Random) -> Any:
    """The same JSON with every object's keys in a random order (as any client may send it)."""
    if isinstance(value, dict):
        items = list(value.items())
        rng.shuffle(items)
        return {k: shuffled(v, rng) for k, v in items}
    if isinstance(value, list):
        return [shuffled(v, rng) for v in value]
    return value


CANONICAL_EXAMPLES: list[dict[str, Any]] = [
    order_action(
        [
            order_wire(110003, True, "465.13", "0.25", False, "Alo", "0x0000000000000000000000000000002a"),
            order_wire(4, False, "1670.1", "0.0147", True, "Ioc"),
        ]
    ),
    order_action([order_wire(1, True, 100, 100, False, "Gtc")], builder={"b": "0x" + "12" * 20, "f": 10}),
    {
        "type": "order",
        "orders": [
            {
                "a": 1,
                "b": True,
                "p": "100",
                "s": "100",
                "r": True,
                "t": {"trigger": {"isMarket": True, "triggerPx": "103", "tpsl": "sl"}},
            }
        ],
        "grouping": "normalTpsl",
    },
    {"type": "order", "orders": [order_wire(1, True, 1, 1, False, "Ioc")], "grouping": {"p": 100}},
    cancel_action([(110000, 123456789), (3, 4)]),
    {"type": "cancel", "cancels": [{"a": 1, "o": 2}], "f": True},
    cancel_by_cloid_action([(110000, "0x" + "ab" * 16)]),
    schedule_cancel_action(),
    schedule_cancel_action(1700000000000),
    {"type": "noop"},
    {"type": "updateLeverage", "asset": 110000, "isCross": False, "leverage": 5},
]


@pytest.mark.parametrize("action", CANONICAL_EXAMPLES, ids=lambda a: a["type"])
def test_canonical_action_restores_order(action: dict[str, Any]) -> None:
    expected = packed(action)
    assert packed(canonical_action(action)) == expected
    rng = random.Random(7)
    for _ in range(20):
        received = json.loads(json.dumps(shuffled(action, rng)))
        assert packed(canonical_action(received)) == expected


@settings(max_examples=50)
@given(
    st.lists(
        st.builds(
            order_wire,
            asset=st.integers(0, 2**32 - 1),
            is_buy=st.booleans(),
            price=positive_decimals,
            size=positive_decimals,
            reduce_only=st.booleans(),
            tif=st.sampled_from(["Ioc", "Gtc", "Alo"]),
            cloid=st.one_of(st.none(), cloid_text),
        ),
        min_size=1,
        max_size=4,
    ),
    st.randoms(use_true_random=False),
)
def test_canonical_action_restores_random_orders(orders: list[dict[str, Any]], rng: random.Random) -> None:
    action = order_action(orders)
    received = json.loads(json.dumps(shuffled(action, rng)))
    assert packed(canonical_action(received)) == packed(action)


def test_canonical_action_optional_keys() -> None:
    # Absent or null optionals are omitted; f is hashed only when true; unknown keys are ignored.
    assert canonical_action({"time": None, "type": "scheduleCancel"}) == {"type": "scheduleCancel"}
    got = canonical_action({"cancels": [{"o": 2, "a": 1}], "f": False, "type": "cancel"})
    assert packed(got) == packed({"type": "cancel", "cancels": [{"a": 1, "o": 2}]})
    got = canonical_action({"f": True, "cancels": [], "type": "cancel"})
    assert list(got) == ["type", "cancels", "f"]
    wire = {"c": None, "t": {"limit": {"tif": "Gtc"}}, "r": False, "s": "1", "p": "2", "b": True, "a": 3}
    got = canonical_action({"grouping": "na", "orders": [wire], "type": "order", "builder": None, "extra": 1})
    assert packed(got) == packed(order_action([order_wire(3, True, 2, 1, False, "Gtc")]))
    upper = canonical_action({"type": "cancelByCloid", "cancels": [{"cloid": "0x" + "AB" * 16, "asset": 1}]})
    assert upper["cancels"][0]["cloid"] == "0x" + "ab" * 16


@pytest.mark.parametrize(
    ("action", "message"),
    [
        (
            {
                "type": "order",
                "orders": [{**order_wire(1, True, 1, 1, False, "Gtc"), "p": 100.5}],
                "grouping": "na",
            },
            "orders[0].p: invalid type: floating point `100.5`, expected a string",
        ),
        (
            {
                "type": "order",
                "orders": [{**order_wire(1, True, 1, 1, False, "Gtc"), "s": 3}],
                "grouping": "na",
            },
            "orders[0].s: invalid type: integer `3`, expected a string",
        ),
        (
            {
                "type": "order",
                "orders": [
                    order_wire(1, True, 1, 1, False, "Gtc"),
                    {**order_wire(1, True, 1, 1, False, "Gtc"), "a": True},
                ],
                "grouping": "na",
            },
            "orders[1].a: invalid type: boolean `true`, expected u32",
        ),
        (
            {
                "type": "order",
                "orders": [{**order_wire(1, True, 1, 1, False, "Gtc"), "a": 4.0}],
                "grouping": "na",
            },
            "orders[0].a: invalid type: floating point `4.0`, expected u32",
        ),
        (
            {
                "type": "order",
                "orders": [{**order_wire(1, True, 1, 1, False, "Gtc"), "b": "true"}],
                "grouping": "na",
            },
            'orders[0].b: invalid type: string "true", expected a boolean',
        ),
        (
            {
                "type": "order",
                "orders": [{**order_wire(1, True, 1, 1, False, "Gtc"), "c": "0x1234"}],
                "grouping": "na",
            },
            'orders[0].c: invalid value: string "0x1234", expected',
        ),
        (
            {
                "type": "order",
                "orders": [
                    {**order_wire(1, True, 1, 1, False, "Gtc"), "c": "1234567890abcdef1234567890abcdef"}
                ],
                "grouping": "na",
            },
            "orders[0].c: invalid value",
        ),
        (
            {
                "type": "order",
                "orders": [{**order_wire(1, True, 1, 1, False, "Gtc"), "t": {"limit": {"tif": "Fok"}}}],
                "grouping": "na",
            },
            "orders[0].t.limit.tif: unknown variant `Fok`",
        ),
        (
            {
                "type": "order",
                "orders": [
                    {
                        **order_wire(1, True, 1, 1, False, "Gtc"),
                        "t": {"trigger": {"isMarket": True, "triggerPx": 103.0, "tpsl": "sl"}},
                    }
                ],
                "grouping": "na",
            },
            "orders[0].t.trigger.triggerPx: invalid type: floating point `103.0`, expected a string",
        ),
        (
            {
                "type": "order",
                "orders": [{k: v for k, v in order_wire(1, True, 1, 1, False, "Gtc").items() if k != "s"}],
                "grouping": "na",
            },
            "orders[0]: missing field `s`",
        ),
        ({"type": "order", "orders": []}, "missing field `grouping`"),
        ({"type": "order", "orders": {}, "grouping": "na"}, "orders: invalid type: map, expected a sequence"),
        (
            {"type": "cancel", "cancels": [{"a": 1, "o": -2}]},
            "cancels[0].o: invalid value: integer `-2`, expected u64",
        ),
        ({"type": "cancel", "cancels": [{"a": 1, "o": 2}], "f": "yes"}, "f: invalid type"),
        (
            {"type": "cancelByCloid", "cancels": [{"asset": 1, "cloid": 5}]},
            "cancels[0].cloid: invalid type: integer `5`",
        ),
        ({"type": "updateLeverage", "asset": 1, "isCross": True}, "missing field `leverage`"),
        ({"type": "scheduleCancel", "time": 1.5}, "time: invalid type: floating point `1.5`"),
        ({"type": "modify", "oid": 1}, "type: unknown variant `modify`"),
        ({"orders": []}, "missing field `type`"),
        ({"type": 5}, "type: invalid type: integer `5`"),
        ([], "action: invalid type: sequence"),
    ],
)
def test_canonical_action_rejects_with_clear_message(action: Any, message: str) -> None:
    with pytest.raises(WireError) as info:
        canonical_action(action)
    assert message in str(info.value)
