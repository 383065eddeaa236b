"""HTTP client for the info endpoint, the /exchange fallback, and market discovery.

Every failure raises `InfoError`: a query that could not be answered never comes back as an
empty list or a zero balance (a failed position query must never read as "flat").
Info queries retry 429 / 5xx / transport errors / timeouts with jittered exponential backoff on
trio's clock; `/exchange` posts are never retried (a second copy of a signed action would come
back as "duplicate nonce" and hide the first one's outcome).
"""

from __future__ import annotations

import logging
import random
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import attrs
import httpx
import orjson
import trio

from hip3.core import Cloid, MarketKey, MarketSpec
from hip3.hyperliquid.events import (
    ActionResult,
    AssetCtx,
    ClearinghouseState,
    ExtraAgent,
    Fill,
    Meta,
    OpenOrder,
    OrderStatusResult,
    PerpDex,
    UserFees,
    UserRole,
)
from hip3.hyperliquid.parse import (
    ParseError,
    parse_action_response,
    parse_clearinghouse_state,
    parse_extra_agents,
    parse_fills,
    parse_meta,
    parse_meta_and_asset_ctxs,
    parse_open_orders,
    parse_order_status,
    parse_perp_dexs,
    parse_user_fees,
    parse_user_role,
)
from hip3.hyperliquid.ratelimit import RollingLimiter

log = logging.getLogger(__name__)
_T = TypeVar("_T")

#: Info request weights (hyperliquid.md §3.3); everything else costs 20.
LIGHT_INFO_TYPES = frozenset(
    {"l2Book", "allMids", "clearinghouseState", "orderStatus", "spotClearinghouseState", "exchangeStatus"}
)
#: Requests whose weight grows by one per 20 items returned.
PER_ITEM_INFO_TYPES = frozenset(
    {"userFills", "userFillsByTime", "historicalOrders", "recentTrades", "fundingHistory"}
)


class InfoError(Exception):
    """An info query or /exchange post could not be answered; the message says why."""


class NotListedError(InfoError):
    """The configured dex or a configured coin is not what the exchange lists (unknown, wrongly
    cased, delisted). A configuration problem, not an outage: retrying will not help. Subscribing
    such a coin would make the exchange close the whole socket (hyperliquid.md §11)."""


@attrs.frozen
class Discovery:
    """What startup discovery learned: the markets by coin (no prefix) and the dex's perpDexs entry
    (None for the validator dex "", which perpDexs lists as null)."""

    specs: dict[str, MarketSpec]
    perp_dex: PerpDex | None
    meta: Meta | None = None  # the meta(dex) the specs came from (per-asset fee fields)


def info_weight(request: dict[str, Any]) -> int:
    kind = request.get("type")
    if kind in LIGHT_INFO_TYPES:
        return 2
    if kind == "userRole":
        return 60
    return 20


def exchange_weight(body: dict[str, Any]) -> int:
    """1 + floor(batch length / 40) (hyperliquid.md §3.3)."""
    action = body.get("action")
    batch = 0
    if isinstance(action, dict):
        for key in ("orders", "cancels", "modifies"):
            items = action.get(key)
            if isinstance(items, list):
                batch = len(items)
    return 1 + batch // 40


@attrs.define
class InfoClient:
    """Use `open_info_client`; methods are safe to call from several tasks at once."""

    _http: httpx.AsyncClient
    _info_url: str
    _exchange_url: str | None
    _timeout: float
    _budget: RollingLimiter
    _max_attempts: int
    _backoff_initial: float
    _backoff_max: float
    _rng: random.Random

    # ----------------------------------------------------------------------------------------
    # transport

    def _backoff(self, attempt: int) -> float:
        base = min(self._backoff_max, self._backoff_initial * 2.0 ** (attempt - 1))
        return base * (0.5 + 0.5 * self._rng.random())

    async def _post_once(self, url: str, body: dict[str, Any], what: str) -> httpx.Response:
        """One POST bounded by the timeout on trio's clock; transport errors become InfoError."""
        content = orjson.dumps(body)
        try:
            with trio.fail_after(self._timeout):
                return await self._http.post(
                    url, content=content, headers={"Content-Type": "application/json"}
                )
        except trio.TooSlowError:
            raise InfoError(f"{what}: no answer within {self._timeout:g} s") from None
        except httpx.HTTPError as exc:
            raise InfoError(f"{what}: transport error: {type(exc).__name__}: {exc}") from None

    async def _query(self, request: dict[str, Any]) -> Any:
        """POST /info with retries; returns the decoded JSON body."""
        what = f"info {request.get('type')}"
        last = ""
        for attempt in range(1, self._max_attempts + 1):
            if attempt > 1:
                delay = self._backoff(attempt - 1)
                log.info("%s: retry %d/%d in %.2f s after %s", what, attempt, self._max_attempts, delay, last)
                await trio.sleep(delay)
            await self._budget.acquire(info_weight(request))
            try:
                response = await self._post_once(self._info_url, request, what)
            except InfoError as exc:
                last = str(exc)
                continue
            if response.status_code == 429 or response.status_code >= 500:
                last = f"{what}: HTTP {response.status_code}: {_clip(response.text)}"
                continue
            if response.status_code != 200:
                raise InfoError(f"{what}: HTTP {response.status_code}: {_clip(response.text)}")
            try:
                body = orjson.loads(response.content)
            except orjson.JSONDecodeError:
                raise InfoError(f"{what}: answer is not JSON: {_clip(response.text)}") from None
            if request.get("type") in PER_ITEM_INFO_TYPES and isinstance(body, list):
                self._budget.charge(len(body) // 20)
            return body
        raise InfoError(f"{last} (gave up after {self._max_attempts} attempts)")

    async def _parsed(self, request: dict[str, Any], parse: Callable[[Any], _T]) -> _T:
        body = await self._query(request)
        if body is None:
            raise InfoError(f"info {request.get('type')}: answer is null")
        try:
            return parse(body)
        except ParseError as exc:
            raise InfoError(f"info {request.get('type')}: malformed answer: {exc}") from None

    # ----------------------------------------------------------------------------------------
    # info queries

    async def perp_dexs(self) -> list[PerpDex]:
        return await self._parsed({"type": "perpDexs"}, parse_perp_dexs)

    async def meta(self, dex: str) -> Meta:
        return await self._parsed({"type": "meta", "dex": dex}, parse_meta)

    async def meta_and_asset_ctxs(self, dex: str) -> tuple[Meta, list[AssetCtx]]:
        return await self._parsed({"type": "metaAndAssetCtxs", "dex": dex}, parse_meta_and_asset_ctxs)

    async def clearinghouse_state(self, user: str, dex: str) -> ClearinghouseState:
        # `dex` is mandatory: without it the answer covers only the validator dex.
        return await self._parsed(
            {"type": "clearinghouseState", "user": user, "dex": dex}, parse_clearinghouse_state
        )

    async def open_orders(self, user: str, dex: str) -> list[OpenOrder]:
        return await self._parsed({"type": "openOrders", "user": user, "dex": dex}, parse_open_orders)

    async def order_status(self, user: str, oid_or_cloid: int | str | Cloid) -> OrderStatusResult:
        oid: int | str = oid_or_cloid if isinstance(oid_or_cloid, int) else str(oid_or_cloid)
        return await self._parsed({"type": "orderStatus", "user": user, "oid": oid}, parse_order_status)

    async def user_role(self, address: str) -> UserRole:
        """What `address` is: an account, an agent (and whose), a vault, a sub-account, or missing."""
        return await self._parsed({"type": "userRole", "user": address}, parse_user_role)

    async def extra_agents(self, user: str) -> list[ExtraAgent]:
        """The named API wallets `user` approved, with their expiry."""
        return await self._parsed({"type": "extraAgents", "user": user}, parse_extra_agents)

    async def user_fees(self, user: str) -> UserFees:
        """The account's base fee rates and discounts (before the HIP-3 per-asset multiplier)."""
        return await self._parsed({"type": "userFees", "user": user}, parse_user_fees)

    async def user_fills_by_time(self, user: str, start_ms: int, end_ms: int | None = None) -> list[Fill]:
        request: dict[str, Any] = {"type": "userFillsByTime", "user": user, "startTime": start_ms}
        if end_ms is not None:
            request["endTime"] = end_ms
        return await self._parsed(request, parse_fills)

    # ----------------------------------------------------------------------------------------
    # /exchange

    async def post_exchange(self, body: dict[str, Any]) -> ActionResult:
        """POST a signed action once. Any failure raises InfoError: the outcome is then unknown."""
        if self._exchange_url is None:
            raise InfoError("post_exchange: no exchange_url configured")
        action = body.get("action")
        what = f"exchange {action.get('type') if isinstance(action, dict) else '?'}"
        await self._budget.acquire(exchange_weight(body))
        response = await self._post_once(self._exchange_url, body, what)
        if response.status_code != 200:
            raise InfoError(f"{what}: HTTP {response.status_code}: {_clip(response.text)}")
        try:
            return parse_action_response(orjson.loads(response.content))
        except orjson.JSONDecodeError:
            raise InfoError(f"{what}: answer is not JSON: {_clip(response.text)}") from None
        except ParseError as exc:
            raise InfoError(f"{what}: malformed answer: {exc}") from None

    # ----------------------------------------------------------------------------------------
    # discovery

    async def discover_markets(self, dex: str, coins: list[str]) -> dict[str, MarketSpec]:
        """Markets of one dex keyed by coin without prefix; `["*"]` = every listed market."""
        return (await self.discover(dex, coins)).specs

    async def discover(self, dex: str, coins: list[str]) -> Discovery:
        """The markets of one dex (see `discover_markets`) and the dex's perpDexs entry (its OI caps).

        asset id = 100000 + perp_dex_index × 10000 + index in meta(dex).universe, where
        perp_dex_index is the dex's position in perpDexs. Never from lists inside perpDexs
        (those are key-sorted, not in meta order).
        """
        perp_dex: PerpDex | None = None
        if dex:
            dexs = await self.perp_dexs()
            found = [d for d in dexs if d.name == dex]
            if not found:
                known = ", ".join(d.name for d in dexs) or "none"
                raise NotListedError(f"markets.dex: dex {dex!r} not in perpDexs (known: {known})")
            perp_dex = found[0]
            base = 100000 + perp_dex.index * 10000
        else:
            base = 0  # validator perps: asset id = index in meta
        meta = await self.meta(dex)
        prefix = f"{dex}:" if dex else ""
        by_coin: dict[str, tuple[int, Any]] = {}
        for index, asset in enumerate(meta.universe):
            if prefix and not asset.name.startswith(prefix):
                raise InfoError(
                    f"discover_markets: meta({dex!r}) lists {asset.name!r} without the {prefix!r} prefix"
                )
            by_coin[asset.name[len(prefix) :]] = (index, asset)

        if coins == ["*"]:
            wanted = [coin for coin, (_, asset) in by_coin.items() if not asset.is_delisted]
        else:
            wanted = [c[len(prefix) :] if prefix and c.startswith(prefix) else c for c in coins]
            missing = [c for c in wanted if c not in by_coin]
            if missing:
                raise NotListedError(
                    "markets.coins: " + "; ".join(_unknown_coin(c, dex, by_coin) for c in missing)
                )
            delisted = [c for c in wanted if by_coin[c][1].is_delisted]
            if delisted:
                raise NotListedError(f"markets.coins: {', '.join(delisted)} delisted in dex {dex!r}")

        specs: dict[str, MarketSpec] = {}
        for coin in wanted:
            index, asset = by_coin[coin]
            specs[coin] = MarketSpec(
                key=MarketKey(dex=dex, coin=coin, asset=base + index),
                sz_decimals=asset.sz_decimals,
                max_leverage=asset.max_leverage,
                only_isolated=asset.only_isolated,
            )
        return Discovery(specs=specs, perp_dex=perp_dex, meta=meta)


def _unknown_coin(coin: str, dex: str, listed: dict[str, Any]) -> str:
    """ "X not listed in dex 'xyz'", with the listed spelling when only the case differs."""
    same = [name for name in listed if name.lower() == coin.lower()]
    hint = f" (did you mean {same[0]!r}? coin names are case-sensitive)" if same else ""
    return f"{coin} not listed in dex {dex!r}{hint}"


def _clip(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else text[:limit] + "…"


@asynccontextmanager
async def open_info_client(
    info_url: str,
    *,
    exchange_url: str | None = None,
    timeout: float = 10.0,
    weight_per_minute: int = 1200,
    max_attempts: int = 4,
    backoff_initial: float = 0.5,
    backoff_max: float = 8.0,
    transport: httpx.AsyncBaseTransport | None = None,
    rng: random.Random | None = None,
) -> AsyncIterator[InfoClient]:
    """`transport` lets tests inject `httpx.MockTransport`; `rng` makes the jitter reproducible."""
    if max_attempts < 1:
        raise ValueError(f"max_attempts must be ≥ 1, got {max_attempts}")
    # httpx's own timeout is a backstop; the trio-clock timeout in _post_once is the one that counts.
    async with httpx.AsyncClient(transport=transport, timeout=httpx.Timeout(timeout + 5.0)) as http:
        yield InfoClient(
            http,
            info_url,
            exchange_url,
            timeout,
            RollingLimiter(weight_per_minute, 60.0),
            max_attempts,
            backoff_initial,
            backoff_max,
            rng or random.Random(),
        )
