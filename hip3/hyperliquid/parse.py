"""Exchange JSON → typed events (`hip3.hyperliquid.events`).

Two kinds of entry points with two failure policies:

* `parse_ws_frame` never raises: a frame it cannot understand is counted in `ParseStats` and
  logged (rate limited), and one bad element of an array (a fill, an order update) is skipped
  while its siblings survive. A WebSocket reader must never die on one odd frame.
* The info-body parsers (`parse_clearinghouse_state`, …) raise `ParseError` naming the path of
  the bad field: a malformed position answer must fail loudly, never read as "flat".
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable
from decimal import Decimal
from typing import Any, TypeVar

import orjson
import trio

from hip3.core import Cloid, Side, to_decimal
from hip3.hyperliquid.events import (
    ActionErr,
    ActionOk,
    ActionResult,
    AllMids,
    AssetCtx,
    AssetPosition,
    Bbo,
    BookLevel,
    ClearinghouseState,
    ErrorMessage,
    ExtraAgent,
    Fill,
    Filled,
    L2Book,
    Meta,
    MetaAsset,
    OpenOrder,
    OrderError,
    OrderStatus,
    OrderStatusResult,
    OrderUpdate,
    OrderUpdates,
    PerpDex,
    Pong,
    PostReply,
    Resting,
    StatusOther,
    StatusSuccess,
    SubscriptionAck,
    UserFees,
    UserFills,
    UserRole,
)

log = logging.getLogger(__name__)
_T = TypeVar("_T")

#: The server's first frame on every connection; plain text, not JSON.
GREETING = "Websocket connection established."

WsEvent = (
    Bbo
    | L2Book
    | AssetCtx
    | AllMids
    | UserFills
    | OrderUpdates
    | SubscriptionAck
    | Pong
    | ErrorMessage
    | PostReply
)

#: Channels we know and deliberately drop (spot contexts, feeds we never subscribe to).
IGNORED_CHANNELS = frozenset({"activeSpotAssetCtx"})


class ParseError(ValueError):
    """A body did not have the documented shape; the message names the path of the bad field."""


# ---------------------------------------------------------------------------------------------
# Counting and rate-limited logging


def _now() -> float:
    """Trio's clock when inside a run (so MockClock tests control it), else a monotonic clock."""
    try:
        return trio.current_time()
    except RuntimeError:
        return time.monotonic()


class ParseStats:
    """Per-reason counters for frames and elements we could not use.

    Logs at most one line per reason per `log_interval` seconds (trio time), with the number of
    occurrences suppressed since the last line, so a broken feed cannot flood the log.
    """

    def __init__(self, log_interval: float = 10.0) -> None:
        self.log_interval = log_interval
        self.counts: Counter[str] = Counter()
        self._last_logged: dict[str, float] = {}
        self._suppressed: Counter[str] = Counter()

    def count(self, reason: str, detail: str = "") -> None:
        self.counts[reason] += 1
        now = _now()
        last = self._last_logged.get(reason)
        if last is not None and now - last < self.log_interval:
            self._suppressed[reason] += 1
            return
        self._last_logged[reason] = now
        suppressed = self._suppressed.pop(reason, 0)
        extra = f" ({suppressed} more since last report)" if suppressed else ""
        log.warning("parse: %s: %s%s", reason, _clip(detail), extra)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def reset(self) -> None:
        self.counts.clear()
        self._last_logged.clear()
        self._suppressed.clear()


#: Module-level default used when a caller does not pass its own.
STATS = ParseStats()


def _clip(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else text[:limit] + "…"


# ---------------------------------------------------------------------------------------------
# Path-aware field readers (raise ParseError naming the path)


def _obj(value: Any, path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ParseError(f"{path}: expected an object, got {_kind(value)}")
    return value


def _list(value: Any, path: str) -> list[Any]:
    if not isinstance(value, list):
        raise ParseError(f"{path}: expected an array, got {_kind(value)}")
    return value


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    return type(value).__name__


def _get(obj: dict[str, Any], key: str, path: str) -> Any:
    if key not in obj:
        raise ParseError(f"{path}.{key}: missing")
    return obj[key]


def _dec(obj: dict[str, Any], key: str, path: str) -> Decimal:
    value = _get(obj, key, path)
    return _to_dec(value, f"{path}.{key}")


#: Sane magnitudes for any exchange number (price, size, fee, notional, funding): 1e-18 ≤ |x| < 1e16.
#: A number outside them ("1e999999999", "1e-999999999") is finite for Decimal but overflows or
#: divides by zero in later arithmetic; refusing it here keeps every consumer's arithmetic safe.
MAX_ADJUSTED_EXPONENT = 15
MIN_ADJUSTED_EXPONENT = -18
#: Longest number text accepted (converting a million-digit string is itself a cost).
MAX_NUMBER_CHARS = 64


def _to_dec(value: Any, path: str) -> Decimal:
    if value is None:
        raise ParseError(f"{path}: expected a decimal string, got null")
    if isinstance(value, str) and len(value) > MAX_NUMBER_CHARS:
        raise ParseError(f"{path}: number out of range ({len(value)} characters): {_clip(value, 40)}")
    try:
        result = to_decimal(value, path)
    except ValueError as exc:
        raise ParseError(str(exc)) from None
    if not result:
        return Decimal(0)  # "0E-999999999" is zero: drop the exponent that would cost later
    if not MIN_ADJUSTED_EXPONENT <= result.adjusted() <= MAX_ADJUSTED_EXPONENT:
        raise ParseError(
            f"{path}: number out of range: {_clip(str(value), 40)} "
            f"(accepted: 1e{MIN_ADJUSTED_EXPONENT} to 1e{MAX_ADJUSTED_EXPONENT + 1})"
        )
    return result


def _opt_dec(obj: dict[str, Any], key: str, path: str) -> Decimal | None:
    value = obj.get(key)
    return None if value is None else _to_dec(value, f"{path}.{key}")


def _int(obj: dict[str, Any], key: str, path: str) -> int:
    value = _get(obj, key, path)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ParseError(f"{path}.{key}: expected an integer, got {_kind(value)} {_clip(repr(value), 40)}")
    return value


def _opt_int(obj: dict[str, Any], key: str, path: str) -> int | None:
    return None if obj.get(key) is None else _int(obj, key, path)


def _str(obj: dict[str, Any], key: str, path: str) -> str:
    value = _get(obj, key, path)
    if not isinstance(value, str):
        raise ParseError(f"{path}.{key}: expected a string, got {_kind(value)}")
    return value


def _opt_str(obj: dict[str, Any], key: str, path: str) -> str | None:
    return None if obj.get(key) is None else _str(obj, key, path)


def _bool(obj: dict[str, Any], key: str, path: str) -> bool:
    value = _get(obj, key, path)
    if not isinstance(value, bool):
        raise ParseError(f"{path}.{key}: expected true/false, got {_kind(value)}")
    return value


def _opt_bool(obj: dict[str, Any], key: str, path: str) -> bool | None:
    return None if obj.get(key) is None else _bool(obj, key, path)


def _side(obj: dict[str, Any], key: str, path: str) -> Side:
    value = _str(obj, key, path)
    try:
        return Side.from_wire(value)
    except ValueError as exc:
        raise ParseError(f"{path}.{key}: {exc}") from None


def _opt_cloid(obj: dict[str, Any], key: str, path: str) -> Cloid | None:
    value = obj.get(key)
    if value is None:
        return None
    try:
        return Cloid.parse(value)
    except ValueError as exc:
        raise ParseError(f"{path}.{key}: {exc}") from None


# ---------------------------------------------------------------------------------------------
# Shared element parsers


def parse_level(value: Any, path: str) -> BookLevel:
    level = _obj(value, path)
    return BookLevel(px=_dec(level, "px", path), sz=_dec(level, "sz", path), n=_int(level, "n", path))


def parse_fill(value: Any, path: str = "fill") -> Fill:
    f = _obj(value, path)
    return Fill(
        coin=_str(f, "coin", path),
        px=_dec(f, "px", path),
        sz=_dec(f, "sz", path),
        side=_side(f, "side", path),
        time=_int(f, "time", path),
        # Fields the bot only reports: a missing one must not cost it the fill.
        start_position=_opt_dec(f, "startPosition", path) or Decimal(0),
        dir=_opt_str(f, "dir", path) or "",
        closed_pnl=_opt_dec(f, "closedPnl", path) or Decimal(0),
        hash=_opt_str(f, "hash", path) or "",
        oid=_int(f, "oid", path),
        crossed=bool(_opt_bool(f, "crossed", path)),
        fee=_dec(f, "fee", path),
        tid=_int(f, "tid", path),
        cloid=_opt_cloid(f, "cloid", path),
        fee_token=_opt_str(f, "feeToken", path),
    )


def parse_asset_ctx(value: Any, coin: str, path: str) -> AssetCtx:
    ctx = _obj(value, path)
    impact = ctx.get("impactPxs")
    impact_pxs: tuple[Decimal, Decimal] | None = None
    if impact is not None:
        pair = _list(impact, f"{path}.impactPxs")
        if len(pair) != 2:
            raise ParseError(f"{path}.impactPxs: expected [bid, ask], got {len(pair)} elements")
        impact_pxs = (_to_dec(pair[0], f"{path}.impactPxs[0]"), _to_dec(pair[1], f"{path}.impactPxs[1]"))
    return AssetCtx(
        coin=coin,
        oracle_px=_dec(ctx, "oraclePx", path),
        mark_px=_dec(ctx, "markPx", path),
        mid_px=_opt_dec(ctx, "midPx", path),
        open_interest=_dec(ctx, "openInterest", path),
        funding=_dec(ctx, "funding", path),
        premium=_opt_dec(ctx, "premium", path),
        impact_pxs=impact_pxs,
        prev_day_px=_opt_dec(ctx, "prevDayPx", path),
        day_ntl_vlm=_opt_dec(ctx, "dayNtlVlm", path),
    )


def _each(
    items: list[Any], path: str, parse_one: Callable[[Any, str], _T], stats: ParseStats, reason: str
) -> tuple[_T, ...]:
    """Parse every element; a bad one is counted and skipped so its siblings survive."""
    out: list[_T] = []
    for i, item in enumerate(items):
        try:
            out.append(parse_one(item, f"{path}[{i}]"))
        except ParseError as exc:
            stats.count(reason, str(exc))
    return tuple(out)


# ---------------------------------------------------------------------------------------------
# WebSocket channels


def _ws_bbo(data: Any, stats: ParseStats) -> list[WsEvent]:
    d = _obj(data, "bbo.data")
    pair = _list(_get(d, "bbo", "bbo.data"), "bbo.data.bbo")
    if len(pair) != 2:
        raise ParseError(f"bbo.data.bbo: expected [bid, ask], got {len(pair)} elements")
    bid = None if pair[0] is None else parse_level(pair[0], "bbo.data.bbo[0]")
    ask = None if pair[1] is None else parse_level(pair[1], "bbo.data.bbo[1]")
    return [Bbo(coin=_str(d, "coin", "bbo.data"), time=_int(d, "time", "bbo.data"), bid=bid, ask=ask)]


def parse_l2_book(data: Any, path: str = "l2Book") -> L2Book:
    d = _obj(data, path)
    levels = _list(_get(d, "levels", path), f"{path}.levels")
    if len(levels) != 2:
        raise ParseError(f"{path}.levels: expected [bids, asks], got {len(levels)} elements")
    sides = []
    for s, side in enumerate(levels):
        side_path = f"{path}.levels[{s}]"
        sides.append(
            tuple(parse_level(lv, f"{side_path}[{i}]") for i, lv in enumerate(_list(side, side_path)))
        )
    return L2Book(coin=_str(d, "coin", path), time=_int(d, "time", path), bids=sides[0], asks=sides[1])


def _ws_l2_book(data: Any, stats: ParseStats) -> list[WsEvent]:
    return [parse_l2_book(data, "l2Book.data")]


def _ws_asset_ctx(data: Any, stats: ParseStats) -> list[WsEvent]:
    d = _obj(data, "activeAssetCtx.data")
    coin = _str(d, "coin", "activeAssetCtx.data")
    return [parse_asset_ctx(_get(d, "ctx", "activeAssetCtx.data"), coin, "activeAssetCtx.data.ctx")]


def _ws_all_mids(data: Any, stats: ParseStats) -> list[WsEvent]:
    d = _obj(data, "allMids.data")
    raw = _obj(_get(d, "mids", "allMids.data"), "allMids.data.mids")
    mids: dict[str, Decimal] = {}
    for coin, px in raw.items():
        try:
            mids[coin] = _to_dec(px, f"allMids.data.mids.{coin}")
        except ParseError as exc:
            stats.count("bad_mid", str(exc))
    return [AllMids(mids=mids)]


def _ws_user_fills(data: Any, stats: ParseStats) -> list[WsEvent]:
    d = _obj(data, "userFills.data")
    is_snapshot = _opt_bool(d, "isSnapshot", "userFills.data") or False  # absent on live updates
    fills = _list(_get(d, "fills", "userFills.data"), "userFills.data.fills")
    parsed = _each(fills, "userFills.data.fills", parse_fill, stats, "bad_fill")
    # The user is one per subscription and never needed to route a fill: absent is not an error.
    user = _opt_str(d, "user", "userFills.data") or ""
    return [UserFills(user=user.lower(), is_snapshot=is_snapshot, fills=parsed)]


def parse_order_update(value: Any, path: str) -> OrderUpdate:
    u = _obj(value, path)
    opath = f"{path}.order"
    o = _obj(_get(u, "order", path), opath)
    return OrderUpdate(
        coin=_str(o, "coin", opath),
        side=_side(o, "side", opath),
        limit_px=_dec(o, "limitPx", opath),
        sz=_dec(o, "sz", opath),
        oid=_int(o, "oid", opath),
        timestamp=_int(o, "timestamp", opath),
        orig_sz=_dec(o, "origSz", opath),
        status=_str(u, "status", path),
        status_timestamp=_int(u, "statusTimestamp", path),
        cloid=_opt_cloid(o, "cloid", opath),
        reduce_only=_opt_bool(o, "reduceOnly", opath),
    )


def _ws_order_updates(data: Any, stats: ParseStats) -> list[WsEvent]:
    items = _list(data, "orderUpdates.data")
    return [
        OrderUpdates(updates=_each(items, "orderUpdates.data", parse_order_update, stats, "bad_order_update"))
    ]


def _ws_subscription_response(data: Any, stats: ParseStats) -> list[WsEvent]:
    d = _obj(data, "subscriptionResponse.data")
    method = d.get("method", "subscribe")
    if not isinstance(method, str):
        raise ParseError(f"subscriptionResponse.data.method: expected a string, got {_kind(method)}")
    if "subscription" in d:
        sub = _obj(d["subscription"], "subscriptionResponse.data.subscription")
    elif isinstance(d.get("type"), str):  # older/alternative flat form: the subscription itself
        sub = {k: v for k, v in d.items() if k != "method"}
    else:
        raise ParseError("subscriptionResponse.data.subscription: missing")
    return [SubscriptionAck(method=method, subscription=sub)]


def _ws_pong(data: Any, stats: ParseStats) -> list[WsEvent]:
    return [Pong()]


def _ws_error(data: Any, stats: ParseStats) -> list[WsEvent]:
    message = data if isinstance(data, str) else orjson.dumps(data).decode()
    return [ErrorMessage(message=message)]


def _ws_post(data: Any, stats: ParseStats) -> list[WsEvent]:
    d = _obj(data, "post.data")
    response = _obj(_get(d, "response", "post.data"), "post.data.response")
    return [
        PostReply(
            id=_int(d, "id", "post.data"),
            kind=_str(response, "type", "post.data.response"),
            payload=response.get("payload"),
        )
    ]


_CHANNELS: dict[str, Callable[[Any, ParseStats], list[WsEvent]]] = {
    "bbo": _ws_bbo,
    "l2Book": _ws_l2_book,
    "activeAssetCtx": _ws_asset_ctx,
    "allMids": _ws_all_mids,
    "userFills": _ws_user_fills,
    "orderUpdates": _ws_order_updates,
    "subscriptionResponse": _ws_subscription_response,
    "pong": _ws_pong,
    "error": _ws_error,
    "post": _ws_post,
}


def parse_ws_frame(text: str | bytes, stats: ParseStats | None = None) -> list[WsEvent]:
    """One inbound WebSocket frame → zero or more events. Never raises."""
    stats = STATS if stats is None else stats
    try:
        if isinstance(text, bytes | bytearray):
            text = bytes(text).decode("utf-8", errors="replace")
        if text.strip() == GREETING:
            return []
        try:
            msg = orjson.loads(text)
        except orjson.JSONDecodeError:
            stats.count("bad_json", text)
            return []
        if not isinstance(msg, dict) or not isinstance(msg.get("channel"), str):
            stats.count("no_channel", text)
            return []
        channel: str = msg["channel"]
        handler = _CHANNELS.get(channel)
        if handler is None and channel.startswith("orderUpdates:"):  # some servers suffix the user
            handler = _ws_order_updates
        if handler is None:
            if channel not in IGNORED_CHANNELS:
                stats.count("unknown_channel", channel)
            return []
        if "data" not in msg and channel != "pong":
            stats.count(f"bad_{channel}", f"{channel}.data: missing")
            return []
        try:
            return handler(msg.get("data"), stats)
        except ParseError as exc:
            stats.count(f"bad_{channel}", str(exc))
            return []
    except Exception as exc:  # a parser bug must not kill the reader task
        stats.count("internal_error", f"{type(exc).__name__}: {exc}")
        return []


# ---------------------------------------------------------------------------------------------
# Action responses (/exchange body, or the payload of a WS action post)


def parse_action_status(value: Any, stats: ParseStats | None = None) -> OrderStatus:
    """One element of `statuses`; anything unexpected becomes StatusOther so positions stay aligned."""
    stats = STATS if stats is None else stats
    if value == "success":
        return StatusSuccess()
    try:
        if isinstance(value, dict) and len(value) == 1:
            ((key, body),) = value.items()
            if key == "resting":
                r = _obj(body, "status.resting")
                return Resting(
                    oid=_int(r, "oid", "status.resting"), cloid=_opt_cloid(r, "cloid", "status.resting")
                )
            if key == "filled":
                f = _obj(body, "status.filled")
                return Filled(
                    total_sz=_dec(f, "totalSz", "status.filled"),
                    avg_px=_dec(f, "avgPx", "status.filled"),
                    oid=_int(f, "oid", "status.filled"),
                    cloid=_opt_cloid(f, "cloid", "status.filled"),
                )
            if key == "error":
                return OrderError(message=body if isinstance(body, str) else orjson.dumps(body).decode())
    except ParseError as exc:
        stats.count("bad_order_status", str(exc))
    return StatusOther(raw=value)


def parse_action_response(body: Any, stats: ParseStats | None = None) -> ActionResult:
    """`{"status":"ok"|"err", "response":…}` → ActionOk | ActionErr.

    Raises ParseError when the body has neither shape: the outcome is then unknown, and the
    caller must find the order's state by other means rather than guess.
    """
    b = _obj(body, "action")
    status = _get(b, "status", "action")
    response = b.get("response")
    if status == "err":
        return ActionErr(message=response if isinstance(response, str) else orjson.dumps(response).decode())
    if status != "ok":
        raise ParseError(f"action.status: expected 'ok' or 'err', got {_clip(repr(status), 60)}")
    r = _obj(response, "action.response")
    response_type = _str(r, "type", "action.response")
    data = r.get("data")
    if data is None:
        return ActionOk(response_type=response_type, statuses=())
    d = _obj(data, "action.response.data")
    if "statuses" not in d:
        return ActionOk(response_type=response_type, statuses=())
    statuses = _list(d["statuses"], "action.response.data.statuses")
    return ActionOk(
        response_type=response_type, statuses=tuple(parse_action_status(s, stats) for s in statuses)
    )


# ---------------------------------------------------------------------------------------------
# Info bodies (strict: raise ParseError)


def parse_clearinghouse_state(body: Any) -> ClearinghouseState:
    b = _obj(body, "clearinghouseState")
    positions: list[AssetPosition] = []
    for i, item in enumerate(
        _list(_get(b, "assetPositions", "clearinghouseState"), "clearinghouseState.assetPositions")
    ):
        item_path = f"clearinghouseState.assetPositions[{i}]"
        path = f"{item_path}.position"
        p = _obj(_get(_obj(item, item_path), "position", item_path), path)
        lev = _obj(_get(p, "leverage", path), f"{path}.leverage")
        positions.append(
            AssetPosition(
                coin=_str(p, "coin", path),
                szi=_dec(p, "szi", path),
                entry_px=_opt_dec(p, "entryPx", path),
                position_value=_dec(p, "positionValue", path),
                unrealized_pnl=_dec(p, "unrealizedPnl", path),
                leverage_type=_str(lev, "type", f"{path}.leverage"),
                leverage=_int(lev, "value", f"{path}.leverage"),
                liquidation_px=_opt_dec(p, "liquidationPx", path),
                margin_used=_opt_dec(p, "marginUsed", path),
            )
        )
    summary = _obj(_get(b, "marginSummary", "clearinghouseState"), "clearinghouseState.marginSummary")
    return ClearinghouseState(
        positions=tuple(positions),
        account_value=_dec(summary, "accountValue", "clearinghouseState.marginSummary"),
        total_margin_used=_dec(summary, "totalMarginUsed", "clearinghouseState.marginSummary"),
        withdrawable=_dec(b, "withdrawable", "clearinghouseState"),
        time=_opt_int(b, "time", "clearinghouseState"),
    )


def _open_order(value: Any, path: str) -> OpenOrder:
    o = _obj(value, path)
    return OpenOrder(
        coin=_str(o, "coin", path),
        side=_side(o, "side", path),
        limit_px=_dec(o, "limitPx", path),
        sz=_dec(o, "sz", path),
        oid=_int(o, "oid", path),
        timestamp=_int(o, "timestamp", path),
        orig_sz=_opt_dec(o, "origSz", path),
        cloid=_opt_cloid(o, "cloid", path),
        reduce_only=_opt_bool(o, "reduceOnly", path),
    )


def parse_open_orders(body: Any) -> list[OpenOrder]:
    items = _list(body, "openOrders")
    return [_open_order(item, f"openOrders[{i}]") for i, item in enumerate(items)]


def parse_order_status(body: Any) -> OrderStatusResult:
    """The `orderStatus` info answer. "unknownOid" is an answer (known=False), not a failure."""
    b = _obj(body, "orderStatus")
    status = _get(b, "status", "orderStatus")
    if status == "unknownOid":
        return OrderStatusResult(known=False)
    if status != "order":
        raise ParseError(
            f"orderStatus.status: expected 'order' or 'unknownOid', got {_clip(repr(status), 60)}"
        )
    wrapper = _obj(_get(b, "order", "orderStatus"), "orderStatus.order")
    opath = "orderStatus.order.order"
    o = _obj(_get(wrapper, "order", "orderStatus.order"), opath)
    return OrderStatusResult(
        known=True,
        status=_str(wrapper, "status", "orderStatus.order"),
        coin=_str(o, "coin", opath),
        side=_side(o, "side", opath),
        limit_px=_dec(o, "limitPx", opath),
        sz=_dec(o, "sz", opath),
        orig_sz=_opt_dec(o, "origSz", opath),
        oid=_int(o, "oid", opath),
        cloid=_opt_cloid(o, "cloid", opath),
        status_timestamp=_opt_int(wrapper, "statusTimestamp", "orderStatus.order"),
    )


def parse_fills(body: Any, stats: ParseStats | None = None) -> list[Fill]:
    """userFills / userFillsByTime: the body must be an array; a bad element is counted and skipped."""
    stats = STATS if stats is None else stats
    items = _list(body, "fills")
    return list(_each(items, "fills", parse_fill, stats, "bad_fill"))


def _meta_asset(value: Any, path: str) -> MetaAsset:
    a = _obj(value, path)
    sz_decimals = _int(a, "szDecimals", path)
    if not 0 <= sz_decimals <= 8:
        raise ParseError(f"{path}.szDecimals: expected 0..8, got {sz_decimals}")
    margin_mode = _opt_str(a, "marginMode", path)
    only_isolated = bool(_opt_bool(a, "onlyIsolated", path)) or margin_mode in ("strictIsolated", "noCross")
    return MetaAsset(
        name=_str(a, "name", path),
        sz_decimals=sz_decimals,
        max_leverage=_int(a, "maxLeverage", path),
        only_isolated=only_isolated,
        is_delisted=bool(_opt_bool(a, "isDelisted", path)),
        deployer_fee_scale=_fee_scale(a, path),
        growth_mode=_growth_mode(a, path),
    )


#: The deployer fee scale's documented range: 0–3, up to 10 in growth mode (hyperliquid.md §4.5).
MAX_DEPLOYER_FEE_SCALE = Decimal(10)


def _fee_scale(a: dict[str, Any], path: str) -> Decimal | None:
    scale = _opt_dec(a, "deployerFeeScale", path)
    if scale is not None and not 0 <= scale <= MAX_DEPLOYER_FEE_SCALE:
        raise ParseError(f"{path}.deployerFeeScale: expected 0..{MAX_DEPLOYER_FEE_SCALE}, got {scale}")
    return scale


def _growth_mode(a: dict[str, Any], path: str) -> bool:
    """`growthMode` is "enabled" on the live API; a boolean is accepted too; absent means off."""
    value = a.get("growthMode")
    if value is None or isinstance(value, bool):
        return bool(value)
    if isinstance(value, str):
        return value.lower() == "enabled"
    raise ParseError(f"{path}.growthMode: expected a string, got {_kind(value)}")


def parse_meta(body: Any, path: str = "meta") -> Meta:
    b = _obj(body, path)
    universe = _list(_get(b, "universe", path), f"{path}.universe")
    return Meta(universe=tuple(_meta_asset(a, f"{path}.universe[{i}]") for i, a in enumerate(universe)))


#: A base fee rate above this (100 bps) is not a fee schedule the exchange publishes.
MAX_BASE_FEE_RATE = Decimal("0.01")


def _rate(obj: dict[str, Any], key: str, path: str, limit: Decimal) -> Decimal:
    value = _dec(obj, key, path)
    if not 0 <= value <= limit:
        raise ParseError(f"{path}.{key}: expected 0..{limit}, got {value}")
    return value


def parse_user_fees(body: Any, path: str = "userFees") -> UserFees:
    """userFees: the account's base rates and discounts (hyperliquid.md §11).

    `activeStakingDiscount` is an object whose `discount` is the fraction; absent discounts are 0.
    """
    b = _obj(body, path)
    referral = Decimal(0)
    if b.get("activeReferralDiscount") is not None:
        referral = _rate(b, "activeReferralDiscount", path, Decimal(1))
    staking = Decimal(0)
    raw_staking = b.get("activeStakingDiscount")
    if raw_staking is not None:
        staking_obj = _obj(raw_staking, f"{path}.activeStakingDiscount")
        if staking_obj.get("discount") is not None:
            staking = _rate(staking_obj, "discount", f"{path}.activeStakingDiscount", Decimal(1))
    return UserFees(
        cross_rate=_rate(b, "userCrossRate", path, MAX_BASE_FEE_RATE),
        add_rate=_rate(b, "userAddRate", path, MAX_BASE_FEE_RATE),
        referral_discount=referral,
        staking_discount=staking,
    )


def parse_meta_and_asset_ctxs(body: Any) -> tuple[Meta, list[AssetCtx]]:
    """`[meta, [ctx…]]`, contexts aligned with `meta.universe` (they carry no coin of their own)."""
    pair = _list(body, "metaAndAssetCtxs")
    if len(pair) != 2:
        raise ParseError(f"metaAndAssetCtxs: expected [meta, ctxs], got {len(pair)} elements")
    meta = parse_meta(pair[0], "metaAndAssetCtxs[0]")
    ctxs = _list(pair[1], "metaAndAssetCtxs[1]")
    if len(ctxs) != len(meta.universe):
        raise ParseError(
            f"metaAndAssetCtxs[1]: {len(ctxs)} contexts for {len(meta.universe)} assets in the universe"
        )
    return meta, [
        parse_asset_ctx(ctx, asset.name, f"metaAndAssetCtxs[1][{i}]")
        for i, (ctx, asset) in enumerate(zip(ctxs, meta.universe, strict=True))
    ]


def _oi_caps(d: dict[str, Any], path: str, stats: ParseStats) -> dict[str, Decimal]:
    """assetToStreamingOiCap `[[coin, cap], …]`. A bad pair is counted and skipped rather than failing
    discovery: the dex's asset ids don't depend on it, and a market without a cap only loses that gate."""
    raw = d.get("assetToStreamingOiCap")
    path = f"{path}.assetToStreamingOiCap"
    if raw is None:
        return {}
    if not isinstance(raw, list):
        stats.count("bad_oi_cap", f"{path}: expected an array, got {_kind(raw)}")
        return {}
    caps: dict[str, Decimal] = {}
    for i, pair in enumerate(raw):
        where = f"{path}[{i}]"
        if not (isinstance(pair, list) and len(pair) == 2 and isinstance(pair[0], str) and pair[0]):
            stats.count("bad_oi_cap", f"{where}: expected [coin, cap], got {_clip(repr(pair), 80)}")
            continue
        try:
            cap = _to_dec(pair[1], f"{where}[1]")
        except ParseError as exc:
            stats.count("bad_oi_cap", str(exc))
            continue
        if cap < 0:
            stats.count("bad_oi_cap", f"{where}[1]: negative cap {cap}")
            continue
        caps[pair[0]] = cap
    return caps


def parse_perp_dexs(body: Any, stats: ParseStats | None = None) -> list[PerpDex]:
    """perpDexs: element 0 is null (the validator dex); a dex's index is its position in the array."""
    stats = STATS if stats is None else stats
    items = _list(body, "perpDexs")
    dexs: list[PerpDex] = []
    for i, item in enumerate(items):
        if item is None:
            continue
        path = f"perpDexs[{i}]"
        d = _obj(item, path)
        dexs.append(
            PerpDex(
                index=i,
                name=_str(d, "name", path),
                full_name=_opt_str(d, "fullName", path),
                deployer=_opt_str(d, "deployer", path),
                oi_caps=_oi_caps(d, path, stats),
            )
        )
    return dexs


def parse_user_role(body: Any, path: str = "userRole") -> UserRole:
    """{"role": "user"} / {"role": "agent", "data": {"user": master}} / {"role": "missing"} …"""
    d = _obj(body, path)
    role = _str(d, "role", path)
    master: str | None = None
    data = d.get("data")
    if isinstance(data, dict):
        owner = data.get("user", data.get("master"))
        if isinstance(owner, str):
            master = owner.lower()
    if role == "agent" and master is None:
        raise ParseError(f"{path}.data.user: missing for an agent")
    return UserRole(role=role, master=master)


def parse_extra_agents(body: Any, path: str = "extraAgents") -> list[ExtraAgent]:
    agents: list[ExtraAgent] = []
    for i, item in enumerate(_list(body, path)):
        item_path = f"{path}[{i}]"
        a = _obj(item, item_path)
        agents.append(
            ExtraAgent(
                name=_opt_str(a, "name", item_path) or "",
                address=_str(a, "address", item_path).lower(),
                valid_until=_opt_int(a, "validUntil", item_path),
            )
        )
    return agents
