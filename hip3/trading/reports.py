"""The bot's own reports of what happened at the exchange: what the tracker consumes.

The feed, the executor and the resync task turn exchange events into these at the edge
(`hip3.trading.edge`); the tracker never sees an exchange shape. Exchange times are wall-clock
milliseconds (`*_ms`) and are data, never the bot's clock.
"""

from __future__ import annotations

from decimal import Decimal

from attrs import frozen

from hip3.core import Cloid, Side

#: Order states after which the order can still fill.
LIVE_STATUSES = frozenset({"open", "triggered"})


@frozen(order=True)
class TradeId:
    """A trade id is unique only together with its coin: fills are recognised by both."""

    coin: str
    tid: int

    def __str__(self) -> str:
        return f"{self.coin}#{self.tid}"


@frozen
class FillReport:
    """One fill of one of the account's orders (or of an order the bot did not send: `cloid` None)."""

    trade_id: TradeId
    cloid: Cloid | None
    side: Side
    px: Decimal
    sz: Decimal
    fee: Decimal
    time_ms: int  # exchange time of the fill
    oid: int | None = None
    # The exchange's realized PnL of this fill (gross of fees): what counts when the tracker can't
    # apply the fill itself because a snapshot already holds it.
    closed_pnl: Decimal = Decimal(0)

    @property
    def coin(self) -> str:
        return self.trade_id.coin


@frozen
class OrderReport:
    """Where one order stands (orderUpdates, or an orderStatus lookup): `status` is the exchange's word.

    `remaining_sz` is the size still open; what filled is `orig_sz − remaining_sz`, also for
    "filled" (an IOC that filled partly, a reduce-only order the exchange shrank).
    """

    cloid: Cloid
    status: str
    orig_sz: Decimal
    remaining_sz: Decimal
    oid: int | None = None

    @property
    def is_live(self) -> bool:
        return self.status in LIVE_STATUSES

    @property
    def filled_sz(self) -> Decimal:
        return max(Decimal(0), self.orig_sz - self.remaining_sz)


@frozen
class OrderNotFound:
    """orderStatus answered that the exchange does not know this cloid ("unknownOid")."""

    cloid: Cloid


@frozen
class PositionReport:
    coin: str
    size: Decimal  # signed: > 0 long, < 0 short
    entry_px: Decimal | None


@frozen
class AccountSnapshot:
    """The account's positions at one moment (clearinghouseState), for a fenced resync."""

    positions: tuple[PositionReport, ...]
    time_ms: int | None = None  # exchange time of the snapshot, when it says


# ---------------------------------------------------------------------------------------------
# what became of a post: a closed set


@frozen
class PostFilled:
    """The post's answer: the order filled `total_sz` at `avg_px` (an IOC, final)."""

    total_sz: Decimal
    avg_px: Decimal
    oid: int | None = None


@frozen
class PostResting:
    """The order rests on the book (never expected for an IOC)."""

    oid: int


@frozen
class PostRefused:
    """Refused before matching (a per-order error, or the whole action refused): nothing filled."""

    message: str


@frozen
class PostUnknown:
    """The post got no usable answer (timeout, connection lost, error reply, unmodelled status).

    The order may or may not have executed: its reservation stays counted until orderStatus or the
    fill stream settles it (DESIGN.md rule 6).
    """

    reason: str


@frozen
class NotSent:
    """The order certainly never left the bot: its reservation is released."""

    reason: str


PostOutcome = PostFilled | PostResting | PostRefused | PostUnknown | NotSent
