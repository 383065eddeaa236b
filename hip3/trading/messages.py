"""Messages between the bot's tasks: frozen attrs classes, dispatched with `match`.

Times named `*_at` are trio clock readings (seconds); exchange timestamps never appear here.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from decimal import Decimal

from attrs import field, frozen

from hip3.core import Cloid, MarketKey, Price, Side, Size

# ---------------------------------------------------------------------------------------------
# detector -> executor


@frozen
class Signal:
    """The book lags the oracle by more than the threshold on one side of one market."""

    market: MarketKey
    side: Side
    raw_edge_bps: Decimal
    threshold_bps: Decimal
    oracle_px: Decimal
    best_px: Decimal  # best ask for a buy, best bid for a sell
    best_sz: Decimal
    suggested_size: Decimal  # before lot rounding; the executor rounds
    created_at: float
    #: The threshold's parts in words ("fees 0.9+0.9 + exit cost 2 + margin 1 = 4.8 bps").
    threshold_detail: str = ""
    #: The part of the raw edge that is the market's structural book-oracle gap (bps), signed for
    #: the side: > 0 is taken off (a sell on a book living above its oracle), < 0 is added (a buy
    #: on that book: its ask above the oracle can still be under where the book settles).
    structural_gap_bps: Decimal = Decimal(0)
    #: The last price at which taking still pays the round trip: the IOC limit never goes past it.
    worst_px: Decimal | None = None

    @property
    def edge_bps(self) -> Decimal:
        """The edge that counts: raw edge against the oracle minus the structural gap."""
        return self.raw_edge_bps - self.structural_gap_bps

    @property
    def net_edge_bps(self) -> Decimal:
        return self.edge_bps - self.threshold_bps


# ---------------------------------------------------------------------------------------------
# exits / shutdown / hard stop -> executor


@frozen
class FlattenRequest:
    """Close the whole position in `market` with a reduce-only IOC order."""

    market: MarketKey
    reason: str  # "time_stop", "mark_regression", "shutdown", "hard_stop"


# ---------------------------------------------------------------------------------------------
# executor <-> tracker (DESIGN.md rule 2: check-and-reserve is one message)


@frozen
class ReserveRequest:
    cloid: Cloid
    market: MarketKey
    side: Side
    size: Size
    limit_px: Price
    reduce_only: bool
    reason: str  # "entry" or the flatten reason

    @property
    def notional(self) -> Decimal:
        return self.size * self.limit_px


class DenyReason(enum.Enum):
    HAS_POSITION = "has_position"
    PENDING_ORDER = "pending_order"
    FLATTEN_IN_PROGRESS = "flatten_in_progress"
    MARKET_NOTIONAL_CAP = "market_notional_cap"
    TOTAL_NOTIONAL_CAP = "total_notional_cap"
    MAX_CONCURRENT_POSITIONS = "max_concurrent_positions"
    NO_POSITION = "no_position"
    WRONG_SIDE = "wrong_side"
    UNKNOWN_MARKET = "unknown_market"
    DUPLICATE_CLOID = "duplicate_cloid"


@frozen
class ReserveGranted:
    cloid: Cloid
    size: Size  # a reduce-only grant may be cut to the position size


@frozen
class ReserveDenied:
    cloid: Cloid
    reason: DenyReason
    detail: str = ""


ReserveDecision = ReserveGranted | ReserveDenied


# ---------------------------------------------------------------------------------------------
# tracker -> everyone (published after each change)


@frozen
class PositionView:
    market: MarketKey
    size: Decimal  # signed: > 0 long, < 0 short; never 0 (flat markets are absent)
    entry_px: Decimal
    opened_at: float

    @property
    def side(self) -> Side:
        return Side.BUY if self.size > 0 else Side.SELL

    @property
    def notional(self) -> Decimal:
        return abs(self.size) * self.entry_px


@frozen
class PortfolioView:
    """Immutable picture of the tracker's state: good for display and exits, never for admission."""

    seq: int = 0
    positions: Mapping[MarketKey, PositionView] = field(factory=dict)
    pending_markets: frozenset[MarketKey] = frozenset()
    pending_cloids: frozenset[Cloid] = frozenset()  # open reservations (outcome not settled yet)
    flattening_markets: frozenset[MarketKey] = frozenset()
    realized_pnl: Decimal = Decimal(0)
    fees: Decimal = Decimal(0)
    corrections: int = 0
    # Markets with fills known so far only from an order response: their fees (which come with
    # the userFills stream) are still to be counted.
    awaiting_fill_reports: frozenset[MarketKey] = frozenset()


@frozen
class PositionOpened:
    market: MarketKey
    side: Side
    size: Decimal
    entry_px: Decimal
    at: float


@frozen
class PositionClosed:
    market: MarketKey
    side: Side  # side of the position that was closed
    size: Decimal
    entry_px: Decimal
    exit_px: Decimal
    realized_pnl: Decimal  # gross of fees
    held_for: float
    at: float


@frozen
class PositionChanged:
    market: MarketKey
    size: Decimal
    entry_px: Decimal
    at: float


@frozen
class Correction:
    """Resync found the exchange disagreeing with the tracker in a quiet market and corrected it."""

    market: MarketKey
    before: Decimal
    after: Decimal
    entry_px: Decimal | None
    at: float


PositionEvent = PositionOpened | PositionClosed | PositionChanged | Correction
