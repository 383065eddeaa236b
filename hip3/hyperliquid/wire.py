"""Hyperliquid action wire formats: the JSON the exchange receives and the msgpack it hashes.

The signature covers the msgpack encoding of the action, and msgpack keeps dict insertion order,
so every builder here emits keys in the exchange's canonical hash order (reference §1.8) and omits
optional keys instead of sending null. `canonical_action` does the reverse for the simulator:
it rebuilds a received JSON action in that order, checking types the way the exchange's
deserializer does (a float price is a 422, not a signature mismatch).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from decimal import Decimal, InvalidOperation
from typing import Any

from hip3.core import Cloid

__all__ = [
    "GROUPINGS",
    "MAX_WIRE_DECIMALS",
    "TIFS",
    "WireError",
    "cancel_action",
    "cancel_by_cloid_action",
    "canonical_action",
    "order_action",
    "order_wire",
    "schedule_cancel_action",
    "to_wire",
]

#: float_to_wire in the official SDK formats with 8 decimals; more would be silently lost.
MAX_WIRE_DECIMALS = 8
TIFS = frozenset({"Ioc", "Gtc", "Alo"})
GROUPINGS = frozenset({"na", "normalTpsl", "positionTpsl"})
TPSLS = frozenset({"tp", "sl"})

_CLOID_RE = re.compile(r"^0x[0-9a-fA-F]{32}$")
_ADDRESS_RE = re.compile(r"^0x[0-9a-fA-F]{40}$")
_U64_MAX = 2**64 - 1


class WireError(ValueError):
    """An action or a wire value the exchange would refuse; the message names the bad field."""


# ---------------------------------------------------------------------------------------------
# numbers


def to_wire(x: Decimal | int | str) -> str:
    """Format a price or size the way the SDK's `float_to_wire` does, but exactly, from a Decimal.

    At most 8 decimals (raises if more non-zero decimals would be lost), trailing zeros stripped,
    never exponent notation, and a zero is "0" (never "-0").
    """
    value = _parse_number(x)
    sign, digits, exponent = value.as_tuple()
    assert isinstance(exponent, int)  # finite: checked by _parse_number
    digit_list = list(digits)
    # Strip trailing zeros of the fraction without a Decimal context (no precision limit applies).
    while exponent < 0 and len(digit_list) > 1 and digit_list[-1] == 0:
        digit_list.pop()
        exponent += 1
    if all(d == 0 for d in digit_list):
        return "0"
    if exponent < -MAX_WIRE_DECIMALS:
        raise WireError(
            f"{x!s} has more than {MAX_WIRE_DECIMALS} decimals; round it to the market grid first"
        )
    return f"{Decimal((sign, tuple(digit_list), exponent)):f}"


def _parse_number(x: object) -> Decimal:
    if isinstance(x, bool):
        raise WireError(f"expected a decimal number, got a boolean {x!r}")
    if isinstance(x, float):
        raise WireError(f"expected a Decimal, int or str, got the float {x!r} (money is never float)")
    if isinstance(x, Decimal):
        value = x
    elif isinstance(x, int):
        value = Decimal(x)
    elif isinstance(x, str):
        try:
            value = Decimal(x.strip())
        except InvalidOperation:
            raise WireError(f"not a decimal number: {x!r}") from None
    else:
        raise WireError(f"expected a Decimal, int or str, got {type(x).__name__}")
    if not value.is_finite():
        raise WireError(f"not a finite number: {x!r}")
    return value


# ---------------------------------------------------------------------------------------------
# builders (what the bot sends)


def order_wire(
    asset: int,
    is_buy: bool,
    price: Decimal | int | str,
    size: Decimal | int | str,
    reduce_only: bool,
    tif: str,
    cloid: str | Cloid | None = None,
) -> dict[str, Any]:
    """One limit order: keys a, b, p, s, r, t[, c] in hash order; c only when a cloid is given."""
    _check_uint(asset, "asset")
    _check_bool(is_buy, "is_buy")
    _check_bool(reduce_only, "reduce_only")
    if tif not in TIFS:
        raise WireError(f"tif: expected one of {sorted(TIFS)}, got {tif!r}")
    p = _positive_wire(price, "price")
    s = _positive_wire(size, "size")
    wire: dict[str, Any] = {
        "a": asset,
        "b": is_buy,
        "p": p,
        "s": s,
        "r": reduce_only,
        "t": {"limit": {"tif": tif}},
    }
    if cloid is not None:
        wire["c"] = _cloid_text(cloid, "cloid")
    return wire


def order_action(
    orders: list[dict[str, Any]],
    grouping: str = "na",
    builder: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """{"type": "order", "orders", "grouping"[, "builder": {"b" lowercase, "f"}]}."""
    if not isinstance(orders, list) or not orders:
        raise WireError("orders: expected a non-empty list of order wires")
    if grouping not in GROUPINGS:
        raise WireError(f"grouping: expected one of {sorted(GROUPINGS)}, got {grouping!r}")
    action: dict[str, Any] = {"type": "order", "orders": list(orders), "grouping": grouping}
    if builder is not None:
        if not isinstance(builder, dict):
            raise WireError(f"builder: expected {{'b': address, 'f': int}}, got {builder!r}")
        address = builder.get("b")
        if not isinstance(address, str) or not _ADDRESS_RE.match(address):
            raise WireError(f"builder.b: expected a 0x address of 40 hex digits, got {address!r}")
        fee = builder.get("f")
        _check_uint(fee, "builder.f")
        action["builder"] = {"b": address.lower(), "f": fee}
    return action


def cancel_action(cancels: list[tuple[int, int]]) -> dict[str, Any]:
    """{"type": "cancel", "cancels": [{"a": asset, "o": oid}, ...]}."""
    if not cancels:
        raise WireError("cancels: expected at least one (asset, oid)")
    out = []
    for i, (asset, oid) in enumerate(cancels):
        _check_uint(asset, f"cancels[{i}].a")
        _check_uint(oid, f"cancels[{i}].o")
        out.append({"a": asset, "o": oid})
    return {"type": "cancel", "cancels": out}


def cancel_by_cloid_action(cancels: list[tuple[int, str]]) -> dict[str, Any]:
    """{"type": "cancelByCloid", "cancels": [{"asset": asset, "cloid": "0x…"}, ...]}."""
    if not cancels:
        raise WireError("cancels: expected at least one (asset, cloid)")
    out = []
    for i, (asset, cloid) in enumerate(cancels):
        _check_uint(asset, f"cancels[{i}].asset")
        out.append({"asset": asset, "cloid": _cloid_text(cloid, f"cancels[{i}].cloid")})
    return {"type": "cancelByCloid", "cancels": out}


def schedule_cancel_action(time: int | None = None) -> dict[str, Any]:
    """{"type": "scheduleCancel"[, "time": ms]}; without a time it clears the schedule."""
    if time is None:
        return {"type": "scheduleCancel"}
    _check_uint(time, "time")
    return {"type": "scheduleCancel", "time": time}


def _positive_wire(value: Decimal | int | str, what: str) -> str:
    try:
        text = to_wire(value)
    except WireError as exc:
        raise WireError(f"{what}: {exc}") from None
    if text == "0" or text.startswith("-"):
        raise WireError(f"{what}: must be > 0, got {value!s}")
    return text


def _cloid_text(cloid: object, what: str) -> str:
    text = str(cloid) if isinstance(cloid, Cloid) else cloid
    if not isinstance(text, str) or not _CLOID_RE.match(text):
        raise WireError(f"{what}: expected '0x' followed by 32 hex digits, got {cloid!r}")
    return text.lower()


def _check_uint(value: object, what: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise WireError(f"{what}: expected a non-negative integer, got {value!r}")
    if not 0 <= value <= _U64_MAX:
        raise WireError(f"{what}: expected a non-negative integer below 2**64, got {value}")


def _check_bool(value: object, what: str) -> None:
    if not isinstance(value, bool):
        raise WireError(f"{what}: expected a boolean, got {value!r}")


# ---------------------------------------------------------------------------------------------
# canonical order of a received action (simulator)
#
# The exchange deserializes the JSON into typed structs and hashes their msgpack encoding, so the
# hash follows its field order, not the sender's key order; unknown keys are ignored (serde's
# default) and a typed address/cloid re-serializes in lowercase. Messages imitate serde's text
# (`orders[0].p: invalid type: floating point `100.5`, expected a string`); the caller adds the
# 422 prefix "Failed to deserialize the JSON body into the target type: ".


def canonical_action(action: dict[str, Any]) -> dict[str, Any]:
    """Rebuild a received action in the exchange's hash order; raise WireError naming the bad field.

    Supported types: order, cancel, cancelByCloid, scheduleCancel, noop, updateLeverage.
    """
    if not isinstance(action, dict):
        raise WireError(f"action: invalid type: {_describe(action)}, expected a map")
    kind = _field(action, "type", "")
    if not isinstance(kind, str):
        raise WireError(f"type: invalid type: {_describe(kind)}, expected a string")
    builder = _CANONICAL.get(kind)
    if builder is None:
        raise WireError(f"type: unknown variant `{kind}`, expected one of {', '.join(_CANONICAL)}")
    return builder(action)


def _canonical_order(action: dict[str, Any]) -> dict[str, Any]:
    orders = _list(action, "orders", "")
    out: dict[str, Any] = {
        "type": "order",
        "orders": [_canonical_order_wire(o, f"orders[{i}]") for i, o in enumerate(orders)],
        "grouping": _canonical_grouping(_field(action, "grouping", "")),
    }
    builder = action.get("builder")
    if builder is not None:
        _map(builder, "builder")
        out["builder"] = {
            "b": _address(_field(builder, "b", "builder"), "builder.b"),
            "f": _uint(_field(builder, "f", "builder"), "builder.f", "u64"),
        }
    return out


def _canonical_order_wire(wire: object, path: str) -> dict[str, Any]:
    w = _map(wire, path)
    out: dict[str, Any] = {
        "a": _uint(_field(w, "a", path), f"{path}.a", "u32"),
        "b": _bool(_field(w, "b", path), f"{path}.b"),
        "p": _string(_field(w, "p", path), f"{path}.p"),
        "s": _string(_field(w, "s", path), f"{path}.s"),
        "r": _bool(_field(w, "r", path), f"{path}.r"),
        "t": _canonical_order_type(_field(w, "t", path), f"{path}.t"),
    }
    cloid = w.get("c")
    if cloid is not None:
        out["c"] = _cloid(cloid, f"{path}.c")
    return out


def _canonical_order_type(value: object, path: str) -> dict[str, Any]:
    t = _map(value, path)
    if len(t) != 1 or next(iter(t)) not in ("limit", "trigger"):
        raise WireError(f"{path}: expected exactly one of `limit`, `trigger`, got keys {sorted(t)}")
    if "limit" in t:
        limit = _map(t["limit"], f"{path}.limit")
        tif = _string(_field(limit, "tif", f"{path}.limit"), f"{path}.limit.tif")
        if tif not in TIFS:
            raise WireError(f"{path}.limit.tif: unknown variant `{tif}`, expected one of Alo, Ioc, Gtc")
        return {"limit": {"tif": tif}}
    trig_path = f"{path}.trigger"
    trig = _map(t["trigger"], trig_path)
    tpsl = _string(_field(trig, "tpsl", trig_path), f"{trig_path}.tpsl")
    if tpsl not in TPSLS:
        raise WireError(f"{trig_path}.tpsl: unknown variant `{tpsl}`, expected `tp` or `sl`")
    return {
        "trigger": {
            "isMarket": _bool(_field(trig, "isMarket", trig_path), f"{trig_path}.isMarket"),
            "triggerPx": _string(_field(trig, "triggerPx", trig_path), f"{trig_path}.triggerPx"),
            "tpsl": tpsl,
        }
    }


def _canonical_grouping(value: object) -> str | dict[str, int]:
    if isinstance(value, str):
        if value not in GROUPINGS:
            raise WireError(
                f"grouping: unknown variant `{value}`, expected one of {', '.join(sorted(GROUPINGS))}"
            )
        return value
    if isinstance(value, dict):
        return {"p": _uint(_field(value, "p", "grouping"), "grouping.p", "u64")}
    raise WireError(f"grouping: invalid type: {_describe(value)}, expected a string or a map")


def _canonical_cancel(action: dict[str, Any]) -> dict[str, Any]:
    cancels = _list(action, "cancels", "")
    out_cancels = []
    for i, c in enumerate(cancels):
        path = f"cancels[{i}]"
        m = _map(c, path)
        out_cancels.append(
            {
                "a": _uint(_field(m, "a", path), f"{path}.a", "u32"),
                "o": _uint(_field(m, "o", path), f"{path}.o", "u64"),
            }
        )
    return _with_fast_flag({"type": "cancel", "cancels": out_cancels}, action)


def _canonical_cancel_by_cloid(action: dict[str, Any]) -> dict[str, Any]:
    cancels = _list(action, "cancels", "")
    out_cancels = []
    for i, c in enumerate(cancels):
        path = f"cancels[{i}]"
        m = _map(c, path)
        out_cancels.append(
            {
                "asset": _uint(_field(m, "asset", path), f"{path}.asset", "u32"),
                "cloid": _cloid(_field(m, "cloid", path), f"{path}.cloid"),
            }
        )
    return _with_fast_flag({"type": "cancelByCloid", "cancels": out_cancels}, action)


def _with_fast_flag(out: dict[str, Any], action: dict[str, Any]) -> dict[str, Any]:
    # "f" must be skipped when false: the exchange hashes it only when true.
    fast = action.get("f")
    if fast is not None and _bool(fast, "f"):
        out["f"] = True
    return out


def _canonical_schedule_cancel(action: dict[str, Any]) -> dict[str, Any]:
    time = action.get("time")
    if time is None:
        return {"type": "scheduleCancel"}
    return {"type": "scheduleCancel", "time": _uint(time, "time", "u64")}


def _canonical_noop(action: dict[str, Any]) -> dict[str, Any]:
    return {"type": "noop"}


def _canonical_update_leverage(action: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "updateLeverage",
        "asset": _uint(_field(action, "asset", ""), "asset", "u32"),
        "isCross": _bool(_field(action, "isCross", ""), "isCross"),
        "leverage": _uint(_field(action, "leverage", ""), "leverage", "u32"),
    }


_CANONICAL = {
    "order": _canonical_order,
    "cancel": _canonical_cancel,
    "cancelByCloid": _canonical_cancel_by_cloid,
    "scheduleCancel": _canonical_schedule_cancel,
    "noop": _canonical_noop,
    "updateLeverage": _canonical_update_leverage,
}

_UINT_MAX = {"u32": 2**32 - 1, "u64": _U64_MAX}


def _field(m: dict[str, Any], key: str, path: str) -> Any:
    if key not in m:
        where = f"{path}: " if path else ""
        raise WireError(f"{where}missing field `{key}`")
    return m[key]


def _map(value: object, path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise WireError(f"{path}: invalid type: {_describe(value)}, expected a map")
    return value


def _list(m: dict[str, Any], key: str, path: str) -> Iterable[Any]:
    value = _field(m, key, path)
    if not isinstance(value, list):
        where = f"{path}.{key}" if path else key
        raise WireError(f"{where}: invalid type: {_describe(value)}, expected a sequence")
    return value


def _string(value: object, path: str) -> str:
    if not isinstance(value, str):
        raise WireError(f"{path}: invalid type: {_describe(value)}, expected a string")
    return value


def _bool(value: object, path: str) -> bool:
    if not isinstance(value, bool):
        raise WireError(f"{path}: invalid type: {_describe(value)}, expected a boolean")
    return value


def _uint(value: object, path: str, kind: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise WireError(f"{path}: invalid type: {_describe(value)}, expected {kind}")
    if not 0 <= value <= _UINT_MAX[kind]:
        raise WireError(f"{path}: invalid value: integer `{value}`, expected {kind}")
    return value


def _cloid(value: object, path: str) -> str:
    text = _string(value, path)
    if not _CLOID_RE.match(text):
        raise WireError(f"{path}: invalid value: string {_quote(text)}, expected '0x' and 32 hex digits")
    return text.lower()


def _address(value: object, path: str) -> str:
    text = _string(value, path)
    if not _ADDRESS_RE.match(text):
        raise WireError(f"{path}: invalid value: string {_quote(text)}, expected '0x' and 40 hex digits")
    return text.lower()


def _quote(text: str) -> str:
    shown = text if len(text) <= 80 else text[:77] + "..."
    return '"' + shown.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _describe(value: object) -> str:
    """serde_json's wording for an unexpected JSON value."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"boolean `{'true' if value else 'false'}`"
    if isinstance(value, int):
        return f"integer `{value}`"
    if isinstance(value, float):
        return f"floating point `{value!r}`"
    if isinstance(value, str):
        return f"string {_quote(value)}"
    if isinstance(value, list):
        return "sequence"
    if isinstance(value, dict):
        return "map"
    return type(value).__name__
