"""Typed messages the exchange sends us, after parsing.

Only shapes live here; `hip3.hyperliquid.parse` turns JSON into them. Every number that is money
is a `Decimal`; ids and exchange timestamps (ms) are ints. Exchange timestamps are data, never
the bot's clock.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from attrs import field, frozen

from hip3.core import Cloid, Side

# ---------------------------------------------------------------------------------------------
# Market data


@frozen
class BookLevel:
    px: Decimal
    sz: Decimal
    n: int


@frozen
class Bbo:
    """Best bid and offer; either side may be missing (an empty side of the book)."""

    coin: str
    time: int
    bid: BookLevel | None
    ask: BookLevel | None


@frozen
class L2Book:
    coin: str
    time: int
    bids: tuple[BookLevel, ...]
    asks: tuple[BookLevel, ...]


@frozen
class AssetCtx:
    """activeAssetCtx for one perp market (HIP-3 included)."""

    coin: str
    oracle_px: Decimal
    mark_px: Decimal
    mid_px: Decimal | None
    open_interest: Decimal
    funding: Decimal
    premium: Decimal | None = None
    impact_pxs: tuple[Decimal, Decimal] | None = None
    prev_day_px: Decimal | None = None
    day_ntl_vlm: Decimal | None = None


@frozen
class AllMids:
    mids: dict[str, Decimal]


# ---------------------------------------------------------------------------------------------
# User events


@frozen
class Fill:
    """One fill record: a taker crossing k maker orders produces k of these with distinct tids."""

    coin: str
    px: Decimal
    sz: Decimal
    side: Side
    time: int
    start_position: Decimal
    dir: str
    closed_pnl: Decimal
    hash: str
    oid: int
    crossed: bool
    fee: Decimal
    tid: int
    cloid: Cloid | None = None
    fee_token: str | None = None


@frozen
class UserFills:
    """A userFills message; the first one after subscribing is a snapshot of history."""

    user: str
    is_snapshot: bool
    fills: tuple[Fill, ...]


@frozen
class OrderUpdate:
    """One element of an orderUpdates array. `sz` is the size still open, `orig_sz` the original."""

    coin: str
    side: Side
    limit_px: Decimal
    sz: Decimal
    oid: int
    timestamp: int
    orig_sz: Decimal
    status: str
    status_timestamp: int
    cloid: Cloid | None = None
    reduce_only: bool | None = None


@frozen
class OrderUpdates:
    updates: tuple[OrderUpdate, ...]


# ---------------------------------------------------------------------------------------------
# Action responses (the /exchange body, or the payload of a WS post of type "action")


@frozen
class Resting:
    oid: int
    cloid: Cloid | None = None


@frozen
class Filled:
    total_sz: Decimal
    avg_px: Decimal
    oid: int
    cloid: Cloid | None = None


@frozen
class OrderError:
    """A per-order error inside a `status: ok` response, e.g. an IOC that found nothing to match."""

    message: str


@frozen
class StatusSuccess:
    """A bare "success" status (cancels; some ALO placements)."""


@frozen
class StatusOther:
    """Any status we do not model ("waitingForFill", …); kept so positions in the list stay aligned."""

    raw: Any


OrderStatus = Resting | Filled | OrderError | StatusSuccess | StatusOther


@frozen
class ActionOk:
    """`{"status": "ok", "response": {"type": …, "data": {"statuses": […]}}}`; statuses align with the request."""

    response_type: str
    statuses: tuple[OrderStatus, ...]


@frozen
class ActionErr:
    """`{"status": "err", "response": "…"}`: the whole action was refused (signature, nonce, …)."""

    message: str


@frozen
class PostError:
    """A WS post answered with `{"type": "error", "payload": "…"}`."""

    message: str


ActionResult = ActionOk | ActionErr | PostError


# ---------------------------------------------------------------------------------------------
# WebSocket control frames


@frozen
class SubscriptionAck:
    method: str
    subscription: dict[str, Any]


@frozen
class Pong:
    pass


@frozen
class ErrorMessage:
    """The `error` channel: the server could not understand something we sent."""

    message: str


@frozen
class PostReply:
    """A `post` channel message before correlation; `kind` is "action", "info" or "error"."""

    id: int
    kind: str
    payload: Any


# ---------------------------------------------------------------------------------------------
# Info responses


@frozen
class AssetPosition:
    coin: str
    szi: Decimal  # signed: > 0 long, < 0 short
    entry_px: Decimal | None
    position_value: Decimal
    unrealized_pnl: Decimal
    leverage_type: str
    leverage: int
    liquidation_px: Decimal | None = None
    margin_used: Decimal | None = None


@frozen
class ClearinghouseState:
    positions: tuple[AssetPosition, ...]
    account_value: Decimal
    total_margin_used: Decimal
    withdrawable: Decimal
    time: int | None = None


@frozen
class OpenOrder:
    coin: str
    side: Side
    limit_px: Decimal
    sz: Decimal
    oid: int
    timestamp: int
    orig_sz: Decimal | None = None
    cloid: Cloid | None = None
    reduce_only: bool | None = None


@frozen
class OrderStatusResult:
    """orderStatus: `known` False means the exchange answered "unknownOid" (not a failure)."""

    known: bool
    status: str | None = None
    coin: str | None = None
    side: Side | None = None
    limit_px: Decimal | None = None
    sz: Decimal | None = None  # remaining
    orig_sz: Decimal | None = None
    oid: int | None = None
    cloid: Cloid | None = None
    status_timestamp: int | None = None


@frozen
class PerpDex:
    index: int
    name: str
    full_name: str | None = None
    deployer: str | None = None
    #: assetToStreamingOiCap: open-interest cap per coin in USD notional, keyed by the coin exactly as
    #: the exchange names it (mainnet: "xyz:TSLA"; the docs' example: bare "COIN1"). The wire list is
    #: key-sorted, not in meta order: never derive asset ids from it. Left out of the hash (a dict).
    oi_caps: Mapping[str, Decimal] = field(factory=dict, hash=False)


@frozen
class MetaAsset:
    name: str  # prefixed for HIP-3: "xyz:TSLA"
    sz_decimals: int
    max_leverage: int
    only_isolated: bool = False
    is_delisted: bool = False
    #: HIP-3 per-asset fee scale (0–3, 0–10 in growth mode); None when meta does not say (older shape).
    deployer_fee_scale: Decimal | None = None
    #: Growth mode: fees (and rebates) × 0.1 on this asset.
    growth_mode: bool = False


@frozen
class Meta:
    universe: tuple[MetaAsset, ...]


@frozen
class UserFees:
    """The account's own fee rates (info `userFees`), fractions (0.00045 = 4.5 bps), before any
    HIP-3 multiplier. `cross_rate` is the taker rate, `add_rate` the maker rate."""

    cross_rate: Decimal
    add_rate: Decimal
    referral_discount: Decimal = Decimal(0)
    staking_discount: Decimal = Decimal(0)


@frozen
class UserRole:
    """What an address is on the exchange (info `userRole`): "user" (an account), "agent" (an API
    wallet; `master` is the account it signs for), "vault", "subAccount" (`master` is its owner)
    or "missing" (unknown to the exchange)."""

    role: str
    master: str | None = None


@frozen
class ExtraAgent:
    """One named API wallet of an account (info `extraAgents`); `valid_until` is exchange ms."""

    name: str
    address: str
    valid_until: int | None = None
