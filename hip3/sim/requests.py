"""Validate request bodies the way the exchange's deserializer does, before any state is touched.

A body the exchange could not deserialize gets HTTP 422 with a text body; `BadRequest.message` is
that text (``Failed to deserialize the JSON body into the target type: …``).
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Any

from attrs import frozen

DESERIALIZE_PREFIX = "Failed to deserialize the JSON body into the target type: "
_CLOID_RE = re.compile(r"^0x[0-9a-fA-F]{32}$")
_ADDRESS_RE = re.compile(r"^0x[0-9a-fA-F]{40}$")
_TIFS = ("Alo", "Ioc", "Gtc")


class BadRequest(ValueError):
    """The request could not be deserialized; `message` is the full 422 text body."""

    def __init__(self, detail: str) -> None:
        self.message = detail if detail.startswith(DESERIALIZE_PREFIX) else DESERIALIZE_PREFIX + detail
        super().__init__(self.message)


def _json_type(value: object) -> str:
    """Name a JSON value the way serde does in `invalid type: …` messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"boolean `{str(value).lower()}`"
    if isinstance(value, int):
        return f"integer `{value}`"
    if isinstance(value, float):
        return f"floating point `{value}`"
    if isinstance(value, str):
        return f'string "{value}"'
    if isinstance(value, list):
        return "sequence"
    return "map"


def _bad(path: str, value: object, expected: str) -> BadRequest:
    where = f"{path}: " if path else ""
    return BadRequest(f"{where}invalid type: {_json_type(value)}, expected {expected}")


def need_map(value: object, path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _bad(path, value, "a map")
    return value


def need_list(value: object, path: str) -> list[Any]:
    if not isinstance(value, list):
        raise _bad(path, value, "a sequence")
    return value


def need_int(value: object, path: str, *, unsigned: bool = True) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _bad(path, value, "u64" if unsigned else "i64")
    if (unsigned and value < 0) or not -(2**63) <= value < 2**64:
        raise BadRequest(f"{path}: invalid value: integer `{value}`, expected {'u64' if unsigned else 'i64'}")
    return value


def need_bool(value: object, path: str) -> bool:
    if not isinstance(value, bool):
        raise _bad(path, value, "a boolean")
    return value


def need_str(value: object, path: str) -> str:
    if not isinstance(value, str):
        raise _bad(path, value, "a string")
    return value


def need_decimal_str(value: object, path: str) -> Decimal:
    text = need_str(value, path)
    try:
        result = Decimal(text)
    except InvalidOperation:
        raise BadRequest(f"{path}: invalid decimal string {text!r}") from None
    if not result.is_finite() or text.strip() != text:
        raise BadRequest(f"{path}: invalid decimal string {text!r}")
    return result


def need_address(value: object, path: str) -> str:
    text = need_str(value, path)
    if not _ADDRESS_RE.match(text):
        raise BadRequest(f"{path}: invalid address {text!r}")
    return text.lower()


def need_cloid(value: object, path: str) -> str:
    text = need_str(value, path)
    if not _CLOID_RE.match(text):
        raise BadRequest(f"{path}: invalid cloid {text!r}, expected 0x followed by 32 hex digits")
    return text.lower()


def check_keys(body: dict[str, Any], allowed: tuple[str, ...], path: str) -> None:
    for key in body:
        if key not in allowed:
            where = f"{path}: " if path else ""
            raise BadRequest(
                f"{where}unknown field `{key}`, expected one of {', '.join(f'`{a}`' for a in allowed)}"
            )


# ---------------------------------------------------------------------------------------------
# actions


@frozen
class OrderWire:
    asset: int
    is_buy: bool
    px: Decimal
    sz: Decimal
    reduce_only: bool
    tif: str | None  # None for a trigger order
    cloid: str | None


@frozen
class OrderAction:
    orders: tuple[OrderWire, ...]
    grouping: Any


@frozen
class CancelAction:
    cancels: tuple[tuple[int, int], ...]  # (asset, oid)


@frozen
class CancelByCloidAction:
    cancels: tuple[tuple[int, str], ...]  # (asset, cloid)


@frozen
class ScheduleCancelAction:
    time: int | None


@frozen
class UpdateLeverageAction:
    asset: int
    is_cross: bool
    leverage: int


@frozen
class NoopAction:
    pass


@frozen
class UnsupportedAction:
    type: str


Action = (
    OrderAction
    | CancelAction
    | CancelByCloidAction
    | ScheduleCancelAction
    | UpdateLeverageAction
    | NoopAction
    | UnsupportedAction
)


@frozen
class Signature:
    r: int
    s: int
    v: int
    raw: dict[str, Any]


@frozen
class ExchangeRequest:
    action: Action
    raw_action: dict[str, Any]
    nonce: int
    signature: Signature
    vault_address: str | None
    expires_after: int | None


def _order_wire(value: object, path: str) -> OrderWire:
    body = need_map(value, path)
    for key in ("a", "b", "p", "s", "r", "t"):
        if key not in body:
            raise BadRequest(f"{path}: missing field `{key}`")
    check_keys(body, ("a", "b", "p", "s", "r", "t", "c"), path)
    asset = need_int(body["a"], f"{path}.a")
    is_buy = need_bool(body["b"], f"{path}.b")
    px = need_decimal_str(body["p"], f"{path}.p")
    sz = need_decimal_str(body["s"], f"{path}.s")
    reduce_only = need_bool(body["r"], f"{path}.r")
    order_type = need_map(body["t"], f"{path}.t")
    tif: str | None
    if "limit" in order_type and len(order_type) == 1:
        limit = need_map(order_type["limit"], f"{path}.t.limit")
        tif_value = need_str(limit.get("tif"), f"{path}.t.limit.tif")
        if tif_value not in _TIFS and tif_value != "FrontendMarket":
            raise BadRequest(
                f"{path}.t.limit.tif: unknown variant `{tif_value}`, expected one of `Alo`, `Ioc`, `Gtc`, `FrontendMarket`"
            )
        tif = "Ioc" if tif_value == "FrontendMarket" else tif_value
    elif "trigger" in order_type and len(order_type) == 1:
        need_map(order_type["trigger"], f"{path}.t.trigger")
        tif = None
    else:
        raise BadRequest(f"{path}.t: expected exactly one of `limit`, `trigger`")
    cloid = need_cloid(body["c"], f"{path}.c") if body.get("c") is not None else None
    return OrderWire(asset, is_buy, px, sz, reduce_only, tif, cloid)


def parse_action(value: object) -> Action:
    """Type-check an action's fields; paths in messages are relative to the action, as the exchange's are."""
    action = need_map(value, "action")
    kind = need_str(action.get("type"), "type")
    if kind == "order":
        orders = need_list(action.get("orders"), "orders")
        return OrderAction(
            tuple(_order_wire(o, f"orders[{i}]") for i, o in enumerate(orders)), action.get("grouping", "na")
        )
    if kind == "cancel":
        cancels = need_list(action.get("cancels"), "cancels")
        parsed: list[tuple[int, int]] = []
        for i, c in enumerate(cancels):
            entry = need_map(c, f"cancels[{i}]")
            parsed.append(
                (need_int(entry.get("a"), f"cancels[{i}].a"), need_int(entry.get("o"), f"cancels[{i}].o"))
            )
        return CancelAction(tuple(parsed))
    if kind == "cancelByCloid":
        cancels = need_list(action.get("cancels"), "cancels")
        by_cloid: list[tuple[int, str]] = []
        for i, c in enumerate(cancels):
            entry = need_map(c, f"cancels[{i}]")
            by_cloid.append(
                (
                    need_int(entry.get("asset"), f"cancels[{i}].asset"),
                    need_cloid(entry.get("cloid"), f"cancels[{i}].cloid"),
                )
            )
        return CancelByCloidAction(tuple(by_cloid))
    if kind == "scheduleCancel":
        time = action.get("time")
        return ScheduleCancelAction(None if time is None else need_int(time, "time"))
    if kind == "updateLeverage":
        return UpdateLeverageAction(
            need_int(action.get("asset"), "asset"),
            need_bool(action.get("isCross"), "isCross"),
            need_int(action.get("leverage"), "leverage"),
        )
    if kind == "noop":
        return NoopAction()
    return UnsupportedAction(kind)


def _sig_int(value: object, path: str) -> int:
    text = need_str(value, path)
    try:
        if not text.lower().startswith("0x"):
            raise ValueError
        return int(text, 16)
    except ValueError:
        raise BadRequest(f"{path}: invalid hex string {text!r}") from None


def parse_signature(value: object) -> Signature:
    sig = need_map(value, "signature")
    for key in ("r", "s", "v"):
        if key not in sig:
            raise BadRequest(f"signature: missing field `{key}`")
    v = need_int(sig["v"], "signature.v")
    return Signature(_sig_int(sig["r"], "signature.r"), _sig_int(sig["s"], "signature.s"), v, sig)


def parse_exchange_body(body: object) -> ExchangeRequest:
    """Validate a POST /exchange body (also the payload of a WS post of type "action")."""
    if not isinstance(body, dict):
        raise BadRequest(f"invalid type: {_json_type(body)}, expected struct ExchangeRequest")
    for key in ("action", "nonce", "signature"):
        if key not in body:
            raise BadRequest(f"missing field `{key}`")
    raw_action = need_map(body["action"], "action")
    action = parse_action(raw_action)
    nonce = need_int(body["nonce"], "nonce")
    signature = parse_signature(body["signature"])
    vault = body.get("vaultAddress")
    vault_address = None if vault is None else need_address(vault, "vaultAddress")
    expires = body.get("expiresAfter")
    expires_after = None if expires is None else need_int(expires, "expiresAfter")
    return ExchangeRequest(action, raw_action, nonce, signature, vault_address, expires_after)
